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
from raysweep.scores import better
from trainables.checkpoint import epoch_seed, load_state, rng_state, save_state, seed_everything, set_rng_state
from trainables.checkpoint_files import CONFIG_FILE, PREDICTIONS_FILE, SPLITS_FILE, read_diverged, write_diverged, write_meta
from trainables.data.samples import Samples
from trainables.data.sources import load_samples
from trainables.data.splits import make_split
from trainables.fold import EpochStats, FoldRun, NonFiniteLoss, amp_ignored_line, image_size
from trainables.fold_groups import FoldGroupSession, group_folds, to_main
from trainables.metric_names import CV_SCALARS, per_trial_cv
from trainables.metrics import classification_metrics, nll, tune_thresholds
from trainables.session import Session, TrialStopped

def progress_line(metrics: dict[str, Any], cfg: SweepConfig) -> str:
    keys = ("train/loss", "val/loss", cfg.search.primary_metric)
    shown = "  ".join(f"{k} {metrics[k]:.4f}" for k in dict.fromkeys(keys) if k in metrics)
    return f"epoch {metrics['epoch']}/{cfg.train.epochs}  {shown}  ({metrics['epoch_time_s']:.1f}s, {metrics['images_per_s']:.0f} img/s)"


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


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
    def __init__(self, cfg: SweepConfig, session: Session, samples: Optional[Samples] = None, verbose: bool = False, listeners: Sequence = (), fold_groups: int = 1):
        """`fold_groups`: under per-trial CV, the groups the session's workers split into, each
        training its share of the folds at the same time as the others (`trainables.fold_groups`)."""
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
        fold_ids = list(range(cfg.data.folds)) if per_trial_cv(cfg) else [None]
        self.num_folds = len(fold_ids)
        self.groups = max(1, min(fold_groups, self.num_folds))
        fold_session = FoldGroupSession(session, self.groups) if self.groups > 1 else session
        self.leads_group = fold_session.is_main  # sends its group's folds to rank 0
        self.splits = [make_split(cfg.data, self.samples, fold) for fold in fold_ids]
        self.folds = []  # the folds this worker trains: all of them unless the folds run at once
        for k in group_folds(self.num_folds, self.groups, getattr(fold_session, "group", 0)):
            seed_everything(cfg.train.seed)  # every fold starts from the same initial weights
            self.folds.append(FoldRun(cfg, fold_session, self.samples, self.splits[k], k))
        self.history: list[dict[str, Any]] = []
        # when and where each epoch was trained: tells a resumed run's epochs from the first run's
        self.trained: list[dict[str, Any]] = []
        self.best: Optional[dict[str, Any]] = None

    # -- checkpoints ---------------------------------------------------------
    def state_dict(self, epoch: int, rngs: list, fold_states: Optional[list] = None) -> dict:
        return {
            "epoch": epoch,
            "folds": fold_states if fold_states is not None else [f.state_dict() for f in self.folds],
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
        if len(state["folds"]) != self.num_folds:
            raise RuntimeError(f"checkpoint has {len(state['folds'])} folds, this trial trains {self.num_folds}")
        for fold in self.folds:  # each from its own state, however the folds are spread over workers
            fold.load_state_dict(state["folds"][fold.fold])
        rngs = state["rng"]
        set_rng_state(rngs[self.session.rank] if self.session.rank < len(rngs) else rngs[0])
        self.history = list(state["history"])
        self.trained = list(state.get("trained", []))  # absent from checkpoints of older versions
        self.best = state.get("best")
        return int(state["epoch"]) + 1

    def _write_checkpoint(self, epoch: int, predictions: list, rngs: list, fold_states: Optional[list] = None) -> Path:
        directory = Path(tempfile.mkdtemp(prefix="raysweep-ckpt-", dir=self.session.scratch_dir))
        save_state(directory, self.state_dict(epoch, rngs, fold_states))
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
        write_meta(directory, meta)
        assignment = np.stack([split.assignment(len(self.samples)) for split in self.splits])
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

    def _epoch_metrics(self, epoch: int, stats: list[EpochStats], predictions: list, seconds: Optional[float] = None) -> dict[str, Any]:
        """`seconds`: the epoch's training time where folds trained at once (else their sum)."""
        per_fold = [self._val_metrics(t, s) for t, s in predictions]
        seconds = sum(s.seconds for s in stats) if seconds is None else seconds
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
        if better(value, None if self.best is None else self.best["value"], mode):
            self.best = {"metric": key, "value": float(value), "epoch": int(metrics["epoch"])}

    # -- the loop ------------------------------------------------------------
    def _start_epoch(self, epoch: int) -> None:
        if self.cfg.train.reseed_every_epoch:
            seed_everything(epoch_seed(self.cfg.train.seed, epoch, self.session.rank))
            for fold in self.folds:
                # the rank within the fold's own workers: a fold draws the same wherever it trains
                fold.reseed(epoch_seed(self.cfg.train.seed, epoch, fold.session.rank))

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
            write_diverged(marker, epoch, reason)
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
            diverged = read_diverged(directory)
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
                stats, diverged = [fold.train_epoch(epoch) for fold in self.folds], None
            except NonFiniteLoss as e:
                stats, diverged = [], str(e)
            if self.groups > 1:  # a fold group that diverged stops every group, or the others would wait on it
                diverged = next((r for r in self.session.all_gather_object(diverged) if r), None)
            if diverged:
                return self._report_divergence(epoch + 1, diverged)
            stats, predictions, seconds = self._collect(stats, [fold.predict() for fold in self.folds])
            if self.session.is_main:
                metrics = self._epoch_metrics(epoch, stats, predictions, seconds)
                self._update_best(metrics)
                self.history.append(metrics)
                spans = [[s.started, s.started + s.seconds] for s in stats]  # when each fold trained this epoch
                self.trained.append({"epoch": epoch + 1, "at": time.time(), "node": getattr(self.session, "node_id", None), "folds": spans})
                if self.verbose:
                    print(progress_line(metrics, self.cfg), flush=True)
            objective = self.session.all_gather_object(metrics.get(self.cfg.search.primary_metric))[0]
            for fold in self.folds:
                fold.step_scheduler(epoch, objective)  # before the checkpoint, which must hold next epoch's schedule
            rngs = self.session.all_gather_object(rng_state())
            fold_states = self._fold_states()
            ckpt_dir = self._write_checkpoint(epoch, predictions, rngs, fold_states) if self.session.is_main else None
            try:
                # the checkpoint first: an epoch logged elsewhere is then always one that can be resumed
                self.session.report({**metrics, **self.report_extras} if self.session.is_main else {"epoch": epoch + 1}, ckpt_dir)
            finally:
                if ckpt_dir is not None:
                    shutil.rmtree(ckpt_dir, ignore_errors=True)
            self._notify("epoch", metrics)
        return metrics

    # -- folds at once ---------------------------------------------------------
    def _collect(self, stats: list[EpochStats], predictions: list) -> tuple[list[EpochStats], list, Optional[float]]:
        """Every fold's statistics and predictions, in fold order, on rank 0, and the epoch's
        training time (the slowest group's); as they are when one worker trains every fold."""
        if self.groups == 1:
            return stats, predictions, None
        mine = [(f.fold, s, p) for f, s, p in zip(self.folds, stats, predictions)] if self.leads_group else []
        parts = [part for part in to_main(self.session, mine) if part]
        ordered = sorted((item for part in parts for item in part), key=lambda item: item[0])
        seconds = max((sum(s.seconds for _, s, _ in part) for part in parts), default=0.0)
        return [s for _, s, _ in ordered], [p for _, _, p in ordered], seconds

    def _fold_states(self) -> Optional[list]:
        """Every fold's state, in fold order, on rank 0 (None where one worker holds them all)."""
        if self.groups == 1:
            return None
        mine = {f.fold: _on_cpu(f.state_dict()) for f in self.folds} if self.leads_group else {}
        merged = {k: v for part in to_main(self.session, mine) for k, v in (part or {}).items()}
        return [merged[k] for k in range(self.num_folds)] if self.session.is_main else None


def _on_cpu(obj: Any) -> Any:
    """`obj` with its tensors on the CPU: a GPU tensor pickled on one worker would be restored
    onto a device rank 0 may not see."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(v) for v in obj)
    return obj
