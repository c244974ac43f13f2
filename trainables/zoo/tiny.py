"""`tiny_cnn`: a few-thousand-parameter CNN for quickstarts, tests and benchmarks.

It follows timm's model interface (`forward_features`, `forward_head`,
`num_features`, `reset_classifier`) so the rest of raysweep treats it like any
timm backbone:

    timm.create_model("tiny_cnn", num_classes=10, in_chans=1)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model


class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths: tuple[int, ...] = (16, 32), drop_rate: float = 0.0, global_pool: str = "avg"):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_chans
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = width
        self.body = nn.Sequential(*layers)
        self.num_features = self.head_hidden_size = prev
        self.drop_rate = drop_rate
        self.num_classes = num_classes
        self.fc = nn.Linear(prev, num_classes) if num_classes > 0 else nn.Identity()

    @property
    def stem(self) -> nn.Conv2d:
        """The first conv (timm's `first_conv`, "body.0"). A property, not a second
        registered module, so its weight has one state-dict key that timm can adapt
        to another channel count."""
        return self.body[0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        if self.drop_rate:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(
    {
        "tiny_cnn": {
            "url": "",
            "num_classes": 10,
            "input_size": (3, 16, 16),
            "pool_size": None,
            "first_conv": "body.0",
            "classifier": "fc",
        }
    }
)


@register_model
def tiny_cnn(pretrained: bool = False, **kwargs) -> TinyCNN:
    return build_model_with_cfg(TinyCNN, "tiny_cnn", pretrained, **kwargs)
