"""Check a sweep file without training: schema, search domains, cross-field
rules and registry names; with --data, also open the data and check every
sample, and write a grid of augmented samples to look at."""

from __future__ import annotations

import argparse

from raysweep.commands import add_overrides

HELP = "check a sweep file (and with --data, its data)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help="sweep file (YAML)")
    add_overrides(p)
    p.add_argument("--data", action="store_true", help="also open the data and check every sample")
    p.add_argument("--preview", default=None, metavar="PNG", help="with --data: where to write the augmentation grid (default: <name>_augment.png)")


MAX_CELLS_SHOWN = 64


def plan_lines(sweep) -> str:
    """How many trials the sweep runs, and each grid cell (the parameters it fixes), a line each."""
    from raysweep.search.space import SearchSpec

    search = sweep.config.search
    spec = SearchSpec.from_sweep(sweep, grid_as_categorical=search.algorithm == "random")
    configs = spec.num_configs(search.algorithm, search.num_samples)
    cells = spec.grid_cells()
    folds = f" x {len(spec.replicas)} folds" if len(spec.replicas) > 1 else ""
    if search.algorithm == "grid" and cells:
        head = f"plan: {configs * len(spec.replicas)} trial(s): {len(cells)} grid cell(s) x {search.num_samples or 1}{folds}"
    else:
        head = f"plan: {configs * len(spec.replicas)} trial(s){folds}, {search.algorithm}" + (f", taking the {len(cells)} grid cell(s) in turn" if cells else "")
    lines = [f"  cell {i}: " + "  ".join(f"{k}={v}" for k, v in spec.flat(cell).items()) for i, cell in enumerate(cells[:MAX_CELLS_SHOWN])]
    if len(cells) > MAX_CELLS_SHOWN:
        lines.append(f"  ... and {len(cells) - MAX_CELLS_SHOWN} more cell(s)")
    return "\n".join([head, *lines])


def main(args: argparse.Namespace) -> int:
    from raysweep.config import load_sweep

    sweep = load_sweep(args.space, args.overrides)
    dims = ", ".join(f"{k} ({len(d.values)} {d.kind})" if d.kind == "cases" else f"{k} ({d.kind})" for k, d in sweep.space.items()) or "none"
    print(f"ok: {args.space}: sweep {sweep.name!r}, searched: {dims}")
    print(plan_lines(sweep))
    if args.data:
        from raysweep.errors import UserError
        from trainables.data.check import check_data, write_preview

        try:
            summary = check_data(sweep.config)
        except UserError as e:  # `data.root: no such directory` names the file (or --set) that set data.root
            raise sweep.blame(e) from None
        print(f"ok: data: {summary}")
        path = write_preview(sweep.config, args.preview or f"{sweep.name}_augment.png")
        print(f"augmentation preview: {path}")
    return 0
