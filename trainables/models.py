"""Classifiers: a timm backbone, an optional resize, and a registered head.

    model = build_model(cfg.model, num_classes=10, in_chans=3)
    logits = model(x)
    logits, feature_map = model(x, return_features=True)   # for the mutual-channel loss

The backbone is always `timm.create_model(name, num_classes=0)`, so any timm
name works (and raysweep's own, `tiny_cnn` and `resse_ijcnn`, registered in
`trainables.zoo`), and the head (`linear`, `mish_mlp`, `normed_linear`) sits on
its pooled features. `model.pretrained` is timm's hub weights (`true`) or a
local weights file: a state dict of `timm.create_model(name)` (a classifier in
it is dropped, a first conv of another channel count is adapted by timm), also
wrapped as `{"state_dict": ...}` or `{"model": ...}`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

import timm
import torch
from torch import nn
from torch.nn import functional as F

import trainables.zoo  # noqa: F401  (registers raysweep's models with timm)
from raysweep.config.sections.model import ModelConfig
from raysweep.errors import ConfigError
from raysweep.registry import Registry

Head = Callable[[int, int, ModelConfig], nn.Module]  # (in_features, num_classes, cfg)
HEADS: Registry[Head] = Registry("head")


@HEADS.register("linear")
def _linear(in_features: int, num_classes: int, cfg: ModelConfig) -> nn.Module:
    return nn.Linear(in_features, num_classes)


@HEADS.register("mish_mlp")
def _mish_mlp(in_features: int, num_classes: int, cfg: ModelConfig) -> nn.Module:
    """The ECE449 head: features -> 256 -> Mish -> Dropout(0.5) -> classes."""
    return nn.Sequential(
        nn.Linear(in_features, cfg.head_hidden), nn.Mish(), nn.Dropout(cfg.head_dropout), nn.Linear(cfg.head_hidden, num_classes)
    )


class NormedLinear(nn.Module):
    """Cosine classifier of the LDAM paper: logits = normalize(x) . normalize(W)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, num_classes).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1).mm(F.normalize(self.weight, dim=0))


