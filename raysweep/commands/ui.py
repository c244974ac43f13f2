"""Start the MLflow UI for the configured tracking store and print its address
(loopback unless --host says otherwise). With a remote tracking server, print
its address instead: its UI is already there."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HELP = "open the MLflow UI of the tracking store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", nargs="?", default=None, help="a sweep file whose tracking section names the store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=5000)


def ui_command(uri: str, artifacts: str, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--default-artifact-root", artifacts, "--host", host, "--port", str(port)]


def main(args: argparse.Namespace) -> int:
    from raysweep.config.schema import SweepConfig
    from raysweep.tracking.store import DEFAULT_ARTIFACTS, redact_uri, tracking_uri

    if args.space:
        from raysweep.config import load_sweep

        cfg = load_sweep(args.space, run_checks=False).config
    else:
        cfg = SweepConfig(name="ui")
    uri = tracking_uri(cfg)
    if uri.startswith(("http://", "https://")):
        print(f"MLflow UI: {redact_uri(uri)} (the tracking server serves it)")
        return 0
    artifacts = cfg.tracking.artifact_location or os.path.abspath(DEFAULT_ARTIFACTS)
    print(f"MLflow UI: http://{args.host}:{args.port}  (store {uri}); Ctrl-C stops it", flush=True)
    return subprocess.call(ui_command(uri, artifacts, args.host, args.port))
