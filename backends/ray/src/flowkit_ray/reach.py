"""Is a Ray cluster there? Checked before ``ray.init``, which otherwise retries for minutes.

Given an address that points at nothing (a port nobody listens on, a host that drops packets,
a listener that never answers), ``ray.init`` logs "Failed to connect to GCS" warnings and
retries for about 13 minutes (Ray Client: 30 s, then a bare ``ConnectionError``). So before
calling it, :func:`check` asks three cheap questions, all within one deadline:

1. does the TCP connection open (refused, unreachable, unknown host: fail at once);
2. does the server answer the HTTP/2 handshake that every gRPC server (a GCS, a Ray Client
   server) starts with a SETTINGS frame (a silent listener times out; skipped with
   ``RAY_USE_TLS``, where the first bytes belong to TLS);
3. for a GCS address (``host:port``), does Ray's own GCS client get the cluster id (a gRPC
   server that is not a GCS says "method not found").

Any failure raises :class:`~flowkit_ray.errors.RayConnectionError` naming the address, where
it came from, and the fix. Addresses this module does not understand (``"auto"``, other
schemes) are left to Ray.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from flowkit_ray.errors import RayConnectionError

CLIENT_SCHEME = "ray://"
CLIENT_PORT = 10001  # Ray Client's default port
DEFAULT_TIMEOUT = 15.0  # seconds for the whole check
# An HTTP/2 client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS = 0x04


@dataclass(frozen=True)
class Target:
    """Where an address points: a GCS (``host:port``) or a Ray Client server (``ray://``)."""

    kind: str  # "gcs" or "client"
    host: str
    port: int


def parse(address: str) -> Target | None:
    """The target of ``address``, or None for forms Ray resolves itself (``auto``, ...)."""
    if address.startswith(CLIENT_SCHEME):
        kind, rest, default = "client", address[len(CLIENT_SCHEME) :], CLIENT_PORT
    elif "://" in address or address in ("auto", "local"):
        return None
    else:
        kind, rest, default = "gcs", address, 0
    rest = rest.split("/", 1)[0]
    host, sep, port_text = rest.rpartition(":")
    if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
        host, port_text = rest, str(default)
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        return None
    if not host or not 0 < port < 65536:
        return None
    return Target(kind, host, port)


def check(address: str, *, source: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise :class:`RayConnectionError` unless a Ray cluster answers at ``address``.

    ``source`` says where the address came from (``"RAY_ADDRESS"`` or
    ``"RayBackend(address=...)"``); it goes into the message with the fix.
    """
    target = parse(address)
    if target is None:
        return
    deadline = time.monotonic() + timeout
    host = _dialled_host(target)
    reason = _handshake(host, target.port, deadline)
    if reason is None and target.kind == "gcs":
        reason = _gcs_answers(f"{_bracket(host)}:{target.port}", deadline)
    if reason is not None:
        if host != target.host:
            reason = f"{reason} (Ray dials {host} for {target.host})"
        raise RayConnectionError(failure_message(address, source, reason))


def failure_message(address: str, source: str, reason: str) -> str:
    """The error text for an unreachable ``address``: what, where from, and the fix."""
    where = (
        "check RAY_ADDRESS, or unset it to start a local Ray"
        if source == "RAY_ADDRESS"
        else "check the address given to RayBackend"
    )
    return (
        f"cannot connect to a Ray cluster at {address!r} (from {source}): {reason}. "
        "Is the head running? Start one with `ray start --head`; join it with its GCS "
        "address `host:6379`, or use Ray Client with `ray://host:10001`; " + where
    )


def _dialled_host(target: Target) -> str:
    """The host Ray connects to: for a GCS address it replaces a loopback name with this
    node's IP (``resolve_ip_for_localhost``), so probe that same host."""
    if target.kind != "gcs":
        return target.host
    try:
        from ray._private.services import resolve_ip_for_localhost

        return str(resolve_ip_for_localhost(target.host))
    except Exception:  # a private Ray API: fall back to the address as written
        return target.host


def _handshake(host: str, port: int, deadline: float) -> str | None:
    """Why ``host:port`` is not a gRPC server, or None when it answers like one."""
    try:
        with socket.create_connection((host, port), timeout=_left(deadline)) as sock:
            if _tls():
                return None  # the first bytes would be TLS's; Ray's client checks the rest
            sock.settimeout(_left(deadline))
            sock.sendall(_H2_PREFACE)
            head = _read(sock, 9)
    except socket.gaierror as e:
        return f"the host name {host!r} does not resolve ({e.strerror or e})"
    except TimeoutError:
        return "no answer (connection or gRPC handshake timed out)"
    except OSError as e:
        return str(e.strerror or e).lower()
    if len(head) < 9:
        return "the server closed the connection without a gRPC handshake"
    if head[3] != _SETTINGS:
        return "the server there does not speak gRPC (HTTP/2): not a Ray port"
    return None


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _gcs_answers(address: str, deadline: float) -> str | None:
    """Why the gRPC server at ``address`` is not a Ray GCS, or None when it is (or when
    Ray's GCS client cannot be used for the check)."""
    try:
        import ray._raylet as raylet
    except ImportError:
        return None
    # A private API (what Ray's own node start-up uses): skip the check if it is gone.
    standalone = getattr(getattr(raylet, "InnerGcsClient", None), "standalone", None)
    if standalone is None:
        return None
    timeout_ms = max(1000, int(_left(deadline) * 1000))
    try:
        standalone(address, None, timeout_ms)
    except TypeError:
        return None  # another Ray's signature: leave the check to ray.init
    except Exception as e:
        return f"no Ray GCS answers there (Ray: {e})"
    return None


def _left(deadline: float) -> float:
    """Seconds left before ``deadline`` (at least a little, so a call can fail cleanly)."""
    return max(0.05, deadline - time.monotonic())


def _tls() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
