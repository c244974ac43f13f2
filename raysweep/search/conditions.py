"""Conditional dimensions: a key that belongs to one variant is searched only
where that variant is chosen.

`loss.gamma` means something to `focal` and nothing to `ce`; a sweep over
`loss.name` with `loss.gamma: {uniform: [0.5, 3]}` samples gamma only for the
losses that take it. Each conditional section has a selector (`name`) and a
function telling which of its keys apply to a chosen name; the losses' keys
come from the loss factories' own signatures, the optimizers' from timm's record of each,
both read through the registries' catalogue (`trainables.catalog`: no torch in the driver).
"""

from __future__ import annotations

from typing import Callable

from raysweep.registry import Registry

Applies = Callable[[str], set[str]]  # variant name -> keys of the section that apply
SECTIONS: Registry[Applies] = Registry("conditional section")


@SECTIONS.register("loss")
def _loss(name: str) -> set[str]:
    from trainables.catalog import current

    caps = current().losses.get(name)
    return set(caps.params) if caps else set()


@SECTIONS.register("optimizer")
def _optimizer(name: str) -> set[str]:
    from trainables.catalog import current

    return current().optimizer_keys(name)


_WARMUP = {"warmup_epochs", "warmup_lr"}
# the scheduler section's keys each schedule reads (trainables.optim.SCHEDULERS)
_SCHEDULE_KEYS = {
    "none": set(),
    "step": {"decay_epochs", "decay_rate"} | _WARMUP,
    "multistep": {"milestones", "decay_rate"} | _WARMUP,
    "cosine": {"t_max", "min_lr"} | _WARMUP,
    "exponential": {"decay_epochs", "decay_rate"} | _WARMUP,
    "plateau": {"decay_rate", "patience", "min_lr"} | _WARMUP,
    "sequential": {"stages", "stage_starts", "decay_epochs", "decay_rate", "milestones", "t_max", "min_lr"},
}


@SECTIONS.register("scheduler")
def _scheduler(name: str) -> set[str]:
    return _SCHEDULE_KEYS.get(name, set())


def applies(path: str, chosen: dict[str, object]) -> bool:
    """Whether the dimension at `path` means anything given the selector values in `chosen`
    (`{"loss.name": "focal", ...}`, the searched or fixed variant of each section)."""
    section, _, key = path.partition(".")
    if section not in SECTIONS or key == "name" or "." in key:
        return True
    name = chosen.get(f"{section}.name")
    if name is None:
        return True
    return key in SECTIONS.get(section)(str(name))
