"""One model trained on one split: its loaders, model, loss, optimizer and
schedule, with a training epoch and a validation pass.

A trial trains one `FoldRun` (holdout, or one fold of k), or all k in
lockstep under per-trial cross-validation.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from raysweep.config.schema import SweepConfig
from trainables.augment import sample_transforms, seed_loader_worker
from trainables.checkpoint import rng_state, seed_everything, set_rng_state
from trainables.data.dataset import SampleDataset
from trainables.data.samples import ArrayStore, Samples
from trainables.data.splits import Split
from trainables.losses import build_loss, loss_kwargs
from trainables.models import build_model
from trainables.optim import build_optimizer, build_scheduler
from trainables.session import Session

_AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochStats:
    loss: float
    images: int
    seconds: float
    lr: float
    started: float = 0.0  # wall clock (time.time()) when the epoch began: when each fold trained


def loader_workers(cfg: SweepConfig, samples: Samples) -> int:
    if cfg.data.loader_workers != "auto":
        return int(cfg.data.loader_workers)
    if isinstance(samples.images, ArrayStore):
        return 0  # decoding nothing: worker processes would only add IPC
    return max(1, min(8, int(cfg.resources.cpus_per_worker) - 1))


def amp_applies(cfg: SweepConfig, device: torch.device) -> bool:
    """Mixed precision runs on GPU only, where it pays off; elsewhere `train.amp` is ignored."""
    return cfg.train.amp != "off" and device.type == "cuda"


def amp_ignored_line(cfg: SweepConfig, device: torch.device) -> Optional[str]:
    """The line saying that `train.amp` asks for mixed precision this worker will not use."""
    if cfg.train.amp == "off" or amp_applies(cfg, device):
        return None
    return f"AMP ({cfg.train.amp}) is off: no GPU on this worker"


def image_size(samples: Samples) -> tuple[int, int]:
    first = samples.images.load(0)
    return int(first.shape[0]), int(first.shape[1])


class FoldRun:
    def __init__(self, cfg: SweepConfig, session: Session, samples: Samples, split: Split, fold: int = 0):
        self.cfg = cfg
        self.session = session
        self.samples = samples
        self.split = split
        self.fold = fold
        device = session.device
        self.use_amp = amp_applies(cfg, device)
        self.channels_last = cfg.train.channels_last and device.type == "cuda"

        train_tf, val_tf = sample_transforms(cfg, samples)
        self.train_set = SampleDataset(samples, split.train, train_tf)
        self.val_set = SampleDataset(samples, split.val, val_tf)
        workers = loader_workers(cfg, samples)
        common = dict(num_workers=workers, pin_memory=device.type == "cuda", worker_init_fn=seed_loader_worker if workers else None)
        self.train_loader = session.prepare_loader(DataLoader(self.train_set, batch_size=cfg.train.batch_size, shuffle=True, **common))
        self.val_loader = session.prepare_loader(DataLoader(self.val_set, batch_size=cfg.train.batch_size * 2, shuffle=False, **common))

        self.class_counts = None if samples.multilabel else samples.class_counts(split.train)
        model = build_model(cfg.model, samples.num_classes, samples.in_chans)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = session.prepare_model(model)
        self.criterion = build_loss(cfg.loss.name, class_counts=self.class_counts, num_classes=samples.num_classes, task=samples.task, **loss_kwargs(cfg.loss)).to(device)
        self.optimizer = build_optimizer(self.model, cfg.optimizer)
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, cfg.train.epochs, cfg.search.primary_mode)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and cfg.train.amp == "fp16")
        # the fold's own random stream (shuffling, dropout, augmentation draws): a fold trains the
        # same whether the other folds train before it in this process or at once elsewhere
        self.rng = rng_state()

    # -- state ---------------------------------------------------------------
    @property
    def module(self) -> torch.nn.Module:
        return getattr(self.model, "module", self.model)

    def state_dict(self) -> dict:
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng": self.rng,
        }

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("rng") is not None:  # absent from checkpoints of older versions
            self.rng = state["rng"]

    @contextlib.contextmanager
    def own_rng(self):
        """The fold's random stream in place of the process's for the block."""
        outer = rng_state()
        set_rng_state(self.rng)
        try:
            yield
        finally:
            self.rng = rng_state()
            set_rng_state(outer)

    def reseed(self, seed: int) -> None:
        """`train.reseed_every_epoch`: the epoch's randomness from `seed` alone."""
        seed_everything(seed)
        self.rng = rng_state()
        self.train_set.transform.reseed(seed)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- training ------------------------------------------------------------
    def _autocast(self):
        if not self.use_amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=_AMP_DTYPES[self.cfg.train.amp])

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            if getattr(self.criterion, "needs_features", False):
                logits, features = self.model(x, return_features=True)
                return self.criterion(logits.float(), y, features=features.float())
            return self.criterion(self.model(x).float(), y)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor):
        device = self.session.device
        x = x.to(device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(device, non_blocking=True)

    def train_epoch(self, epoch: int) -> EpochStats:
        started = time.time()
        with self.own_rng():
            stats = self._train_epoch(epoch)
        stats.started = started
        return stats

    def _train_epoch(self, epoch: int) -> EpochStats:
        cfg = self.cfg.train
        self.model.train()
        self.criterion.set_epoch(epoch)
        self.session.set_epoch(self.train_loader, epoch)
        steps = len(self.train_loader) if cfg.max_steps_per_epoch is None else min(len(self.train_loader), cfg.max_steps_per_epoch)
        total = torch.zeros(2, dtype=torch.float64, device=self.session.device)  # loss sum, images
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        for step, (x, y, _) in enumerate(self.train_loader):
            if step >= steps:
                break
            x, y = self._to_device(x, y)
            steps_the_optimizer = (step + 1) % cfg.accumulate == 0 or step + 1 == steps
            sync = contextlib.nullcontext()
            if not steps_the_optimizer and hasattr(self.model, "no_sync"):
                sync = self.model.no_sync()  # DDP: all-reduce gradients only on the step that uses them
            with sync:
                loss = self._forward_loss(x, y)
                self._check_finite(loss, epoch, step)
                self.scaler.scale(loss / cfg.accumulate).backward()
            if steps_the_optimizer:
                if cfg.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            total[0] += loss.detach().double() * len(x)
            total[1] += len(x)
        total = self.session.all_reduce_sum(total)
        seconds = time.perf_counter() - start
        return EpochStats(loss=float(total[0] / max(total[1], 1)), images=int(total[1]), seconds=seconds, lr=self.lr())

    def _check_finite(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        value = loss.item()
        local_bad = not math.isfinite(value)
        # every rank must agree before any stops, or DDP's next all-reduce would hang
        if self.session.all_reduce_max(float(local_bad)):
            where = f"epoch {epoch + 1}, step {step + 1}"
            raise NonFiniteLoss(f"training loss became {value} at {where}" if local_bad else f"training loss became non-finite on another worker at {where}")

    @torch.no_grad()
    def predict(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(targets, scores) of the whole validation set, in sample order, on the main
        worker (None elsewhere). The duplicates a DistributedSampler pads with are dropped."""
        self.model.eval()
        idx, scores, targets = [], [], []
        for b, (x, y, i) in enumerate(self.val_loader):
            if self.cfg.train.max_val_batches is not None and b >= self.cfg.train.max_val_batches:
                break
            x, _ = self._to_device(x, y)
            with self._autocast():
                out = self.model(x)
            scores.append(out.float().cpu().numpy())
            targets.append(y.cpu().numpy())
            idx.append(i.cpu().numpy())
        local = (
            np.concatenate(idx) if idx else np.zeros(0, np.int64),
            np.concatenate(scores) if scores else np.zeros((0, self.samples.num_classes), np.float32),
            np.concatenate(targets) if targets else np.zeros(0),
        )
        gathered = self.session.all_gather_object(local)
        if not self.session.is_main:
            return None
        all_idx = np.concatenate([g[0] for g in gathered])
        _, first = np.unique(all_idx, return_index=True)  # sorted by sample index, padding dropped
        all_scores = np.concatenate([g[1] for g in gathered])[first]
        all_targets = np.concatenate([g[2] for g in gathered])[first]
        return all_targets, all_scores

    def step_scheduler(self, epoch: int, metric: Optional[float]) -> None:
        if self.scheduler is not None:
            self.scheduler.step(epoch + 1, metric)
