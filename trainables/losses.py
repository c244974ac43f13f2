"""Loss functions, by `loss.name`.

    criterion = build_loss("focal", class_counts=counts, num_classes=3, gamma=2.0)
    loss = criterion(logits, targets)           # targets: class indices, or multi-hot floats
    criterion.set_epoch(epoch)                  # losses that change with the epoch (LDAM-DRW)

A loss is a factory function registered with `register_loss`; the keyword
parameters of the factory are the `loss.*` keys it takes, so the search space
knows that `loss.gamma` belongs to `focal` and not to `ce`. `class_counts`
(training samples per class) and `num_classes` are passed by the trainer to
the factories that ask for them. Every loss averages over the batch.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raysweep.errors import ConfigError
from raysweep.registry import Registry

LossFactory = Callable[..., nn.Module]
LOSSES: Registry[LossFactory] = Registry("loss")
_CONTEXT = ("class_counts", "num_classes")


def register_loss(name: str, *, tasks: Sequence[str] = ("binary", "multiclass", "multilabel")):
    def deco(fn: LossFactory) -> LossFactory:
        fn.tasks = tuple(tasks)  # type: ignore[attr-defined]
        return LOSSES.register(name)(fn)

    return deco


def loss_params(name: str) -> set[str]:
    """The `loss.*` keys that loss `name` takes."""
    sig = inspect.signature(LOSSES.get(name))
    return {p for p in sig.parameters if p not in _CONTEXT}


def loss_tasks(name: str) -> tuple[str, ...]:
    return getattr(LOSSES.get(name), "tasks", ())


class Loss(nn.Module):
    """Base class: a loss that may change with the epoch or need features."""

    needs_features = False

    def set_epoch(self, epoch: int) -> None:  # most losses do not change with the epoch
        pass


def build_loss(name: str, *, class_counts: Optional[Sequence[int]] = None, num_classes: Optional[int] = None, **params) -> nn.Module:
    factory = LOSSES.get(name, path="loss.name")
    sig = inspect.signature(factory)
    kwargs = {k: v for k, v in params.items() if k in sig.parameters and k not in _CONTEXT}
    if "class_counts" in sig.parameters:
        kwargs["class_counts"] = class_counts
    if "num_classes" in sig.parameters:
        kwargs["num_classes"] = num_classes if num_classes is not None else (len(class_counts) if class_counts is not None else None)
    return factory(**kwargs)


def loss_kwargs(cfg) -> dict:
    """The loss section as keyword arguments for `build_loss` (name excluded)."""
    return cfg.model_dump(exclude={"name"})


def _need_counts(class_counts, name: str) -> np.ndarray:
    if class_counts is None:
        raise ConfigError(f"loss {name!r} needs the training class counts of a single-label task", path="loss.name")
    return np.asarray(class_counts, dtype=np.float64)


def effective_number_weights(class_counts, beta: float) -> torch.Tensor:
    """Class-balanced weights (1 - beta) / (1 - beta^n_j), normalized to sum to the class count."""
    counts = np.asarray(class_counts, dtype=np.float64)
    weights = (1.0 - beta) / (1.0 - np.power(beta, np.maximum(counts, 1)))
    weights = weights / weights.sum() * len(counts)
    return torch.tensor(weights, dtype=torch.float32)


class _CrossEntropy(Loss):
    def __init__(self, weight: Optional[torch.Tensor], label_smoothing: float):
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, weight=self.weight, label_smoothing=self.label_smoothing)


_CLASS_WEIGHTS = {
    "balanced": lambda counts, beta: torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32),
    "effective_number": lambda counts, beta: effective_number_weights(counts, beta),
}


@register_loss("ce", tasks=("binary", "multiclass"))
def ce(label_smoothing: float = 0.0, class_weight: Optional[str] = None, beta: float = 0.9999, class_counts=None) -> nn.Module:
    """Cross-entropy, optionally label-smoothed and class-weighted (`balanced` or `effective_number`)."""
    weight = None
    if class_weight is not None:
        weight = _CLASS_WEIGHTS[class_weight](_need_counts(class_counts, "ce"), beta)
    return _CrossEntropy(weight, label_smoothing)


class _BCE(Loss):
    def __init__(self, pos_weight: Optional[torch.Tensor]):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.dtype != logits.dtype:  # binary task with class-index targets and 2 logits
            targets = F.one_hot(targets.long(), logits.shape[1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight)


@register_loss("bce")
def bce(pos_weight=None, num_classes=None) -> nn.Module:
    """Binary cross-entropy with logits per class (multi-label, or binary)."""
    pw = None
    if pos_weight is not None:
        values = pos_weight if isinstance(pos_weight, (list, tuple)) else [pos_weight] * (num_classes or 1)
        pw = torch.tensor(values, dtype=torch.float32)
    return _BCE(pw)
