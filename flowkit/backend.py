"""The backend seam: how the engine hands work to an executor.

A backend runs calls and returns :class:`concurrent.futures.Future` objects; it never
calls back into the engine. The engine owns retries, back-off, timeouts and ordering, so
every backend behaves the same. ``docs/backends.md`` is the contract, member by member;
this module is its code:

* :class:`Backend`: the members a backend must have (``name``, ``capacity``, ``submit``,
  ``fetch``, ``__enter__``/``__exit__``).
* :class:`BackendBase`: a base class with a default for every optional member
  (``capabilities``, ``parallelism``, ``fetch_many``, ``check_store``, the context manager).
* :class:`Capabilities`: what the engine may rely on beyond the required members, read once
  per run by :func:`capabilities_of` -- the only code that looks for optional members, so
  objects that implement only the protocol (and older backends with loose attributes) work.
* :class:`Submission`: what a backend is told about one call.
* The registry: :func:`register`, :func:`get_backend`, :func:`available_backends`; names
  resolve to built-ins, registered classes, or the entry-point group ``flowkit.backends``
  (scanned once per process; classes are imported on first use and cached).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, ClassVar, Protocol, runtime_checkable

from flowkit.errors import BackendNotFoundError
from flowkit.resources import Resources

ENTRY_POINT_GROUP = "flowkit.backends"


class AttemptTimeout(TimeoutError):
    """Raised (by a backend or the engine) when one attempt of a call runs past its timeout."""


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
    """What the engine needs from an executor: the required members (docs/backends.md)."""

    name: str

    @property
    def capacity(self) -> int:
        """How many calls the engine should keep in flight at once."""
        ...

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        """Start ``fn(*args)`` (top-level handles in ``args`` resolved) and return its future,
        which resolves to ``(meta, handle)`` or fails with what ``fn`` raised."""
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


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the engine may rely on beyond the required members. Every field defaults to the
    cautious answer, so a backend that declares nothing is still run correctly.

    A backend declares the flags as a class attribute (``capabilities = Capabilities(...)``,
    see :class:`BackendBase`); :func:`capabilities_of` reads them once per run, after the
    backend's ``__enter__``, and fills in ``parallelism`` from the backend.

    ``values_in_driver``: handles are the values themselves, in the driver's memory (``local``,
    ``threads``, ``processes``): the engine looks cache hits up before submitting, and batches
    small map items.
    ``splits_values``: the backend honours ``Submission.split_values`` (one handle per value of
    a batch; Ray), so map items whose arguments hold no handles may be batched.
    ``enforces_timeout``: the backend stops a call that runs past ``spec.timeout`` itself (its
    future fails with :class:`AttemptTimeout`); the engine then keeps no clock of its own.
    ``parallelism``: how many calls really run at once (threads, cluster CPUs); batches are
    sized by it. Not declared: it is the backend's ``parallelism`` member (which may change at
    ``__enter__``), else its ``capacity``.
    ``cpu_budget``: the CPUs the engine admits calls against, by their ``Resources.cpus``
    (:mod:`flowkit.limits`; threads: ``max_workers``). None (the default): the backend
    schedules resources itself (Ray) or ignores them. Not declared: the backend's
    ``cpu_budget`` member, if it has one.
    """

    values_in_driver: bool = False
    splits_values: bool = False
    enforces_timeout: bool = False
    parallelism: int = 1
    cpu_budget: float | None = None


class BackendBase:
    """A base class for backends: subclass it, set ``name`` and ``capabilities``, and
    implement ``capacity``, ``submit`` and ``fetch``. Every optional member has a default.

    Subclassing is a convenience, not a requirement: the engine accepts any object with the
    members of :class:`Backend`, and reads optional members only through
    :func:`capabilities_of`, :func:`fetch_many` and :func:`check_store`.
    """

    name: str = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    @property
    def capacity(self) -> int:
        """How many calls the engine keeps in flight at once (override; default 1)."""
        return 1

    @property
    def parallelism(self) -> int:
        """How many calls really run at once; map batches are sized by it (default:
        ``capacity``)."""
        return self.capacity

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        """Start ``fn(*args)`` with top-level handles resolved; see :class:`Backend`."""
        raise NotImplementedError(f"{type(self).__name__} must implement submit()")

    def fetch(self, handle: Any) -> Any:
        """The value of ``handle`` in the driver (override unless handles are values)."""
        raise NotImplementedError(f"{type(self).__name__} must implement fetch()")

    def fetch_many(self, handles: Sequence[Any]) -> list[Any]:
        """The values of several handles, in order (default: one :meth:`fetch` each;
        override to fetch them in one round trip). A None among them is the value None (the
        item of a tolerant map that failed), never a handle."""
        return [None if h is None else self.fetch(h) for h in handles]

    def check_store(self, url: str) -> None:
        """Raise (or warn) when the workers cannot reach the store at ``url`` (default: no
        check, as when the workers share the driver's filesystem)."""
        return None

    def __enter__(self) -> BackendBase:
        """Acquire what the backend needs (default: nothing). May be entered again."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release only what ``__enter__`` acquired (default: nothing)."""
        return None


