"""What raysweep exposes: Ray with token authentication and a loopback dashboard, the MLflow UI on
loopback, sweep names that cannot leave the storage root."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from raysweep.cli import main as cli_main
from tests.conftest import tiny_config
from tests.fixtures.ray_nodes import free_port

CHECK_RAY = """
import ray
from ray._private.worker import global_worker
from ray._raylet import AuthenticationMode, get_authentication_mode

from raysweep.connect import connect

connect()
print("AUTH", get_authentication_mode() == AuthenticationMode.TOKEN)
print("DASHBOARD", global_worker.node.address_info.get("webui_url"))
ray.shutdown()
"""


@pytest.mark.ray
def test_a_local_cluster_keeps_token_authentication_and_a_loopback_dashboard(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHECK_RAY], capture_output=True, text=True, cwd=tmp_path, timeout=180).stdout
    assert "AUTH True" in out
    dashboard = next(line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("DASHBOARD"))
    assert dashboard.startswith("127.0.0.1:")


def _bound_addresses(port: int) -> set[str]:
    """Local addresses listening on `port` (from /proc/net/tcp)."""
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    return found


@pytest.mark.slow
def test_the_mlflow_ui_listens_on_loopback_only(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "raysweep", "ui", "--port", str(port)], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not _bound_addresses(port):
            time.sleep(0.5)
        assert _bound_addresses(port) == {"127.0.0.1"}, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_a_sweep_name_cannot_leave_the_storage_root(sweep_file, tmp_path, capsys):
    path = sweep_file(tiny_config())
    assert cli_main(["run", str(path), "--name", "../escape", "--storage", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "error: --name: must be letters, digits, _ . - (starting with a letter or digit), got '../escape'"
    assert not (tmp_path / "escape").exists() and not (tmp_path / "r").exists()
