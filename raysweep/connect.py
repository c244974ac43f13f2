"""Connect to Ray: a new local instance (the embedded default) or an existing
cluster (`--address auto`, `host:port`, `ray://host:10001`).

Token authentication stays on: a new local instance enables it itself, and a
connection to an existing cluster asks for it (`RAY_AUTH_MODE=token`, with the
token from `~/.ray/auth_token` or `RAY_AUTH_TOKEN`). The dashboard binds to
loopback unless `RAYSWEEP_DASHBOARD_HOST` says otherwise.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Optional
from urllib.parse import urlparse

from raysweep.errors import ClusterError

DEFAULT_CLIENT_PORT = 10001

# A new local instance turns token auth on by itself (as raysweep wants) and says so on
# stderr, which would put a Ray log line above every one-line user error of `raysweep run`.
_TOKEN_SETUP_LOGGER = "ray._private.authentication.authentication_token_setup"

_connected_here = False  # whether connect() called ray.init in this process


def _token_notice_filter(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled")


def _reachable(host: str, port: int, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _host_port(address: str) -> Optional[tuple[str, int]]:
    if address == "auto":
        return None
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname:
        raise ClusterError(f"not a Ray address: {address!r} (use auto, host:port or ray://host:port)", source="--address")
    return parsed.hostname, parsed.port or (DEFAULT_CLIENT_PORT if address.startswith("ray://") else 6379)


def connect(address: Optional[str] = None, *, quiet: bool = True) -> None:
    """`ray.init` once per process; refuses an unreachable address in one line."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:  # refused when unreachable, even where Ray is up in this process already
        target = _host_port(address)
        if target and not _reachable(*target):
            raise ClusterError(f"cannot reach a Ray cluster at {address}", source="--address")
    if ray.is_initialized():
        return
    global _connected_here
    _connected_here = True
    kwargs = dict(logging_level="WARNING" if quiet else "INFO", log_to_driver=True)
    if address:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as e:
            raise ClusterError(f"cannot connect to Ray at {address}: {str(e).splitlines()[0]}", source="--address") from None
        return
    logging.getLogger(_TOKEN_SETUP_LOGGER).addFilter(_token_notice_filter)
    ray.init(dashboard_host=os.environ.get("RAYSWEEP_DASHBOARD_HOST", "127.0.0.1"), **kwargs)


def connected_here() -> bool:
    """Whether this process's Ray connection was made by `connect` (rather than by a caller, a
    test's shared instance), so it is ours to shut down when the sweep is over."""
    import ray

    return _connected_here and ray.is_initialized()


def cluster_resources() -> dict[str, float]:
    import ray

    return dict(ray.cluster_resources())
