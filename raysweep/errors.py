"""The one error type for user mistakes.

A `UserError` names where the mistake is (a file, a `--set` override, a data
sample), the dotted key path inside it, and what is allowed. The CLI prints it
as one line and exits 2; nothing else in raysweep catches it. It pickles
cleanly so that it can cross from a Ray worker to the driver.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's config, command line or data."""

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None):
        self.message = _original_line(message)
        self.source = source
        self.path = path
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.source, self.path) if p]
        return ": ".join([*parts, self.message])

    def __reduce__(self):  # keyword-only args need an explicit pickle recipe
        return (_rebuild, (type(self), self.message, self.source, self.path))

    def with_source(self, source: str) -> "UserError":
        """The same error, naming `source` where it named none."""
        if self.source:
            return self
        return type(self)(self.message, source=source, path=self.path)


def _original_line(message: str) -> str:
    """torch re-raises an error from a DataLoader worker as `type(message=<whole
    traceback>)`; its last line is `module.DataError: <the original line>`."""
    if "\n" not in message or "Traceback" not in message:
        return message
    last = [line for line in message.strip().splitlines() if line.strip()][-1]
    head, sep, rest = last.partition(": ")
    return rest if sep and head.rsplit(".", 1)[-1].endswith("Error") else last


def _rebuild(cls, message, source, path):
    return cls(message, source=source, path=path)


class ConfigError(UserError):
    """A sweep file or override that does not validate."""


class DataError(UserError):
    """Data that cannot be used: a missing file, a corrupt image, an unknown label."""


class ClusterError(UserError):
    """A request the Ray cluster can never satisfy, or a cluster that cannot be reached."""


class SweepInterrupted(Exception):
    """The user stopped a sweep (Ctrl-C): its state is saved and `raysweep resume` continues it.
    The CLI prints `hint` as one line and exits 130, as a shell does for SIGINT."""

    def __init__(self, hint: str):
        self.hint = hint
        super().__init__(hint)
