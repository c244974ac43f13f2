"""The `loss`, `optimizer`, `scheduler` and `train` sections.

Loss, optimizer and scheduler sections hold the parameters of every
registered variant side by side; each variant takes the ones it declares
(see `trainables.losses`), so a search may switch `loss.name` and the
dimensions that belong to other losses are simply not sampled.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from raysweep.config.base import Section

Amp = Literal["off", "fp16", "bf16"]


class LossConfig(Section):
    name: str = Field("ce", description="ce, bce, focal, sigmoid_focal, flsd53, ldam, recall, mc")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weight: Optional[Literal["balanced", "effective_number"]] = Field(None, description="class weights for ce")
    beta: float = Field(0.9999, gt=0, lt=1, description="effective-number beta for class_weight: effective_number")
    pos_weight: Optional[Union[float, list[float]]] = Field(None, description="bce positive-class weight(s)")
    gamma: float = Field(2.0, ge=0, description="focusing parameter (focal, sigmoid_focal)")
    alpha: Optional[Union[float, list[float]]] = Field(None, description="focal class weight(s)")
    max_m: Optional[float] = Field(None, gt=0, description="LDAM: largest margin (Cao et al.)")
    C: Optional[float] = Field(None, description="LDAM: margin constant, delta_j = C / n_j^(1/4) (COMP4211 form)")
    s: Optional[float] = Field(None, gt=0, description="LDAM: logit scale (30 with max_m, 1 with C)")
    drw_start_epoch: Optional[int] = Field(None, ge=0, description="LDAM: epoch from which deferred re-weighting is on")
    drw_beta: float = Field(0.9999, gt=0, lt=1, description="LDAM-DRW effective-number beta")
    mu: float = Field(0.005, ge=0, description="mutual-channel loss weight")
    lambda_: float = Field(10.0, ge=0, alias="lambda", description="mutual-channel diversity weight")
    channels_per_class: Optional[int] = Field(None, ge=1, description="mutual-channel feature channels per class")


class OptimizerConfig(Section):
    name: str = Field("sgd", description="any timm.optim name (sgd, adam, adamw, radam, ...) or ranger")
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd / rmsprop momentum")
    nesterov: bool = Field(False, description="nesterov momentum for sgd")
    betas: Optional[list[float]] = Field(None, description="adam-family betas")
    eps: Optional[float] = Field(None, gt=0)

    @field_validator("betas")
    @classmethod
    def _betas(cls, v):
        if v is not None and (len(v) != 2 or not all(0 <= b < 1 for b in v)):
            raise ValueError(f"must be two numbers in [0, 1), got {v}")
        return v


# the schedules `sequential` may chain (as torch schedulers under torch's SequentialLR)
SEQUENTIAL_STAGES = ("none", "step", "multistep", "cosine", "exponential")


class SchedulerConfig(Section):
    name: str = Field("none", description="none, step, multistep, cosine, exponential, plateau, sequential")
    decay_epochs: float = Field(10, gt=0, description="step: epochs between decays; exponential: the decay period")
    decay_rate: float = Field(0.1, gt=0, le=1, description="factor applied per decay (step, multistep, exponential, plateau)")
    milestones: list[int] = Field(default_factory=lambda: [30, 60, 90], description="multistep epochs")
    t_max: Optional[int] = Field(None, ge=1, description="cosine period in epochs (default: train.epochs)")
    min_lr: float = Field(0.0, ge=0, description="cosine eta_min / floor of the schedule")
    warmup_epochs: int = Field(0, ge=0)
    warmup_lr: float = Field(1e-5, ge=0)
    patience: int = Field(5, ge=0, description="plateau: epochs without improvement before a decay")
    stages: list[str] = Field(
        default_factory=list,
        description=f"sequential: the schedules run one after another ({', '.join(SEQUENTIAL_STAGES)}), each with this section's keys, as torch's SequentialLR",
    )
    stage_starts: list[int] = Field(
        default_factory=list,
        description="sequential: the epoch each stage after the first starts at (SequentialLR's milestones); a stage counts its own epochs from its start, from the base lr",
    )


class TrainConfig(Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1, description="per worker; effective batch = batch_size x accumulate x workers")
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step")
    amp: Amp = Field("off", description="mixed precision on GPU: off, fp16 (with a grad scaler) or bf16; true means fp16")
    channels_last: bool = Field(False, description="channels-last memory format (GPU)")
    seed: int = Field(0)
    reseed_every_epoch: bool = Field(True, description="reseed all RNGs from (seed, epoch, rank) at each epoch start")
    deterministic: bool = Field(False, description="cudnn deterministic kernels")
    grad_clip: Optional[float] = Field(None, gt=0, description="clip the gradient norm")
    threshold: float = Field(0.5, gt=0, lt=1, description="multi-label decision threshold")
    tune_threshold: bool = Field(False, description="multi-label: tune a threshold per class on validation")
    max_steps_per_epoch: Optional[int] = Field(None, ge=1, description="cap training steps per epoch (smoke runs)")
    max_val_batches: Optional[int] = Field(None, ge=1, description="cap validation batches (smoke runs)")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp(cls, v):
        return {False: "off", True: "fp16"}.get(v, v) if isinstance(v, bool) else v
