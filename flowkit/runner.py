"""The work function: what runs on a worker for one task call.

:func:`run_call` is the only function the engine submits to a backend. It rebuilds the
keyword arguments from the flat inputs (handles the backend has resolved to values),
computes the call's key, serves a hit (from the cache, or from the run being resumed), or
calls the function — its prints and logging captured for this attempt
(:mod:`flowkit.capture`) — and stores its outputs: every output is kept, cached or not,
unless the run or the task says ``keep=False``. Everything it needs travels in its
arguments, so it runs the same in-process, on a thread, or on a Ray worker — and the same
call gets the same key everywhere (the key itself is derived in :mod:`flowkit.keys`).

Every argument a task receives is private to that call (:func:`flowkit.isolation.private`):
a task that mutates its input cannot change what another task, or the key already computed
from the input's digest, saw.

A value served from the cache is loaded as the task's annotated output types (class
references resolve against them) and checked against the return annotation like a fresh
one; a value that does not fit is a miss, never served.

Each argument is rebuilt from the flat inputs by its template (:mod:`flowkit.arguments`),
built by the engine.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flowkit import cache, capture, hashing, isolation, keys, secret, serialize, typecheck
from flowkit.arguments import Templates
from flowkit.errors import SerializationError, StoreError, TypeMismatchError
from flowkit.records import short_key
from flowkit.reprs import short_repr
from flowkit.store import Artifact, Store
from flowkit.taskspec import TaskSpec

log = logging.getLogger(__name__)

# Captured text passes through the secret mask wherever a call runs (a Ray worker too).
capture.set_masker(secret.mask)

#: How a run uses the cache: True (look up and record tasks declared ``cache=True``), False
#: (neither), or "refresh" (recompute and overwrite).
CacheMode = bool | Literal["refresh"]

#: Logs longer than this (characters) are stored as an object; the record keeps head and tail.
LOGS_INLINE = 4096


@dataclass(frozen=True)
class TaskRuntime:
    """What every call of one task in one run shares (shipped once per worker on Ray).

    ``keep``: store the outputs of calls that are not cached (every output is kept unless the
    run or the task says ``keep=False``). ``keyed``: derive every call's key, cached or not
    (a kept call's key is what ``fk.run(resume=...)`` matches). ``reuse``: short key
    (:func:`flowkit.records.short_key`) -> the outputs
    of the same call in the run being resumed (``resumed_from``), served like a cache hit.
    """

    name: str
    identity: str
    fn: Callable[..., Any]
    return_type: Any
    outputs: tuple[tuple[str, Any], ...]
    multi_output: bool
    use_cache: bool = False
    refresh: bool = False
    code: str = ""
    components: Mapping[str, str] = field(default_factory=dict)
    interface: str = ""
    version: str | None = None
    ignore: frozenset[str] = frozenset()
    store: Store | None = None
    run_id: str | None = None
    output_types: tuple[Any, ...] = ()  # what a cache hit's values are loaded as
    # parameters typed `str`: a fk.Secret given to one arrives as its text (SecretText)
    reveal: frozenset[str] = frozenset()
    keep: bool = False
    keyed: bool = False
    reuse: Mapping[str, tuple[Artifact, ...]] = field(default_factory=dict)
    resumed_from: str | None = None


@dataclass(frozen=True, slots=True)
class Meta:
    """The small result of a call that travels back to the driver.

    ``digests`` are the outputs' tokens (what a downstream key uses, see :mod:`flowkit.keys`),
    ``outputs`` their artifacts by output name (``Artifact.to_dict(compact=True)``; None for an
    output not stored). The rest describes the attempt: what it printed and logged (``logs``;
    a large log is stored and ``logs_ref`` names it), its CPU seconds and the worker's peak
    RSS; ``reused_from`` names the resumed run a reused call came from.
    """

    key: str | None
    cached: bool
    digests: tuple[str | None, ...]
    started: float
    ended: float
    outputs: dict[str, dict[str, Any] | None] | None = None
    logs: str = ""
    logs_ref: dict[str, Any] | None = None
    cpu: float | None = None
    peak_rss: int | None = None
    reused_from: str | None = None
    worker: str | None = None
    cards: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A call's key and input tokens, computed in the driver, where the key was looked up and
    missed: the worker stores under it without hashing or looking up again."""

    key: str
    tokens: Mapping[str, str]


def run_call(
    rt: TaskRuntime,
    templates: Templates,
    label: str,
    known: Mapping[str, str] | Prepared,
    *flat: Any,
) -> tuple[Meta, Any]:
    """Run one task call (see the module docstring); returns ``(meta, value)``. ``label``
    names the call in its captured logs (the node id)."""
    started = time.time()
    kwargs = {name: t.build(flat) for name, t in templates}  # (inline: once per call)
    key: str | None = None
    tokens: Mapping[str, str] | None = None
    if isinstance(known, Prepared):
        key, tokens = known.key, known.tokens
    elif rt.keyed:
        tokens = _input_tokens(rt, kwargs, known)
        if tokens is not None:
            key = keys.call_key(rt.identity, rt.code, rt.interface, tokens)
            hit = _served(rt, key, started)
            if hit is not None:
                return hit
    # private copies only for a call that runs: hits and keys use the originals
    try:
        with capture.attempt(label, run_id=rt.run_id) as cap:
            value = rt.fn(**_call_arguments(rt, kwargs))
        check_return(rt, value)
    except Exception as e:
        _describe_failure(e, started)
        raise
    if rt.multi_output:  # a NamedTuple as a cache hit would give it: fields work downstream
        value = typecheck.rebuild_namedtuple(rt.return_type, value)
    cached_key = key if rt.use_cache and tokens is not None else None
    if cached_key is None and not rt.keep:
        digests: tuple[str | None, ...] = (None,) * len(rt.outputs)
        outputs = None
    else:
        digests, outputs = store_outputs(rt, cached_key, tokens or {}, value)
    logs, logs_ref = _kept_logs(rt, cap.logs)
    meta = Meta(
        key,
        False,
        digests,
        started,
        time.time(),
        outputs,
        logs,
        logs_ref,
        cap.cpu,
        cap.peak_rss,
        None,
        cap.worker,
        cap.cards,
    )
    return meta, value


def _input_tokens(
    rt: TaskRuntime, kwargs: Mapping[str, Any], known: Mapping[str, str]
) -> dict[str, str] | None:
    """The inputs' tokens: every one for a cached task (with a warning when one has none);
    for a call that is only kept, the known ones, plain scalars and secrets (their HMAC, as in a
    cached call's key; a value that would have to be hashed gives the call no key: it is kept
    but cannot be resumed)."""
    if rt.use_cache:
        return keys.input_tokens(rt.ignore, rt.name, kwargs, known, store=rt.store)
    tokens = {}
    for name, value in kwargs.items():
        if name in rt.ignore:
            continue
        tok = known.get(name)
        if tok is None:
            tok = _plain_token(rt, value)
            if tok is None:
                return None
        tokens[name] = tok
    return tokens


def _plain_token(rt: TaskRuntime, value: Any) -> str | None:
    """A kept call's token of a scalar or a secret, or None."""
    if keys.is_secret(value):
        return keys.value_token(value, store=rt.store)
    data = serialize.scalar_json_bytes(value)
    if data is None:
        return None
    return hashing.blob_digest("json", hashlib.sha256(data).hexdigest())


def _served(rt: TaskRuntime, key: str, started: float) -> tuple[Meta, Any] | None:
    """``(meta, value)`` of a call served from the resumed run or the cache, else None."""
    reused = rt.reuse.get(short_key(key)) if rt.reuse else None
    if reused is not None:
        hit = _loaded(rt, key, reused, started, rt.resumed_from)
        if hit is not None:
            return hit
    if not rt.use_cache or rt.refresh:
        return None
    assert rt.store is not None
    entry = cache.lookup(rt.store, key, rt.identity)
    return None if entry is None else _loaded(rt, key, entry.outputs, started, None)


def _loaded(
    rt: TaskRuntime,
    key: str,
    artifacts: tuple[Artifact, ...],
    started: float,
    reused_from: str | None,
) -> tuple[Meta, Any] | None:
    """The call served from stored outputs, or None when they cannot be loaded intact or do
    not fit the task's annotation (a miss, never a wrong value)."""
    assert rt.store is not None
    loaded = cache.load_artifacts(rt.store, rt.name, artifacts, rt.output_types)
    if loaded is None:
        return None
    if rt.multi_output:
        value = typecheck.rebuild_namedtuple(rt.return_type, tuple([v for v, _ in loaded]))
    else:
        value = loaded[0][0]
    try:
        check_return(rt, value)
    except TypeMismatchError as exc:
        log.warning("stored outputs of %s do not fit the annotation (%s); recomputing", key, exc)
        return None
    # (lists, not generators: this runs on every cache hit)
    pairs = zip(artifacts, loaded, strict=True)
    tokens = tuple([keys.token(a.digest, refs) for a, (_, refs) in pairs])
    outputs: dict[str, dict[str, Any] | None] = {
        n: a.to_dict(compact=True) for (n, _), a in zip(rt.outputs, artifacts, strict=True)
    }
    return Meta(key, True, tokens, started, time.time(), outputs, reused_from=reused_from), value


def _describe_failure(e: Exception, started: float) -> None:
    """Give a failed attempt what the engine records of it, on the worker: the full traceback
    (a traceback does not survive pickling back from a remote worker) and the attempt's times
    (``flowkit_attempt``, which :mod:`flowkit.capture` fills with the logs)."""
    if getattr(e, "remote_traceback", None) is None:
        try:
            e.remote_traceback = secret.mask(traceback.format_exc())  # type: ignore[attr-defined]
        except Exception:  # an exception type that refuses attributes
            return
    info = getattr(e, "flowkit_attempt", None)
    if isinstance(info, dict):
        info.setdefault("started", started)
        info.setdefault("ended", time.time())


def _kept_logs(rt: TaskRuntime, logs: str) -> tuple[str, dict[str, Any] | None]:
    """The logs as the record keeps them: whole when short, else head and tail with the whole
    text stored as an object (``logs_ref``)."""
    if len(logs) <= LOGS_INLINE or rt.store is None:
        return logs, None
    try:
        art = rt.store.put(logs, what=f"logs of task `{rt.name}`")
    except Exception:  # the log is a convenience: never fail a call that worked
        log.warning("could not store the logs of task `%s`", rt.name, exc_info=True)
        return _cut(logs), None
    return _cut(logs), art.to_dict()


def _cut(logs: str) -> str:
    head, tail = logs[: LOGS_INLINE // 2], logs[-LOGS_INLINE // 4 :]
    return f"{head}\n[... {len(logs) - len(head) - len(tail)} characters cut ...]\n{tail}"


def lookup_call(
    rt: TaskRuntime,
    templates: Templates,
    known: Mapping[str, str],
    flat: Sequence[Any],
) -> tuple[Meta, Any] | Prepared | None:
    """What :func:`run_call` returns on a hit (the cache, or the run being resumed), else
    the :class:`Prepared` key of the miss (None when the call has no key).

    For backends whose handles are values, the engine asks this in the driver before
    submitting: a hit then costs no hand-off to a worker (and, on threads, no contention
    for the interpreter lock between workers that only read small files). On a miss the
    key goes with the call, so the worker neither hashes its inputs nor looks up again.
    """
    if not rt.keyed:
        return None
    started = time.time()
    kwargs = {name: t.build(flat) for name, t in templates}
    tokens = _input_tokens(rt, kwargs, known)
    if tokens is None:
        return None
    key = keys.call_key(rt.identity, rt.code, rt.interface, tokens)
    hit = _served(rt, key, started)
    return hit if hit is not None else Prepared(key, tokens)


def run_batch(
    rt: TaskRuntime,
    calls: Sequence[tuple[Templates, str, Mapping[str, str] | Prepared, Sequence[Any]]],
) -> tuple[list[Meta | Exception], list[Any]]:
    """Run several calls of one task in a row (small map items on in-process backends).

    Each call's outcome is its :class:`Meta` or the exception it raised, so the engine still
    retries and reports every call on its own.
    """
    outcomes: list[Meta | Exception] = []
    values: list[Any] = []
    for templates, label, known, flat in calls:
        try:
            meta, value = run_call(rt, templates, label, known, *flat)
        except Exception as e:  # reported per call, like a failed future
            outcomes.append(e)
            values.append(None)
        else:
            outcomes.append(meta)
            values.append(value)
    return outcomes, values


def check_return(rt: TaskRuntime, value: Any) -> None:
    """Cheap runtime check of a returned value against the annotation."""
    if typecheck.check_value(value, rt.return_type):
        return
    which = ""
    if rt.multi_output and isinstance(value, tuple) and len(value) == len(rt.outputs):
        for (oname, otype), v in zip(rt.outputs, value, strict=True):
            if not typecheck.check_value(v, otype):
                which = (
                    f" (output `{oname}` is {type(v).__name__} {short_repr(v)}, expected "
                    f"{typecheck.type_repr(otype)})"
                )
                break
    raise TypeMismatchError(
        f"task `{rt.name}` returned {type(value).__name__} {short_repr(value)} but is annotated "
        f"-> {typecheck.type_repr(rt.return_type)}{which}; fix the return annotation or the value"
    )


def store_outputs(
    rt: TaskRuntime,
    key: str | None,
    inputs: Mapping[str, str],
    value: Any,
) -> tuple[tuple[str | None, ...], dict[str, dict[str, Any] | None]]:
    """Write each output to the store and, for a cached call (``key`` given), record the cache
    entry; returns the outputs' tokens and artifacts by name."""
    assert rt.store is not None
    values = tuple(value) if rt.multi_output else (value,)
    stored = [
        _put_output(rt, oname, v, cached=key is not None)
        for (oname, _), v in zip(rt.outputs, values, strict=True)
    ]
    if key is not None:  # every output was stored: _put_output raises otherwise
        cache.record(
            rt.store,
            cache.CacheEntry(
                key=key,
                identity=rt.identity,
                outputs=tuple(a for a, _ in stored if a is not None),
                components=dict(rt.components),
                interface=rt.interface,
                inputs=dict(inputs),
                version=rt.version,
                created=time.time(),
                run_id=rt.run_id,
                tokens=tuple(t for _, t in stored if t is not None),
            ),
        )
    outputs = {
        oname: None if a is None else a.to_dict(compact=True)
        for (oname, _), (a, _) in zip(rt.outputs, stored, strict=True)
    }
    return tuple(t for _, t in stored), outputs


def _put_output(
    rt: TaskRuntime, oname: str, value: Any, *, cached: bool
) -> tuple[Artifact | None, str | None]:
    """One output stored: its artifact and token. A cached call whose output cannot be stored
    fails (its entry would lie); a call that is only kept keeps what it can (None, None, with
    one warning)."""
    assert rt.store is not None
    what = f"task `{rt.name}` output `{oname}`" if rt.multi_output else f"task `{rt.name}` output"
    refs: set[Any] = set()
    try:
        artifact = rt.store.put(value, what=what, refs=refs)
    except Exception as e:
        if not cached:
            _warn_unkept(rt.name, what, e)
            return None, None
        if isinstance(e, (SerializationError, StoreError)):
            raise
        # an unexpected serializer failure still names the output
        raise SerializationError(f"{what}: cannot be stored: {e}") from e
    if not cached and not serialize.is_stable(artifact.format):
        # bytes that may differ for an equal value (a pickle): a cached consumer derives the
        # token itself, with the checks (and the warning) of keys.value_token
        return artifact, None
    return artifact, keys.token(artifact.digest, refs)


_warned_unkept: set[str] = set()


def _warn_unkept(task: str, what: str, e: Exception) -> None:
    """One warning per task and process: the call succeeded, its output is just not kept."""
    if task in _warned_unkept:
        return
    _warned_unkept.add(task)
    log.warning(
        "%s is not kept in the store (%s); the run goes on. Make it storable, or pass "
        "@fk.task(keep=False) to say it need not be kept",
        what,
        e,
    )


def _call_arguments(rt: TaskRuntime, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the function is called with: private copies, and a secret given to a parameter
    typed ``str`` as its text (after the key, which holds only its HMAC, was derived)."""
    if not rt.reveal:
        return {name: isolation.private(v) for name, v in kwargs.items()}
    return {
        name: secret.revealed(v) if name in rt.reveal else isolation.private(v)
        for name, v in kwargs.items()
    }


def make_runtime(
    task: TaskSpec,
    store: Store,
    cache: CacheMode,
    run_id: str | None = None,
    *,
    keep: bool = False,
    reuse: Mapping[str, tuple[Artifact, ...]] | None = None,
    resumed_from: str | None = None,
) -> TaskRuntime:
    """The per-run, per-task object shipped with every call (code fingerprint included).

    ``keep``: the run keeps every output (the task's own ``keep=False`` still opts out);
    ``reuse``: this task's calls in the run being resumed, by key."""
    opts = task.options
    use_cache = opts.cache and cache is not False
    keep = keep and opts.keep
    reuse = reuse or {}
    keyed = use_cache or keep or bool(reuse)
    code, components = keys.code(task) if keyed else ("", {})
    return TaskRuntime(
        name=task.name,
        identity=keys.identity(task),
        fn=task.fn,
        return_type=task.return_type,
        outputs=tuple(task.outputs),
        output_types=tuple(t for _, t in task.outputs),
        reveal=frozenset(
            name for name, tp in task.param_types.items() if typecheck.strip_annotated(tp) is str
        ),
        multi_output=task.multi_output,
        use_cache=use_cache,
        refresh=cache == "refresh",
        code=code,
        components=components,
        interface=keys.interface(task),
        version=opts.version,
        ignore=opts.cache_ignore,  # a Secret input is keyed by HMAC (flowkit.keys)
        store=store if keyed else None,
        run_id=run_id,
        keep=keep,
        keyed=keyed,
        reuse=reuse,
        resumed_from=resumed_from,
    )
