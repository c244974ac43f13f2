"""Loss functions, by `loss.name`.

    criterion = build_loss("focal", class_counts=counts, num_classes=3, gamma=2.0)
    loss = criterion(logits, targets)           # targets: class indices, or multi-hot floats
    criterion.set_epoch(epoch)                  # losses that change with the epoch (LDAM-DRW)
    loss = criterion(logits, targets, features=fmap)   # when criterion.needs_features (mc)

A loss is a factory function registered with `register_loss`; the keyword
parameters of the factory are the `loss.*` keys it takes, so the search space
knows that `loss.gamma` belongs to `focal` and not to `ce`. `class_counts`
(training samples per class) and `num_classes` are passed by the trainer to
the factories that ask for them. `tasks` says which `data.task` values a loss
can serve (checked in `trainables.checks`). Every loss averages over the
batch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raysweep.errors import ConfigError
from raysweep.registry import Registry

LossFactory = Callable[..., nn.Module]
_CONTEXT = ("class_counts", "num_classes")
ALL_TASKS = ("binary", "multiclass", "multilabel")
SINGLE_LABEL = ("binary", "multiclass")


@dataclass(frozen=True)
class LossInfo:
    """A registered loss: its factory, the `data.task` values it serves, and, for the config
    check, what a task outside them lacks."""

    name: str
    factory: LossFactory
    tasks: tuple[str, ...] = ALL_TASKS
    needs: str = "single-label targets"


LOSSES: Registry[LossInfo] = Registry("loss")


def register_loss(name: str, *, tasks: Sequence[str] = ALL_TASKS, needs: str = "single-label targets"):
    """Register a loss factory; `needs` says, for the config check, what a task outside `tasks` lacks."""

    def deco(fn: LossFactory) -> LossFactory:
        LOSSES.register(name)(LossInfo(name, fn, tuple(tasks), needs))
        return fn

    return deco


def loss_params(name: str) -> set[str]:
    """The `loss.*` keys, as written in a sweep file, that loss `name` takes (a parameter
    `lambda_` is the file's `lambda`: the section's alias)."""
    from raysweep.config.sections.training import LossConfig

    sig = inspect.signature(LOSSES.get(name).factory)
    fields = LossConfig.model_fields
    return {(fields[p].alias if p in fields and fields[p].alias else p) for p in sig.parameters if p not in _CONTEXT}


def loss_tasks(name: str) -> tuple[str, ...]:
    return LOSSES.get(name).tasks


class Loss(nn.Module):
    """Base class: a loss that may change with the epoch or need features."""

    needs_features = False

    def set_epoch(self, epoch: int) -> None:  # most losses do not change with the epoch
        pass


def build_loss(name: str, *, class_counts: Optional[Sequence[int]] = None, num_classes: Optional[int] = None, task: Optional[str] = None, **params) -> nn.Module:
    info = LOSSES.get(name, path="loss.name")
    factory, tasks = info.factory, info.tasks
    if task is not None and task not in tasks:
        # data.task: auto is only known once the data is open; a softmax loss must not train on multi-hot targets
        raise ConfigError(f"loss {name!r} serves {', '.join(tasks)} tasks; the data is {task}", path="loss.name")
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


def _per_class(value, num_classes: Optional[int], path: str) -> torch.Tensor:
    """A scalar (the same for every class) or a list of one value per class, as a tensor."""
    if not isinstance(value, (list, tuple)):
        return torch.full((num_classes or 1,), float(value))
    if num_classes is not None and len(value) != num_classes:
        raise ConfigError(f"needs one value per class ({num_classes}), got {len(value)}", path=path)
    return torch.tensor([float(v) for v in value])


def effective_number_weights(class_counts, beta: float) -> torch.Tensor:
    """Class-balanced weights (1 - beta) / (1 - beta^n_j), normalized to sum to the class count
    (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples")."""
    counts = np.asarray(class_counts, dtype=np.float64)
    weights = (1.0 - beta) / (1.0 - np.power(beta, np.maximum(counts, 1)))
    weights = weights / weights.sum() * len(counts)
    return torch.tensor(weights, dtype=torch.float32)


def _true_class_log_prob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(logits, dim=1).gather(1, targets.long()[:, None]).squeeze(1)


def _modulating(log_p: torch.Tensor, gamma) -> torch.Tensor:
    """(1 - p)^gamma, with 1 - p taken as -expm1(log p) (exact near p = 1) and kept above 0,
    so that gamma < 1 on a sample the model is sure of gives a zero gradient, not NaN."""
    return (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny) ** gamma


# -- cross-entropy and binary cross-entropy ------------------------------------

class _CrossEntropy(Loss):
    def __init__(self, weight: Optional[torch.Tensor], label_smoothing: float):
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, weight=self.weight, label_smoothing=self.label_smoothing)


