"""One module per CLI subcommand: `HELP`, `add_arguments(parser)`, `main(args)`."""

from __future__ import annotations

import argparse


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a leaf of the sweep file, e.g. --set optimizer.lr=0.01 (repeatable; VALUE is YAML)",
    )


def load_checked(space: str, overrides=()):
    """The sweep file `space` loaded, validated and checked across fields against every
    registry (the trainables', the search's) and each search domain's values."""
    from raysweep.config.load import load_sweep

    return check_sweep(load_sweep(space, overrides))


def check_sweep(sweep):
    """`sweep` checked across fields against every registry; returned as it is."""
    import raysweep.search.checks  # noqa: F401  (registers the search section's checks)
    import trainables.checks  # noqa: F401  (registers the checks against the trainables' registries)
    from raysweep.config.checks import run_checks

    run_checks(sweep)
    return sweep


def find_sweep(name_or_path: str, storage: str):
    """The sweep `report` and `resume` name: by its directory, by its id under `storage`, or,
    when no `--storage` was given, wherever the MLflow store recorded a sweep of that id."""
    from raysweep.errors import ConfigError
    from raysweep.storage import storage_uri
    from raysweep.sweep.layout import DEFAULT_STORAGE, SweepLayout

    try:
        return SweepLayout.find(name_or_path, storage)
    except ConfigError:
        if storage != DEFAULT_STORAGE:
            raise
        from raysweep.tracking.lookup import recorded_dirs

        found = [layout for layout in map(SweepLayout.find_dir, recorded_dirs(name_or_path)) if layout is not None]
        if len(found) == 1:
            return found[0]
        if found:
            where = ", ".join(layout.uri for layout in found)
            message = f"no sweep {name_or_path!r} under {storage_uri(storage)}; MLflow recorded sweeps of that id in {where}: pass one of these directories"
            raise ConfigError(message, source=name_or_path) from None
        raise
