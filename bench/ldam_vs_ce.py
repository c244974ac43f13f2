"""LDAM-DRW against plain cross-entropy on long-tailed digits, the LDAM paper's claim
(Cao et al. 2019) at toy scale: with the same model, optimizer and epochs, LDAM with
deferred re-weighting raises macro F1 and the recall of the rarest classes.

    python bench/ldam_vs_ce.py              # 5 seeds per loss, 1-3 minutes on 2 CPU cores
    python bench/ldam_vs_ce.py --tiny       # 1 seed, 2 epochs: checks that it runs
    python bench/ldam_vs_ce.py --seeds 3 --epochs 30 --lr 0.1

Data: `digits_lt` with imbalance ratio 100 (training classes from ~133 samples down to
1, LDAM's exponential profile) and a balanced validation set of 450 digits. Each run
trains in this process (`LocalSession`, no Ray) and is scored on its last epoch, not its
best, so neither loss gets to pick its epoch on the validation set.

The shared budget (SGD lr 0.3, cosine, 60 epochs) is the best plain CE found on the grid
lr {0.03, 0.1, 0.3} x epochs {30, 60} (3 seeds), so the baseline is not starved. LDAM
uses the COMP4211 form (C = 1, s = 1, linear head) with DRW from epoch 40 of 60; the
paper's form (max_m 0.5, s 30, `normed_linear` head) wins too but prefers lr 0.03.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from raysweep.config.load import validate  # noqa: E402
from trainables.session import LocalSession  # noqa: E402
from trainables.trainer import Trainer  # noqa: E402

MINORITY = 3  # the rarest training classes whose recall is reported


def base_config(epochs: int, seed: int, lr: float) -> dict:
    """The budget both losses get: model, optimizer, schedule, epochs, batch size."""
    return {
        "name": "ldam_vs_ce",
        "data": {"kind": "digits_lt", "imbalance_ratio": 100, "loader_workers": 0},
        "model": {"name": "tiny_cnn", "kwargs": {"widths": [16, 32]}, "input_size": 16},
        "augment": {"preset": "none"},
        "optimizer": {"name": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4},
        "scheduler": {"name": "cosine"},
        "train": {"epochs": epochs, "batch_size": 32, "seed": seed},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "tracking": {"enabled": False},
    }


def recipes(epochs: int) -> dict[str, dict]:
    """Per loss, the sections that differ from `base_config`."""
    drw = max(1, round(epochs * 2 / 3))  # deferred re-weighting for the last third, as the paper's 160 of 200
    return {
        "ce": {"loss": {"name": "ce"}},
        "ldam_drw": {"loss": {"name": "ldam", "C": 1.0, "drw_start_epoch": drw, "drw_beta": 0.9999}},
    }


def run(sections: dict, epochs: int, seed: int, lr: float) -> dict:
    raw = base_config(epochs, seed, lr)
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    cfg = validate(raw, "bench/ldam_vs_ce.py")
    with tempfile.TemporaryDirectory(prefix="ldam-bench-") as tmp:
        trainer = Trainer(cfg, LocalSession(tmp, device="cpu"))
        last = trainer.fit()
    counts = trainer.folds[0].class_counts
    rare = sorted(range(len(counts)), key=lambda c: (counts[c], c))[:MINORITY]
    classes = trainer.samples.classes
    return {
        "macro_f1": last["val/macro_f1"],
        "minority_recall": statistics.fmean(last[f"val/recall/{classes[c]}"] for c in rare),
        "rare": [classes[c] for c in rare],
        "counts": [int(counts[c]) for c in range(len(counts))],
    }


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=0.3)
    parser.add_argument("--tiny", action="store_true", help="1 seed, 2 epochs")
    args = parser.parse_args(argv)
    seeds, epochs = (1, 2) if args.tiny else (args.seeds, args.epochs)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    start = time.perf_counter()
    results: dict[str, list[dict]] = {}
    for name, sections in recipes(epochs).items():
        results[name] = [run(sections, epochs, seed, args.lr) for seed in range(seeds)]
    first = results["ce"][0]
    print(f"digits_lt, imbalance 100: training counts per class {first['counts']}, balanced validation")
    print(f"{seeds} seed(s) x {epochs} epochs per loss, SGD lr {args.lr} cosine; last-epoch figures, median [min, max] over seeds")
    print(f"minority = the {MINORITY} rarest training classes ({', '.join(first['rare'])})\n")
    print(f"{'loss':<10} {'macro F1':<24} {'minority recall':<24}")
    for name, runs in results.items():
        print(f"{name:<10} {spread([r['macro_f1'] for r in runs]):<24} {spread([r['minority_recall'] for r in runs]):<24}")
    for metric in ("macro_f1", "minority_recall"):  # paired: the same seed, split and initial weights
        wins = sum(l[metric] > c[metric] for l, c in zip(results["ldam_drw"], results["ce"]))
        print(f"ldam_drw above ce on {metric} in {wins} of {seeds} seed(s)")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
