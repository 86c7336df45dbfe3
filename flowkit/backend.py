"""The backend seam: how the engine hands work to an executor.

A backend runs calls and returns :class:`concurrent.futures.Future` objects; it never
calls back into the engine. The engine owns retries, back-off, timeouts and ordering, so
every backend behaves the same.

The contract of :meth:`Backend.submit`:

* ``fn(*args)`` is run on a worker and returns a pair ``(meta, value)``.
* An element of ``args`` is either a plain value or a *value handle*: the second item of
  the result of an earlier future of the same backend. The backend must resolve handles to
  their values before calling ``fn`` (Ray does this natively for top-level ``ObjectRef``
  arguments; in-process backends hand values around directly).
* The returned future resolves to ``(meta, handle)``: ``meta`` is a small object brought to
  the driver, ``handle`` is the value or a reference to it that stays where it was made
  (Ray's object store). :meth:`Backend.fetch` turns a handle into the value in the driver.
* ``future.cancel()`` is called when an attempt times out; a backend that can stop a
  running call (Ray) should do so, others may let it finish and be ignored.

Optional attribute: ``enforces_timeout = True`` says the backend stops a call that runs
past ``spec.timeout`` itself (failing its future with :class:`AttemptTimeout`); the engine
then starts no clock of its own, so time spent queued or starting a worker does not count.

Batches of map items: the engine may send many small map items as one call of
``flowkit.runner.run_batch`` (whose result is a list of outcomes and a list of values) to
save a hand-off per item, when the backend says it can hand the values back one by one:

* ``values_in_driver = True``: handles are the values themselves, in the driver's memory
  (``local``, ``threads``), so the list of values is the list of handles;
* ``splits_values = True``: the backend honours ``Submission.split_values`` (Ray: one return
  per value). Only calls whose arguments hold no handles are batched for such a backend,
  since handles nested in the batch would not be resolved on the worker.

Optional attribute: ``parallelism`` — how many calls really run at once (threads, cluster
CPUs); the engine sizes batches by it (default: ``capacity``).

Optional method: ``fetch_many(handles) -> list`` fetches several handles in one round trip
(used for a map's output).

Optional hook: ``check_store(url: str) -> None``. A backend whose workers run elsewhere
implements it to refuse (raise) or warn about a store they cannot reach; ``fk.run`` calls it
after ``__enter__`` when the run uses the cache, before any task runs.

Backends are context managers: ``__enter__`` acquires what they need (a thread pool, a Ray
connection) and ``__exit__`` releases only what they acquired themselves.

Registry: built-in names plus the entry-point group ``flowkit.backends``, imported lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from flowkit.errors import BackendNotFoundError
from flowkit.resources import Resources

ENTRY_POINT_GROUP = "flowkit.backends"

# Built-ins resolve without entry points, so a plain checkout (no install) works too.
_BUILTIN: dict[str, str] = {
    "local": "flowkit.backends.local:LocalBackend",
    "threads": "flowkit.backends.threads:ThreadsBackend",
}
# Names we know of that live in another distribution: the error says what to install.
_KNOWN_PLUGINS: dict[str, str] = {
    "ray": "pip install 'flowkit[ray]'  (or: pip install flowkit-ray)"
}


@dataclass(frozen=True)
class Submission:
    """What a backend may want to know about one call besides the function and its args.

    ``static_args`` is the number of leading ``args`` that are the very same objects for
    every call of the same task in a run (a backend may ship them once and reuse them).
    ``split_values`` is 0 for one call; ``n > 0`` for a batch of ``n`` calls, whose ``fn``
    returns ``(outcomes, [v1, ..., vn])``: a backend with ``splits_values = True`` resolves
    the future to ``(outcomes, [h1, ..., hn])``, one handle per value.
    """

    name: str
    resources: Resources = field(default_factory=Resources)
    timeout: float | None = None
    static_args: int = 0
    split_values: int = 0


@runtime_checkable
class Backend(Protocol):
    """What the engine needs from an executor. See the module docstring for the contract."""

    name: str

    @property
    def capacity(self) -> int:
        """How many calls the engine should keep in flight at once."""
        ...

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        """Start ``fn(*args)`` (handles in ``args`` resolved) and return its future."""
        ...

    def fetch(self, handle: Any) -> Any:
        """Bring a value handle into the driver as a plain value."""
        ...

    def __enter__(self) -> Backend: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _entry_points() -> Any:
    # Imported on first use: importlib.metadata costs ~20 ms of `import flowkit`, and the
    # built-in backends resolve without it.
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def available_backends() -> list[str]:
    """Names accepted by :func:`get_backend`: built-ins plus installed plugins."""
    names = set(_BUILTIN)
    names.update(ep.name for ep in _entry_points())
    return sorted(names)


def _load(target: str) -> type[Backend]:
    module, _, attr = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name``, imported on first use."""
    if name in _BUILTIN:
        return _load(_BUILTIN[name])
    for ep in _entry_points():
        if ep.name == name:
            cls: type[Backend] = ep.load()
            return cls
    hint = _KNOWN_PLUGINS.get(name)
    install = (
        f"install it with: {hint}"
        if hint
        else f"install a package that registers it in the entry-point group '{ENTRY_POINT_GROUP}'"
    )
    raise BackendNotFoundError(
        f"unknown backend {name!r}; available: {', '.join(available_backends())}. "
        f"To use {name!r}, {install}, or pass a backend instance."
    )


