"""Classifiers: a timm backbone, an optional resize, and a registered head.

    model = build_model(cfg.model, num_classes=10, in_chans=3)
    logits = model(x)
    logits, feature_map = model(x, return_features=True)   # for the mutual-channel loss

The backbone is always `timm.create_model(name, num_classes=0)`, so any timm
name works, and the head (`linear`, `mish_mlp`, `normed_linear`) sits on its
pooled features.
"""

from __future__ import annotations

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
    def __init__(self, backbone: nn.Module, head: nn.Module, input_size: Optional[tuple[int, int]] = None):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.input_size = input_size

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        features = self.backbone.forward_features(x)
        logits = self.head(self.backbone.forward_head(features, pre_logits=True))
        return (logits, features) if return_features else logits


def model_exists(name: str) -> bool:
    return timm.is_model(name)


def model_names() -> list[str]:
    return timm.list_models()


def _timm_kwargs(cfg: ModelConfig, in_chans: int) -> dict:
    kwargs = dict(cfg.kwargs)
    kwargs.update(num_classes=0, in_chans=cfg.in_chans or in_chans, drop_rate=cfg.drop_rate)
    if cfg.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.drop_path_rate
    if isinstance(cfg.pretrained, str):
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": cfg.pretrained})
    else:
        kwargs["pretrained"] = cfg.pretrained
    return kwargs


def build_model(cfg: ModelConfig, num_classes: int, in_chans: int) -> Classifier:
    if not model_exists(cfg.name):
        raise ConfigError(f"unknown model {cfg.name!r}", path="model.name")
    backbone = timm.create_model(cfg.name, **_timm_kwargs(cfg, in_chans))
    in_features = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    head = HEADS.get(cfg.head, path="model.head")(in_features, num_classes, cfg)
    size = cfg.input_size
    input_size = (size, size) if isinstance(size, int) else tuple(size) if size else None
    return Classifier(backbone, head, input_size)
