"""The training loop of one trial: epochs of training and validation, a
checkpoint every epoch, metrics reported through the session.

    Trainer(cfg, LocalSession()).fit()        # in this process
    Trainer(cfg, RaySession()).fit()          # inside a Ray Train worker

Under per-trial cross-validation (`search.cv.mode: per_trial`) the trainer
holds one `FoldRun` per fold and trains them in lockstep, so every epoch
reports the folds' mean (the objective, which ASHA prunes on) and spread.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from raysweep.config.schema import SweepConfig
from trainables.checkpoint import CONFIG_FILE, epoch_seed, load_state, rng_state, save_state, seed_everything, set_rng_state
from trainables.data.samples import Samples
from trainables.data.sources import load_samples
from trainables.data.splits import make_split
from trainables.fold import EpochStats, FoldRun, NonFiniteLoss, amp_ignored_line, image_size
from trainables.metrics import classification_metrics, nll, tune_thresholds
from trainables.session import Session, TrialStopped

PREDICTIONS_FILE = "predictions.npz"
SPLITS_FILE = "splits.npz"  # per split, per sample: 0 train, 1 validation, -1 unused
META_FILE = "meta.json"  # epoch, metrics and their history, classes, task, input shape, node: read without loading the state
DIVERGED_FILE = "diverged.json"  # the marker checkpoint of a run whose loss became non-finite
# scalar metrics that get a fold mean and standard deviation under cross-validation
CV_SCALARS = ("loss", "accuracy", "macro_f1", "micro_f1", "weighted_f1", "balanced_accuracy", "auroc", "map")


def progress_line(metrics: dict[str, Any], cfg: SweepConfig) -> str:
    keys = ("train/loss", "val/loss", cfg.search.primary_metric)
    shown = "  ".join(f"{k} {metrics[k]:.4f}" for k in dict.fromkeys(keys) if k in metrics)
    return f"epoch {metrics['epoch']}/{cfg.train.epochs}  {shown}  ({metrics['epoch_time_s']:.1f}s, {metrics['images_per_s']:.0f} img/s)"


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def per_trial_cv(cfg: SweepConfig) -> bool:
    return cfg.search.cv is not None and cfg.search.cv.mode == "per_trial"


# The data the last trainer in this process loaded, by its data config: a Tune trial actor
# trains trial after trial (`reuse_actors`), and a dataset read from files (a 40k-row pixel
# table, thousands of images' labels) need not be read again for the next trial. One entry:
# a sweep whose trials read different data keeps one dataset in memory, as one trial would.
_LOADED: dict[str, Samples] = {}


def loaded_samples(data_cfg) -> Samples:
    fields = data_cfg.model_dump(mode="json")
    # files changed since (a user who fixed a bad label and resumes) are read again
    stamps = {k: _stamp(v) for k, v in fields.items() if isinstance(v, str) and os.path.exists(v)}
    key = json.dumps([fields, stamps], sort_keys=True)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_samples(data_cfg)
    return _LOADED[key]


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_mtime_ns, st.st_size]


class Trainer:
    def __init__(self, cfg: SweepConfig, session: Session, samples: Optional[Samples] = None, verbose: bool = False, listeners: Sequence = ()):
        self.cfg = cfg
        self.session = session
        self.verbose = verbose
        # observers of the main worker's epochs (MLflow logging): start(trainer, first_epoch),
        # epoch(metrics), finish(metrics, error); extras they set go into every report
        self.listeners = list(listeners)
        self.report_extras: dict[str, Any] = {}
        seed_everything(cfg.train.seed + session.rank)  # model init identical across folds of one seed
        if cfg.train.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        amp_ignored = amp_ignored_line(cfg, session.device)
        if amp_ignored and session.is_main:
            print(amp_ignored, flush=True)  # else `train.amp` would be dropped without a word
        self.samples = samples if samples is not None else loaded_samples(cfg.data)
        fold_ids = range(cfg.data.folds) if per_trial_cv(cfg) else [None]
        self.folds = []
        for k, fold in enumerate(fold_ids):
            seed_everything(cfg.train.seed)  # every fold starts from the same initial weights
            self.folds.append(FoldRun(cfg, session, self.samples, make_split(cfg.data, self.samples, fold), k))
        self.history: list[dict[str, Any]] = []
        # when and where each epoch was trained: tells a resumed run's epochs from the first run's
        self.trained: list[dict[str, Any]] = []
        self.best: Optional[dict[str, Any]] = None

    # -- checkpoints ---------------------------------------------------------
    def state_dict(self, epoch: int, rngs: list) -> dict:
        return {
            "epoch": epoch,
            "folds": [f.state_dict() for f in self.folds],
            "rng": rngs,  # one per rank
            "history": self.history,
            "trained": self.trained,
            "best": self.best,
        }

    def restore(self, directory: Optional[Path]) -> int:
        """Load the checkpoint in `directory`, if any; return the first epoch still to train."""
        if directory is None:
            return 0
        state = load_state(directory)
        if len(state["folds"]) != len(self.folds):
            raise RuntimeError(f"checkpoint has {len(state['folds'])} folds, this trial trains {len(self.folds)}")
        for fold, fold_state in zip(self.folds, state["folds"]):
            fold.load_state_dict(fold_state)
        rngs = state["rng"]
        set_rng_state(rngs[self.session.rank] if self.session.rank < len(rngs) else rngs[0])
        self.history = list(state["history"])
        self.trained = list(state.get("trained", []))  # absent from checkpoints of older versions
        self.best = state.get("best")
        return int(state["epoch"]) + 1

    def _write_checkpoint(self, epoch: int, predictions: list, rngs: list) -> Path:
        directory = Path(tempfile.mkdtemp(prefix="raysweep-ckpt-", dir=self.session.scratch_dir))
        save_state(directory, self.state_dict(epoch, rngs))
        (directory / CONFIG_FILE).write_text(json.dumps(self.cfg.model_dump(mode="json", by_alias=True), indent=1))
        arrays = {}
        for k, (targets, scores) in enumerate(predictions):
            arrays[f"targets_{k}"], arrays[f"scores_{k}"] = targets, scores
        np.savez_compressed(directory / PREDICTIONS_FILE, classes=np.array(self.samples.classes), task=self.samples.task, **arrays)
        meta = {
            "epoch": epoch + 1, "metrics": _scalars(self.history[-1]), "best": self.best,
            "history": [_scalars(h) for h in self.history],  # every epoch, persisted with the checkpoint
            "trained": self.trained,
            "classes": list(self.samples.classes), "task": self.samples.task, "in_chans": self.samples.in_chans,
            "image_size": list(image_size(self.samples)), "pixel_max": self.samples.pixel_max,
            "one_size": bool(getattr(self.samples.images, "one_size", False)),  # how `augment.resize: auto` treated the data
            "node": getattr(self.session, "node_id", None),
            "mlflow_run_id": self.report_extras.get("mlflow_run_id"),
        }
        (directory / META_FILE).write_text(json.dumps(meta))
        assignment = np.stack([fold.split.assignment(len(self.samples)) for fold in self.folds])
        np.savez_compressed(directory / SPLITS_FILE, assignment=assignment)
        return directory

    # -- metrics -------------------------------------------------------------
    def _val_metrics(self, targets: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        task, threshold = self.samples.task, self.cfg.train.threshold
        tuned = task == "multilabel" and self.cfg.train.tune_threshold
        if tuned:  # per class, the best threshold on this very validation set: optimistic, as in the seed reports
            threshold = tune_thresholds(targets, scores, default=self.cfg.train.threshold)
        m = classification_metrics(task, targets, scores, self.samples.classes, threshold)
        if tuned:
            m["threshold_mean"] = float(np.mean(threshold))
        m["loss"] = nll(task, targets, scores)
        return m

    def _epoch_metrics(self, epoch: int, stats: list[EpochStats], predictions: list) -> dict[str, Any]:
        per_fold = [self._val_metrics(t, s) for t, s in predictions]
        seconds = sum(s.seconds for s in stats)
        out: dict[str, Any] = {
            "epoch": epoch + 1,
            "train/loss": float(np.mean([s.loss for s in stats])),
            "lr": stats[0].lr,
            "epoch_time_s": seconds,
            "images_per_s": sum(s.images for s in stats) / max(seconds, 1e-9),
        }
        if len(per_fold) == 1:
            out.update({f"val/{k}": v for k, v in per_fold[0].items()})
            return out
        for k, fold in enumerate(per_fold):
            out.update({f"fold{k}/val/{name}": fold[name] for name in CV_SCALARS if name in fold})
        for name in per_fold[0]:
            values = [fold[name] for fold in per_fold]
            out[f"val/{name}"] = float(np.mean(values))
            if name in CV_SCALARS:
                out[f"val/{name}_std"] = float(np.std(values))
        return out

    def _update_best(self, metrics: dict[str, Any]) -> None:
        key, mode = self.cfg.search.primary_metric, self.cfg.search.primary_mode
        value = metrics.get(key)
        if value is None:
            return
        if self.best is None or (value > self.best["value"] if mode == "max" else value < self.best["value"]):
            self.best = {"metric": key, "value": float(value), "epoch": int(metrics["epoch"])}

    # -- the loop ------------------------------------------------------------
    def _start_epoch(self, epoch: int) -> None:
        if self.cfg.train.reseed_every_epoch:
            seed = epoch_seed(self.cfg.train.seed, epoch, self.session.rank)
            seed_everything(seed)
            for fold in self.folds:
                fold.train_set.transform.reseed(seed)

    def _report_divergence(self, epoch: int, reason: str) -> dict[str, Any]:
        """Report the divergence with a marker checkpoint, and stop.

        Reported, not raised: Ray Train would retry a deterministic failure
        max_failures times. The marker checkpoint makes the report the run's
        result (Train's `Result.metrics` is the latest checkpoint's) and makes a
        resumed run report the divergence again instead of training on. The
        objectives are NaN so Tune accepts the result and no searcher mistakes it
        for a score."""
        metrics = {"epoch": epoch, "diverged": 1, "error": reason, **{m: float("nan") for m in self.cfg.search.metrics}}
        marker = None
        if self.session.is_main:
            marker = Path(tempfile.mkdtemp(prefix="raysweep-ckpt-"))
            (marker / DIVERGED_FILE).write_text(json.dumps({"epoch": epoch, "error": reason}))
        try:
            self.session.report({**metrics, **self.report_extras}, marker)
        finally:
            if marker is not None:
                shutil.rmtree(marker, ignore_errors=True)
        self._notify("finish", metrics, reason)
        return metrics

    def _notify(self, event: str, *args) -> None:
        if self.session.is_main:
            for listener in self.listeners:
                getattr(listener, event)(*args)

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs; return the last epoch's metrics (main worker)."""
        with self.session.checkpoint_dir() as directory:
            diverged = None
            if directory is not None and (directory / DIVERGED_FILE).exists():
                diverged = json.loads((directory / DIVERGED_FILE).read_text())
            start = 0 if diverged else self.restore(directory)
        self._notify("start", self, start)
        if diverged:
            return self._report_divergence(diverged["epoch"], diverged["error"])
        try:
            metrics = self._train_from(start)
        except TrialStopped:  # the scheduler's decision, not a failure: the listeners end quietly
            self._notify("finish", self.history[-1] if self.history else {}, None)
            raise
        except BaseException as e:
            self._notify("finish", {}, f"{type(e).__name__}: {e}")
            raise
        if "diverged" not in metrics:
            self._notify("finish", metrics, None)
        return metrics

    def _train_from(self, start: int) -> dict[str, Any]:
        if start >= self.cfg.train.epochs and self.history:
            # already past its last epoch (the driver died after the final checkpoint): report once more
            self.session.report({**self.history[-1], **self.report_extras}, None)
            return self.history[-1]
        metrics: dict[str, Any] = {}
        for epoch in range(start, self.cfg.train.epochs):
            self._start_epoch(epoch)
            try:
                stats = [fold.train_epoch(epoch) for fold in self.folds]
            except NonFiniteLoss as e:
                return self._report_divergence(epoch + 1, str(e))
            predictions = [fold.predict() for fold in self.folds]
            if self.session.is_main:
                metrics = self._epoch_metrics(epoch, stats, predictions)
                self._update_best(metrics)
                self.history.append(metrics)
                self.trained.append({"epoch": epoch + 1, "at": time.time(), "node": getattr(self.session, "node_id", None)})
                if self.verbose:
                    print(progress_line(metrics, self.cfg), flush=True)
            objective = self.session.all_gather_object(metrics.get(self.cfg.search.primary_metric))[0]
            for fold in self.folds:
                fold.step_scheduler(epoch, objective)  # before the checkpoint, which must hold next epoch's schedule
            rngs = self.session.all_gather_object(rng_state())
            ckpt_dir = self._write_checkpoint(epoch, predictions, rngs) if self.session.is_main else None
            try:
                # the checkpoint first: an epoch logged elsewhere is then always one that can be resumed
                self.session.report({**metrics, **self.report_extras} if self.session.is_main else {"epoch": epoch + 1}, ckpt_dir)
            finally:
                if ckpt_dir is not None:
                    shutil.rmtree(ckpt_dir, ignore_errors=True)
            self._notify("epoch", metrics)
        return metrics