# -- reading optional members (the only place that looks them up) ------------------------------

_FLAGS = ("values_in_driver", "splits_values", "enforces_timeout")


def capabilities_of(backend: Backend) -> Capabilities:
    """The backend's :class:`Capabilities`: its declared ``capabilities``, then any loose
    attribute of a flag's name (the older way, still honoured: it wins over the declared
    value), and ``parallelism`` from the backend's member of that name, else ``capacity``."""
    declared = getattr(backend, "capabilities", None)
    caps = declared if isinstance(declared, Capabilities) else Capabilities()
    loose = {f: bool(v) for f in _FLAGS if (v := getattr(backend, f, None)) is not None}
    parallelism = getattr(backend, "parallelism", None)
    if parallelism is None:
        parallelism = backend.capacity
    budget = getattr(backend, "cpu_budget", None)
    if budget is None:
        budget = caps.cpu_budget
    return replace(
        caps,
        **loose,
        parallelism=max(1, int(parallelism)),
        cpu_budget=None if budget is None else float(budget),
    )


def fetch_many(backend: Backend, handles: Sequence[Any]) -> list[Any]:
    """Several handles' values: in one round trip when the backend has ``fetch_many``.

    A None stands for the value None, not a handle (a failed item of a tolerant map,
    :mod:`flowkit.tolerance`): it is never handed to the backend."""
    many = getattr(backend, "fetch_many", None)
    if many is None:
        return [None if h is None else backend.fetch(h) for h in handles]
    if not any(h is None for h in handles):
        return list(many(handles))
    values = iter(many([h for h in handles if h is not None]))
    return [None if h is None else next(values) for h in handles]


def check_store(backend: Backend, url: str) -> None:
    """Ask the backend whether its workers can reach the store (its optional hook)."""
    hook = getattr(backend, "check_store", None)
    if hook is not None:
        hook(url)


# -- the registry ------------------------------------------------------------------------------

# Built-ins resolve without entry points, so a plain checkout (no install) works too.
_BUILTIN: dict[str, str] = {
    "local": "flowkit.backends.local:LocalBackend",
    "threads": "flowkit.backends.threads:ThreadsBackend",
    "processes": "flowkit.backends.processes:ProcessesBackend",
}
# Names we know of that live in another distribution: the error says what to install.
_KNOWN_PLUGINS: dict[str, str] = {
    "ray": "pip install 'flowkit[ray]'  (or: pip install flowkit-ray)"
}

BackendTarget = type[Any] | str  # a class, or "module:Class" imported on first use

_registry: dict[str, BackendTarget] = dict(_BUILTIN)  # built-ins and register() calls
_loaded: dict[str, type[Backend]] = {}  # classes imported so far, by name
_scanned: dict[str, Any] | None = None  # the entry points of ENTRY_POINT_GROUP, once scanned
_lock = threading.Lock()


def _entry_points() -> Any:
    # Imported on first use: importlib.metadata costs ~20 ms of `import flowkit`, and the
    # built-in backends resolve without it.
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def _plugins() -> dict[str, Any]:
    """The installed plugins' entry points by name, scanned on first use only."""
    global _scanned
    if _scanned is None:
        with _lock:
            if _scanned is None:
                _scanned = {ep.name: ep for ep in _entry_points()}
    return _scanned


def register(name: str, cls_or_path: BackendTarget, clobber: bool = False) -> None:
    """Register a backend class, or its ``"module:Class"`` path (imported on first use),
    under ``name``, as an entry point would. Registering the same target again is a no-op;
    a different one under a taken name raises ``ValueError`` unless ``clobber=True``."""
    with _lock:
        current = _registry.get(name)
        if current is not None and current != cls_or_path and not clobber:
            raise ValueError(
                f"backend name {name!r} is already registered to {_describe(current)}; "
                f"pass clobber=True to replace it with {_describe(cls_or_path)}"
            )
        _registry[name] = cls_or_path
        _loaded.pop(name, None)


def _describe(target: BackendTarget) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def available_backends() -> list[str]:
    """Names accepted by :func:`get_backend`: built-ins, registered names, installed plugins."""
    return sorted({*_registry, *_plugins()})


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name``, imported on first use and cached."""
    cls = _loaded.get(name)
    if cls is None:
        cls = _import_class(name)
        _loaded[name] = cls
    return cls


def _import_class(name: str) -> type[Backend]:
    target = _registry.get(name)
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        found: type[Backend] = getattr(importlib.import_module(module), attr)
        return found
    if target is not None:
        return target
    ep = _plugins().get(name)
    if ep is not None:
        loaded: type[Backend] = ep.load()
        return loaded
    raise _not_found(name)


def _not_found(name: str) -> BackendNotFoundError:
    hint = _KNOWN_PLUGINS.get(name)
    install = (
        f"install it with: {hint}"
        if hint
        else f"install a package that registers it in the entry-point group '{ENTRY_POINT_GROUP}'"
    )
    return BackendNotFoundError(
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
