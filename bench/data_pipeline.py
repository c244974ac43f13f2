"""Data pipeline: images/s of raysweep's DataLoader with the `ece449` augmentation preset
(224 x 224) per loader worker, against what one GPU consumes training a resnet50.

    python bench/data_pipeline.py                    # 0, 1, 2 loader workers, JPEG and PNG, ~3 min on 2 cores
    python bench/data_pipeline.py --tiny             # the smoke test
    python bench/data_pipeline.py --workers 0,1,2 --images 384 --repeats 5

Synthetic 3-channel images (`--width` x `--height`, smooth shapes plus noise, so that
JPEG and PNG compress as photographs do, not as flat colour) are written to disk in
class folders and read through raysweep's own `image_folder` source, `SampleDataset`
and `build_transforms` (the training pipeline of the `ece449` preset), in a
`torch.utils.data.DataLoader` built as `trainables/fold.py` builds it: so decoding,
augmentation, normalization and collation all count. Each measurement is one pass over
the images after the first batch (worker start-up left out); the worker counts are
interleaved within each repetition.

The GPU side is a published figure, not measured here (no GPU on this machine):
NVIDIA's resnet50 v1.5 PyTorch training, 1x A100 80GB, mixed precision: 2470 images/s;
timm's own published training benchmark has resnet50 at 1218 images/s (RTX 3090, AMP,
channels-last, batch 512). `bench/gpu.py` measures the figure on a real GPU.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path

import harness
from harness import Spread, key_line, print_table

# images/s one GPU consumes training resnet50 at 224 px with AMP (see the docstring)
GPU_IMAGES_PER_S = {"A100 (NVIDIA DLE, AMP)": 2470.0, "RTX 3090 (timm, AMP, NHWC)": 1218.0}
CLASSES = 4


def write_images(root: Path, count: int, width: int, height: int, fmt: str) -> None:
    """`count` synthetic photographs in `CLASSES` class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    suffix = {"jpeg": ".jpg", "png": ".png"}[fmt]
    for i in range(count):
        folder = root / f"class_{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        img = np.empty((height, width, 3), np.float32)
        for c in range(3):
            fx, fy, phase = rng.uniform(0.5, 4, 2).tolist() + [rng.uniform(0, 6.3)]
            img[..., c] = 128 + 80 * np.sin(2 * np.pi * (fx * xx / width + fy * yy / height) + phase)
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, min(width, height) / 2)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 12, img.shape)
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        pil.save(folder / f"{i:05d}{suffix}", **({"quality": 90} if fmt == "jpeg" else {}))


def data_section(fmt: str, root: Path, count: int) -> dict:
    if fmt == "memory":  # decoded already (`ArrayStore`), 224 px: what a GPU trial on in-memory data reads
        return {"kind": "synthetic", "num_samples": count, "shape": [3, 224, 224], "num_classes": CLASSES}
    return {"kind": "image_folder", "root": str(root / fmt)}


def loader(data: dict, preset: str, workers: int, batch_size: int):
    """raysweep's training loader for the source `data` with the augmentation `preset`."""
    from torch.utils.data import DataLoader

    from trainables.augment import build_transforms, seed_loader_worker
    from trainables.data.dataset import SampleDataset
    from trainables.data.sources import load_samples

    cfg = harness.validate_config({
        "name": "data_pipeline",
        "data": {**data, "loader_workers": workers},
        "model": {"name": "resnet50"},
        "augment": {"preset": preset},
    }, "bench/data_pipeline.py")
    samples = load_samples(cfg.data)
    h, w, c = samples.images.load(0).shape
    train_tf, _ = build_transforms(cfg.augment, h, w, c)
    import numpy as np

    dataset = SampleDataset(samples, np.arange(len(samples)), train_tf)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, worker_init_fn=seed_loader_worker if workers else None)


def images_per_s(data: dict, preset: str, workers: int, batch_size: int) -> float:
    """One pass over the images, timed from the first batch on."""
    it = iter(loader(data, preset, workers, batch_size))
    first = next(it)
    assert tuple(first[0].shape[1:]) == (3, 224, 224), first[0].shape
    start, n = time.perf_counter(), 0
    for x, _, _ in it:
        n += len(x)
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=3)
    p.add_argument("--workers", default="0,1,2", help="loader worker counts (default 0,1,2)")
    p.add_argument("--images", type=int, default=320, help="images per format (default 320)")
    p.add_argument("--width", type=int, default=400)
    p.add_argument("--height", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--formats", default="jpeg,png,memory", help="jpeg, png (files, ece449 preset), memory (in memory, normalization only)")
    args = p.parse_args(argv)
    if args.tiny:
        args.repeats, args.images, args.workers = 1, 48, "0,1"
    import torch

    torch.set_num_threads(1)  # the loader's own work is measured, not intra-op threads
    counts = [int(w) for w in args.workers.split(",")]
    formats = args.formats.split(",")
    begun = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
    results = {(f, w): [] for f in formats for w in counts}
    try:
        for fmt in formats:
            if fmt != "memory":
                write_images(tmp / fmt, args.images, args.width, args.height, fmt)
        for _ in range(args.repeats):
            for fmt in formats:
                preset = "none" if fmt == "memory" else "ece449"
                for w in counts:
                    results[(fmt, w)].append(images_per_s(data_section(fmt, tmp, args.images), preset, w, args.batch_size))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows, key = [], {}
    for fmt in formats:
        for w in counts:
            s = Spread.of(results[(fmt, w)])
            per = Spread.of(v / max(w, 1) for v in results[(fmt, w)])
            rows.append([fmt, w, s.show(0), per.show(0)])
    print(f"jpeg, png: ece449 preset at 224 x 224 from {args.width} x {args.height} files (image_folder); memory: 224 x 224 arrays, "
          f"normalization only (preset none); {args.images} images each, batch {args.batch_size}, {args.repeats} repetition(s), median [min, max]")
    print_table("loader throughput (images/s)", ["format", "loader workers", "images/s", "images/s per worker"], rows)

    need_rows = []
    w_max = max(counts)
    for fmt in [f for f in formats if f != "memory"]:
        per_worker = Spread.of(results[(fmt, w_max)]).median / max(w_max, 1)
        key[f"{fmt}_img_s_per_worker"] = per_worker
        for gpu, rate in GPU_IMAGES_PER_S.items():
            need_rows.append([fmt, gpu, f"{rate:.0f}", f"{per_worker:.0f}", math.ceil(rate / per_worker)])
    print_table(f"loader workers that keep one GPU fed (resnet50, AMP; per-worker rate at {w_max} workers on this CPU)",
                ["format", "GPU (published)", "GPU images/s", "images/s per loader worker", "workers needed"], need_rows)
    if len(counts) > 1 and 0 in counts and 1 in counts:
        for fmt in formats:
            key[f"{fmt}_1w_over_0w"] = Spread.of(results[(fmt, 1)]).median / Spread.of(results[(fmt, 0)]).median
    print(harness.elapsed(begun))
    key_line("data_pipeline", key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
