"""One module per CLI subcommand: `HELP`, `add_arguments(parser)`, `main(args)`."""

from __future__ import annotations

import argparse


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a leaf of the sweep file, e.g. --set optimizer.lr=0.01 (repeatable; VALUE is YAML)",
    )
