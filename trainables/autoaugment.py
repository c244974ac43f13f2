"""AutoAugment's CIFAR-10 policy, built from albumentations transforms.

albumentations has no AutoAugment. This is the policy Cubuk et al. (2019)
learned on CIFAR-10, with the 25 sub-policies, probabilities and magnitude
bins exactly as torchvision's `AutoAugmentPolicy.CIFAR10` lists them and
torchvision's magnitude scale (10 bins: shear to 0.3, translation to 150/331
of the side, rotation to 30 degrees, enhancement factors to +-0.9, posterize
to 4 bits, solarize threshold 255 -> 0). One sub-policy is drawn uniformly per
image; each of its two operations then applies with its probability, and a
signed operation takes either sign with equal chance.

Where the operations differ from PIL's:
- Brightness and Contrast are albumentations' `alpha * x + beta` with the
  factors PIL would use (contrast pivots on the image mean, not the mean of
  its grayscale).
- Color (saturation) is `ColorJitter`'s saturation factor.
- Sharpness uses `Sharpen` blended by the magnitude; PIL's negative sharpness
  (a blur) is left out, so only sharpening occurs.
- AutoContrast uses albumentations' histogram stretch with no cutoff.

Operations defined only for RGB (Color) are skipped for other channel counts,
and Equalize for 4-channel images, where albumentations cannot apply them.
"""

from __future__ import annotations

import math
from typing import Optional

import albumentations as A
import cv2

CIFAR10_POLICY = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)

BINS = 10


def _scale(top: float, bin_: int) -> float:
    return top * bin_ / (BINS - 1)


def _affine(**kwargs) -> A.Affine:
    return A.Affine(**kwargs, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)  # torchvision fills with 0


def _shear(axis: str, v: float) -> A.Affine:
    degrees = math.degrees(math.atan(v))  # torchvision's magnitude is the shear factor
    return _affine(shear={"x": (0, 0), "y": (0, 0), axis: (degrees, degrees)})


def _translate(axis: str, v: float) -> A.Affine:
    return _affine(translate_percent={"x": (0, 0), "y": (0, 0), axis: (v, v)})


def _brightness(v: float):  # PIL Brightness(1 + v): (1 + v) x
    return A.RandomBrightnessContrast(brightness_limit=(0, 0), contrast_limit=(v, v), p=1.0)


def _contrast(v: float):  # PIL Contrast(1 + v): (1 + v) x - v mean
    return A.RandomBrightnessContrast(brightness_limit=(-v, -v), contrast_limit=(v, v), brightness_by_max=False, p=1.0)


def _color(v: float):
    return A.ColorJitter(brightness=(1, 1), contrast=(1, 1), saturation=(1 + v, 1 + v), hue=(0, 0), p=1.0)


# name -> (magnitude at the top bin, transform at a signed magnitude)
_SIGNED = {
    "ShearX": (0.3, lambda v: _shear("x", v)),
    "ShearY": (0.3, lambda v: _shear("y", v)),
    "TranslateX": (150 / 331, lambda v: _translate("x", v)),
    "TranslateY": (150 / 331, lambda v: _translate("y", v)),
    "Rotate": (30.0, lambda v: _affine(rotate=(v, v))),
    "Brightness": (0.9, _brightness),
    "Contrast": (0.9, _contrast),
    "Color": (0.9, _color),
}


def _unsigned(name: str, bin_: Optional[int]):
    if name == "Sharpness":
        alpha = _scale(0.9, bin_)
        return A.Sharpen(alpha=(alpha, alpha), lightness=(1.0, 1.0), p=1.0)
    if name == "Posterize":
        bits = 8 - round(bin_ / ((BINS - 1) / 4))
        return A.Posterize(num_bits=(bits, bits), p=1.0)
    if name == "Solarize":
        threshold = 1.0 - bin_ / (BINS - 1)  # a fraction of 255
        return A.Solarize(threshold_range=(threshold, threshold), p=1.0)
    return {"AutoContrast": A.AutoContrast, "Equalize": A.Equalize, "Invert": A.InvertImg}[name](p=1.0)


def usable(name: str, channels: int) -> bool:
    if name == "Color":
        return channels == 3
    if name == "Equalize":
        return channels in (1, 3)
    return True


def operation(name: str, p: float, bin_: Optional[int], channels: int):
    """One operation of a sub-policy, applied with probability `p`; None if the
    images' channel count rules it out."""
    if not usable(name, channels):
        return None
    if name in _SIGNED:
        top, make = _SIGNED[name]
        v = _scale(top, bin_)
        return A.OneOf([make(v), make(-v)], p=p)
    return A.Sequential([_unsigned(name, bin_)], p=p)


def cifar10_policy(channels: int = 3) -> A.OneOf:
    """One of the 25 sub-policies per image (all of them always applied by the OneOf,
    each operation inside with its own probability)."""
    subs = []
    for ops in CIFAR10_POLICY:
        steps = [t for t in (operation(name, p, b, channels) for name, p, b in ops) if t is not None]
        subs.append(A.Sequential(steps or [A.NoOp()], p=1.0))
    return A.OneOf(subs, p=1.0)
