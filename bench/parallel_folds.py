"""Per-trial cross-validation, folds at once against lockstep: the wall time of one 2-fold
trial trained by one worker (the folds in turn, `search.cv.parallel: false`) and by two
workers, a fold each (`true`), on a Ray instance of 2 CPUs, interleaved.

    python bench/parallel_folds.py              # 3 repeats of each, ~4 min on 2 cores
    python bench/parallel_folds.py --tiny       # the smoke test

The trial: `digits` (1797 images, 2 folds of ~900 training images), `tiny_cnn`, batch 32,
upsampled to `--input-size` px inside the model, `--epochs` epochs, each worker 1 CPU with one intra-op thread, through `build_trainer` (the
Ray Train run a sweep's trial is). Measured: the run's wall time (`fit()`, worker start-up
included), and the training time per epoch (the slowest fold group's, as the trial reports it
in `epoch_time_s`), median of the epochs after the first. The ratios are lockstep over at once:
2.0 is the ideal for 2 folds on 2 free cores.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import harness
from harness import Spread, key_line, print_table

MODES = {"lockstep": 1, "at once": 2}  # fold groups


def trial_config(epochs: int, input_size: int):
    return harness.validate_config({
        "name": "parallel-folds",
        "data": {"kind": "digits", "folds": 2},
        "model": {"name": "tiny_cnn", "input_size": input_size},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": epochs, "batch_size": 32, "seed": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"cv": {"mode": "per_trial"}},
        "tracking": {"enabled": False},
    }, "bench/parallel_folds.py")


def measure(cfg, groups: int, storage: Path, name: str) -> dict:
    from trainables.launch import build_trainer

    start = time.perf_counter()
    result = build_trainer(cfg, name=name, storage_path=str(storage), fold_groups=groups).fit()
    wall = time.perf_counter() - start
    with result.checkpoint.as_directory() as d:
        meta = json.loads(Path(d, "meta.json").read_text())
    epochs = [h["epoch_time_s"] for h in meta["history"]][1:] or [meta["history"][0]["epoch_time_s"]]
    return {"wall": wall, "epoch": statistics.median(epochs), "f1": meta["history"][-1]["val/macro_f1"]}


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--input-size", type=int, default=48, help="the digits are upsampled to this inside the model: the compute per epoch (default 48)")
    args = p.parse_args(argv)
    epochs, repeats, size = (2, 1, 16) if args.tiny else (args.epochs, args.repeats, args.input_size)
    harness.start_ray(num_cpus=2)
    import torch

    torch.set_num_threads(1)
    cfg = trial_config(epochs, size)
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for mode, groups in (MODES.items() if r % 2 == 0 else reversed(MODES.items())):  # interleaved
                with harness.quiet():
                    runs[mode].append(measure(cfg, groups, Path(tmp), f"{mode.replace(' ', '-')}-{r}"))
    rows = []
    for mode in MODES:
        wall, epoch = Spread.of(x["wall"] for x in runs[mode]), Spread.of(x["epoch"] for x in runs[mode])
        rows.append([mode, MODES[mode], wall.show(1, " s"), epoch.show(2, " s"), f"{runs[mode][-1]['f1']:.4f}"])
    print_table(f"one 2-fold trial, {epochs} epochs at {size} px, on 2 CPUs ({harness.machine()['cpu']})", ["folds", "workers", "wall time", "epoch (training)", "val/macro_f1"], rows)
    wall_ratio = statistics.median(x["wall"] for x in runs["lockstep"]) / statistics.median(x["wall"] for x in runs["at once"])
    epoch_ratio = statistics.median(x["epoch"] for x in runs["lockstep"]) / statistics.median(x["epoch"] for x in runs["at once"])
    same = all(abs(a["f1"] - b["f1"]) < 1e-6 for a, b in zip(runs["lockstep"], runs["at once"]))
    key_line("parallel_folds", {"wall_lockstep_over_at_once": wall_ratio, "epoch_lockstep_over_at_once": epoch_ratio, "same_metrics": str(same).lower()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
