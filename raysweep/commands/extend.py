"""Add trials to a sweep that has ended (finished, stopped by Ctrl-C, or killed): the searcher
continues from every earlier trial, `--set` may change the search space for the new trials,
and the earlier trials are kept as they are (`raysweep.sweep.extension` has the design).

    raysweep extend quickstart --num-samples 4 --set optimizer.lr='{loguniform: [1e-3, 1.0]}'
"""

from __future__ import annotations

import argparse

from raysweep.commands import add_overrides
from raysweep.commands.run import add_cluster_arguments

HELP = "add trials to an ended sweep"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep id under --storage, or the sweep's directory / URI")
    p.add_argument("--num-samples", type=int, required=True, help="how many trials to add (configurations; x folds under fold_as_trial)")
    add_overrides(p)
    add_cluster_arguments(p)


def main(args: argparse.Namespace) -> int:
    from raysweep.commands import check_sweep, find_sweep
    from raysweep.commands.report import print_summary
    from raysweep.errors import UserError
    from raysweep.sweep.driver import refuse_if_running
    from raysweep.sweep.extension import extend_sweep, extended_sweep
    from raysweep.sweep.segments import segments
    from trainables.data.check import check_data

    layout = find_sweep(args.sweep, args.storage)  # before Ray starts
    refuse_if_running(layout, segments(layout)[-1], "extend")
    sweep = check_sweep(extended_sweep(layout, args.num_samples, args.overrides))
    try:
        check_data(sweep.config, decode=False)  # the data the sweep ran on was checked whole then
        outcome = extend_sweep(layout, sweep, storage=args.storage, address=args.address, autoscaling=args.autoscaling, overrides=tuple(args.overrides))
    except UserError as e:
        raise sweep.blame(e) from None
    return print_summary(outcome.layout)
