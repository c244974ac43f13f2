"""Run one trial through Ray Train, each search domain at its default, and print
its final validation metrics (with --json, as one JSON object on the last line)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from raysweep.commands import add_overrides

HELP = "train one trial (each search domain at its default)"
JSON_KEYS = ("val/macro_f1", "val/accuracy", "val/loss", "epoch")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help="sweep file (YAML)")
    add_overrides(p)
    p.add_argument("--workers", type=int, default=None, help="DDP workers (default: resources.workers)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: a new local instance)")
    p.add_argument("--storage", default="raysweep_results", help="where checkpoints go (directory or URI)")
    p.add_argument("--resume-from", default=None, metavar="CHECKPOINT_DIR", help="continue from a checkpoint directory")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object on the last line")


def storage_uri(storage: str) -> str:
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def main(args: argparse.Namespace) -> int:
    from raysweep.config import load_sweep
    from raysweep.errors import ConfigError

    sweep = load_sweep(args.space, args.overrides)
    cfg = sweep.config
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError(f"must be >= 1, got {args.workers}", source="--workers")
        cfg = cfg.model_copy(update={"resources": cfg.resources.model_copy(update={"workers": args.workers})})

    from trainables.data.check import check_data

    check_data(cfg)

    from ray.train import Checkpoint

    from raysweep.connect import connect
    from trainables.launch import build_trainer

    connect(args.address)
    name = f"{cfg.name}-train-{time.strftime('%Y%m%d-%H%M%S')}"
    resume = Checkpoint.from_directory(str(Path(args.resume_from).resolve())) if args.resume_from else None
    trainer = build_trainer(cfg, name=name, storage_path=storage_uri(args.storage), resume_from=resume, verbose=True)
    result = trainer.fit()
    metrics = result.metrics or {}
    if metrics.get("diverged"):
        print(f"error: trial diverged: {metrics.get('error')}")
        return 1
    print(f"finished {name}: {cfg.resources.workers} worker(s), {metrics.get('epoch')} epochs")
    for key in sorted(k for k in metrics if k.startswith(("val/", "train/")) and k.count("/") == 1):
        print(f"  {key:24s} {metrics[key]:.4f}")
    if result.checkpoint is not None:
        print(f"  checkpoint               {result.checkpoint.path}")
    if args.json:
        print(json.dumps({k: metrics.get(k) for k in JSON_KEYS}))
    return 0
