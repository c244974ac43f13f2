"""AutoAugment's CIFAR-10 policy (Cubuk et al., 2019) as a step of an albumentations
pipeline: torchvision's own `v2.AutoAugment(AutoAugmentPolicy.CIFAR10)`, wrapped.

albumentations has no AutoAugment, and torchvision's works on (C, H, W) tensors, so the
wrapper converts the pipeline's (H, W, C) uint8 array to a tensor and back. Two things
differ from calling torchvision directly, both because the step lives in an
albumentations pipeline:

- Its random draws come from the pipeline's generator, not torch's global one: each call
  seeds a forked torch generator from albumentations' (`Transform.reseed`), so an epoch's
  augmentations replay exactly after a resume, like every other step, and the trainer's
  own torch random stream is left alone.
- torchvision's colour operations take 1 or 3 channels. An image with other channel
  counts (RGBY, 4) is transformed in groups of up to 3 channels with the same draws
  (the same sub-policy, probabilities, signs and magnitudes), so its geometry stays
  aligned across the groups; contrast, colour and equalization then act per group.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np


class AutoAugment(A.ImageOnlyTransform):
    """torchvision's AutoAugment (CIFAR-10 policy) on an (H, W, C) uint8 image."""

    def __init__(self, p: float = 1.0):
        super().__init__(p=p)
        from torchvision.transforms import v2

        self.policy = v2.AutoAugmentPolicy.CIFAR10
        self.torchvision = v2.AutoAugment(self.policy)

    def get_params(self) -> dict[str, Any]:
        return {"seed": int(self.random_generator.integers(0, 2**63 - 1))}

    def apply(self, img: np.ndarray, seed: int = 0, **params: Any) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        groups = [x[c : c + 3] for c in range(0, x.shape[0], 3)] if x.shape[0] not in (1, 3) else [x]
        out = []
        for group in groups:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # the same draws for every group of channels
                out.append(self.torchvision(group))
        return torch.cat(out).permute(1, 2, 0).numpy()

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("p",)


def cifar10_policy(channels: int = 3) -> AutoAugment:
    """One sub-policy of torchvision's 25 per image (`channels`: any count; see above)."""
    return AutoAugment(p=1.0)
