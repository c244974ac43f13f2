"""Trainer overhead: steady-state seconds per epoch of a one-worker raysweep trial
(through Ray Train) against a bare PyTorch loop written here, same model, data, batch
size, threads and augmentations, run interleaved in one process.

    python bench/trainer_overhead.py                 # 3 repetitions per augmentation, ~6 min on 2 cores
    python bench/trainer_overhead.py --tiny          # the smoke test
    python bench/trainer_overhead.py --repeats 5 --epochs 5

The raysweep side is `build_trainer(cfg, workers=1).fit()`: one Ray Train worker with
`cpus_per_worker: 1` (so 1 intra-op thread), the loop of `trainables/trainer.py`
including validation metrics, a checkpoint and a report every epoch. Its epochs are
timed from inside the worker by a trainer listener (`bench.harness.EpochClock`): wall
time from one epoch's report to the next, and the parts (training, validation pass,
metrics, checkpoint, Ray Train report). The bare side trains the same `build_model`
network on the same split and the same albumentations transforms (same `Dataset`),
with `torch.optim.SGD` and cross-entropy, and runs a plain validation pass every epoch;
it runs in this process with `torch.set_num_threads(1)`. The first epoch of each is
left out (start-up, warm caches). Ratio = raysweep / bare, per interleaved pair.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import harness
from harness import EpochClock, Spread, key_line, print_table, steady_epochs

THREADS = 1


def config(preset: str, epochs: int, samples: int, model: str, size: int):
    return harness.validate_config({
        "name": "trainer_overhead",
        "data": {"kind": "synthetic", "num_samples": samples, "shape": [3, size, size], "num_classes": 10, "loader_workers": 0},
        "model": {"name": model},
        "augment": {"preset": preset},
        "loss": {"name": "ce"},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "scheduler": {"name": "none"},
        "train": {"epochs": epochs, "batch_size": 32, "seed": 0},
        "resources": {"workers": 1, "cpus_per_worker": THREADS},
        "tracking": {"enabled": False},
    }, "bench/trainer_overhead.py")


def bare_run(cfg) -> list[dict]:
    """A plain PyTorch loop: per epoch after the first, training and training+validation seconds."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from trainables.augment import build_transforms
    from trainables.data.dataset import SampleDataset
    from trainables.data.sources import load_samples
    from trainables.data.splits import make_split
    from trainables.models import build_model

    torch.set_num_threads(THREADS)
    torch.manual_seed(cfg.train.seed)
    samples = load_samples(cfg.data)
    split = make_split(cfg.data, samples, None)
    h, w, c = samples.images.load(0).shape
    train_tf, val_tf = build_transforms(cfg.augment, h, w, c)
    train = DataLoader(SampleDataset(samples, split.train, train_tf), batch_size=cfg.train.batch_size, shuffle=True)
    val = DataLoader(SampleDataset(samples, split.val, val_tf), batch_size=cfg.train.batch_size * 2)
    model = build_model(cfg.model, samples.num_classes, c)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr, momentum=cfg.optimizer.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    out = []
    for epoch in range(cfg.train.epochs):
        start = time.perf_counter()
        model.train()
        for x, y, _ in train:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        trained = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y, _ in val:
                correct += int((model(x).argmax(1) == y).sum())
        _ = correct / max(1, len(split.val)) + float(np.float32(0))
        if epoch > 0:
            out.append({"train": trained - start, "wall": time.perf_counter() - start})
    return out


def raysweep_run(cfg, workdir: Path, tag: str) -> list[dict]:
    from trainables.launch import build_trainer

    clock_file = workdir / f"{tag}.jsonl"
    clock = EpochClock(clock_file)
    build_trainer(cfg, name=tag, storage_path=str(workdir / "storage"), workers=1, listeners=[clock]).fit()
    return steady_epochs(EpochClock.read(clock_file))


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=3)
    p.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is left out (default 4)")
    p.add_argument("--samples", type=int, default=1024, help="synthetic images, 3/4 for training (default 1024)")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--presets", default="none,light", help="augmentation presets to compare (default none,light)")
    args = p.parse_args(argv)
    if args.tiny:
        args.repeats, args.epochs, args.samples, args.model, args.size, args.presets = 1, 2, 64, "tiny_cnn", 16, "light"
    presets = args.presets.split(",")
    begun = time.perf_counter()
    harness.start_ray(num_cpus=2)
    workdir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    results: dict[str, dict[str, list]] = {p: {"ray": [], "bare": []} for p in presets}
    try:
        for rep in range(args.repeats):
            for preset in presets:
                cfg = config(preset, args.epochs, args.samples, args.model, args.size)
                # alternate which goes first, so a drift in the machine's load hits both alike
                order = ("ray", "bare") if rep % 2 == 0 else ("bare", "ray")
                for kind in order:
                    epochs = raysweep_run(cfg, workdir, f"{preset}-{rep}") if kind == "ray" else bare_run(cfg)
                    results[preset][kind].append(epochs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows, parts_rows, key = [], [], {}
    for preset in presets:
        ray_runs, bare_runs = results[preset]["ray"], results[preset]["bare"]
        med = lambda run, k: Spread.of(e[k] for e in run).median  # noqa: E731  (one run's median epoch)
        full = [med(r, "wall") / med(b, "wall") for r, b in zip(ray_runs, bare_runs)]
        train = [med(r, "epoch_time_s") / med(b, "train") for r, b in zip(ray_runs, bare_runs)]
        rows.append([
            preset, Spread.of(med(b, "wall") for b in bare_runs).show(2, " s"), Spread.of(med(r, "wall") for r in ray_runs).show(2, " s"),
            Spread.of(full).show(3), Spread.of(train).show(3),
        ])
        for part in (*EpochClock.PARTS, "other"):
            if part == "other":
                values = [med(r, "wall") - sum(Spread.of(e.get(q, 0.0) for e in r).median for q in EpochClock.PARTS) for r in ray_runs]
            else:
                values = [Spread.of(e.get(part, 0.0) for e in r).median for r in ray_runs]
            share = [v / med(b, "wall") for v, b in zip(values, bare_runs)]
            parts_rows.append([preset, part, Spread.of(values).show(3, " s"), Spread.of(share).show(3)])
        key[f"epoch_{preset}"] = Spread.of(full).median
        key[f"train_{preset}"] = Spread.of(train).median

    print(f"{args.model} at {args.size} px, batch 32, {args.samples} synthetic images (3/4 train), {THREADS} thread each, "
          f"{args.epochs} epochs per run (first left out), {args.repeats} interleaved pair(s) per preset; median [min, max]")
    print_table("seconds per steady epoch (training + validation + raysweep's per-epoch work)",
                ["augment", "bare loop", "raysweep trial", "ratio epoch", "ratio training only"], rows)
    print_table("where a raysweep epoch goes (Ray Train worker); share = part / bare epoch",
                ["augment", "part", "seconds", "share of bare epoch"], parts_rows)
    print(harness.elapsed(begun))
    key_line("trainer_overhead", key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
