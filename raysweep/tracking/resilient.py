"""MLflow calls that never stop training.

`ResilientLogger` runs MLflow calls in order on a background thread. A call
that fails (server down, SQLite locked) is retried with exponential backoff;
the calls behind it wait, so nothing is reordered or lost, and training goes
on meanwhile. The first failure is warned about once; `close()` waits (up to a
deadline) until everything buffered has been logged. The trial's metrics in
Ray's results do not depend on any of this.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable, Optional

from raysweep.tracking.store import redact_text

log = logging.getLogger("raysweep.tracking")

# Each attempt fails fast; the retrying is ours (MLflow's own would block training for minutes).
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
FLUSH_TIMEOUT_S = float(os.environ.get("RAYSWEEP_MLFLOW_FLUSH_TIMEOUT_S", "600"))
MAX_BACKOFF_S = 30.0


_TRANSIENT_TEXT = ("database is locked", "connection", "timed out", "timeout", "temporarily", "unavailable", "max retries", "502", "503", "504", "reset by peer")


def transient(e: BaseException) -> bool:
    """Whether an MLflow call failed for a reason that may pass: the server or network is
    down or overloaded, or SQLite is locked by another writer."""
    if isinstance(e, (OSError, TimeoutError)):
        return True
    try:
        import requests

        if isinstance(e, requests.exceptions.RequestException):
            return True
    except ImportError:
        pass
    text = f"{type(e).__name__} {e}".lower()
    return any(t in text for t in _TRANSIENT_TEXT)


class ResilientLogger:
    def __init__(self, describe: str, *, max_backoff_s: float = MAX_BACKOFF_S):
        for key, value in CLIENT_ENV.items():
            os.environ.setdefault(key, value)
        self.describe = describe
        self.max_backoff_s = max_backoff_s
        self._queue: "queue.Queue[Optional[tuple[str, Callable[[], object]]]]" = queue.Queue()
        self._warned = False
        self._failed_ops = 0
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="raysweep-mlflow", daemon=True)
        self._thread.start()

    def submit(self, what: str, call: Callable[[], object]) -> None:
        """Run `call` in order with everything submitted before it."""
        self._queue.put((what, call))

    def call_now(self, what: str, call: Callable[[], object], timeout_s: float = 30.0):
        """Run `call` in order and wait for its result (None if it could not run in time)."""
        done = threading.Event()
        box: list = []

        def wrapped():
            box.append(call())
            done.set()

        self.submit(what, wrapped)
        done.wait(timeout_s)
        return box[0] if box else None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            what, call = item
            delay = 1.0
            while True:
                try:
                    call()
                    if self._warned and self._queue.empty():
                        log.warning("MLflow (%s) reachable again; everything buffered is logged", self.describe)
                        self._warned = False
                    break
                except Exception as e:
                    if not transient(e):
                        # a bug or a refusal (bad value, permission): retrying cannot help
                        self._failed_ops += 1
                        log.error("MLflow (%s): %s failed: %s: %s", self.describe, what, type(e).__name__, e, exc_info=True)
                        break
                    if not self._warned:
                        log.warning("MLflow (%s) unreachable (%s: %s); training goes on, logging is buffered and retried", self.describe, type(e).__name__, redact_text(str(e).splitlines()[0])[:200])
                        self._warned = True
                    if self._closing.is_set() and time.monotonic() > self._deadline:
                        self._failed_ops += 1
                        log.warning("MLflow (%s): gave up on %s after the flush deadline", self.describe, what)
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, self.max_backoff_s)

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S, wait_s: Optional[float] = None) -> bool:
        """Wait until everything is logged (or the deadline passes); True if nothing was lost.
        With `wait_s`, return after that long at most and leave what is left to the (daemon)
        thread, which keeps to the deadline while the process lives."""
        self._deadline = time.monotonic() + timeout_s
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout_s + self.max_backoff_s if wait_s is None else wait_s)
        return self._failed_ops == 0 and not self._thread.is_alive()