def get_backend(backend: str | Backend) -> Backend:
    """Resolve a name or an instance to a backend instance (names get default settings)."""
    if isinstance(backend, str):
        return backend_class(backend)()
    if not isinstance(backend, Backend):
        raise BackendNotFoundError(
            f"{backend!r} is not a backend: pass a name ({', '.join(available_backends())}) "
            "or an object with submit(), fetch(), capacity and the context-manager methods"
        )
    return backend


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the engine may rely on beyond the required members, read once per run (after the
    backend's ``__enter__``) by :func:`capabilities_of`. Every field defaults to the cautious
    answer, so a backend that declares nothing is still run correctly.

    ``values_in_driver``: handles are the values themselves, in the driver's memory (``local``,
    ``threads``): the engine looks cache hits up before submitting, and batches map items.
    ``splits_values``: the backend honours ``Submission.split_values`` (one handle per value of
    a batch; Ray), so map items whose arguments hold no handles may be batched.
    ``enforces_timeout``: the backend stops a call that runs past ``spec.timeout`` itself (its
    future fails with :class:`AttemptTimeout`); the engine then keeps no clock of its own.
    ``parallelism``: how many calls really run at once (threads, cluster CPUs); batches are
    sized by it. Defaults to ``capacity``.
    """

    values_in_driver: bool = False
    splits_values: bool = False
    enforces_timeout: bool = False
    parallelism: int = 1


def capabilities_of(backend: Backend) -> Capabilities:
    """The backend's :class:`Capabilities`, from its optional attributes of the same names."""
    return Capabilities(
        values_in_driver=bool(getattr(backend, "values_in_driver", False)),
        splits_values=bool(getattr(backend, "splits_values", False)),
        enforces_timeout=bool(getattr(backend, "enforces_timeout", False)),
        parallelism=max(1, int(getattr(backend, "parallelism", backend.capacity))),
    )


def fetch_many(backend: Backend, handles: Sequence[Any]) -> list[Any]:
    """Several handles' values: in one round trip when the backend has ``fetch_many``."""
    many = getattr(backend, "fetch_many", None)
    if many is not None:
        return list(many(handles))
    return [backend.fetch(h) for h in handles]


def check_store(backend: Backend, url: str) -> None:
    """Ask the backend whether its workers can reach the store (its optional hook)."""
    hook = getattr(backend, "check_store", None)
    if hook is not None:
        hook(url)


class AttemptTimeout(TimeoutError):
    """Raised (by a backend or the engine) when one attempt of a call runs past its timeout."""
