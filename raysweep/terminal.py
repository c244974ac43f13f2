"""The user's terminal while a sweep runs, and the log file that takes everything else.

Inside `quiet(log_dir)` the driver's file descriptors 1 and 2 (and Python's `sys.stdout` and
`sys.stderr`) point at `<log_dir>/driver.log`: what Ray, Tune, Train, torch or MLflow print
lands there, from every node, not on the screen: the workers' and actors' output that Ray
forwards to the driver (`(TrainController pid=…)`, `(raylet)`, an `ActorDiedError` when ASHA
stops a trial), Tune's own messages, the C++ core's log lines, warnings. raysweep's own lines
reach the terminal through the `Console` it yields: the progress view
(`raysweep.sweep.callbacks.ProgressTable`), a failed trial, and the driver's `raysweep.*`
warnings, one line each.

    with quiet(layout.log_dir, stop_ray=connected_here()) as console:   # sweep/experiment.py
        results = tuner.fit()

Redirecting the descriptors, rather than configuring each library's loggers, catches output
that no Python logger sees (Ray's forwarding thread prints, the C++ core writes to fd 2).
Ray keeps forwarding worker output until it shuts down, so a process that started Ray stops
it before the descriptors go back (`stop_ray`); otherwise late lines would reach the screen.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, TextIO

from raysweep.tables import WIDTH, clip

LOG_FILE = "driver.log"
DEFAULT_ROWS = 24
_UP_AND_CLEAR = "\x1b[{n}A\r\x1b[J"  # cursor up n lines, to column 1, erase to the end of the screen


def _size(stream: TextIO, env: str, attr: str, default: int) -> int:
    """The terminal's columns or lines: $COLUMNS / $LINES first (as `shutil` does), then the
    terminal itself; `default` where neither says (a pipe, a pty never sized)."""
    try:
        n = int(os.environ.get(env, "0"))
    except ValueError:
        n = 0
    if n <= 0:
        try:
            n = getattr(os.get_terminal_size(stream.fileno()), attr)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            n = 0
    return n if n > 0 else default


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Terminal:
    """raysweep's lines to the user. On a TTY one block (the live table) is redrawn in place
    and lines that stay are written above it; elsewhere everything is plain lines. The block's
    lines are cut to the width (the terminal's, at most 100 columns): a line that wrapped would
    throw off the count of lines to redraw."""

    def __init__(self, stream: TextIO, *, tty: Optional[bool] = None, width: Optional[int] = None, height: Optional[int] = None):
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.width = min(WIDTH, width or _size(stream, "COLUMNS", "columns", WIDTH))
        self.height = height or _size(stream, "LINES", "lines", DEFAULT_ROWS)
        self._live: list[str] = []
        self._lock = threading.RLock()  # a warning may come from another thread mid-redraw

    def say(self, line: str) -> None:
        """A line that stays (a trial that ended or failed, a warning), whole: an error's message
        is no use cut short, and on a terminal a long line just wraps above the live block."""
        with self._lock:
            live = self._live
            self._erase()
            self._write([line])
            if live:
                self.show(live)

    def show(self, lines: list[str]) -> None:
        """The live block, in place of the one shown before (TTY only; elsewhere use `say`).
        It is kept shorter than the screen: cursor-up cannot reach above the screen's top."""
        with self._lock:
            self._erase()
            self._live = [clip(line, self.width) for line in lines[: max(1, self.height - 1)]]
            self._write(self._live)

    def release(self) -> None:
        """Leave the live block on screen as it is: what follows is written under it."""
        self._live = []

    def _erase(self) -> None:
        if self._live:
            self.stream.write(_UP_AND_CLEAR.format(n=len(self._live)))
        self._live = []

    def _write(self, lines: list[str]) -> None:
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()


@dataclass
class Console:
    """The terminal, where the sweep's logs go (None outside `quiet`), and what the live view
    should say of the sweep where its own settings may be stale (`view`: on resume, Tune brings
    back the view pickled when the sweep started, perhaps by an earlier raysweep)."""

    terminal: Terminal
    log_dir: Optional[str] = None
    view: dict = field(default_factory=dict)

    def keep_error(self, trial_id: str, text: str) -> Optional[str]:
        """A copy of a failed trial's trace under a short name in the logs (Tune's own copy sits
        in a trial directory named after every parameter); None outside `quiet`."""
        if self.log_dir is None:
            return None
        path = Path(self.log_dir, f"trial-{trial_id}.error.txt")
        try:
            path.write_text(text)
        except OSError:
            return None
        return str(path)


_active: Optional[Console] = None


def current() -> Console:
    """The console of the sweep running in this process, or one on stdout."""
    return _active or Console(Terminal(sys.stdout))


def shown_path(path: str) -> str:
    """A local path as the user would type it: relative to the working directory when inside it."""
    if "://" in path:
        return path
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def shown_uri(uri: str) -> str:
    """A store's URI as the user would type it: a SQLite file relative to the working directory
    when inside it (`sqlite:///mlflow.db`); any other URI as it is (redact credentials first)."""
    prefix = "sqlite:///"
    return prefix + shown_path(uri[len(prefix):]) if uri.startswith(prefix) else uri


class _WarningLine(logging.Handler):
    """raysweep's own warnings in the driver, as one line on the terminal, each different one
    once (a full disk makes the state backup warn every second); every record, traceback
    included, goes to the log through stderr."""

    def __init__(self, console: Console):
        super().__init__(logging.WARNING)
        self.console = console
        self.shown: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            line = f"{record.levelname.lower()}: {message.splitlines()[0] if message else record.name}"
            if line not in self.shown:
                self.shown.add(line)
                self.console.terminal.say(line)
        except Exception:  # a broken terminal must not end the sweep
            self.handleError(record)


class _LogSink(io.TextIOBase):
    """`sys.stdout` and `sys.stderr` inside `quiet`: unbuffered writes to the log, and a write
    that fails (a full results disk) is dropped, not raised into whoever printed: Tune's
    reporter prints from inside the experiment loop, and an error there ended the sweep."""

    encoding = "utf-8"

    def __init__(self, fd: int):
        self._fd = fd

    def write(self, text: str) -> int:
        data = text.encode(self.encoding, "replace")
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError:
            pass
        return len(text)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _terminal_stream() -> tuple[TextIO, bool]:
    """(a stream to the user's stdout that survives fd 1 being redirected, whether it is ours to close)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return sys.stdout, False  # a test's or a caller's capture: write to it as it is
    if fd != 1:
        return sys.stdout, False
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return os.fdopen(os.dup(1), "w", buffering=1, encoding=encoding, errors="replace"), True


def _stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@contextmanager
def quiet(log_dir: str, *, stop_ray: bool = False, view: Optional[dict] = None) -> Iterator[Console]:
    """fd 1 and 2 into `<log_dir>/driver.log` (appended: a resume adds to it) for the block;
    yields the console that still reaches the user. `stop_ray`: shut Ray down before the
    descriptors go back (see the module's docstring); `view`: see `Console`."""
    global _active
    os.makedirs(log_dir, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    stream, owned = _terminal_stream()
    console = Console(Terminal(stream), log_dir, dict(view or {}))
    saved = (os.dup(1), os.dup(2))
    saved_streams = (sys.stdout, sys.stderr)
    with open(Path(log_dir, LOG_FILE), "a") as log:
        try:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} raysweep {' '.join(sys.argv[1:])}\n")
            log.flush()
        except OSError:  # a full disk: the sweep still runs (and says so on the terminal)
            pass
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    # Python-level writes too, where sys.stdout / sys.stderr are not fds 1 and 2 (a caller's capture)
    sys.stdout = sys.stderr = _LogSink(os.dup(1))
    records = logging.StreamHandler(sys.stderr)
    records.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers = (_WarningLine(console), records)
    package = logging.getLogger("raysweep")
    for h in handlers:
        package.addHandler(h)
    coloured = "RAY_COLOR_PREFIX" in os.environ
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # else Ray colours each forwarded line's prefix
    _active = console
    try:
        yield console
    finally:
        try:
            if stop_ray:
                _stop_ray()
        finally:
            _active = None
            if not coloured:
                os.environ.pop("RAY_COLOR_PREFIX", None)
            for h in handlers:
                package.removeHandler(h)
            sys.stdout.close()
            sys.stdout, sys.stderr = saved_streams
            for fd, original in zip((1, 2), saved):
                os.dup2(original, fd)
                os.close(original)
            console.terminal.release()
            if owned:
                stream.close()
