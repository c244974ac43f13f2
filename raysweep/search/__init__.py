"""The search: which configurations a sweep tries, and which trials it stops early.

- `space`       the searched dimensions of a sweep, their order and conditions
- `conditions`  which `loss.*` / `optimizer.*` / `scheduler.*` keys apply to which variant
- `samplers`    Optuna samplers by name
- `searcher`    a Ray Tune `Searcher` on Optuna: grids, random, TPE/CMA-ES, mixed
- `schedulers`  early stopping by name (ASHA, HyperBand, median): Optuna pruners on the searcher's study
"""
