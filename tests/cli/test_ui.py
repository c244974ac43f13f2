"""`raysweep ui` stops with its whole MLflow server: a Ctrl-C at the terminal (SIGINT to its
process group) exits 130 and SIGTERM from a supervisor (to raysweep alone) exits 143, each with
one line and no traceback, leaving no process of the server and the port free.

The command runs as a real process in a session of its own, on a free loopback port, with a
fresh ./mlflow.db (the server takes ~15 s to start on a busy 2-core machine).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.fixtures.ray_nodes import CLUSTER_MARKER, _signal_all, _wait_gone, cluster_processes, describe, free_port, ticks_since_boot

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120.0


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a restarted server binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(
    "sig, to_group, code, line",
    [
        pytest.param(signal.SIGINT, True, 130, "MLflow UI stopped (Ctrl-C)", id="ctrl-c"),
        pytest.param(signal.SIGTERM, False, 143, "MLflow UI stopped (SIGTERM)", id="sigterm"),
    ],
)
def test_ui_stops_its_whole_server_in_one_line(tmp_path, sig, to_group, code, line):
    port, marker, since = free_port(), f"ui-{uuid.uuid4().hex[:12]}", ticks_since_boot()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({CLUSTER_MARKER: marker, "MLFLOW_DISABLE_TELEMETRY": "true"})
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "raysweep", "ui", "--port", str(port)], cwd=tmp_path, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _serving(port):
            assert proc.poll() is None, f"raysweep ui exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no answer on port {port} within {START_TIMEOUT_S:.0f} s:\n{log.read_text()}"
            time.sleep(0.3)
        server = cluster_processes(marker, {proc.pid}, since)
        assert len(server) > 2, describe(server)  # mlflow, uvicorn and its workers: all must go

        if to_group:
            os.killpg(proc.pid, sig)  # what the terminal does on Ctrl-C: the foreground group
        else:
            proc.send_signal(sig)  # what a supervisor does: raysweep alone
        returncode = proc.wait(60)
        left = cluster_processes(marker, {proc.pid}, since)
    finally:
        leftovers = cluster_processes(marker, {proc.pid}, since)  # never another test's or user's
        _signal_all(leftovers, signal.SIGTERM)
        _signal_all(_wait_gone(leftovers, 10), signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    output = log.read_text()
    assert "Traceback" not in output, output
    assert (returncode, output.splitlines()[-1]) == (code, line), output
    assert left == [], describe(left)
    assert _port_free(port)
