"""Run a sweep: a Ray Tune experiment (Optuna, grid or random search; ASHA
early stopping) whose every trial is a Ray Train run of DDP workers. The file
and its data are checked before any trial starts; results go under --storage."""

from __future__ import annotations

import argparse

from raysweep.commands import add_overrides

HELP = "run a sweep"


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default="raysweep_results", help="results root: a directory or a pyarrow URI such as s3://bucket/path (default: ./raysweep_results)")
    p.add_argument("--address", default=None, help="an existing Ray cluster: auto, host:port or ray://host:10001 (default: a new local instance)")
    p.add_argument("--autoscaling", action="store_true", help="the cluster grows on demand: do not refuse trials the current nodes cannot hold")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help="sweep file (YAML)")
    add_overrides(p)
    p.add_argument("--name", default=None, help="sweep id; one that exists under --storage is refused (default: the file's name, made unique under --storage)")
    p.add_argument("--num-samples", type=int, default=None, help="shorthand for --set search.num_samples=N")
    p.add_argument("--max-concurrent", type=int, default=None, help="shorthand for --set resources.max_concurrent=N")
    p.add_argument("--skip-data-check", action="store_true", help="do not decode every sample before starting (huge datasets)")
    p.add_argument("--register", default=None, metavar="NAME", help="register the best trial's model in the MLflow model registry under NAME")
    add_cluster_arguments(p)


def shorthand_overrides(args: argparse.Namespace) -> list[str]:
    extra = []
    if args.num_samples is not None:
        extra.append(f"search.num_samples={args.num_samples}")
    if args.max_concurrent is not None:
        extra.append(f"resources.max_concurrent={args.max_concurrent}")
    return [*args.overrides, *extra]


def check_name(name) -> None:
    import re

    from raysweep.config.schema import NAME_PATTERN
    from raysweep.errors import ConfigError

    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"must be letters, digits, _ . - (starting with a letter or digit), got {name!r}", source="--name")


def main(args: argparse.Namespace) -> int:
    from raysweep.commands import load_checked

    check_name(args.name)
    from raysweep.errors import UserError
    from raysweep.sweep.layout import check_name_free, check_storage
    from trainables.data.check import check_data

    check_storage(args.storage)  # at once, not after the checks and the data (which may take minutes)
    if args.name is not None:
        check_name_free(args.storage, args.name)
    sweep = load_checked(args.space, shorthand_overrides(args))
    try:
        check_data(sweep.config, decode=not args.skip_data_check)

        from raysweep.commands.report import print_summary
        from raysweep.sweep.experiment import run_sweep

        outcome = run_sweep(sweep, storage=args.storage, name=args.name, address=args.address, autoscaling=args.autoscaling, register=args.register)
    except UserError as e:  # a data sample, or a resource the cluster lacks: name the file that set the key
        raise sweep.blame(e) from None
    return print_summary(outcome.layout)
