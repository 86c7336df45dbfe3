"""Can the cluster's workers reach the store?

Cached tasks read and write the store *on the workers*, so the store must be reachable
from every node:

* ``memory://`` lives inside one process; Ray workers are other processes, so writes
  would vanish. That is an error.
* A local path (no scheme, ``file://``, ``local://``) works when every node is this
  machine. When some node is another host, each node would write to its own disk
  (cache misses, run records split across machines) unless the path is a shared
  filesystem mounted at the same place everywhere, so we warn and say how to silence it.
* Anything else (``s3://``, ``gs://``, ...) is assumed reachable.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import warnings
from collections.abc import Iterable

from flowkit.errors import StoreError

logger = logging.getLogger(__name__)


class StoreReachabilityWarning(UserWarning):
    """A local-path store used with a cluster that has nodes on other hosts."""


def protocol(url: str) -> str:
    """The fsspec protocol that does the I/O (``file`` for plain paths and chained caches
    of local files, the last link of a ``a::b`` chain otherwise)."""
    last = url.rsplit("::", 1)[-1]
    if "://" not in last:
        return "file"
    return last.split("://", 1)[0].lower() or "file"


def local_addresses() -> set[str]:
    """IP addresses of this machine (loopback always included)."""
    addrs = {"127.0.0.1", "::1", "localhost"}
    try:
        import psutil  # shipped with ray[default]

        for nics in psutil.net_if_addrs().values():
            addrs.update(a.address.split("%")[0] for a in nics)
    except Exception as e:  # psutil missing or no permission: fall back to the hostname
        logger.debug("psutil.net_if_addrs failed: %s", e)
    try:
        host = socket.gethostname()
        addrs.add(host)
        addrs.update(socket.gethostbyname_ex(host)[2])
    except OSError:
        pass
    return addrs


def is_local_address(addr: str, local: set[str]) -> bool:
    if addr in local:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def remote_hosts(node_addresses: Iterable[str], local: set[str]) -> list[str]:
    """The node addresses that are not this machine."""
    return sorted({a for a in node_addresses if not is_local_address(a, local)})


def check(url: str, node_addresses: Iterable[str], local: set[str] | None = None) -> None:
    """Raise for a store no worker can share; warn for a local path on a multi-host cluster."""
    proto = protocol(url)
    if proto == "memory":
        raise StoreError(
            f"store {url!r} is an in-memory filesystem, which lives in one process; Ray "
            "workers run in other processes and their cache writes would be lost. Use a "
            "directory (file:///path) on a single machine, or object storage (s3://...) "
            "for a cluster."
        )
    if proto not in ("file", "local"):
        return
    others = remote_hosts(node_addresses, local_addresses() if local is None else local)
    if others:
        warnings.warn(
            f"store {url!r} is a local path, but the Ray cluster has nodes on other hosts "
            f"({', '.join(others[:5])}{'...' if len(others) > 5 else ''}). Each node would "
            "read and write its own disk, so cached results would be missed or scattered. "
            "Use object storage (s3://..., gs://...) or a shared filesystem mounted at the "
            "same path on every node (then silence this with warnings.filterwarnings("
            "'ignore', category=flowkit_ray.StoreReachabilityWarning)).",
            StoreReachabilityWarning,
            stacklevel=3,
        )