def balanced_weights(class_counts) -> torch.Tensor:
    """sklearn's `compute_class_weight("balanced")`: n / (k n_j). sklearn refuses a class with
    no sample; one counts here as a single sample. Its weight never applies (no target is of
    that class) and the weighted mean sum w_y l / sum w_y does not change with the others' scale."""
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.maximum(np.asarray(class_counts, dtype=np.int64), 1)
    labels = np.arange(len(counts))
    return torch.tensor(compute_class_weight("balanced", classes=labels, y=np.repeat(labels, counts)), dtype=torch.float32)


_CLASS_WEIGHTS = {
    "balanced": lambda counts, beta: balanced_weights(counts),
    "effective_number": lambda counts, beta: effective_number_weights(counts, beta),
}


@register_loss("ce", tasks=SINGLE_LABEL)
def ce(label_smoothing: float = 0.0, class_weight: Optional[str] = None, beta: float = 0.9999, class_counts=None) -> nn.Module:
    """Cross-entropy -log p_y, optionally label-smoothed and class-weighted (`balanced`:
    n / (k n_j); `effective_number`: (1 - beta) / (1 - beta^n_j), Cui et al. 2019). With
    weights the batch mean is sum w_y l / sum w_y, as `nn.CrossEntropyLoss(weight=...)`."""
    weight = None
    if class_weight is not None:
        weight = _CLASS_WEIGHTS[class_weight](_need_counts(class_counts, "ce"), beta)
    return _CrossEntropy(weight, label_smoothing)


class _BCE(Loss):
    def __init__(self, pos_weight: Optional[torch.Tensor]):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, _multi_hot(logits, targets), pos_weight=self.pos_weight)