@HEADS.register("normed_linear")
def _normed_linear(in_features: int, num_classes: int, cfg: ModelConfig) -> nn.Module:
    return NormedLinear(in_features, num_classes)


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module, input_size: Optional[tuple[int, int]] = None, resize_mode: str = "bilinear"):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.input_size = input_size
        self.resize_mode = resize_mode
        # timm's hierarchical transformers (swin) give channels-last feature maps
        self.features_nhwc = getattr(backbone, "output_fmt", "NCHW") == "NHWC"

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = self._resize(x)
        features = self.backbone.forward_features(x)
        logits = self.head(self.backbone.forward_head(features, pre_logits=True))
        if not return_features:
            return logits
        return logits, self._feature_map(features)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize_mode == "nearest":
            return F.interpolate(x, size=self.input_size, mode="nearest")
        # antialiased when shrinking (large microscopy images to 224), as PIL resizes
        shrinks = x.shape[-2] > self.input_size[0] or x.shape[-1] > self.input_size[1]
        return F.interpolate(x, size=self.input_size, mode=self.resize_mode, align_corners=False, antialias=shrinks)

    def _feature_map(self, features: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map as B x C x H x W."""
        if features.ndim != 4:
            name = getattr(self.backbone, "pretrained_cfg", {}).get("architecture", type(self.backbone).__name__)
            raise ConfigError(f"model {name!r} gives tokens of shape {tuple(features.shape)}, not a feature map; a loss on feature maps needs a CNN or swin", path="model.name")
        return features.permute(0, 3, 1, 2) if self.features_nhwc else features


def model_exists(name: str) -> bool:
    return timm.is_model(name)


def input_size(cfg: ModelConfig) -> Optional[tuple[int, int]]:
    """(height, width) the model takes: `model.input_size`, else the size timm's
    pretrained config gives the model (224 for most ImageNet models), else None."""
    size = cfg.input_size
    if size:
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    pretrained = timm.models.get_pretrained_cfg(cfg.name)
    return tuple(pretrained.input_size[1:]) if pretrained is not None and pretrained.input_size else None


def model_names() -> list[str]:
    return timm.list_models()


def _read_weights(path: str) -> dict:
    if not Path(path).expanduser().is_file():
        raise ConfigError(f"weights file {path!r} not found", path="model.pretrained")
    try:
        # timm's reader: weights_only, unwraps {'state_dict'|'model': ...} and DDP's 'module.' prefixes
        return timm.models.load_state_dict(str(Path(path).expanduser()))
    except Exception as e:  # a corrupt or foreign file: whatever torch raises, say which file
        raise ConfigError(f"cannot read weights file {path!r}: {_one_line(e)}", path="model.pretrained") from None


def timm_kwargs(cfg: ModelConfig, in_chans: int) -> dict:
    """`model.*` as keyword arguments for `timm.create_model` (the backbone, no classifier)."""
    kwargs = dict(cfg.kwargs)
    kwargs.update(num_classes=0, in_chans=cfg.in_chans or in_chans, drop_rate=cfg.drop_rate)
    if cfg.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.drop_path_rate  # only when set: not every timm model takes it
    if isinstance(cfg.pretrained, str):
        # a state dict rather than {"file": path}, so that what loaded can be checked below
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"state_dict": _read_weights(cfg.pretrained)})
    else:
        kwargs["pretrained"] = cfg.pretrained
    return kwargs


def _create_backbone(cfg: ModelConfig, kwargs: dict) -> nn.Module:
    try:
        return timm.create_model(cfg.name, **kwargs)
    except TypeError as e:
        m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if m is None:
            raise
        key = m.group(1)
        path = f"model.{key}" if key in ("drop_rate", "drop_path_rate", "in_chans") else f"model.kwargs.{key}"
        raise ConfigError(f"model {cfg.name!r} does not take {key!r}", path=path) from None
    except ValueError as e:  # a model's own check of its kwargs (resse_ijcnn's multipliers)
        raise ConfigError(f"model {cfg.name!r}: {e}", path="model.kwargs" if cfg.kwargs else "model.name") from None
    except (RuntimeError, OSError) as e:
        if not cfg.pretrained:
            raise
        # a file whose tensors do not fit, or no hub weights for this name (or no network)
        what = f"weights file {cfg.pretrained!r} does not fit" if isinstance(cfg.pretrained, str) else "cannot load hub weights into"
        raise ConfigError(f"{what} {cfg.name!r}: {_one_line(e)}", path="model.pretrained") from None


def _one_line(e: Exception, limit: int = 300) -> str:
    """torch's load errors span lines ('Error(s) in loading ...:\n\tsize mismatch for ...')."""
    text = "; ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_loaded(backbone: nn.Module, weights: dict, cfg: ModelConfig) -> None:
    """timm loads a weights file non-strictly once the classifier is dropped, so a
    file of another architecture would silently leave the backbone random."""
    missing = [k for k in backbone.state_dict() if k not in weights]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(
            f"weights file {cfg.pretrained!r} does not fit {cfg.name!r}: it lacks {shown}; save the state dict of timm.create_model({cfg.name!r})",
            path="model.pretrained",
        )


def build_model(cfg: ModelConfig, num_classes: int, in_chans: int) -> Classifier:
    if not model_exists(cfg.name):
        raise ConfigError(f"unknown model {cfg.name!r}", path="model.name")
    kwargs = timm_kwargs(cfg, in_chans)
    backbone = _create_backbone(cfg, kwargs)
    if isinstance(cfg.pretrained, str):
        _check_loaded(backbone, kwargs["pretrained_cfg_overlay"]["state_dict"], cfg)
    in_features = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    head = HEADS.get(cfg.head, path="model.head")(in_features, num_classes, cfg)
    size = cfg.input_size
    input_size = (size, size) if isinstance(size, int) else tuple(size) if size else None
    return Classifier(backbone, head, input_size, cfg.resize_mode)
