"""Connecting to Ray, and shutting down only what we started.

Policy, in order:

1. Ray is already initialised in this process (by the user, or by an outer
   ``RayBackend``): reuse that connection and never shut it down.
2. An address is given, or ``RAY_ADDRESS`` is set: connect to that cluster.
   ``"host:port"`` joins it as a driver (this machine must be able to reach every node);
   ``"ray://host:port"`` uses Ray Client (only the client port needs to be reachable).
   The address is checked first (:mod:`flowkit_ray.reach`): nothing answering there is a
   :class:`~flowkit_ray.errors.RayConnectionError` within ``connect_timeout`` seconds,
   instead of Ray's minutes of retries.
3. Otherwise start a local Ray for this process (``num_cpus``/``num_gpus``, no
   dashboard) and shut it down on exit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ray

from flowkit_ray import reach
from flowkit_ray.errors import RayBackendError, RayConnectionError

# Ray's state API is untyped; these are the shapes we rely on.
_cluster_resources: Callable[[], dict[str, float]] = ray.cluster_resources
_nodes: Callable[[], list[dict[str, Any]]] = ray.nodes


logger = logging.getLogger(__name__)


@dataclass
class Connection:
    """What ``connect`` did: whether we own the Ray session and how we reached it."""

    owned: bool
    address: str | None
    client: bool


def _is_client() -> bool:
    try:
        from ray.util.client import ray as client_ray

        return bool(client_ray.is_connected())  # type: ignore[no-untyped-call]
    except Exception:
        return False


def connect(
    address: str | None,
    *,
    runtime_env: Mapping[str, Any] | None,
    num_cpus: int | None,
    num_gpus: int | None,
    init_options: Mapping[str, Any],
    connect_timeout: float = reach.DEFAULT_TIMEOUT,
) -> Connection:
    """Reuse, join or start Ray according to the module policy."""
    if ray.is_initialized():
        logger.debug("reusing the Ray session already initialised in this process")
        return Connection(owned=False, address=address, client=_is_client())
    source = "RayBackend(address=...)"
    if not address:
        address = os.environ.get("RAY_ADDRESS") or None
        source = "RAY_ADDRESS"
    options: dict[str, Any] = dict(init_options)
    if runtime_env:
        options["runtime_env"] = dict(runtime_env)
    if address is not None:
        if num_cpus is not None or num_gpus is not None:
            raise RayBackendError(
                f"RayBackend(address={address!r}, num_cpus=..., num_gpus=...): CPUs and GPUs "
                "are set when a cluster is started, not when connecting to one; drop "
                "num_cpus/num_gpus or drop the address (and unset RAY_ADDRESS) to start a "
                "local Ray"
            )
        logger.info("connecting to the Ray cluster at %s", address)
        reach.check(address, source=source, timeout=connect_timeout)
        _join(address, source, options)
    else:
        options.setdefault("include_dashboard", False)
        logger.info("starting a local Ray (num_cpus=%s)", num_cpus)
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **options)
    return Connection(owned=True, address=address, client=_is_client())


def _join(address: str, source: str, options: Mapping[str, Any]) -> None:
    """``ray.init(address)``, its connection failures named like the checks' ones."""
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError) as e:
        # e.g. Ray Client's bare "ray client connection timeout"
        reason = f"{type(e).__name__}: {e}"
        raise RayConnectionError(reach.failure_message(address, source, reason)) from e


def disconnect(conn: Connection) -> None:
    """Shut Ray down if, and only if, ``connect`` started or joined it."""
    if conn.owned and ray.is_initialized():
        ray.shutdown()


def cluster_cpus() -> float:
    """Total CPUs the cluster advertises now (0 when unknown)."""
    try:
        return float(_cluster_resources().get("CPU", 0))
    except Exception as e:
        logger.debug("ray.cluster_resources() failed: %s", e)
        return 0.0


def node_addresses() -> list[str]:
    """IP addresses of the alive nodes."""
    return [str(n["NodeManagerAddress"]) for n in _nodes() if n.get("Alive")]


def largest_node() -> dict[str, float]:
    """The most of each resource one alive node offers (a task must fit one node)."""
    best: dict[str, float] = {}
    for n in _nodes():
        if not n.get("Alive"):
            continue
        for k, v in n.get("Resources", {}).items():
            best[k] = max(best.get(k, 0.0), float(v))
    return best
