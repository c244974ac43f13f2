"""Resume a stopped sweep (Ctrl-C, a killed driver, a lost machine): finished
trials are kept, interrupted ones continue from their last epoch checkpoint,
and the search continues the same Optuna study until the asked number of
trials have run."""

from __future__ import annotations

import argparse

from raysweep.commands.run import add_cluster_arguments

HELP = "resume a stopped sweep"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep id under --storage, or the sweep's directory / URI")
    p.add_argument("--retry-errored", action="store_true", help="also run again the trials that failed")
    add_cluster_arguments(p)


def main(args: argparse.Namespace) -> int:
    from raysweep.commands import find_sweep
    from raysweep.commands.report import print_summary
    from raysweep.sweep.driver import refuse_if_running
    from raysweep.sweep.experiment import resume_sweep
    from raysweep.sweep.segments import segments

    layout = find_sweep(args.sweep, args.storage)  # before Ray starts
    refuse_if_running(layout, segments(layout)[-1], "resume")  # two drivers would train its trials twice
    outcome = resume_sweep(layout.uri, storage=args.storage, address=args.address, retry_errored=args.retry_errored, autoscaling=args.autoscaling)
    return print_summary(outcome.layout)
