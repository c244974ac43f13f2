"""A trained classifier as a model to deploy: raw pixels in, class probabilities out.

Between a stored sample and the network, training applies three things, and a
deployed model must apply the same:

1. the data source's scaling to 0..255 levels (`trainables.data.samples.to_uint8`:
   digits' 0..16 become 0..255, rounded);
2. the validation pipeline of `trainables.augment`: the resize (`augment.resize`:
   a stretch, a shorter-side resize and centre crop, or a fit into a square, as the
   `ece449` preset has too), then `augment.normalize` (ImageNet statistics by
   default) or a plain /255, and HWC -> CHW;
3. the resize to `model.input_size`, which `trainables.models.Classifier` does itself.

`DeployedClassifier` holds 1 and 2 as small torch modules (buffers, no tracing)
in front of the `Classifier`, and ends with a softmax (binary and multi-class) or a
sigmoid (multi-label):

    model = deployed_model(checkpoint_dir).eval()
    with torch.no_grad():
        probs = model(raw)     # raw: (N, C, H, W) pixels on the data's own scale (digits: 0..16)

The input is channels first, in the order the source reads them (RGB for colour
files, `data.channels` for channel files), at the training images' size (any size
when the pipeline fits images into a square). Its scale is the source's
`pixel_max`: 16 for digits, 1 for float tables in [0, 1], 65535 for uint16
tables, 255 for everything else (image files are their decoded 8-bit pixels).

Unpickling a logged model imports this module, so it imports only torch (and
raysweep's registry) at the top; building one from a checkpoint imports the
trainer's modules when called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raysweep.registry import Registry

LEVELS = 255.0  # what `to_uint8` maps a source's full-intensity pixel to


class Quantize(nn.Module):
    """Raw pixels to the 0..255 levels the network was trained on, rounded as `to_uint8` rounds."""

    def __init__(self, pixel_max: float):
        super().__init__()
        self.pixel_max = float(pixel_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * (LEVELS / self.pixel_max)).clamp_(0, LEVELS)


def _resize(x: torch.Tensor, new: tuple[int, int], area: bool) -> torch.Tensor:
    """Bilinear (area-like with antialias when `area` and shrinking), rounded to levels as
    OpenCV's uint8 resize is (close to OpenCV, not bit-exact)."""
    if tuple(new) == tuple(x.shape[-2:]):
        return x
    shrink = area and (new[0] < x.shape[-2] or new[1] < x.shape[-1])
    return F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=shrink).round_().clamp_(0, LEVELS)


class LongestMaxSize(nn.Module):
    """albumentations' LongestMaxSize: the image scaled to fit `height` x `width`
    (the longer side to `size` when square)."""

    def __init__(self, height: int, width: int, area: bool = False):
        super().__init__()
        self.height, self.width, self.area = int(height), int(width), bool(area)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        scale = min(self.height / h, self.width / w)
        return _resize(x, (max(1, round(h * scale)), max(1, round(w * scale))), self.area)


class SmallestMaxSize(nn.Module):
    """albumentations' SmallestMaxSize: the shorter side scaled to `size`."""

    def __init__(self, size: int, area: bool = False):
        super().__init__()
        self.size, self.area = int(size), bool(area)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        scale = self.size / min(h, w)
        return _resize(x, (max(1, round(h * scale)), max(1, round(w * scale))), self.area)


class Resize(nn.Module):
    """albumentations' Resize: stretched to `height` x `width`."""

    def __init__(self, height: int, width: int, area: bool = False):
        super().__init__()
        self.height, self.width, self.area = int(height), int(width), bool(area)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _resize(x, (self.height, self.width), self.area)


class CenterCrop(nn.Module):
    """albumentations' CenterCrop: the centre `height` x `width`, the odd pixel at the top left."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = int(height), int(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        top, left = (h - self.height) // 2, (w - self.width) // 2
        return x[..., top : top + self.height, left : left + self.width]


class PadIfNeeded(nn.Module):
    """albumentations' PadIfNeeded, centred, with a constant: up to (height, width), the
    odd pixel of a split at the bottom and right."""

    def __init__(self, height: int, width: int, fill: float = 0.0):
        super().__init__()
        self.height, self.width, self.fill = int(height), int(width), float(fill)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        top, left = max(0, self.height - h) // 2, max(0, self.width - w) // 2
        bottom, right = max(0, self.height - h - top), max(0, self.width - w - left)
        return F.pad(x, (left, right, top, bottom), value=self.fill)


class Normalize(nn.Module):
    """(x - mean) * (1 / std), per channel, on 0..255 levels: albumentations' arithmetic
    (its float32 constants), so the network gets bit-identical inputs."""

    def __init__(self, mean: np.ndarray, denominator: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float32)).reshape(1, -1, 1, 1))
        self.register_buffer("denominator", torch.as_tensor(np.asarray(denominator, np.float32)).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.denominator


class ToFloat(nn.Module):
    def __init__(self, max_value: float):
        super().__init__()
        self.max_value = float(max_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.max_value


# albumentations transform class -> its torch counterpart (None: nothing to do on NCHW tensors).
# A preset whose validation pipeline holds another transform cannot be deployed until it has one.
Step = Callable[[object], Optional[nn.Module]]
STEPS: Registry[Step] = Registry("validation transform")
_INTER_LINEAR = 1  # cv2.INTER_LINEAR, albumentations' default interpolation
_BORDER_CONSTANT = 0  # cv2.BORDER_CONSTANT


def _unsupported(t) -> NotImplementedError:
    return NotImplementedError(f"{t!r} has no counterpart in the deployed model (trainables.deploy.STEPS)")


def _area(t) -> bool:
    """Whether a resize uses OpenCV's area interpolation to shrink (as `trainables.resize` asks)."""
    if t.interpolation != _INTER_LINEAR or t.area_for_downscale not in (None, "image"):
        raise _unsupported(t)
    return t.area_for_downscale == "image"


