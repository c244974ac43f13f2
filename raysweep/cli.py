"""The `raysweep` command line.

    raysweep run SPACE.yaml          search: a Ray Tune sweep of Ray Train trials
    raysweep resume NAME_OR_PATH     continue a stopped sweep
    raysweep extend NAME_OR_PATH     add trials to an ended sweep
    raysweep train SPACE.yaml        one trial, each domain at its default
    raysweep validate SPACE.yaml     check a sweep file (and, with --data, its data)
    raysweep report NAME_OR_PATH     the trials of a sweep, best first
    raysweep ui                      the MLflow UI of the configured store

A user mistake prints one line, `error: <file>: <key path>: <what is allowed>`,
and exits 2. Each subcommand lives in `raysweep.commands.<name>` and imports
Ray and torch only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from raysweep import __version__
from raysweep.errors import SweepInterrupted, UserError

COMMANDS = ("run", "resume", "extend", "train", "validate", "report", "ui")
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by SIGINT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raysweep", description="Ray-distributed hyperparameter search for image classifiers.")
    parser.add_argument("--version", action="version", version=f"raysweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"raysweep.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(handler=module.main)
    return parser


def find_user_error(exc: BaseException) -> Optional[UserError]:
    """A UserError that may have crossed a Ray boundary (wrapped as a cause)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "cause", None)
    return None


def quiet_store_setup() -> None:
    """MLflow announces at INFO that it creates and migrates a SQLite store's tables: noise on a
    command line whose stderr is for the user's errors."""
    import logging

    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_store_setup()
    try:
        return int(args.handler(args) or 0)
    except SweepInterrupted as e:
        print(e.hint, file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        err = find_user_error(exc)
        if err is None:
            raise
        print(f"error: {err.line()}", file=sys.stderr)
        return EXIT_USER_ERROR
