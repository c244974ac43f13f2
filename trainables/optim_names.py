"""raysweep's optimizer names where they differ from timm's, readable without torch: the config
check and the search space resolve a name here; `trainables.optim` builds the optimizer."""

from __future__ import annotations

from raysweep.registry import Registry

# raysweep names that are spelled differently in timm, each registered with timm's name
OPTIMIZER_ALIASES: Registry[str] = Registry("optimizer alias")
OPTIMIZER_ALIASES.register("ranger")("lookahead_radam")

COMMON_KEYS = ("lr", "weight_decay")  # the `optimizer.*` keys every optimizer takes


def resolve_optimizer_name(name: str, nesterov: bool = False) -> str:
    name = OPTIMIZER_ALIASES.get(name) if name in OPTIMIZER_ALIASES else name
    if name == "sgd":
        # timm's "sgd" is Nesterov SGD; the reports' SGD is classical momentum unless asked
        return "nesterov" if nesterov else "momentum"
    return name