def _multi_hot(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.dtype != logits.dtype:  # binary task with class-index targets and 2 logits
        return F.one_hot(targets.long(), logits.shape[1]).to(logits.dtype)
    return targets


@register_loss("bce")
def bce(pos_weight=None, num_classes=None) -> nn.Module:
    """Binary cross-entropy with logits per class (multi-label, or binary):
    -[w_c y log s(x) + (1 - y) log(1 - s(x))], w_c = `pos_weight` (a scalar or one per class),
    averaged over samples and classes as `nn.BCEWithLogitsLoss`."""
    pw = None if pos_weight is None else _per_class(pos_weight, num_classes, "loss.pos_weight")
    return _BCE(pw)


# -- focal losses --------------------------------------------------------------

class _Focal(Loss):
    def __init__(self, gamma: float, alpha: Optional[torch.Tensor]):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = _true_class_log_prob(logits, targets)
        loss = -_modulating(log_p, self.gamma) * log_p
        if self.alpha is not None:
            loss = self.alpha[targets] * loss
        return loss.mean()


@register_loss("focal", tasks=SINGLE_LABEL)
def focal(gamma: float = 2.0, alpha=None, num_classes=None) -> nn.Module:
    """Softmax focal loss, Lin et al. 2017 ("Focal Loss for Dense Object Detection"):
    l = -alpha_y (1 - p_y)^gamma log p_y, p = softmax(z), averaged over the batch (a plain
    mean: alpha scales each sample's loss and is outside the modulating factor). `alpha` is
    one weight per class, or a scalar meaning the same for all; none means 1."""
    return _Focal(gamma, None if alpha is None else _per_class(alpha, num_classes, "loss.alpha"))


class _SigmoidFocal(Loss):
    def __init__(self, gamma: float, alpha: Optional[torch.Tensor]):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = _multi_hot(logits, targets)
        bce_ = F.binary_cross_entropy_with_logits(logits, t, reduction="none")  # -log p_t
        p = torch.sigmoid(logits)
        p_t = p * t + (1 - p) * (1 - t)
        loss = bce_ * (1 - p_t).clamp_min(torch.finfo(p.dtype).tiny) ** self.gamma
        if self.alpha is not None:
            loss = (self.alpha * t + (1 - self.alpha) * (1 - t)) * loss
        return loss.mean()


@register_loss("sigmoid_focal")
def sigmoid_focal(gamma: float = 2.0, alpha=None, num_classes=None) -> nn.Module:
    """Sigmoid focal loss per class (Lin et al. 2017), torchvision's `sigmoid_focal_loss`
    convention: l = -alpha_t (1 - p_t)^gamma log p_t with p_t = s(x) for a positive and
    1 - s(x) for a negative, alpha_t = alpha for a positive and 1 - alpha for a negative
    (no alpha: no weighting; RetinaNet used 0.25), averaged over all samples and classes."""
    a = None
    if alpha is not None:
        a = _per_class(alpha, num_classes, "loss.alpha")
        if ((a < 0) | (a > 1)).any():
            raise ConfigError(f"sigmoid_focal alpha must be in [0, 1], got {alpha}", path="loss.alpha")
    return _SigmoidFocal(gamma, a)


class _FLSD53(Loss):
    def gammas(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            p = _true_class_log_prob(logits, targets).exp()
            return torch.where(p < 0.2, torch.full_like(p, 5.0), torch.full_like(p, 3.0))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = _true_class_log_prob(logits, targets)
        return (-_modulating(log_p, self.gammas(logits, targets)) * log_p).mean()


@register_loss("flsd53", tasks=SINGLE_LABEL)
def flsd53() -> nn.Module:
    """Sample-dependent focal loss FLSD-53, Mukhoti et al. 2020 ("Calibrating Deep Neural
    Networks using Focal Loss"): l = -(1 - p_y)^gamma log p_y with gamma = 5 where p_y < 0.2
    and 3 otherwise. gamma is chosen from the detached p_y, so it carries no gradient.
    Averaged over the batch; the authors' `FocalLossAdaptive` sums (size_average=False),
    which only rescales the learning rate by the batch size."""
    return _FLSD53()


# -- long tail: LDAM-DRW and recall loss ---------------------------------------

class _LDAM(Loss):
    def __init__(self, margins: torch.Tensor, s: float, drw_weights: Optional[torch.Tensor], drw_start_epoch: Optional[int]):
        super().__init__()
        self.register_buffer("margins", margins)
        self.register_buffer("drw_weights", drw_weights)
        self.s = s
        self.drw_start_epoch = drw_start_epoch
        self.reweighting = False

    def set_epoch(self, epoch: int) -> None:
        self.reweighting = self.drw_start_epoch is not None and epoch >= self.drw_start_epoch

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        shifted = logits - F.one_hot(targets, logits.shape[1]).to(logits.dtype) * self.margins[targets][:, None]
        return F.cross_entropy(self.s * shifted, targets, weight=self.drw_weights if self.reweighting else None)


@register_loss("ldam", tasks=SINGLE_LABEL, needs="single-label class counts")
def ldam(
    max_m: Optional[float] = None,
    C: Optional[float] = None,
    s: Optional[float] = None,
    drw_start_epoch: Optional[int] = None,
    drw_beta: float = 0.9999,
    class_counts=None,
) -> nn.Module:
    """Label-distribution-aware margin loss, Cao et al. 2019 ("Learning Imbalanced Datasets
    with Label-Distribution-Aware Margin Loss"):

        l = -log( e^{s(z_y - D_y)} / (e^{s(z_y - D_y)} + sum_{j != y} e^{s z_j}) )

    with the margin D_j of class j, n_j its training samples, in one of two forms:
    `max_m`: D_j proportional to n_j^(-1/4), scaled so the largest margin is max_m, and
    s = 30 unless given (the paper's code, used with a `normed_linear` head);
    `C`: D_j = C / n_j^(1/4) (the COMP4211 form; C may be negative), s = 1 unless given.

    Deferred re-weighting (DRW): from epoch `drw_start_epoch` on (0-based, as `set_epoch`),
    each sample is weighted by its class's (1 - beta) / (1 - beta^n_j), beta = `drw_beta`,
    normalized to sum to the class count, in a weighted mean sum w_y l / sum w_y exactly as
    `nn.CrossEntropyLoss(weight=...)`; before it, a plain mean.
    """
    counts = np.maximum(_need_counts(class_counts, "ldam"), 1)
    if (max_m is None) == (C is None):
        got = "neither" if max_m is None else "both"
        raise ConfigError(f"ldam takes exactly one of loss.max_m (Cao et al.) and loss.C (C / n_j^(1/4)); got {got}", path="loss.C")
    if max_m is not None:
        m = counts ** -0.25
        margins, scale = m * (max_m / m.max()), 30.0 if s is None else s
    else:
        margins, scale = C * counts ** -0.25, 1.0 if s is None else s
    weights = None if drw_start_epoch is None else effective_number_weights(counts, drw_beta)
    return _LDAM(torch.tensor(margins, dtype=torch.float32), float(scale), weights, drw_start_epoch)


class _Recall(Loss):
    def __init__(self, num_classes: Optional[int]):
        super().__init__()
        self.num_classes = num_classes

    def class_weights(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per class, its false-negative rate 1 - recall on this batch (0 for absent classes)."""
        k = self.num_classes or logits.shape[1]
        with torch.no_grad():
            missed = targets[logits.argmax(dim=1) != targets]
            fn = torch.bincount(missed, minlength=k).to(logits.dtype)
            seen = torch.bincount(targets, minlength=k).to(logits.dtype)
            return fn / seen.clamp_min(1)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = self.class_weights(logits, targets)
        return (w[targets] * F.cross_entropy(logits, targets, reduction="none")).mean()


@register_loss("recall", tasks=SINGLE_LABEL)
def recall(num_classes=None) -> nn.Module:
    """Recall loss, Tian et al. 2022 ("Striking the Right Balance: Recall Loss for Semantic
    Segmentation"): l_i = -w_{y_i} log p_{y_i}, w_c = FN_c / (FN_c + TP_c) = 1 - recall_c of the
    current batch from argmax predictions, detached; averaged over the batch. A class with no
    false negatives in the batch weighs 0 (the authors' code, initialising its counters to 1,
    would give it 1 / n_c instead).

    The COMP4211 slide writes it as -log(w_y softmax(z)_y) = CE - log w_y. Since w does not
    depend on the logits, that form has exactly CE's gradient, so it trains like plain CE,
    and it is infinite once a class has no false negatives (w = 0). That is why raysweep
    weights the cross-entropy instead, as the paper does."""
    return _Recall(num_classes)


# -- mutual-channel loss -------------------------------------------------------

def channel_groups(channels: int, num_classes: int, channels_per_class: Optional[int] = None) -> list[int]:
    """Feature channels per class, in channel order. By default channels // classes each,
    and the last `channels % classes` classes take one more (the CIFAR-100 report: 1792
    EfficientNet-B4 channels over 219 classes = 8 for the first 179, 9 for the last 40)."""
    if channels_per_class is not None:
        if channels_per_class * num_classes > channels:
            raise ConfigError(
                f"{num_classes} classes x {channels_per_class} channels need {channels_per_class * num_classes} feature channels; "
                f"the backbone's last feature map has {channels}",
                path="loss.channels_per_class",
            )
        return [channels_per_class] * num_classes
    if channels < num_classes:
        raise ConfigError(
            f"the mutual-channel loss needs a feature channel per class: the backbone's last feature map has "
            f"{channels} channels for {num_classes} classes",
            path="loss.channels_per_class",
        )
    base, extra = divmod(channels, num_classes)
    return [base] * (num_classes - extra) + [base + 1] * extra


def _blocks(groups: Sequence[int]):
    """Runs of classes with the same channel count: (first channel, classes, channels each)."""
    start, i = 0, 0
    while i < len(groups):
        j = i
        while j < len(groups) and groups[j] == groups[i]:
            j += 1
        yield start, j - i, groups[i]
        start += (j - i) * groups[i]
        i = j


def cross_channel_max(x: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """(B, sum(groups), L) -> (B, classes, L): the max over each class's channels (CCMP)."""
    b, _, length = x.shape
    return torch.cat([x[:, s : s + n * c].reshape(b, n, c, length).amax(dim=2) for s, n, c in _blocks(groups)], dim=1)


def channel_mask(groups: Sequence[int], device=None) -> torch.Tensor:
    """Channel-wise attention (CWA): per class, a random half of its channels dropped
    (floor(c / 2), so 1 of 3 as in the authors' CUB code). Shape (1, sum(groups), 1, 1)."""
    masks = []
    for _, n, c in _blocks(groups):
        rank = torch.rand(n, c, device=device).argsort(dim=1).argsort(dim=1)
        masks.append((rank < c - c // 2).reshape(-1))
    return torch.cat(masks).float().reshape(1, -1, 1, 1)


def mutual_channel_terms(features: torch.Tensor, targets: torch.Tensor, groups: Sequence[int], mask: torch.Tensor):
    """(L_dis, D) of Chang et al. 2020 for a (B, sum(groups), H, W) feature map.

    L_dis: CE of the classes' scores GAP(CCMP(mask * F)). D: the diversity, per sample and
    class sum_k max_{j in class} softmax_k(F_j) (softmax over the H*W positions k), divided
    by the class's channel count c and averaged. The sum lies in [1, min(c, HW)], so D is
    1/c when a class's channels all peak on the same place and 1 when each has its own."""
    flat = features.flatten(2)  # (B, C, HW)
    scores = cross_channel_max((features * mask).flatten(2), groups).mean(dim=2)
    l_dis = F.cross_entropy(scores, targets)
    peak = cross_channel_max(F.softmax(flat, dim=2), groups).sum(dim=2)  # (B, classes)
    d = (peak / torch.tensor(groups, dtype=peak.dtype, device=peak.device)).mean()
    return l_dis, d


class _MutualChannel(Loss):
    needs_features = True

    def __init__(self, num_classes: int, mu: float, lambda_: float, channels_per_class: Optional[int]):
        super().__init__()
        self.num_classes, self.mu, self.lambda_, self.channels_per_class = num_classes, mu, lambda_, channels_per_class

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        groups = channel_groups(features.shape[1], self.num_classes or logits.shape[1], self.channels_per_class)
        used = features[:, : sum(groups)]
        l_dis, d = mutual_channel_terms(used, targets, groups, channel_mask(groups, features.device))
        return F.cross_entropy(logits, targets) + self.mu * (l_dis + self.lambda_ * (1.0 - d))


@register_loss("mc", tasks=SINGLE_LABEL)
def mc(mu: float = 0.005, lambda_: float = 10.0, channels_per_class: Optional[int] = None, num_classes=None) -> nn.Module:
    """Cross-entropy plus the mutual-channel loss, Chang et al. 2020 ("The Devil is in the
    Channels: Mutual-Channel Loss for Fine-Grained Image Classification"), on the backbone's
    last feature map F, each class owning a group of its channels (`channel_groups`):

        L = CE + mu * (L_dis + lambda * (1 - D))        (see `mutual_channel_terms`)

    The paper writes L_CE + mu (L_dis - lambda L_div), L_div the diversity to be maximized,
    there not divided by the channels per class xi; the authors' code divides it (D = L_div
    / xi) and adds lambda (1 - D), which is the paper's loss with lambda / xi plus the
    constant mu lambda. raysweep follows the code, so lambda = 10 means what it means there.
    (Reading "1 - D" as L_div in the paper's "- lambda L_div" would push each class's
    channels onto the same region.) L_dis masks a random half of each class's channels,
    once per batch (CWA), as the authors' code does. The first `sum(groups)` feature
    channels are used, the rest ignored."""
    return _MutualChannel(num_classes, mu, lambda_, channels_per_class)
