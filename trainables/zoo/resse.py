"""`resse_ijcnn`: the residual squeeze-and-excitation network that won IJCNN 2021.

Bottleneck residual blocks with full pre-activation (BN + SiLU before every
conv, He et al. 2016), squeeze-and-excitation on the residual branch, and
stochastic depth with the report's per-stage survival probabilities; the
blocks that downsample (stride 2) always run. EfficientNet-style multipliers
scale the width (channels rounded to a multiple of 8) and the depth (blocks
per stage, rounded up):

    timm.create_model("resse_ijcnn", num_classes=1, in_chans=3)                 # the report's net
    timm.create_model("resse_ijcnn", num_classes=2, width_multiplier=0.05,
                      depth_multiplier=0.3)                                      # ~10k params, for tests

It follows timm's model interface (`forward_features`, `forward_head`,
`num_features`, `reset_classifier`), so raysweep puts its own heads on it like
on any timm backbone.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn
from timm.layers import BatchNormAct2d, ClassifierHead, DropPath, SEModule, make_divisible
from timm.models import build_model_with_cfg, checkpoint_seq, generate_default_cfgs, register_model

# The report's 19 blocks, grouped as (width, blocks, survival probability, then a
# stride-2 block). Each group's first block keeps the incoming width, as the
# report's listing does (128 -> 128, 256, 256 -> 256, 512, 512), and the stride-2
# block that closes a group has no stochastic depth.
STAGES: tuple[tuple[int, int, float, bool], ...] = (
    (128, 3, 0.8, True),
    (128, 3, 0.8, True),
    (256, 3, 0.7, True),
    (512, 3, 0.6, True),
    (512, 3, 0.5, False),
)
STEM_WIDTH = 128


class ResidualSEBlock(nn.Module):
    """BN-SiLU -> 1x1 -> BN-SiLU -> 3x3 (stride) -> BN-SiLU -> 1x1 -> SE -> DropPath, plus the shortcut."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, drop_prob: float = 0.0, bottle_ratio: float = 0.25, se_ratio: float = 1 / 16):
        super().__init__()
        mid_chs = make_divisible(out_chs * bottle_ratio, 8)
        self.preact = BatchNormAct2d(in_chs, act_layer=nn.SiLU)
        # a projection when the shape changes; it sees the pre-activated input (He et al. 2016, fig. 4e)
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False) if stride != 1 or in_chs != out_chs else None
        self.conv1 = nn.Conv2d(in_chs, mid_chs, 1, bias=False)
        self.norm2 = BatchNormAct2d(mid_chs, act_layer=nn.SiLU)
        self.conv2 = nn.Conv2d(mid_chs, mid_chs, 3, stride=stride, padding=1, bias=False)
        self.norm3 = BatchNormAct2d(mid_chs, act_layer=nn.SiLU)
        self.conv3 = nn.Conv2d(mid_chs, out_chs, 1, bias=False)
        self.se = SEModule(out_chs, rd_ratio=se_ratio, act_layer=nn.SiLU)
        self.drop_path = DropPath(drop_prob) if drop_prob > 0 else nn.Identity()
        self.stride = stride
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.preact(x)
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.norm2(out))
        out = self.conv3(self.norm3(out))
        return self.drop_path(self.se(out)) + shortcut


def stage_layout(width_multiplier: float = 1.0, depth_multiplier: float = 1.0, survival_probs: Optional[Sequence[float]] = None, drop_path_rate: Optional[float] = None) -> list[tuple[int, int, float]]:
    """(out channels, stride, drop probability) of every block.

    Drop probabilities are 1 - the report's survival probability of the block's
    stage, or `survival_probs` (one per stage); with `drop_path_rate` they grow
    linearly with depth up to that rate instead, as in timm's models.
    """
    if width_multiplier <= 0 or depth_multiplier <= 0:
        raise ValueError(f"width_multiplier and depth_multiplier must be > 0, got {width_multiplier} and {depth_multiplier}")
    survival = list(survival_probs) if survival_probs is not None else [s[2] for s in STAGES]
    if len(survival) != len(STAGES) or not all(0 < p <= 1 for p in survival):
        raise ValueError(f"survival_probs must be {len(STAGES)} numbers in (0, 1], got {survival}")

    def width(c: int) -> int:
        return make_divisible(c * width_multiplier, 8)

    blocks: list[tuple[int, int, float]] = []
    prev = width(STEM_WIDTH)
    for (chs, repeats, _, downsample), keep in zip(STAGES, survival):
        out = width(chs)
        for i in range(math.ceil(repeats * depth_multiplier)):
            blocks.append((prev if i == 0 else out, 1, 1.0 - keep))
        if downsample:
            blocks.append((out, 2, 0.0))
        prev = out
    if drop_path_rate is not None:
        n = len(blocks) - 1
        blocks = [(c, s, 0.0 if s != 1 else drop_path_rate * i / max(n, 1)) for i, (c, s, _) in enumerate(blocks)]
    return blocks


class ResSE(nn.Module):
    def __init__(
        self,
        num_classes: int = 1,
        in_chans: int = 3,
        width_multiplier: float = 1.0,
        depth_multiplier: float = 1.0,
        survival_probs: Optional[Sequence[float]] = None,
        drop_path_rate: Optional[float] = None,
        drop_rate: float = 0.0,
        bottle_ratio: float = 0.25,
        se_ratio: float = 1 / 16,
        global_pool: str = "avg",
    ):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        layout = stage_layout(width_multiplier, depth_multiplier, survival_probs, drop_path_rate)
        stem_chs = make_divisible(STEM_WIDTH * width_multiplier, 8)
        # Keras' Conv2D(128, 3): 'valid' padding; the first block's pre-activation normalizes it
        self.stem = nn.Conv2d(in_chans, stem_chs, 3, bias=False)
        blocks, prev = [], stem_chs
        for out, stride, drop in layout:
            blocks.append(ResidualSEBlock(prev, out, stride, drop, bottle_ratio, se_ratio))
            prev = out
        self.blocks = nn.Sequential(*blocks)
        self.norm = BatchNormAct2d(prev, act_layer=nn.SiLU)
        self.num_features = self.head_hidden_size = prev
        self.head = ClassifierHead(prev, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(stem=r"^stem", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(
    {
        "resse_ijcnn": {
            "url": "",
            "num_classes": 1,
            "input_size": (3, 74, 55),  # a 12210-value pixel row reshaped to (74, 55, 3)
            "pool_size": (5, 4),
            "mean": (0.0, 0.0, 0.0),  # the report feeds pixels in [0, 1] as they are
            "std": (1.0, 1.0, 1.0),
            "first_conv": "stem",
            "classifier": "head.fc",
        }
    }
)


@register_model
def resse_ijcnn(pretrained: bool = False, **kwargs) -> ResSE:
    """IJCNN 2021 1st place: 19 residual SE blocks, 128-512 channels, stochastic depth 0.8-0.5."""
    return build_model_with_cfg(ResSE, "resse_ijcnn", pretrained, **kwargs)
