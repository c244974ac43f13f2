"""GPU: training images/s of resnet50 and efficientnet_b0 with AMP and channels-last,
through a raysweep trial against a bare timm training step on the same GPU, model and
batch size, in the same call; and a check that NCCL DDP trials run.

    python bench/gpu.py                          # needs a CUDA GPU; ~5 min on one H100
    python bench/gpu.py --models resnet50 --batch-size 128 --repeats 3
    python bench/gpu.py --tiny                   # the smoke test: exits 77 with a message without a GPU

Bare step (what timm's `benchmark.py --bench train --amp --channels-last` measures,
written here): `timm.create_model`, SGD with momentum, fp16 autocast with a grad
scaler, channels-last, `cudnn.benchmark` on, one synthetic batch on the GPU reused
every step; `--warmup` steps, then `--steps` timed steps between CUDA synchronizations.

raysweep trial: `build_trainer(cfg).fit()`, one Ray Train worker with 1 GPU and
`--cpus` CPUs (DataLoader workers: all but one), the same model (raysweep's
`Classifier`: the timm backbone and a linear head), batch size, `train.amp: fp16`,
`train.channels_last: true`; synthetic 224 x 224 images held in memory (`data.kind:
synthetic`), so the loader only normalizes and collates. Its training images/s are the
trainer's own (`images_per_s`: images / training seconds of an epoch, loader waits
included, validation excluded), median of the epochs after the first. Ratio =
raysweep / bare, per interleaved pair; target >= 0.9.

DDP: a 2-worker trial over NCCL (`gpus_per_worker: 0.5` on a single GPU, else 1 each)
must run two epochs and report.

Exit status 77 (skipped) when no CUDA GPU is visible.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import EpochClock, Spread, key_line, print_table

SKIPPED = 77


def bare_images_per_s(model_name: str, batch_size: int, warmup: int, steps: int, num_classes: int = 10) -> float:
    import timm
    import torch

    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    model = timm.create_model(model_name, num_classes=num_classes).to(device).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch_size, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), device=device)

    def step():
        with torch.autocast("cuda", dtype=torch.float16):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    rate = batch_size * steps / (time.perf_counter() - start)
    del model, opt, x, y
    torch.cuda.empty_cache()
    return rate


def trial_config(model_name: str, batch_size: int, steps_per_epoch: int, epochs: int, cpus: int, workers: int = 1, gpus_per_worker: float = 1.0):
    train_images = batch_size * steps_per_epoch * workers
    return harness.validate_config({
        "name": f"gpu_{model_name}",
        "data": {"kind": "synthetic", "num_samples": int(train_images / 0.9) + 1, "val_fraction": 0.1, "shape": [3, 224, 224],
                 "num_classes": 10, "loader_workers": max(1, cpus - 1)},
        "model": {"name": model_name},
        "augment": {"preset": "none"},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "train": {"epochs": epochs, "batch_size": batch_size, "amp": "fp16", "channels_last": True, "max_steps_per_epoch": steps_per_epoch,
                  "max_val_batches": 2},
        "resources": {"workers": workers, "cpus_per_worker": cpus, "gpus_per_worker": gpus_per_worker, "max_failures": 0},
        "tracking": {"enabled": False},
    }, "bench/gpu.py")


def raysweep_images_per_s(cfg, workdir: Path, tag: str) -> float:
    from trainables.launch import build_trainer

    clock_file = workdir / f"{tag}.jsonl"
    build_trainer(cfg, name=tag, storage_path=str(workdir / "storage"), listeners=[EpochClock(clock_file)]).fit()
    epochs = [r for r in EpochClock.read(clock_file) if r["event"] == "epoch"][1:]  # the first warms cuDNN up
    return Spread.of(r["images_per_s"] for r in epochs).median


def ddp_check(workdir: Path, gpus: int, cpus: int) -> str:
    """A 2-worker NCCL trial: 'ok' with its epochs, or the error it ended with."""
    from trainables.launch import build_trainer

    per_worker = 0.5 if gpus < 2 else 1.0
    cfg = trial_config("resnet18", 32, 5, 2, max(2, cpus // 2), workers=2, gpus_per_worker=per_worker)
    try:
        result = build_trainer(cfg, name="ddp-check", storage_path=str(workdir / "storage")).fit()
    except Exception as e:  # NCCL refuses two ranks on one GPU in some versions: report it, do not hide it
        return f"failed ({per_worker:g} GPU per worker): {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return f"ok: 2 workers x {per_worker:g} GPU, NCCL, {result.metrics.get('epoch')} epochs, val/accuracy {result.metrics.get('val/accuracy', float('nan')):.3f}"


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=2)
    p.add_argument("--models", default="resnet50,efficientnet_b0")
    p.add_argument("--batch-size", type=int, default=256, help="per GPU (timm's benchmark default: 256)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=40, help="timed steps of the bare loop (default 40)")
    p.add_argument("--steps-per-epoch", type=int, default=15, help="training steps per epoch of the raysweep trial (default 15)")
    p.add_argument("--epochs", type=int, default=4, help="epochs of the raysweep trial, the first left out (default 4)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs for the trial's worker (default: all but 2, at most 12)")
    args = p.parse_args(argv)

    import os

    import torch

    if not torch.cuda.is_available():
        print("gpu.py: skipped: no CUDA GPU visible (torch.cuda.is_available() is False); run it on a machine with an NVIDIA GPU.")
        print("\n## GPU training throughput\n(not measured: no GPU)")
        key_line("gpu", {"skipped": "no_gpu"})
        return SKIPPED
    if args.tiny:
        args.repeats, args.models, args.batch_size, args.warmup, args.steps, args.steps_per_epoch, args.epochs = 1, "resnet18", 32, 2, 5, 3, 2
    cpus = args.cpus or max(2, min(12, (os.cpu_count() or 4) - 2))
    gpus = torch.cuda.device_count()
    begun = time.perf_counter()
    harness.start_ray(num_cpus=os.cpu_count(), num_gpus=gpus)
    workdir = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    models = args.models.split(",")
    got = {m: {"bare": [], "raysweep": []} for m in models}
    try:
        for rep in range(args.repeats):
            for m in models:
                cfg = trial_config(m, args.batch_size, args.steps_per_epoch, args.epochs, cpus)
                for kind in ("bare", "raysweep") if rep % 2 == 0 else ("raysweep", "bare"):
                    if kind == "bare":
                        got[m][kind].append(bare_images_per_s(m, args.batch_size, args.warmup, args.steps))
                    else:
                        got[m][kind].append(raysweep_images_per_s(cfg, workdir, f"{m}-{rep}"))
        ddp = ddp_check(workdir, gpus, cpus)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows, key = [], {}
    for m in models:
        ratio = [r / b for r, b in zip(got[m]["raysweep"], got[m]["bare"])]
        rows.append([m, Spread.of(got[m]["bare"]).show(0), Spread.of(got[m]["raysweep"]).show(0), Spread.of(ratio).show(3)])
        key[f"{m}_ratio"] = Spread.of(ratio).median
    print(f"{torch.cuda.get_device_name(0)} x {gpus}; batch {args.batch_size}, 224 px, AMP fp16, channels-last; trial worker with {cpus} CPUs "
          f"({cpus - 1} loader workers); {args.repeats} interleaved pair(s); median [min, max]")
    print_table("training images/s", ["model", "bare timm step", "raysweep trial", "ratio (target >= 0.9)"], rows)
    print_table("NCCL DDP", ["check", "outcome"], [["2-worker trial", ddp]])
    print(harness.elapsed(begun))
    key["ddp"] = "ok" if ddp.startswith("ok") else "failed"
    key_line("gpu", key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
