"""Ray remote functions for flowkit calls, made once per task and reused for every call.

Policy for ``Submission.static_args`` (leading args that are the same objects for every
call of a task, e.g. the runner's per-task runtime):

* small (pickled under ``INLINE_LIMIT``): bound into the remote function's closure. Ray
  pickles a remote function once, exports it to the cluster once, and each worker
  unpickles it once, so a call ships only its own arguments. This beats pickling them with
  every call, and ``ray.put`` once and passed as a ref (resolving a ref argument costs more
  than it saves for small objects): see benchmarks/RESULTS.md, "Design measurements".
* large: ``ray.put`` once per backend and passed as a leading ``ObjectRef`` argument, so
  Ray's function export stays small and big buffers are read zero-copy from the object
  store.

Entries are cached by the ``id()`` of the function and of each static arg while holding
references to them (so an id is never reused for another object), at most
``CACHE_SIZE`` of them, the oldest dropped first.
Ray options (name, resources, runtime_env) are made once per entry and spec.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import ray
import ray.cloudpickle

from flowkit import naming
from flowkit.resources import Resources
from flowkit_ray.worker import run_limited

_dumps: Callable[[Any], bytes] = ray.cloudpickle.dumps  # vendored, untyped


logger = logging.getLogger(__name__)

INLINE_LIMIT = 1 << 20  # bytes of pickled static args bound into the function itself
CACHE_SIZE = 256  # remote functions kept per backend (one per task per run in practice)

Key = tuple[int, ...]


# How a call's own arguments travel. Ray serialises each task argument separately, at a
# cost per argument, and it resolves only *top-level* ObjectRefs. So the plain arguments go
# packed into one tuple, ``head = (timeout, split, plain, positions)``, and the value
# handles follow as separate arguments for Ray to resolve; ``positions`` says where each
# resolved value goes back (timings: benchmarks/RESULTS.md, "Design measurements").
#
# ``split`` (``Submission.split_values``): 0 for a normal call, whose ``(meta, value)``
# are Ray's two returns; n > 0 when ``fn`` returns ``(meta, [v1..vn])`` -- a batch of map
# items -- and each value must become its own handle: the task then has 1 + n returns.


def pack(
    timeout: float | None, split: int, args: Sequence[Any]
) -> tuple[tuple[Any, ...], list[Any]]:
    """Split a call's arguments into the packed head and the list of handles."""
    refs = [a for a in args if isinstance(a, ray.ObjectRef)]
    if not refs:
        return (timeout, split, tuple(args), ()), refs
    positions = tuple(i for i, a in enumerate(args) if isinstance(a, ray.ObjectRef))
    plain = tuple(None if isinstance(a, ray.ObjectRef) else a for a in args)
    return (timeout, split, plain, positions), refs


def run_packed(
    fn: Callable[..., Any], static: tuple[Any, ...], head: tuple[Any, ...], resolved: Any
) -> Any:
    """On the worker: rebuild the arguments, run ``fn`` under its timeout, shape returns."""
    timeout, split, plain, positions = head
    if positions:
        plain = list(plain)
        for i, value in zip(positions, resolved, strict=True):
            plain[i] = value
    if timeout is None:
        result = fn(*static, *plain)
    else:
        result = run_limited(timeout, fn, *static, *plain)
    if not split:
        return result
    meta, values = result
    return (meta, *values)


def _bound(fn: Callable[..., Any], static: tuple[Any, ...]) -> Callable[..., Any]:
    main = naming.main_module_name()

    def call(head: tuple[Any, ...], *resolved: Any) -> Any:
        naming.adopt_main(main)
        return run_packed(fn, static, head, resolved)

    _name_like(call, fn)
    return call


def _unpacking(fn: Callable[..., Any]) -> Callable[..., Any]:
    main = naming.main_module_name()

    def call(head: tuple[Any, ...], static: tuple[Any, ...], *resolved: Any) -> Any:
        naming.adopt_main(main)
        return run_packed(fn, static, head, resolved)

    _name_like(call, fn)
    return call


def _name_like(call: Callable[..., Any], fn: Callable[..., Any]) -> None:
    # Ray names the task and its errors after the function: show the caller's name.
    call.__name__ = getattr(fn, "__name__", "call")
    call.__qualname__ = getattr(fn, "__qualname__", call.__name__)
    # __module__ stays ours: cloudpickle must ship this closure by value, never look up
    # a same-named function elsewhere.


class Entry:
    """One remote function, the args it needs in front of each call, and its options."""

    __slots__ = ("_options", "base_options", "keep", "on_new_options", "prefix", "remote_fn")

    def __init__(
        self,
        remote_fn: Any,
        prefix: tuple[Any, ...],
        keep: tuple[Any, ...],
        base_options: dict[str, Any],
        on_new_options: Callable[[str, Resources], None] | None = None,
    ) -> None:
        self.remote_fn = remote_fn
        self.prefix = prefix
        self.keep = keep  # holds fn and static args so their ids stay theirs
        self.base_options = base_options  # the backend's task_options and runtime_env
        self.on_new_options = on_new_options
        self._options: dict[tuple[str, Resources, int], Any] = {}

    def options(self, name: str, resources: Resources, split: int = 0) -> Any:
        """The remote function with Ray options for this task name, resources and split."""
        try:
            return self._options[name, resources, split]
        except KeyError:
            pass
        if self.on_new_options is not None:
            self.on_new_options(name, resources)
        opts: dict[str, Any] = {
            **self.base_options,
            "name": name,
            "num_cpus": resources.cpus,
            "num_gpus": resources.gpus,
        }
        if resources.memory_bytes is not None:
            opts["memory"] = resources.memory_bytes
        if split:
            opts["num_returns"] = 1 + split
        wrapped = self.remote_fn.options(**opts)
        self._options[name, resources, split] = wrapped
        return wrapped


class RemoteFunctions:
    """The bounded cache of :class:`Entry` objects of one backend."""

    def __init__(
        self,
        base_options: dict[str, Any] | None = None,
        before_export: Callable[[], None] | None = None,
        on_new_options: Callable[[str, Resources], None] | None = None,
    ) -> None:
        self._base_options = base_options or {}
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._before_export = before_export
        self._on_new_options = on_new_options

    def get(self, fn: Callable[..., Any], args: Sequence[Any], n_static: int) -> Entry:
        key = (id(fn), *[id(a) for a in args[:n_static]]) if n_static else (id(fn),)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._make(fn, tuple(args[:n_static]))
                self._entries[key] = entry
                while len(self._entries) > CACHE_SIZE:
                    self._entries.popitem(last=False)
        return entry

    def _make(self, fn: Callable[..., Any], static: tuple[Any, ...]) -> Entry:
        if self._before_export is not None:
            self._before_export()
        size = len(_dumps(static)) if static else 0
        prefix: tuple[Any, ...] = ()
        if size <= INLINE_LIMIT:
            call = _bound(fn, static)
        else:
            logger.debug("static args of %s are %d bytes: shipping them with ray.put", fn, size)
            call, prefix = _unpacking(fn), (ray.put(static),)
        remote_fn = ray.remote(num_returns=2, max_retries=0, retry_exceptions=False)(call)
        keep = (fn, *static)
        return Entry(remote_fn, prefix, keep, self._base_options, self._on_new_options)


__all__ = ["INLINE_LIMIT", "Entry", "RemoteFunctions", "pack", "run_packed"]
