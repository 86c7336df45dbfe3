"""Would a task's call hit the cache for these workflow inputs? If not, why? (no printing)

:class:`Explainer` answers ``flowkit cache explain`` without running anything. Every key and
token comes from :mod:`flowkit.keys`, the one home of cache keys that the runner and the
engine use too: for each call of the task it builds the call's key
(:func:`flowkit.keys.call_key`) from the task's identity, code fingerprint and interface (the
:class:`flowkit.runner.TaskRuntime` that :func:`flowkit.runner.make_runtime` gives the runner)
and the token of every input not in ``cache_ignore``. An input's token comes, as in the
engine (:mod:`flowkit.values`), from:

* a workflow input or a literal: the token of its value (:func:`flowkit.keys.value_token`);
* an upstream node's output: the output token recorded in that node's cache entry, found
  by computing the upstream call's key the same way, recursively (an output that names user
  code is loaded, and its token re-derived with :func:`flowkit.keys.token` from the code as
  it is now, as on a hit). Where the engine would hash the value itself (a whole
  multi-output tuple, a list built from several outputs, the items of a list being mapped
  over), the value is loaded from the store.

An upstream that is not cached, not in the cache for these inputs, or dynamic makes the
input *unknown*: the report says which input, where it comes from and why ("comes from
`load`, which has no cache entry for these inputs: run the workflow first"), and still
compares the code with the task's newest entry (:func:`flowkit.cache.diff`). With every
input known, the key is looked up and :func:`flowkit.cache.explain` names what differs from
the nearest earlier entry. Code changes are named from the entry's fingerprint document
(stored once per code digest); when that document is missing or damaged, the report says
only that the code changed and that which parts is unknown.

Map nodes are explained per item (``train[2]``); nodes inside a dynamic task's sub-graph
exist only at run time and cannot be found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from flowkit import cache, keys
from flowkit.cache import CacheEntry
from flowkit.fieldpath import resolve
from flowkit.graph import Binding, DictOf, FieldOf, Graph, InputRef, ListOf, Node, OutputRef, Select
from flowkit.graph import Literal as LiteralBinding
from flowkit.runner import TaskRuntime, make_runtime
from flowkit.store import Store

Status = Literal["hit", "miss", "unknown", "uncached"]


@dataclass(frozen=True)
class CallReport:
    """The answer for one call: ``status`` and why.

    ``reasons``: on a miss, what differs from ``entry`` (the nearest earlier entry); when
    unknown, which inputs cannot be resolved and why. ``changes``: when unknown, what
    differs in the code (and the known inputs) from ``entry``, the task's newest entry.
    """

    node: str
    task: str
    status: Status
    reasons: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    key: str | None = None
    entry: CacheEntry | None = None


class _Unknown(Exception):
    """A value or digest that is only known by running something; ``reason`` says where
    it comes from (``"`load`, which has no cache entry for these inputs"``)."""

    def __init__(self, reason: str, *, run_first: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_first = run_first


class _UnknownMapped(Exception):
    """The items of a map node's input ``param`` are unknown (``unknown`` says why)."""

    def __init__(self, param: str, unknown: _Unknown) -> None:
        super().__init__(param)
        self.param = param
        self.unknown = unknown


class _Unstable(Exception):
    """An input has no stable digest, so the call is never cached."""


@dataclass(frozen=True)
class _Resolved:
    """A node whose calls are all in the cache: one entry, or one per map item."""

    node: Node
    rt: TaskRuntime
    entries: tuple[CacheEntry, ...]


# One item of a mapped argument, as in the engine: ("binding", Binding, None) |
# ("handle", load item, digest or None) | ("value", value, None)
_Item = tuple[str, Any, "str | None"]


