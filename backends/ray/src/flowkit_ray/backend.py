"""``RayBackend``: flowkit's backend protocol on a Ray cluster.

Each call becomes one Ray task with ``num_returns=2``: the small ``meta`` comes back to
the driver and completes the future, while the value stays in Ray's object store. The
future resolves to ``(meta, value_ref)``; passing ``value_ref`` to a later call lets Ray
hand the value to that call directly (same node: zero-copy; another node: one transfer),
and :meth:`RayBackend.fetch` brings it to the driver only when asked.

Ray's own task retries are off (``max_retries=0``): the engine owns retries, so a worker
that dies surfaces as a failed attempt (``ray.exceptions.WorkerCrashedError``) like any
other failure. Timeouts are enforced on the worker and count running time only
(``enforces_timeout``, see :mod:`flowkit_ray.worker`); ``future.cancel()`` stops a call
with ``ray.cancel(force=True)``.

A submission with ``split_values = n`` (a batch of map items whose ``fn`` returns
``(meta, [v1..vn])``) becomes a task with ``1 + n`` returns, so each item's value is its own
object and the future resolves to ``(meta, [ref1..refn])``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import ray

from flowkit.backend import BackendBase, Capabilities, Submission
from flowkit.resources import Resources
from flowkit_ray import connection, reach, storecheck
from flowkit_ray.completion import Completer, RayFuture
from flowkit_ray.errors import RayBackendError, user_exception
from flowkit_ray.functions import RemoteFunctions, pack
from flowkit_ray.usercode import UserModules

logger = logging.getLogger(__name__)

RESERVED_TASK_OPTIONS = frozenset(
    {"num_returns", "max_retries", "retry_exceptions", "num_cpus", "num_gpus", "memory"}
)
MIN_IN_FLIGHT = 64
IN_FLIGHT_PER_CPU = 4


class RayBackend(BackendBase):
    """Run flowkit tasks as Ray tasks.

    Args:
        address: ``"host:port"`` of a running cluster (join as a driver) or
            ``"ray://host:port"`` (Ray Client). ``None``: ``RAY_ADDRESS`` when set, else
            start a local Ray. Ignored when Ray is already initialised in this process
            (that session is reused and left running).
        runtime_env: Ray runtime environment (``pip``, ``env_vars``, ``working_dir``,
            ...). Job-wide when this backend connects; per task when it reuses a session.
        num_cpus, num_gpus: size of a local Ray this backend starts.
        max_in_flight: calls the engine keeps submitted at once (default: 4 x cluster
            CPUs, at least 64).
        user_modules: ``"auto"`` ships every imported module that is not installed to the
            workers by value; a list names the modules; ``None`` turns this off.
        init_options: extra keyword arguments for ``ray.init`` (e.g.
            ``{"log_to_driver": False, "namespace": "ml"}``).
        connect_timeout: seconds to find a cluster at ``address`` (or ``RAY_ADDRESS``)
            before giving up with :class:`~flowkit_ray.errors.RayConnectionError`
            (default 15; Ray alone retries for minutes).
        task_options: extra Ray task options for every call (e.g.
            ``{"resources": {"TPU": 1}}``, ``{"scheduling_strategy": "SPREAD"}``,
            ``{"enable_task_events": False}``). ``num_returns`` and the retry options
            are flowkit's and cannot be set here.

    Example::

        with RayBackend(address="ray://head:10001") as ray_backend:
            fk.run(pipeline, backend=ray_backend, store="s3://bucket/flowkit")
    """

    name = "ray"
    # enforces_timeout: the timeout of a call is enforced on the worker and counts only its
    # running time (see flowkit_ray.worker), so the engine starts no clock of its own.
    # splits_values: a submission with ``split_values = n`` (a batch of map items) gets one
    # handle per value, so batching does not pull values into the driver.
    capabilities = Capabilities(enforces_timeout=True, splits_values=True)

    def __init__(
        self,
        address: str | None = None,
        *,
        runtime_env: Mapping[str, Any] | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        max_in_flight: int | None = None,
        user_modules: str | Iterable[str] | None = "auto",
        init_options: Mapping[str, Any] | None = None,
        task_options: Mapping[str, Any] | None = None,
        connect_timeout: float = reach.DEFAULT_TIMEOUT,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise RayBackendError(f"RayBackend(max_in_flight={max_in_flight}): must be >= 1")
        if not connect_timeout > 0:
            raise RayBackendError(
                f"RayBackend(connect_timeout={connect_timeout!r}): must be a number of seconds > 0"
            )
        self.connect_timeout = float(connect_timeout)
        self.address = address
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_in_flight = max_in_flight
        self.init_options = dict(init_options or {})
        self.task_options = dict(task_options or {})
        clash = sorted(set(self.task_options) & RESERVED_TASK_OPTIONS)
        if clash:
            raise RayBackendError(
                f"RayBackend(task_options=...): {', '.join(clash)} cannot be set; flowkit "
                "returns (meta, value) as two objects and owns retries (use the task's "
                "retries=) and resources (use fk.Resources)"
            )
        self._user_modules_setting = user_modules
        self._depth = 0
        self._conn: connection.Connection | None = None
        self._completer: Completer | None = None
        self._functions: RemoteFunctions | None = None
        self._capacity = max_in_flight or MIN_IN_FLIGHT
        self._parallelism = 1
        self._largest: dict[str, float] = {}
        self._warned: set[Resources] = set()
        self._node_addresses: list[str] | None = None

    def __repr__(self) -> str:
        where = self.address or "local"
        state = "connected" if self._conn else "not connected"
        return f"RayBackend({where!r}, {state})"

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> RayBackend:
        if self._depth == 0:
            self._open()
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._close()

    def _open(self) -> None:
        conn = connection.connect(
            self.address,
            runtime_env=self.runtime_env,
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            init_options=self.init_options,
            connect_timeout=self.connect_timeout,
        )
        self._conn = conn
        shipped = _shipped_dirs(self.runtime_env)
        modules = UserModules(self._user_modules_setting, shipped)
        base = dict(self.task_options)
        if self.runtime_env and not conn.owned:
            # A session we did not start lacks our runtime_env: apply it per task.
            base["runtime_env"] = self.runtime_env
        self._functions = RemoteFunctions(
            base, before_export=modules.refresh, on_new_options=self._check_fits
        )
        self._completer = Completer()
        cpus = connection.cluster_cpus()
        self._capacity = self.max_in_flight or max(MIN_IN_FLIGHT, int(IN_FLIGHT_PER_CPU * cpus))
        self._parallelism = max(1, int(cpus))
        self._largest = connection.largest_node()
        logger.debug("Ray backend open: %s, capacity %d", conn, self._capacity)

    def _close(self) -> None:
        completer, conn = self._completer, self._conn
        self._completer = self._functions = self._conn = None
        self._node_addresses = None
        try:
            if completer is not None:
                closed = RayBackendError("the Ray backend was closed before this call finished")
                completer.close(closed)
        finally:
            if conn is not None:
                connection.disconnect(conn)

    # -- the protocol ------------------------------------------------------------

    @property
    def parallelism(self) -> int:
        """Calls that run at once: the cluster's CPUs (sizes the engine's map batches)."""
        return self._parallelism

    @property
    def capacity(self) -> int:
        """Calls to keep in flight: ``max_in_flight``, or 4 x cluster CPUs (at least 64)."""
        return self._capacity

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        """Start ``fn(*args)`` as a Ray task; the future gives ``(meta, value_ref)``."""
        functions, completer = self._functions, self._completer
        if functions is None or completer is None:
            raise RayBackendError(
                "RayBackend.submit() called outside its context: use `with RayBackend(...) "
                "as backend:` or pass the backend to fk.run(), which enters it"
            )
        n = spec.static_args
        split = spec.split_values
        entry = functions.get(fn, args, n)
        remote = entry.options(spec.name, spec.resources, split)
        head, refs = pack(spec.timeout, split, args[n:] if n else args)
        out = remote.remote(head, *entry.prefix, *refs)
        fut = RayFuture(out[0], out[1:] if split else out[1])
        completer.watch(fut)
        return fut

    def fetch(self, handle: Any) -> Any:
        """``ray.get`` a value handle (anything else is returned as it is)."""
        if not isinstance(handle, ray.ObjectRef):
            return handle
        try:
            return ray.get(handle)
        except ray.exceptions.RayError as e:
            raise user_exception(e) from None

    def fetch_many(self, handles: Sequence[Any]) -> list[Any]:
        """Fetch many handles with one ``ray.get``: one round trip instead of one per
        handle (measured in benchmarks/RESULTS.md, "Design measurements")."""
        refs = [h for h in handles if isinstance(h, ray.ObjectRef)]
        if not refs:
            return list(handles)
        try:
            values = iter(ray.get(refs))
        except ray.exceptions.RayError as e:
            raise user_exception(e) from None
        return [next(values) if isinstance(h, ray.ObjectRef) else h for h in handles]

    # -- extras the engine may call ---------------------------------------------

    def check_store(self, url: str) -> None:
        """Fail for a store the workers cannot share, warn for a local path on a cluster
        with nodes on other hosts (see :mod:`flowkit_ray.storecheck`)."""
        if self._node_addresses is None:
            self._node_addresses = connection.node_addresses() if self._conn else []
        storecheck.check(url, self._node_addresses)

    # -- helpers -----------------------------------------------------------------

    def _check_fits(self, name: str, res: Resources) -> None:
        # Ray waits forever for a request no node can meet (an autoscaler might add one),
        # so say so once per resource shape instead of hanging silently.
        if res in self._warned:
            return
        self._warned.add(res)
        wanted = {"CPU": res.cpus, "GPU": res.gpus, "memory": res.memory_bytes or 0}
        short = {k: v for k, v in wanted.items() if v and v > self._largest.get(k, 0.0)}
        if short and self._largest:
            logger.warning(
                "task %r asks for %s but the largest Ray node offers %s; Ray will wait "
                "until a node that fits joins the cluster",
                name,
                short,
                {k: self._largest.get(k, 0.0) for k in short},
            )


def _shipped_dirs(runtime_env: Mapping[str, Any] | None) -> list[str]:
    """Local directories Ray puts on the workers' path for this runtime_env."""
    if not runtime_env:
        return []
    dirs = [runtime_env.get("working_dir")]
    dirs.extend(runtime_env.get("py_modules") or [])
    return [d for d in dirs if isinstance(d, str) and "://" not in d]
