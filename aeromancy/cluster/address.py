"""A scheduler address, ``tcp://HOST:PORT``: where it comes from and whether it answers."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from urllib.parse import urlparse

from aeromancy.errors import InfrastructureError, UsageError

CLUSTER_ENV = "AEROMANCY_CLUSTER"
#: How long a scheduler may take to accept a connection before the run is refused.
CONNECT_TIMEOUT_S = 10.0


def choose_address(option: str | None, environ: Mapping[str, str], setting: str) -> str | None:
    """Return ``--cluster``, else ``AEROMANCY_CLUSTER``, else ``[tool.aeromancy] cluster``.

    Returns None when none is given; raises UsageError for a malformed address.
    """
    given = option or environ.get(CLUSTER_ENV) or setting
    return check_address(given) if given else None


def check_address(address: str) -> str:
    """Return ``address`` when it is ``tcp://HOST:PORT``; raise UsageError otherwise."""
    parsed = urlparse(address)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "tcp" or not parsed.hostname or port is None or parsed.path:
        raise UsageError(
            f"--cluster {address}: not a Dask scheduler address",
            "give tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786 as `aeromancy cluster up` prints",
        )
    return address


def host_port(address: str) -> tuple[str, int]:
    """Return (host, port) of a checked address."""
    parsed = urlparse(address)
    return str(parsed.hostname), int(parsed.port or 0)


def is_loopback(address: str) -> bool:
    """Return True when the scheduler is on this machine's loopback."""
    host = host_port(address)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Return once something accepts TCP connections at ``address``.

    Raises InfrastructureError (exit 3) within about ``timeout`` seconds otherwise.
    """
    host, port = host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise unreachable(address, reason) from exc


def unreachable(address: str, reason: str) -> InfrastructureError:
    """Return the one-line error for a scheduler that does not answer."""
    return InfrastructureError(
        f"the Dask scheduler at {address} cannot be reached ({reason})",
        "start one with `aeromancy cluster up`, or check the address and the network",
    )
