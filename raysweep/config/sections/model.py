"""The `model` and `augment` sections."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator

from raysweep.config.base import Section, fixed


def image_size(v):
    """An image size as a config gives it: one side, or [height, width], each at least 1."""
    if isinstance(v, list) and (len(v) != 2 or any(d < 1 for d in v)):
        raise ValueError(f"must be a size or [height, width], got {v}")
    if isinstance(v, int) and v < 1:
        raise ValueError(f"must be > 0, got {v}")
    return v


class ModelConfig(Section):
    name: str = Field("tiny_cnn", description="any timm model name, or one registered by raysweep (tiny_cnn, resse_ijcnn)")
    pretrained: Union[bool, str] = Field(False, description="timm's hub weights (true) or a local weights file: a state dict of timm.create_model(name)")
    in_chans: Optional[int] = Field(None, ge=1, description="input channels; defaults to the data's")
    drop_rate: float = Field(0.0, ge=0, lt=1, description="dropout before the classifier")
    drop_path_rate: float = Field(0.0, ge=0, lt=1, description="stochastic depth rate of the deepest block, growing linearly with depth (timm); 0 keeps the model's default (resse_ijcnn: the report's survival probabilities)")
    input_size: Optional[Union[int, list[int]]] = Field(None, description="resize inputs to this size inside the model (e.g. upsample 32 px CIFAR to 224)")
    resize_mode: Literal["bilinear", "bicubic", "nearest"] = Field("bilinear", description="interpolation of input_size (nn.Upsample's default, as in the CIFAR report, is nearest)")
    head: Literal["linear", "mish_mlp", "normed_linear"] = Field("linear", description="classifier head on the pooled features")
    head_hidden: int = Field(256, ge=1, description="hidden width of the mish_mlp head")
    head_dropout: float = Field(0.5, ge=0, lt=1, description="dropout of the mish_mlp head")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for timm.create_model")

    @field_validator("input_size")
    @classmethod
    def _size(cls, v):
        return image_size(v)




class ResizeConfig(Section):
    """How images reach one size before batching, for training and validation alike
    (`trainables.augment.resize_steps`)."""

    mode: Literal["auto", "none", "resize", "center_crop", "letterbox", "random_resized_crop"] = fixed("auto", description=(
        "auto: image files (whose sizes may differ) are resized to `size`, in-memory arrays (one size) are left alone; "
        "none: no resize; resize: stretch to `size`; center_crop: shorter side to `shorter_side`, then the center `size`; "
        "letterbox: longer side to `size`, then pad with black; random_resized_crop: training takes a random crop of "
        "`scale` of the area resized to `size`, validation center_crop"))
    size: Optional[Union[int, list[int]]] = fixed(None, description="the size the model sees, [height, width] or one side; default model.input_size, else the timm model's default input size, else the first image's size")
    shorter_side: Optional[int] = fixed(None, ge=1, description="center_crop (and random_resized_crop's validation): the shorter side before the crop, e.g. 256 for a 224 crop; default the crop's longer side")
    scale: list[float] = fixed([0.08, 1.0], description="random_resized_crop: the range of the crop's share of the image area")

    @field_validator("size")
    @classmethod
    def _size(cls, v):
        return image_size(v)

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1] <= 1:
            raise ValueError(f"must be [low, high] with 0 < low <= high <= 1, got {v}")
        return v


class AugmentConfig(Section):
    preset: str = Field("none", description="augmentation preset: none, light, ece449, cifar_hw2")
    resize: ResizeConfig = Field(default_factory=ResizeConfig, description="how images reach one size, before the preset's transforms")
    pipeline: Optional[dict[str, Any]] = fixed(None, description="an albumentations pipeline in A.to_dict form; replaces the preset's train pipeline")
    normalize: Union[Literal["imagenet", "none"], dict[str, list[float]]] = fixed("imagenet", description="imagenet, none, or {mean: [...], std: [...]}")

    @field_validator("normalize")
    @classmethod
    def _norm(cls, v):
        if isinstance(v, dict):
            if set(v) != {"mean", "std"}:
                raise ValueError(f"must be imagenet, none or {{mean: [...], std: [...]}}, got keys {sorted(v)}")
            if len(v["mean"]) != len(v["std"]) or any(s <= 0 for s in v["std"]):
                raise ValueError("mean and std must have one entry per channel, std > 0")
        return v
