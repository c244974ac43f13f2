"""The searched dimensions of a sweep, as the searcher sees them.

    spec = SearchSpec.from_sweep(sweep)
    spec.dims          # [(path, Domain)], `search.cases` and selectors (`loss.name`, ...) first
    spec.grid_cells()  # the Cartesian product of the `grid` domains (and the cases), each cell once
    spec.flat(params)  # params as config keys: a case spread over the keys it sets
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

from raysweep.config.domains import CASES, Domain, assignments, searched_keys
from raysweep.config.load import Sweep
from raysweep.search import conditions


DEFAULT_NUM_SAMPLES = 10  # trials of an optuna or random search that does not say


def _selector_first(path_domain: tuple[str, Domain]) -> tuple[int, str]:
    path, dom = path_domain
    return (0 if dom.kind == CASES else 1 if path.endswith(".name") else 2, path)


def grid_like(dom: Domain) -> bool:
    """An axis of the grid: a `grid` domain, or the cases."""
    return dom.kind in ("grid", CASES)


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
        dims = sorted(space.items(), key=_selector_first)
        searched = set(searched_keys(space))
        selectors = {
            f"{section}.name": getattr(cfg, section).name
            for section in conditions.SECTIONS
            if f"{section}.name" not in searched
        }
        grid = () if grid_as_categorical else tuple(p for p, d in dims if grid_like(d))
        return cls(dims, selectors, grid, replicas)

    @property
    def names(self) -> list[str]:
        """The config keys searched (a case's keys in place of `search.cases`)."""
        return searched_keys(dict(self.dims))

    def flat(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` by config key: a drawn case spread over the keys it sets."""
        domains = dict(self.dims)
        out: dict[str, Any] = {}
        for path, value in params.items():
            out.update(assignments(path, domains[path], value) if path in domains else {path: value})
        return out

    def applies(self, path: str, params: dict[str, Any]) -> bool:
        return conditions.applies(path, {**self.fixed_selectors, **self.flat(params)})

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

    def num_configs(self, algorithm: str, num_samples: Optional[int]) -> int:
        """Configurations the searcher hands out (each trained once per replica): every grid
        cell `num_samples` times (default once) for `grid`, else `num_samples` (default 10)."""
        if algorithm == "grid":
            return max(1, len(self.grid_cells())) * (num_samples or 1)
        return num_samples or DEFAULT_NUM_SAMPLES

    def domain(self, path: str) -> Optional[Domain]:
        return dict(self.dims).get(path)
