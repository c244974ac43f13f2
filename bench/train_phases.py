"""Where each Ray Train run's start-up goes, read from Train's own controller logs.

Ray Train V2's controller logs (JSON lines, at DEBUG, in `<session>/logs/train/
ray-train-sys-controller-*.log`) time each step of starting a worker group; this reads them
back per run, so a benchmark can say which piece of Train holds a trial's seconds. The
messages are Train's own wording (Ray 2.60's `worker_group.py`); a step Ray stops logging
is simply left out of the table.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

# the start of Train's message -> the step it times
STEPS = {
    "Placement group ready in": "placement group ready",
    "worker actors created in": "worker processes started (a new Python process each)",
    "before_init_train_context callbacks completed in": "callbacks before the train context",
    "Train context initialized on workers in": "train context set up on the workers",
    "after_worker_group_start callbacks completed in": "backend (torch.distributed, gloo/NCCL) and other callbacks",
    "Train function launched on workers in": "train function launched",
    "Worker group startup completed in": "worker group start, in all",
}
SECONDS = re.compile(r"in ([0-9.]+)s")
WORKERS = re.compile(r"Requesting resources: .* \* (\d+)")


def _stamp(record: dict) -> float:
    return datetime.strptime(record["asctime"], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_phases(log: Path) -> dict:
    """One controller's run: `workers`, seconds per step, and the worker group's shutdown (from
    asking the workers to stop until they had)."""
    out: dict = {}
    stopping = None
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = record.get("message", "")
        if m := WORKERS.search(message):
            out["workers"] = int(m.group(1))
        elif message.startswith("Shutting down"):
            stopping = _stamp(record)
        elif message.startswith("Worker group shutdown successful") and stopping is not None:
            out["worker group shutdown"] = _stamp(record) - stopping
        for start, step in STEPS.items():
            if start in message and (m := SECONDS.search(message)):
                out[step] = float(m.group(1))
    return out


def session_runs(session_dir: Path) -> list[dict]:
    """Every Train run of a Ray session that started a worker group, oldest first."""
    logs = sorted((session_dir / "logs" / "train").glob("ray-train-sys-controller-*.log"), key=lambda p: p.stat().st_mtime)
    return [r for r in map(run_phases, logs) if "worker group start, in all" in r]