@STEPS.register("LongestMaxSize")
def _longest_max_size(t) -> nn.Module:
    area = _area(t)
    if isinstance(t.max_size, int) and t.max_size_hw is None:
        return LongestMaxSize(t.max_size, t.max_size, area)
    if t.max_size is None and t.max_size_hw is not None and None not in t.max_size_hw:
        return LongestMaxSize(*t.max_size_hw, area)
    raise _unsupported(t)


@STEPS.register("SmallestMaxSize")
def _smallest_max_size(t) -> nn.Module:
    if not isinstance(t.max_size, int) or t.max_size_hw is not None:
        raise _unsupported(t)
    return SmallestMaxSize(t.max_size, _area(t))


@STEPS.register("Resize")
def _resize_step(t) -> nn.Module:
    return Resize(t.height, t.width, _area(t))


@STEPS.register("CenterCrop")
def _center_crop(t) -> nn.Module:
    if t.pad_if_needed:
        raise _unsupported(t)
    return CenterCrop(t.height, t.width)


@STEPS.register("PadIfNeeded")
def _pad_if_needed(t) -> nn.Module:
    if t.min_height is None or t.min_width is None or t.position != "center" or t.border_mode != _BORDER_CONSTANT or not isinstance(t.fill, (int, float)):
        raise _unsupported(t)
    return PadIfNeeded(t.min_height, t.min_width, t.fill)


@STEPS.register("Normalize")
def _normalize(t) -> nn.Module:
    if t.normalization != "standard":
        raise _unsupported(t)
    return Normalize(t.mean_np, t.denominator)


@STEPS.register("ToFloat")
def _to_float(t) -> nn.Module:
    return ToFloat(LEVELS if t.max_value is None else t.max_value)


@STEPS.register("ToTensorV2")
def _to_tensor(t) -> None:
    return None  # HWC -> CHW: deployed inputs are channels first already


def preprocessing(val_transforms: Sequence, pixel_max: float) -> nn.Sequential:
    """The torch steps that turn raw pixels into what `val_transforms` (an albumentations
    validation pipeline's transforms, as `augment.build_transforms` makes them) gives the network."""
    steps: list[nn.Module] = [Quantize(pixel_max)]
    for t in val_transforms:
        if t.p != 1.0:
            raise _unsupported(t)
        name = type(t).__name__
        if name not in STEPS:
            raise NotImplementedError(f"the validation transform {name} has no counterpart in the deployed model; add one to trainables.deploy.STEPS")
        step = STEPS.get(name)(t)
        if step is not None:
            steps.append(step)
    return nn.Sequential(*steps)


def takes_any_size(preprocess: nn.Sequential) -> bool:
    """Whether the steps resize, so that inputs need not have the training images' size."""
    return any(isinstance(step, (LongestMaxSize, SmallestMaxSize, Resize)) for step in preprocess)


