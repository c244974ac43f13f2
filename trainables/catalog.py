"""What the trainables' registries hold, by name, readable without torch, timm or albumentations.

`raysweep validate` (without `--data`) checks a sweep's model, loss, optimizer, schedule and
augmentation names against it in well under a second; importing the registries themselves
(timm, torch, albumentations) takes several. The registries stay the source of truth:
`python -m trainables.catalog` writes `catalog.json` from them, and
`tests/trainables/test_catalog.py` fails when the file and the registries disagree. Model and
optimizer names are timm's, so the file records the timm version it was read from; under another
timm, `current()` reads the registries themselves.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Mapping, Optional

FILE = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class LossCaps:
    """What the config check and the search space need of a loss: the `data.task` values it
    serves, what a task outside them lacks, and the `loss.*` keys it takes."""

    tasks: tuple[str, ...]
    needs: str
    params: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    timm: str  # the timm version the names were read under
    models: frozenset[str]  # architectures, as `timm.list_models()` (raysweep's zoo among them)
    optimizers: Mapping[str, tuple[str, ...]]  # name -> the `optimizer.*` keys it takes
    losses: Mapping[str, LossCaps]
    schedulers: tuple[str, ...]
    augment_presets: tuple[str, ...]

    def model_exists(self, name: str) -> bool:
        """As `timm.is_model`: the architecture, any pretrained tag (`resnet50.a1_in1k`) aside."""
        return name.split(".", 1)[0] in self.models

    def optimizer_keys(self, name: str) -> set[str]:
        from trainables.optim_names import COMMON_KEYS

        return set(self.optimizers.get(name, COMMON_KEYS))

    def to_json(self) -> str:
        return json.dumps({
            "timm": self.timm,
            "models": sorted(self.models),
            "optimizers": {name: list(keys) for name, keys in sorted(self.optimizers.items())},
            "losses": {name: {"tasks": list(c.tasks), "needs": c.needs, "params": list(c.params)} for name, c in sorted(self.losses.items())},
            "schedulers": list(self.schedulers),
            "augment_presets": list(self.augment_presets),
        }, indent=0) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Catalog":
        data = json.loads(text)
        return cls(
            timm=data["timm"],
            models=frozenset(data["models"]),
            optimizers={name: tuple(keys) for name, keys in data["optimizers"].items()},
            losses={name: LossCaps(tuple(c["tasks"]), c["needs"], tuple(c["params"])) for name, c in data["losses"].items()},
            schedulers=tuple(data["schedulers"]),
            augment_presets=tuple(data["augment_presets"]),
        )


def live() -> Catalog:
    """The catalogue read from the registries (imports timm, torch and albumentations)."""
    import timm

    from trainables.augment import PRESETS
    from trainables.losses import LOSSES, loss_params
    from trainables.models import model_names
    from trainables.optim import SCHEDULERS, optimizer_keys, optimizer_names

    return Catalog(
        timm=timm.__version__,
        models=frozenset(model_names()),
        optimizers={name: tuple(sorted(optimizer_keys(name))) for name in optimizer_names()},
        losses={name: LossCaps(LOSSES.get(name).tasks, LOSSES.get(name).needs, tuple(sorted(loss_params(name)))) for name in LOSSES.names()},
        schedulers=tuple(SCHEDULERS.names()),
        augment_presets=tuple(PRESETS.names()),
    )


def shipped() -> Optional[Catalog]:
    """The catalogue in `catalog.json`, where it was written under the installed timm; else None."""
    try:
        catalog = Catalog.from_json(FILE.read_text())
        installed = metadata.version("timm")
    except (OSError, ValueError, KeyError, metadata.PackageNotFoundError):
        return None
    return catalog if catalog.timm == installed else None


@functools.cache
def current() -> Catalog:
    return shipped() or live()


if __name__ == "__main__":
    FILE.write_text(live().to_json())
    print(f"wrote {FILE}")
