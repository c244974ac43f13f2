"""Whether a sweep's driver is running now: `raysweep_driver.json` in the sweep's directory.

`raysweep run`, `resume` and `extend` write it (host, pid, when the process started) while
their Tune experiment runs and remove it when it ends, however it ends short of SIGKILL. A
file left by a killed driver is told apart from a live one by the process it names: on this
host, whether that pid still runs and started when the file says (a pid is reused); on another
host, whether Tune's experiment snapshot changed within `STALE_S` (Tune rewrites it every few
seconds while the sweep runs, every minute at most with remote storage).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Iterator, Optional

from raysweep.errors import UserError
from raysweep.sweep.layout import SweepLayout, filesystem

DRIVER_FILE = "raysweep_driver.json"
STALE_S = 180.0  # three of Tune's remote sync periods (`raysweep.sweep.experiment`)


def _start_ticks(pid: int) -> Optional[str]:
    """When the process started (clock ticks since boot, /proc's field 22), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: Optional[str]) -> bool:
    if os.path.exists("/proc"):
        now = _start_ticks(pid)
        return now is not None and (started is None or now == started)
    try:  # no /proc (macOS): whether the pid exists at all
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _snapshot_age_s(segment: SweepLayout) -> float:
    import pyarrow.fs

    fs, path = filesystem(segment.uri)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    stamps = [i.mtime_ns for i in infos if i.base_name.startswith("experiment_state-") and i.mtime_ns]
    return time.time() - max(stamps) / 1e9 if stamps else float("inf")


def running_driver(layout: SweepLayout, segment: Optional[SweepLayout] = None) -> Optional[str]:
    """Where the sweep's driver runs ("host (pid P)"), or None when no driver runs it.
    `segment`: the Tune experiment whose snapshot tells a driver on another host is alive."""
    try:
        mark = json.loads(layout.read_text(DRIVER_FILE))
    except (FileNotFoundError, OSError, ValueError):
        return None
    where = f"{mark.get('host')} (pid {mark.get('pid')})"
    if mark.get("host") == socket.gethostname():
        return where if _alive(int(mark.get("pid", -1)), mark.get("started")) else None
    return where if _snapshot_age_s(segment or layout) < STALE_S else None


def refuse_if_running(layout: SweepLayout, segment: Optional[SweepLayout], doing: str) -> None:
    """One line, before Ray starts: a sweep whose driver runs is not driven a second time
    (`doing`: "extend", "resume")."""
    where = running_driver(layout, segment)
    if where is not None:
        raise UserError(f"sweep {layout.sweep_id} is running on {where}: {doing} it once it has ended", source=layout.uri)


@contextlib.contextmanager
def driving(layout: SweepLayout) -> Iterator[None]:
    """Marks the sweep as driven by this process for the block."""
    pid = os.getpid()
    layout.write_text(DRIVER_FILE, json.dumps({"host": socket.gethostname(), "pid": pid, "started": _start_ticks(pid), "at": time.time()}))
    try:
        yield
    finally:
        layout.remove(DRIVER_FILE)