class Explainer:
    """Explains calls of ``graph`` with workflow ``inputs`` (defaults applied) on ``store``."""

    def __init__(self, graph: Graph, inputs: dict[str, Any], store: Store) -> None:
        self.graph = graph
        self.inputs = inputs
        self.store = store
        self._runtimes: dict[int, TaskRuntime] = {}
        self._resolved: dict[str, _Resolved | _Unknown] = {}

    # -- public ---------------------------------------------------------------------------

    def targets(self, task: str) -> list[Node]:
        """Nodes whose id is ``task``, else whose task name is ``task``."""
        by_id = [n for n in self.graph.nodes.values() if n.id == task]
        return by_id or [n for n in self.graph.nodes.values() if n.name == task]

    def task_names(self) -> list[str]:
        return list(dict.fromkeys(n.name for n in self.graph.nodes.values()))

    def explain(self, node: Node) -> list[CallReport]:
        """One report per call of ``node`` (one per item for a map node)."""
        if node.dynamic:
            return [
                CallReport(
                    node.id,
                    node.name,
                    "uncached",
                    (
                        f"`{node.name}` is a dynamic task: its body runs on every run; explain the "
                        "tasks it calls by their names",
                    ),
                )
            ]
        rt = self._runtime(node)
        if not rt.use_cache:
            return [
                CallReport(
                    node.id,
                    node.name,
                    "uncached",
                    (f"task `{node.name}` is not cached; declare it with @fk.task(cache=True)",),
                )
            ]
        bindings = dict(node.bindings)
        if not node.mapped:
            return [self._explain_call(node, rt, bindings, None, node.id)]
        try:
            calls = self._map_calls(node, bindings)
        except _UnknownMapped as m:
            changes, newest = self._newest_changes(rt, {}, None)
            reason = _phrase(f"input `{m.param}` (mapped over)", m.unknown)
            return [CallReport(node.id, node.name, "unknown", (reason,), changes, entry=newest)]
        return [
            self._explain_call(node, rt, bindings, items, f"{node.id}[{i}]")
            for i, items in enumerate(calls)
        ]

    # -- one call -------------------------------------------------------------------------

    def _explain_call(
        self,
        node: Node,
        rt: TaskRuntime,
        bindings: dict[str, Binding],
        items: dict[str, _Item] | None,
        call_id: str,
    ) -> CallReport:
        digests: dict[str, str] = {}
        unknown: list[str] = []
        unknown_params: set[str] = set()
        for pname, got in self._input_tokens(rt, bindings, items):
            if isinstance(got, str):
                digests[pname] = got
            elif isinstance(got, _Unknown):
                unknown.append(_phrase(f"input `{pname}`", got))
                unknown_params.add(pname)
            else:
                return CallReport(
                    call_id,
                    node.name,
                    "miss",
                    (
                        f"input `{pname}` has no stable digest ({got}), so this call is never "
                        "cached",
                    ),
                )
        if unknown:
            changes, newest = self._newest_changes(rt, digests, unknown_params)
            return CallReport(call_id, node.name, "unknown", tuple(unknown), changes, entry=newest)
        key = keys.call_key(rt.identity, rt.code, rt.interface, digests)
        exp = cache.explain(
            self.store,
            rt.identity,
            rt.components,
            digests,
            rt.version,
            interface=rt.interface,
            key=key,
            name=rt.name,
        )
        status: Status = "hit" if exp.hit else "miss"
        return CallReport(call_id, node.name, status, exp.reasons, key=key, entry=exp.nearest)

    def _input_tokens(
        self, rt: TaskRuntime, bindings: dict[str, Binding], items: dict[str, _Item] | None
    ) -> Iterator[tuple[str, str | _Unknown | _Unstable]]:
        """Each input that enters the key (``cache_ignore`` aside) with its token, or with
        why it has none."""
        for pname, b in bindings.items():
            if pname in rt.ignore:
                continue
            try:
                token: str | _Unknown | _Unstable = self._input_digest(
                    b, items.get(pname) if items else None
                )
            except (_Unknown, _Unstable) as e:
                token = e
            yield pname, token

    def _newest_changes(
        self, rt: TaskRuntime, digests: dict[str, str], unknown: set[str] | None
    ) -> tuple[tuple[str, ...], CacheEntry | None]:
        """What differs from the task's newest entry, leaving out the ``unknown`` inputs
        (None: all inputs are unknown)."""
        known = cache.entries(self.store, rt.identity)
        if not known:
            return (), None
        newest = known[0]
        # unknown inputs take the entry's digests, so only code and known inputs are compared
        inputs = {k: v for k, v in newest.inputs.items() if unknown is None or k in unknown}
        inputs.update(digests)
        changes = cache.diff(newest, rt.components, rt.interface, inputs, rt.version)
        return tuple(changes), newest

    # -- digests and values ---------------------------------------------------------------

    def _input_digest(self, b: Binding, item: _Item | None) -> str:
        """The digest the runner would use for one input (``known`` digest, else the value's)."""
        if item is None:
            digest = self._known_digest(b)
            return digest if digest is not None else self._value_digest(lambda: self._value(b))
        kind, payload, digest = item
        if kind == "binding":
            known = self._known_digest(payload)
            return known if known is not None else self._value_digest(lambda: self._value(payload))
        if kind == "handle":
            return digest if digest is not None else self._value_digest(payload)
        return self._value_digest(lambda: payload)

    def _value_digest(self, get: Callable[[], Any]) -> str:
        digest = keys.value_token(get(), store=self.store)
        if digest is None:
            raise _Unstable("its serialised bytes vary; see the warning above")
        return digest

    def _known_digest(self, b: Binding) -> str | None:
        """The token the engine already knows for a binding (as :mod:`flowkit.values` does)."""
        if not isinstance(b, OutputRef):
            return None
        res = self._resolve(b.node)
        if res.node.mapped:
            item_digests = [self._single_token(res, e) for e in res.entries]
            if any(d is None for d in item_digests):
                return None
            return keys.list_token([d for d in item_digests if d is not None])
        digests = self._tokens(res, res.entries[0])
        if b.index is None:
            return digests[0] if len(digests) == 1 else None
        return digests[b.index] if b.index < len(digests) else None

    def _value(self, b: Binding) -> Any:
        """A binding's value: inputs and literals as they are, outputs loaded from the store."""
        if isinstance(b, InputRef):
            return self.inputs[b.name]
        if isinstance(b, LiteralBinding):
            return b.value
        if isinstance(b, ListOf):
            items = [self._value(x) for x in b.items]
            return tuple(items) if b.as_tuple else items
        if isinstance(b, DictOf):
            return {k: self._value(x) for k, x in b.items}
        if isinstance(b, FieldOf):  # cfg.lr: the field of the value (hashed, like the engine)
            return resolve(self._value(b.base), b.path)
        if isinstance(b, Select):  # fk.cond: the branch the predicate picks
            return self._value(b.then if self._value(b.pred) else b.otherwise)
        res = self._resolve(b.node)
        if res.node.mapped:
            return [self._load(res, e) for e in res.entries]
        value = self._load(res, res.entries[0])
        return value if b.index is None else value[b.index]

    def _loaded(self, res: _Resolved, entry: CacheEntry) -> list[tuple[Any, set[Any]]]:
        loaded = cache.load_outputs(self.store, entry, res.rt.output_types)
        if loaded is None:
            raise _Unknown(
                f"`{res.node.name}`, whose cached output could not be loaded (missing or damaged)"
            )
        return loaded

    def _load(self, res: _Resolved, entry: CacheEntry) -> Any:
        values = [v for v, _ in self._loaded(res, entry)]
        if not res.rt.multi_output:
            return values[0]
        if hasattr(res.rt.return_type, "_make"):
            return res.rt.return_type._make(values)
        return tuple(values)

    def _tokens(self, res: _Resolved, entry: CacheEntry) -> tuple[str, ...]:
        """The outputs' tokens as a hit gives them: re-derived where they name user code."""
        if all(t == a.digest for t, a in zip(entry.tokens, entry.outputs, strict=True)):
            return entry.tokens
        loaded = self._loaded(res, entry)
        return tuple(
            keys.token(a.digest, refs) for a, (_, refs) in zip(entry.outputs, loaded, strict=True)
        )

    def _single_token(self, res: _Resolved, entry: CacheEntry) -> str | None:
        """A map item's output token as the engine keeps it (None for multi-output tasks)."""
        return None if res.rt.multi_output else self._tokens(res, entry)[0]

    def _map_calls(self, node: Node, bindings: dict[str, Binding]) -> list[dict[str, _Item]]:
        """The mapped items of each call of a map node (as many calls as the shortest list);
        raises :class:`_UnknownMapped` naming the first mapped input that is not known."""
        per_param = {}
        for p in node.mapped:
            try:
                per_param[p] = self._map_items(bindings[p])
            except _Unknown as u:
                raise _UnknownMapped(p, u) from None
        n = min(len(v) for v in per_param.values()) if per_param else 0
        return [{p: per_param[p][i] for p in node.mapped} for i in range(n)]

    def _map_items(self, b: Binding) -> list[_Item]:
        """The items of a mapped argument (as the engine expands a map node)."""
        if isinstance(b, ListOf):
            return [("binding", item, None) for item in b.items]
        if isinstance(b, OutputRef):
            res = self._resolve(b.node)
            if res.node.mapped:
                return [
                    ("handle", _loader(self, res, e), self._single_token(res, e))
                    for e in res.entries
                ]
        return [("value", v, None) for v in self._value(b)]

    # -- upstream nodes -------------------------------------------------------------------

    def _resolve(self, node_id: str) -> _Resolved:
        """The cache entries of an upstream node's calls, or raise :class:`_Unknown`."""
        found = self._resolved.get(node_id)
        if found is None:
            try:
                found = self._resolve_now(self.graph.nodes[node_id])
            except _Unknown as u:
                found = u
            self._resolved[node_id] = found
        if isinstance(found, _Unknown):
            raise found
        return found

    def _resolve_now(self, node: Node) -> _Resolved:
        if node.dynamic:
            raise _Unknown(
                f"dynamic task `{node.name}`, whose output is only known by running it",
                run_first=False,
            )
        rt = self._runtime(node)
        if not rt.use_cache:
            raise _Unknown(
                f"`{node.name}`, which is not cached (cache=False), so its output is only "
                "known by running it",
                run_first=False,
            )
        bindings = dict(node.bindings)
        if not node.mapped:
            return _Resolved(node, rt, (self._entry(node, rt, bindings, None),))
        try:
            calls = self._map_calls(node, bindings)
        except _UnknownMapped as m:
            raise _Unknown(
                f"`{node.name}`, whose input `{m.param}` (mapped over) comes from "
                f"{m.unknown.reason}",
                run_first=m.unknown.run_first,
            ) from None
        return _Resolved(node, rt, tuple(self._entry(node, rt, bindings, i) for i in calls))

    def _entry(
        self,
        node: Node,
        rt: TaskRuntime,
        bindings: dict[str, Binding],
        items: dict[str, _Item] | None,
    ) -> CacheEntry:
        digests = {}
        for pname, got in self._input_tokens(rt, bindings, items):
            if isinstance(got, _Unknown):
                raise _Unknown(
                    f"`{node.name}`, whose input `{pname}` comes from {got.reason}",
                    run_first=got.run_first,
                )
            if isinstance(got, _Unstable):
                raise _Unknown(
                    f"`{node.name}`, which is never cached for these inputs (input `{pname}` "
                    "has no stable digest)",
                    run_first=False,
                )
            digests[pname] = got
        key = keys.call_key(rt.identity, rt.code, rt.interface, digests)
        entry = cache.lookup(self.store, key, rt.identity)
        if entry is None or not all(self.store.has(a) for a in entry.outputs):
            raise _Unknown(f"`{node.name}`, which has no cache entry for these inputs")
        return entry

    def _runtime(self, node: Node) -> TaskRuntime:
        rt = self._runtimes.get(id(node.task))
        if rt is None:
            rt = self._runtimes[id(node.task)] = make_runtime(node.task, self.store, True)
        return rt


def _loader(ex: Explainer, res: _Resolved, entry: CacheEntry) -> Callable[[], Any]:
    return lambda: ex._load(res, entry)


def _phrase(what: str, u: _Unknown) -> str:
    tail = ": run the workflow first" if u.run_first else ""
    return f"{what} comes from {u.reason}{tail}"
