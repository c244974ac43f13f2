"""Start the MLflow UI for the configured tracking store and print its address
(loopback unless --host says otherwise). With a remote tracking server, print
its address instead: its UI is already there.

Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stops the server and every process
it started, prints one line and exits 128 + the signal: 130, 143, 129."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Optional

HELP = "open the MLflow UI of the tracking store"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 10.0  # for the server to finish its requests before its processes are killed


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

        cfg = load_sweep(args.space).config
    else:
        cfg = SweepConfig(name="ui")
    uri = tracking_uri(cfg)
    if uri.startswith(("http://", "https://")):
        print(f"MLflow UI: {redact_uri(uri)} (the tracking server serves it)")
        return 0
    artifacts = cfg.tracking.artifact_location or os.path.abspath(DEFAULT_ARTIFACTS)
    page = experiment_url(f"http://{args.host}:{args.port}", _experiment_of(uri, cfg.tracking.experiment or cfg.name) if args.space else None)
    print(f"MLflow UI: {page}  (store {uri}); Ctrl-C stops it", flush=True)
    return serve(ui_command(uri, artifacts, args.host, args.port))


def experiment_url(base: str, experiment_id: Optional[str] = None) -> str:
    """The UI's page of an experiment's runs (or of the experiments). MLflow 3.17's UI opens every
    experiment on its GenAI overview unless the page's `workflowType` says machine learning: it
    takes that from the URL, else from the browser's last choice, and no longer reads the
    experiment's `mlflow.experimentKind` tag (which raysweep still sets, for other versions)."""
    page = f"experiments/{experiment_id}" if experiment_id else "experiments"
    return f"{base.rstrip('/')}/#/{page}?workflowType=machine_learning"


def _experiment_of(uri: str, name: str) -> Optional[str]:
    """The id of the sweep's experiment in the store, if it has one yet."""
    try:
        from mlflow import MlflowClient

        found = MlflowClient(uri).get_experiment_by_name(name)
        return found.experiment_id if found is not None else None
    except Exception:  # the UI still opens, on the list of experiments
        return None


def serve(command: list[str]) -> int:
    """Run the server until it exits or a stop signal comes. The server runs in a process group
    of its own, so a Ctrl-C at the terminal reaches raysweep alone (in the server's group it
    made every MLflow and uvicorn process print a KeyboardInterrupt traceback); raysweep then
    stops the whole group with SIGTERM, the signal uvicorn shuts down on gracefully."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    try:
        server = subprocess.Popen(command, process_group=0)
        while not received:
            try:
                return server.wait(timeout=0.2)  # the server ended by itself (a port in use)
            except subprocess.TimeoutExpired:
                pass
        stop_group(server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    name = signal.Signals(received[0]).name
    print(f"MLflow UI stopped ({'Ctrl-C' if name == 'SIGINT' else name})", flush=True)
    return 128 + received[0]


def stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL to what is left of it after `GRACE_S`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + GRACE_S
        while _group_alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
    server.wait()


def _group_alive(server: subprocess.Popen) -> bool:
    server.poll()  # reaps the leader once it exits; the group lives on while a worker does
    try:
        os.killpg(server.pid, 0)
    except ProcessLookupError:
        return False
    return True
