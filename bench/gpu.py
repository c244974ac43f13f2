"""GPU: what a raysweep trial makes of one GPU, each figure a ratio measured in one run.

    python bench/gpu.py --results out/          # needs a CUDA GPU; ~5 min on one H100
    bench/gpu_offline.sh out/                   # the same on an air-gapped node, from the wheelhouse
    python bench/gpu.py --tiny                  # the smoke test; without a GPU: one line, exit 77

1. Training images/s, raysweep trial / bare timm step, for resnet50 and efficientnet_b0
   (target >= 0.9). Bare step (what timm's `benchmark.py --bench train --amp
   --channels-last` measures): `timm.create_model`, SGD with momentum, fp16 autocast with a
   grad scaler, channels-last, `cudnn.benchmark`, one synthetic batch on the GPU reused every
   step; `--warmup` steps, then `--steps` timed between CUDA synchronizations. raysweep trial:
   `build_trainer(cfg).fit()`, one Ray Train worker with 1 GPU and `--cpus` CPUs, the same
   model and batch, `train.amp: fp16`, `train.channels_last: true`, synthetic 224 px images
   held in memory; its images/s are the trainer's own (`images_per_s` of an epoch, loader
   waits included, validation excluded), median of the epochs after the first.
2. The same trial (resnet50) on JPEG files decoded by raysweep's `image_folder` loader at
   224 px, with all but one of the worker's CPUs as loader workers, over the bare step; and
   the loader alone (raysweep's dataset and DataLoader, no GPU) at 1, 2, 4, 8, ... workers
   over the GPU trial's images/s: the fewest workers at >= 1 keep the GPU busy.
3. GPU utilization (mean) and memory (peak) while the resnet50 trials train, sampled with
   NVML from this process every 0.2 s; and the series MLflow's system metrics logged to
   the trial's run (`system/gpu_0_utilization_percentage`, tracking on for that trial).
4. Start-up of a one-GPU trial through Ray Train (`build_trainer`, the path of DDP trials and
   of `resources.inline: false`): seconds from `fit()` to the trainer's start (worker group
   up, data and model built) and to its first epoch, over the trial's whole time. The packed
   sweep below runs one-worker trials as raysweep does by default: inline, in reused actors.
5. Four small one-worker trials (resnet18) as a raysweep sweep packed on the one GPU
   (`gpus_per_worker: 0.25`, 4 at once) against the same four one after another
   (`gpus_per_worker: 1`): trials per second, packed / one after another.

`--results DIR` writes every figure to DIR/gpu.json. Exit status 77 (skipped) when no
CUDA GPU is visible.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
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


def trial_config(model_name: str, batch_size: int, steps_per_epoch: int, epochs: int, cpus: int, *, data: dict | None = None,
                 gpus_per_worker: float = 1.0, tracking: dict | None = None):
    data = data or {"kind": "synthetic", "num_samples": int(batch_size * steps_per_epoch / 0.9) + 1, "shape": [3, 224, 224], "num_classes": 10}
    return harness.validate_config({
        "name": f"gpu_{model_name}",
        "data": {"val_fraction": 0.1, "loader_workers": max(1, cpus - 1), **data},
        "model": {"name": model_name},
        "augment": {"preset": "none"},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "train": {"epochs": epochs, "batch_size": batch_size, "amp": "fp16", "channels_last": True, "max_steps_per_epoch": steps_per_epoch,
                  "max_val_batches": 2},
        "resources": {"workers": 1, "cpus_per_worker": cpus, "gpus_per_worker": gpus_per_worker, "max_failures": 0},
        "tracking": tracking or {"enabled": False},
    }, "bench/gpu.py")


class GpuSampler:
    """GPU 0's utilization (%) and memory used (MiB), sampled with NVML on a thread."""

    def __init__(self, interval_s: float = 0.2):
        self.interval_s = interval_s
        self.util: list[float] = []
        self.memory_mib: list[float] = []
        self._stop = threading.Event()

    def __enter__(self):
        import pynvml

        pynvml.nvmlInit()
        index = int(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or 0)
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)

        def sample():
            while not self._stop.wait(self.interval_s):
                self.util.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                self.memory_mib.append(pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        return {"gpu_util_mean_pct": sum(self.util) / len(self.util) if self.util else float("nan"),
                "gpu_memory_peak_mib": max(self.memory_mib, default=float("nan")), "samples": len(self.util)}


def timed_trial(cfg, workdir: Path, tag: str, listeners=()) -> dict:
    """One raysweep trial through Ray Train: its steady images/s and its start-up times."""
    from trainables.launch import build_trainer

    clock_file = workdir / f"{tag}.jsonl"
    called = time.time()
    build_trainer(cfg, name=tag, storage_path=str(workdir / "storage"), listeners=[EpochClock(clock_file), *listeners]).fit()
    ended = time.time()
    records = EpochClock.read(clock_file)
    start = next(r["t"] for r in records if r["event"] == "start")
    epochs = [r for r in records if r["event"] == "epoch"]
    return {
        "images_per_s": Spread.of(r["images_per_s"] for r in epochs[1:]).median,  # the first warms cuDNN up
        "startup_s": start - called, "first_epoch_s": epochs[0]["t"] - called, "total_s": ended - called,
    }


def system_metric_series(uri: str, run_id: str) -> dict:
    """What MLflow's system metrics logged to the trial's run: samples and mean per series."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    out = {}
    for key in ("system/gpu_0_utilization_percentage", "system/gpu_0_memory_usage_megabytes", "system/cpu_utilization_percentage"):
        values = [m.value for m in client.get_metric_history(run_id, key)]
        out[key] = {"samples": len(values), "mean": sum(values) / len(values) if values else float("nan")}
    return out


def tracking_settings(workdir: Path) -> dict:
    """Tracking on for one trial (SQLite in `workdir`), system metrics every second."""
    return {"enabled": True, "uri": f"sqlite:///{workdir / 'mlflow.db'}", "artifact_location": str(workdir / "mlartifacts"),
            "system_metrics": True, "system_metrics_interval_s": 1.0}


def loader_rates(root: Path, workers: list[int], batch_size: int) -> dict[int, float]:
    import data_pipeline

    data = data_pipeline.data_section("jpeg", root, 0)
    return {w: data_pipeline.images_per_s(data, "none", w, batch_size) for w in workers}


def packed_vs_serial(workdir: Path, trials: int, steps: int, cpus: int, tiny: bool) -> dict:
    """Wall time of `trials` small trials as one sweep, packed (1/trials of the GPU each) and one by one."""
    out = {}
    for mode, share in (("packed", 1.0 / trials), ("serial", 1.0)):
        raw = {
            "name": f"gpu-{mode}",
            "data": {"kind": "synthetic", "num_samples": int(64 * steps / 0.9) + 1, "shape": [3, 224, 224], "num_classes": 10, "loader_workers": 0},
            "model": {"name": "resnet18"},
            "augment": {"preset": "none"},
            "optimizer": {"name": "sgd", "lr": {"grid": [0.01 * (i + 1) for i in range(trials)]}, "momentum": 0.9},
            "train": {"epochs": 1 if tiny else 2, "batch_size": 64, "amp": "fp16", "channels_last": True, "max_val_batches": 2},
            "resources": {"workers": 1, "cpus_per_worker": cpus, "gpus_per_worker": share, "max_failures": 0},
            "search": {"algorithm": "grid", "scheduler": "none"},
            "tracking": {"enabled": False},
        }
        clock = workdir / f"{mode}.jsonl"
        harness.timed_sweep(raw, workdir, f"gpu-{mode}", clock)
        times = harness.trial_times(clock)
        if len(times["ends"]) != trials:
            raise RuntimeError(f"{mode}: {len(times['ends'])} of {trials} trials finished ({len(times['errors'])} errors)")
        out[mode] = max(times["ends"]) - min(times["starts"])
    out["ratio"] = out["serial"] / out["packed"]
    return out


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=1)
    p.add_argument("--models", default="resnet50,efficientnet_b0")
    p.add_argument("--batch-size", type=int, default=256, help="per GPU (timm's benchmark default: 256)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=30, help="timed steps of the bare loop (default 30)")
    p.add_argument("--steps-per-epoch", type=int, default=12, help="training steps per epoch of a raysweep trial (default 12)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of a raysweep trial, the first left out (default 3)")
    p.add_argument("--images", type=int, default=3072, help="JPEG files for the loader measurements (default 3072)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs for a trial's worker (default: all but 2, at most 14)")
    p.add_argument("--results", type=Path, default=None, help="write every figure to RESULTS/gpu.json")
    args = p.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("gpu.py: skipped: no CUDA GPU visible (torch.cuda.is_available() is False); run it on a machine with an NVIDIA GPU.")
        return SKIPPED
    if args.tiny:
        args.models, args.batch_size, args.warmup, args.steps, args.steps_per_epoch, args.epochs, args.images = "resnet18", 32, 2, 5, 3, 2, 256
    cpus = args.cpus or max(2, min(14, (os.cpu_count() or 4) - 2))
    begun = time.perf_counter()
    harness.start_ray(num_cpus=os.cpu_count(), num_gpus=torch.cuda.device_count())
    workdir = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    models = args.models.split(",")
    first = models[0]
    figures: dict = {"gpu": torch.cuda.get_device_name(0), "machine": harness.machine(), "cpus_per_trial": cpus, "batch_size": args.batch_size}
    try:
        # 1. in-memory: raysweep over bare, per model; the first model's trial tracked and sampled
        for m in models:
            bare = [bare_images_per_s(m, args.batch_size, args.warmup, args.steps) for _ in range(args.repeats)]
            cfg = trial_config(m, args.batch_size, args.steps_per_epoch, args.epochs, cpus, tracking=tracking_settings(workdir) if m == first else None)
            run = None
            if m == first:  # as `raysweep train` tracks a trial
                from raysweep.tracking.train_run import open_train_run

                run = open_train_run(cfg, f"gpu-check-{m}")
            with GpuSampler() as gpu:
                trial = timed_trial(cfg, workdir, f"{m}-memory", [run.listener()] if run else [])
            figures[m] = {"bare_images_per_s": Spread.of(bare).median, **trial, "ratio": trial["images_per_s"] / Spread.of(bare).median,
                          **gpu.summary()}
            if run:
                figures[m]["mlflow_system_metrics"] = system_metric_series(run.target.uri, run.run_id)
            print(f"{m}: bare {figures[m]['bare_images_per_s']:.0f} images/s, raysweep {trial['images_per_s']:.0f} ({figures[m]['ratio']:.3f}) "
                  f"{harness.elapsed(begun)}", flush=True)

        # 2. files: the loader alone by worker count, then the trial on the files
        root = workdir / "images"
        import data_pipeline

        data_pipeline.write_images(root / "jpeg", args.images, 224, 224, "jpeg")
        counts = sorted({w for w in (1, 2, 4, 8, cpus - 1) if 1 <= w <= cpus - 1})
        rates = loader_rates(root, counts, args.batch_size)
        steps = max(2, min(args.steps_per_epoch, int(args.images * 0.9) // args.batch_size))
        cfg = trial_config(first, args.batch_size, steps, args.epochs, cpus, data={"kind": "image_folder", "root": str(root / "jpeg")})
        with GpuSampler() as gpu:
            files = timed_trial(cfg, workdir, f"{first}-files")
        gpu_rate = figures[first]["images_per_s"]
        enough = [w for w in counts if rates[w] >= gpu_rate]
        figures["files"] = {
            "model": first, **files, "ratio_to_bare": files["images_per_s"] / figures[first]["bare_images_per_s"],
            "ratio_to_memory_trial": files["images_per_s"] / gpu_rate, "loader_workers": cpus - 1, **gpu.summary(),
            "loader_images_per_s": {str(w): r for w, r in rates.items()}, "workers_to_keep_gpu_busy": enough[0] if enough else None,
        }
        print(f"files: {files['images_per_s']:.0f} images/s {harness.elapsed(begun)}", flush=True)

        # 5. four small trials packed on the GPU against one after another
        figures["packing"] = packed_vs_serial(workdir, 4, 5 if args.tiny else 20, max(1, cpus // 4), args.tiny)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report(figures, models, args, cpus)
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "gpu.json").write_text(json.dumps(figures, indent=2, default=str))
    print(harness.elapsed(begun))
    key_line("gpu", {**{f"{m}_ratio": figures[m]["ratio"] for m in models}, "files_ratio": figures["files"]["ratio_to_bare"],
                     "packed_ratio": figures["packing"]["ratio"]})
    return 0


def report(figures: dict, models: list[str], args, cpus: int) -> None:
    first = models[0]
    print(f"{figures['gpu']}; batch {args.batch_size}, 224 px, AMP fp16, channels-last; trial worker with {cpus} CPUs")
    print_table("training images/s (in memory)", ["model", "bare timm step", "raysweep trial", "ratio (target >= 0.9)", "GPU util %", "GPU memory MiB"],
                [[m, f"{figures[m]['bare_images_per_s']:.0f}", f"{figures[m]['images_per_s']:.0f}", f"{figures[m]['ratio']:.3f}",
                  f"{figures[m]['gpu_util_mean_pct']:.0f}", f"{figures[m]['gpu_memory_peak_mib']:.0f}"] for m in models])
    f = figures["files"]
    print_table(f"{first} on JPEG files (raysweep's loader, 224 px, {f['loader_workers']} loader workers)",
                ["raysweep trial images/s", "over bare", "over in-memory trial", "GPU util %", "GPU memory MiB"],
                [[f"{f['images_per_s']:.0f}", f"{f['ratio_to_bare']:.3f}", f"{f['ratio_to_memory_trial']:.3f}", f"{f['gpu_util_mean_pct']:.0f}",
                  f"{f['gpu_memory_peak_mib']:.0f}"]])
    gpu_rate = figures[first]["images_per_s"]
    print_table("the loader alone (decode + normalize + collate), by loader workers", ["workers", "images/s", "over the GPU trial"],
                [[w, f"{r:.0f}", f"{r / gpu_rate:.2f}"] for w, r in f["loader_images_per_s"].items()])
    print(f"fewest loader workers that keep the GPU busy: {f['workers_to_keep_gpu_busy'] or 'more than ' + str(max(map(int, f['loader_images_per_s'])))}")
    m = figures[first]
    print_table("one-GPU trial start-up", ["fit() to trainer start s", "to first epoch s", "whole trial s", "start-up share"],
                [[f"{m['startup_s']:.1f}", f"{m['first_epoch_s']:.1f}", f"{m['total_s']:.1f}", f"{m['startup_s'] / m['total_s']:.2f}"]])
    series = m.get("mlflow_system_metrics", {})
    print_table("MLflow system metrics of the tracked trial's run", ["series", "samples", "mean"],
                [[k, v["samples"], f"{v['mean']:.1f}"] for k, v in series.items()])
    pk = figures["packing"]
    print_table("4 small trials (resnet18)", ["packed, 0.25 GPU each s", "one after another s", "throughput ratio"],
                [[f"{pk['packed']:.1f}", f"{pk['serial']:.1f}", f"{pk['ratio']:.2f}"]])


if __name__ == "__main__":
    sys.exit(main())
