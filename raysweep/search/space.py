"""The searched dimensions of a sweep, as the searcher sees them.

    spec = SearchSpec.from_sweep(sweep)
    spec.dims          # [(path, Domain)], selectors (`loss.name`, ...) first
    spec.grid_cells()  # the Cartesian product of the `grid` domains, each cell once
    spec.replicas      # [{"data.fold": 0}, ...] under fold_as_trial cross-validation

A grid cell that fixes a dimension which does not apply (e.g. `loss.gamma` in a
`ce` cell) drops it, and duplicate cells are kept once: a grid over
`loss.name` x `loss.gamma` runs `ce` once, not once per gamma.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from raysweep.config.domains import Domain
from raysweep.config.load import Sweep
from raysweep.search import conditions


def _selector_first(path: str) -> tuple[int, str]:
    return (0 if path.endswith(".name") else 1, path)


@dataclass(frozen=True)
class SearchSpec:
    dims: list[tuple[str, Domain]]
    fixed_selectors: dict[str, Any]  # `loss.name` etc. where not searched: their one value
    grid_paths: tuple[str, ...] = ()
    replicas: list[dict[str, Any]] = field(default_factory=lambda: [{}])

    @classmethod
    def from_sweep(cls, sweep: Sweep, *, grid_as_categorical: bool = False) -> "SearchSpec":
        cfg = sweep.config
        space = dict(sweep.space)
        replicas: list[dict[str, Any]] = [{}]
        if cfg.search.cv is not None and cfg.search.cv.mode == "fold_as_trial":
            # every configuration is trained once per fold; the fold is not searched
            space.pop("data.fold", None)
            replicas = [{"data.fold": k} for k in range(cfg.data.folds)]
        dims = sorted(space.items(), key=lambda kv: _selector_first(kv[0]))
        selectors = {
            f"{section}.name": getattr(cfg, section).name
            for section in conditions.SECTIONS
            if f"{section}.name" not in space
        }
        grid = () if grid_as_categorical else tuple(p for p, d in dims if d.kind == "grid")
        return cls(dims, selectors, grid, replicas)

    @property
    def names(self) -> list[str]:
        return [p for p, _ in self.dims]

    def applies(self, path: str, params: dict[str, Any]) -> bool:
        return conditions.applies(path, {**self.fixed_selectors, **params})

    def grid_cells(self) -> list[dict[str, Any]]:
        """Each distinct cell of the grid domains' product, in order."""
        if not self.grid_paths:
            return []
        domains = dict(self.dims)
        cells, seen = [], set()
        for values in itertools.product(*(domains[p].values for p in self.grid_paths)):
            raw = dict(zip(self.grid_paths, values))
            cell = {p: v for p, v in raw.items() if self.applies(p, raw)}
            key = json.dumps(cell, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                cells.append(cell)
        return cells

    def domain(self, path: str) -> Optional[Domain]:
        return dict(self.dims).get(path)
