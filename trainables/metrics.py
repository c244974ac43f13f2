"""Classification metrics from a whole validation set's scores, with scikit-learn.

The trainer gathers every sample's scores from every DDP worker, drops the
duplicates a `DistributedSampler` pads with, and calls `classification_metrics`
once: the figures are exactly those of a single-process evaluation.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy.special import expit
from sklearn import metrics as skm


from trainables.metric_names import metric_key


def sigmoid(scores: np.ndarray) -> np.ndarray:
    return expit(np.asarray(scores, dtype=np.float64))  # no overflow warning on large logits


def predictions(task: str, scores: np.ndarray, threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """Class indices (single-label) or a 0/1 matrix (multi-label) from logits; a
    multi-label `threshold` on the sigmoid is one number or one per class."""
    if task == "multilabel":
        return (sigmoid(scores) >= threshold).astype(np.int64)
    return scores.argmax(axis=1)


DEFAULT_GRID = tuple(float(t) for t in np.round(np.linspace(0.05, 0.95, 19), 2))


def tune_thresholds(targets: np.ndarray, scores: np.ndarray, grid: Sequence[float] = DEFAULT_GRID, default: float = 0.5) -> np.ndarray:
    """Per class, the threshold on the sigmoid from `grid` that maximizes that class's F1.

    Among equally good thresholds the one nearest `default` wins, so a class whose F1
    does not depend on the threshold (no positives in the set, say) keeps `default`
    instead of drifting to the end of the grid."""
    targets = np.asarray(targets).astype(bool)
    grid_arr = np.asarray(grid, dtype=np.float64)
    predicted = sigmoid(scores)[None] >= grid_arr[:, None, None]  # (T, N, C)
    tp = (predicted & targets[None]).sum(axis=1)
    fp = (predicted & ~targets[None]).sum(axis=1)
    fn = targets.sum(axis=0)[None] - tp
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(tp.shape), where=(2 * tp + fp + fn) > 0)  # (T, C)
    best = np.isclose(f1, f1.max(axis=0, keepdims=True), rtol=0, atol=1e-12)
    distance = np.where(best, np.abs(grid_arr - default)[:, None], np.inf)
    return grid_arr[distance.argmin(axis=0)]


def classification_metrics(
    task: str,
    targets: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    threshold: float | np.ndarray = 0.5,
) -> dict[str, float]:
    """Scalar metrics and per-class precision, recall and F1 (keys `precision/<class>`, ...).

    Single-label: `accuracy` is the fraction right, `balanced_accuracy` the mean recall of the
    classes present. Multi-label: `accuracy` is subset accuracy (every label of a sample
    right), `balanced_accuracy` the macro mean of (TPR + TNR) / 2, and `auroc` / `map` are
    macro AUROC and mean average precision of the scores. Binary: `auroc` / `map` rank the
    samples by the score of class 1. A class never predicted has precision 0.
    """
    labels = list(range(len(classes)))
    preds = predictions(task, scores, threshold)
    out: dict[str, float] = {
        "accuracy": skm.accuracy_score(targets, preds),
        "macro_f1": skm.f1_score(targets, preds, average="macro", labels=labels, zero_division=0),
        "micro_f1": skm.f1_score(targets, preds, average="micro", labels=labels, zero_division=0),
        "weighted_f1": skm.f1_score(targets, preds, average="weighted", labels=labels, zero_division=0),
    }
    if task == "multilabel":
        out["balanced_accuracy"] = _multilabel_balanced_accuracy(targets, preds)
        out.update(_ranking_metrics(targets, scores))
    else:
        out["balanced_accuracy"] = _balanced_accuracy(targets, preds)
        if task == "binary" and scores.shape[1] == 2:
            out.update(_ranking_metrics((targets == 1)[:, None].astype(np.int64), (scores[:, 1] - scores[:, 0])[:, None]))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(targets, preds, labels=labels, zero_division=0)
    for c, name in enumerate(classes):
        key = metric_key(name)
        out[f"precision/{key}"] = float(precision[c])
        out[f"recall/{key}"] = float(recall[c])
        out[f"f1/{key}"] = float(f1[c])
    return {k: float(v) for k, v in out.items()}


def _balanced_accuracy(targets: np.ndarray, preds: np.ndarray) -> float:
    """Mean recall over the classes present in `targets`: sklearn's, which warns (here
    silenced) when a class is predicted that the validation set does not hold, or when it
    holds one class only: both are ordinary in a small validation fold."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        return float(skm.balanced_accuracy_score(targets, preds))


def _multilabel_balanced_accuracy(targets: np.ndarray, preds: np.ndarray) -> float:
    """Per class (TPR + TNR) / 2, averaged over classes. A class without positives (or
    without negatives) in the set has no TPR (TNR): its other rate stands alone, rather
    than an undefined rate counting as 0."""
    pos, neg = targets.sum(0), (1 - targets).sum(0)
    tpr = np.divide((preds * targets).sum(0), pos, out=np.full(pos.shape, np.nan), where=pos > 0)
    tnr = np.divide(((1 - preds) * (1 - targets)).sum(0), neg, out=np.full(neg.shape, np.nan), where=neg > 0)
    per_class = np.nanmean(np.stack([tpr, tnr]), axis=0)
    return float(np.nanmean(per_class)) if np.isfinite(per_class).any() else 0.0


def _ranking_metrics(targets: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Macro AUROC and mAP over the classes that have both positives and negatives."""
    valid = [c for c in range(targets.shape[1]) if 0 < targets[:, c].sum() < len(targets)]
    if not valid:
        return {}
    t, s = targets[:, valid], scores[:, valid]
    return {
        "auroc": float(skm.roc_auc_score(t, s, average="macro")),
        "map": float(skm.average_precision_score(t, s, average="macro")),
    }


def confusion(task: str, targets: np.ndarray, scores: np.ndarray, num_classes: int, threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """(C, C) confusion matrix, or (C, 2, 2) per-class matrices for multi-label."""
    preds = predictions(task, scores, threshold)
    if task == "multilabel":
        return skm.multilabel_confusion_matrix(targets, preds)
    return skm.confusion_matrix(targets, preds, labels=list(range(num_classes)))


def per_class_report(task: str, targets: np.ndarray, scores: np.ndarray, classes: Sequence[str], threshold: float | np.ndarray = 0.5) -> list[dict]:
    """Rows of class, precision, recall, f1, support (for a CSV)."""
    preds = predictions(task, scores, threshold)
    p, r, f, s = skm.precision_recall_fscore_support(targets, preds, labels=list(range(len(classes))), zero_division=0)
    return [dict(cls=c, precision=float(p[i]), recall=float(r[i]), f1=float(f[i]), support=int(s[i])) for i, c in enumerate(classes)]


def nll(task: str, targets: np.ndarray, scores: np.ndarray) -> float:
    """Cross-entropy (single-label) or mean binary cross-entropy (multi-label) of the scores:
    the same validation loss for every training loss, so trials stay comparable."""
    import torch
    from torch.nn import functional as F

    s = torch.as_tensor(scores, dtype=torch.float64)
    if task == "multilabel":
        return float(F.binary_cross_entropy_with_logits(s, torch.as_tensor(targets, dtype=torch.float64)))
    return float(F.cross_entropy(s, torch.as_tensor(targets, dtype=torch.long)))
