"""The held-out test split, and one checkpoint's evaluation on it.

A sweep selects on its validation split; where the data ships a test split
(`data.official_test`: torchvision's own, CIFAR-100's `test` file; or
`data.test_path`: a held-out file in the training data's layout), the best
trial's selected checkpoint is evaluated on it once, at the end
(`raysweep.sweep.heldout`). Nothing here is read by training or selection:
the trainer's sources never open these files.

    samples = load_test_samples(cfg.data, classes=["cat", "dog"])
    record = evaluate_checkpoint(checkpoint_dir, samples)   # {"samples": n, "metrics": {...}}
"""

from __future__ import annotations

import json
from pathlib import Path
import numpy as np
import torch

from raysweep.config.sections.data import TEST_PATH_REPLACES, DataConfig
from raysweep.errors import DataError
from trainables.data.samples import Samples

BATCH = 256


def describe_test_split(cfg: DataConfig) -> str:
    return f"{cfg.name} official test split" if cfg.official_test else str(cfg.test_path)


def load_test_samples(cfg: DataConfig, classes: list[str]) -> Samples:
    """The test split, its labels indexed by the training data's `classes` (a test label
    outside them is an error naming the test file)."""
    from trainables.data.sources import load_samples
    from trainables.data.vision import official_test

    if cfg.official_test:
        samples = official_test(cfg)
        if list(samples.classes) != list(classes):
            raise DataError(f"the test split's classes differ from the training split's ({len(samples.classes)} vs {len(classes)})", path="data.official_test")
        return samples
    if cfg.test_path is None:
        raise ValueError("the data has no test split")
    key = TEST_PATH_REPLACES[cfg.kind]
    return load_samples(cfg.model_copy(update={key: cfg.test_path, "classes": list(classes), "test_path": None}))


def _probabilities(checkpoint: Path, samples: Samples, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, C), per-class threshold) of the checkpoint's `fold` model, through the
    deployed model: the validation pipeline the trainer judged the checkpoint with."""
    from trainables.deploy import deployed_model, raw_pixels

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # the task holds a trial worker's GPUs
    model = deployed_model(checkpoint, fold).to(device)
    out = []
    with torch.no_grad():
        for start in range(0, len(samples), BATCH):
            images = np.stack([samples.images.load(i) for i in range(start, min(start + BATCH, len(samples)))])
            out.append(model(torch.from_numpy(raw_pixels(images, samples.pixel_max)).to(device)).cpu().numpy())
    return np.concatenate(out), model.threshold.cpu().numpy()


def _folds(checkpoint: Path) -> int:
    from trainables.checkpoint import load_state

    return len(load_state(checkpoint)["folds"])


def _logits(task: str, probs: np.ndarray) -> np.ndarray:
    """Scores the metrics read as logits: log p (softmax is then p again), or the sigmoid's inverse."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p)) if task == "multilabel" else np.log(p)


def evaluate_checkpoint(checkpoint: Path, samples: Samples) -> dict:
    """The checkpoint's scalar metrics on `samples` (under per-trial cross-validation, the mean of
    its folds' probabilities), with the same metric functions as validation."""
    from trainables.metrics import classification_metrics, nll
    from trainables.trainer import META_FILE

    checkpoint = Path(checkpoint)
    meta = json.loads((checkpoint / META_FILE).read_text())
    if list(meta["classes"]) != list(samples.classes):
        raise DataError("the test split's classes differ from those the checkpoint was trained on", path="data")
    folds = [_probabilities(checkpoint, samples, k) for k in range(_folds(checkpoint))]
    probs = np.mean([p for p, _ in folds], axis=0)
    threshold = np.mean([t for _, t in folds], axis=0) if meta["task"] == "multilabel" else 0.5
    scores = _logits(meta["task"], probs)
    metrics = classification_metrics(meta["task"], samples.labels, scores, samples.classes, threshold)
    metrics["loss"] = nll(meta["task"], samples.labels, scores)
    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"samples": len(samples), "folds": len(folds), "metrics": scalars}


def evaluate(checkpoint: Path, cfg: DataConfig) -> dict:
    """Evaluate a trainer checkpoint on the test split of `cfg` (what the sweep's end runs)."""
    from trainables.trainer import META_FILE

    classes = json.loads((Path(checkpoint) / META_FILE).read_text())["classes"]
    return evaluate_checkpoint(checkpoint, load_test_samples(cfg, classes))