class DeployedClassifier(nn.Module):
    """Raw pixels (N, C, H, W) on the data's own scale in, class probabilities (N, classes) out:
    a softmax over the classes (binary, multi-class) or a sigmoid per class (multi-label)."""

    def __init__(self, classifier: nn.Module, preprocess: nn.Sequential, *, classes: Sequence[str], task: str,
                 in_chans: int, image_size: tuple[int, int], threshold: Sequence[float]):
        super().__init__()
        self.preprocess = preprocess
        self.classifier = classifier
        self.classes = [str(c) for c in classes]
        self.task = task
        self.in_chans = int(in_chans)
        self.image_size = (int(image_size[0]), int(image_size[1]))  # the training images'
        self.any_size = takes_any_size(preprocess)  # the pipeline resizes: inputs of any size
        # multi-label: a class is predicted where its probability reaches its threshold
        self.register_buffer("threshold", torch.as_tensor(np.asarray(threshold, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        logits = self.classifier(self.preprocess(x.float()))
        return torch.sigmoid(logits) if self.task == "multilabel" else torch.softmax(logits, dim=1)

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        """Class indices (N,), or a 0/1 matrix (N, classes) for multi-label."""
        probs = self(x)
        return (probs >= self.threshold).long() if self.task == "multilabel" else probs.argmax(dim=1)

    @property
    def pixel_max(self) -> float:
        """The raw value of a full-intensity pixel."""
        return self.preprocess[0].pixel_max

    def input_shape(self) -> str:
        return f"(N, {self.in_chans}, H, W)" if self.any_size else f"(N, {self.in_chans}, {self.image_size[0]}, {self.image_size[1]})"

    def _check(self, x: torch.Tensor) -> None:
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1] != self.in_chans or (not self.any_size and shape[2:] != self.image_size):
            raise ValueError(f"expected raw pixels of shape {self.input_shape()}, got {shape}")


def _checkpoint_files() -> tuple[str, str, str, str]:
    from trainables.checkpoint import CONFIG_FILE
    from trainables.trainer import META_FILE, PREDICTIONS_FILE, SPLITS_FILE

    return META_FILE, CONFIG_FILE, PREDICTIONS_FILE, SPLITS_FILE


def _threshold(cfg, predictions: Path, num_classes: int, fold: int) -> np.ndarray:
    """The multi-label decision threshold per class, as the trainer judged the checkpoint's
    validation: `train.threshold`, or tuned per class on the validation set."""
    from trainables.metrics import tune_thresholds

    default = np.full(num_classes, cfg.train.threshold, np.float32)
    if not cfg.train.tune_threshold or not predictions.exists():
        return default
    with np.load(predictions) as p:
        if str(p["task"]) != "multilabel":
            return default
        return tune_thresholds(p[f"targets_{fold}"], p[f"scores_{fold}"], default=cfg.train.threshold).astype(np.float32)


def deployed_model(checkpoint: Path, fold: int = 0) -> DeployedClassifier:
    """The model of a trainer checkpoint directory (`fold`'s, under per-trial cross-validation)."""
    from raysweep.config.schema import SweepConfig
    from trainables.augment import build_transforms
    from trainables.checkpoint import load_state
    from trainables.models import build_model, input_size

    checkpoint = Path(checkpoint)
    meta_file, config_file, predictions_file, _ = _checkpoint_files()
    meta = json.loads((checkpoint / meta_file).read_text())
    cfg = SweepConfig.model_validate(json.loads((checkpoint / config_file).read_text()))
    classes, in_chans, (h, w) = meta["classes"], meta["in_chans"], meta["image_size"]
    # the weights come from the checkpoint: no hub download, no weights file needed here
    classifier = build_model(cfg.model.model_copy(update={"pretrained": False}), len(classes), in_chans)
    classifier.load_state_dict(load_state(checkpoint)["folds"][fold]["model"])
    # checkpoints written before `augment.resize` held in-memory arrays or uniform files: no auto resize
    _, val = build_transforms(cfg.augment, h, w, in_chans, model_size=input_size(cfg.model), one_size=meta.get("one_size", True))
    preprocess = preprocessing(val.compose.transforms, meta.get("pixel_max", LEVELS))
    threshold = _threshold(cfg, checkpoint / predictions_file, len(classes), fold)
    model = DeployedClassifier(classifier, preprocess, classes=classes, task=meta["task"], in_chans=in_chans,
                               image_size=(h, w), threshold=threshold)
    return model.eval()


def raw_pixels(images: np.ndarray, pixel_max: float) -> np.ndarray:
    """Stored HWC uint8 samples (N, H, W, C) back on the source's scale, channels first, float32.
    Sources whose full scale is a whole number above 1 (digits' 16) store whole numbers."""
    raw = images.transpose(0, 3, 1, 2).astype(np.float64) * (pixel_max / LEVELS)
    if pixel_max > 1 and float(pixel_max).is_integer():
        raw = np.round(raw)
    return raw.astype(np.float32)


def example_inputs(checkpoint: Path, n: int = 3, fold: int = 0) -> np.ndarray:
    """The first `n` validation samples of the checkpoint's split, as raw pixels (N, C, H, W).
    Reads the data source, so the data must be readable where this runs."""
    from raysweep.config.schema import SweepConfig
    from trainables.data.sources import load_samples

    checkpoint = Path(checkpoint)
    _, config_file, _, splits_file = _checkpoint_files()
    cfg = SweepConfig.model_validate(json.loads((checkpoint / config_file).read_text()))
    samples = load_samples(cfg.data)
    with np.load(checkpoint / splits_file) as s:
        val = np.flatnonzero(s["assignment"][fold] == 1)[:n]
    return raw_pixels(np.stack([samples.images.load(int(i)) for i in val]), samples.pixel_max)


def card(model: DeployedClassifier) -> dict:
    """What a caller needs to know, for the MLflow model's metadata."""
    output = "sigmoid probability per class; a class is present where it reaches `threshold`" if model.task == "multilabel" else "softmax probabilities over the classes; the prediction is the argmax"
    return {
        "input": f"float32 raw pixels {model.input_shape()}, channels first, on the data's own scale (full intensity = pixel_max)",
        "output": f"float32 (N, {len(model.classes)}): {output}",
        "pixel_max": model.pixel_max,
        "classes": model.classes,
        "task": model.task,
        "threshold": [float(t) for t in model.threshold] if model.task == "multilabel" else None,
    }
