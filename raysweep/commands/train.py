"""Run one trial through Ray Train, each search domain at its default, and print
its final validation metrics (with --json, as one JSON object on the last line).
With `tracking.enabled` the run is an MLflow run of its own (role `train`) in the
sweep's experiment, with the params, per-epoch metrics and artifacts of a trial.

    raysweep train search_spaces/quickstart.yaml --workers 2"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

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


def main(args: argparse.Namespace) -> int:
    from raysweep.commands import load_checked
    from raysweep.errors import ConfigError
    from raysweep.storage import storage_uri

    sweep = load_checked(args.space, args.overrides)
    cfg = sweep.config
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError(f"must be >= 1, got {args.workers}", source="--workers")
        from raysweep.config.sections.run import gpu_share_problem

        problem = gpu_share_problem(args.workers, cfg.resources.gpus_per_worker)
        if problem:
            raise ConfigError(f"resources.gpus_per_worker {problem}", source="--workers")
        # a one-worker trial trains here (inline); several workers are a Train run whatever the file said
        inline = cfg.resources.inline and args.workers == 1
        cfg = cfg.model_copy(update={"resources": cfg.resources.model_copy(update={"workers": args.workers, "inline": inline})})

    from trainables.data.check import check_data

    check_data(cfg)
    if cfg.tracking.enabled:
        from raysweep.tracking.sweep import probe

        probe(cfg)  # an unreachable MLflow is refused before Ray starts

    name = f"{cfg.name}-train-{time.strftime('%Y%m%d-%H%M%S')}"
    here = cfg.resources.inline and args.address is None
    if not here:
        from raysweep.connect import connect

        connect(args.address)
    run = _open_run(cfg, name, args.space)
    listeners = [run.listener()] if run else []
    try:
        if here:
            result = _train_here(cfg, name, storage_uri(args.storage), args.resume_from, listeners)
        else:
            from ray.train import Checkpoint

            from trainables.launch import build_trainer

            resume = Checkpoint.from_directory(str(Path(args.resume_from).resolve())) if args.resume_from else None
            trainer = build_trainer(cfg, name=name, storage_path=storage_uri(args.storage), resume_from=resume, verbose=True, listeners=listeners)
            result = trainer.fit()
    except BaseException as e:
        if run:
            with contextlib.suppress(Exception):  # the training's own error is the one to show
                run.fail_if_open(f"{type(e).__name__}: {e}")
        raise
    metrics = result.metrics or {}
    if metrics.get("diverged"):
        print(f"error: trial diverged: {metrics.get('error')}")
        return 1
    if run:
        with result.checkpoint.as_directory() if result.checkpoint is not None else contextlib.nullcontext() as checkpoint:
            run.finish(Path(checkpoint) if checkpoint else None, cfg.search.primary_metric)
    _print_result(name, cfg, result, run, args.json)
    return 0


@dataclass
class _Trained:
    """What `_print_result` reads of a training: Ray Train's `Result` has the same two fields."""

    metrics: dict
    checkpoint: Optional[Any]


def _train_here(cfg, name: str, storage: str, resume_from: Optional[str], listeners) -> _Trained:
    """One worker with no `--address`: the trainer runs in this process, as a sweep's one-worker
    trial runs in its Tune actor (`trainables.tune_session`): no Ray instance, controller or
    worker group to start (seconds before the first epoch), the same checkpoints, under
    `<storage>/<name>/checkpoint_<epoch>`."""
    import torch

    from raysweep.storage import join
    from trainables.trainer import Trainer
    from trainables.tune_session import TuneSession
    from trainables.worker import worker_threads

    torch.set_num_threads(worker_threads(cfg.resources.cpus_per_worker))
    device = "cuda" if cfg.resources.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
    session = TuneSession(join(storage, name), cfg.search.primary_metric, cfg.search.primary_mode,
                          report=lambda metrics: None, device=device, resume_from=resume_from)
    metrics = Trainer(cfg, session, listeners=listeners, verbose=True).fit()
    latest = session.latest()
    return _Trained(metrics, SimpleNamespace(path=session.location(latest), as_directory=lambda: session.checkpoint_dir()) if latest else None)


def _open_run(cfg, name: str, space: str):
    """The MLflow run of this training, when tracking is on."""
    if not cfg.tracking.enabled:
        return None
    from raysweep.tracking.train_run import open_train_run

    run = open_train_run(cfg, name)
    served = run.target.uri.startswith(("http://", "https://"))
    print(f"MLflow: {run.where()}" + ("" if served else f" (`raysweep ui {space}` shows it)"), flush=True)
    return run


def _print_result(name: str, cfg, result, run, as_json: bool) -> None:
    metrics = result.metrics or {}
    print(f"finished {name}: {cfg.resources.workers} worker(s), {metrics.get('epoch')} epochs")
    for key in sorted(k for k in metrics if k.startswith(("val/", "train/")) and k.count("/") == 1):
        print(f"  {key:24s} {metrics[key]:.4f}")
    if result.checkpoint is not None:
        print(f"  checkpoint               {result.checkpoint.path}")
    if run:
        print(f"  MLflow                   {run.where()}")
    if as_json:
        print(json.dumps({k: metrics.get(k) for k in JSON_KEYS}))
