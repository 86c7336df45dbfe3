"""Where a running graph's values are, and how a binding becomes a call's argument.

The engine records each finished node's *handle* (the value, or a reference a backend keeps,
such as a Ray ``ObjectRef``), its output digests when the store knows them, and for a dynamic
node the binding of its output in the sub-graph it spliced in (an alias). :class:`Values`
resolves a binding against that state three ways: as an argument *template* plus the handles
it needs (what :func:`flowkit.runner.run_call` receives), as a known *digest* (so an input
from the store is never hashed again), or as a *value* fetched into the driver.

A :class:`~flowkit.graph.FieldOf` binding (``cfg.lr``) reads its field where the value is: in
the driver for a value there (a workflow input, a literal, a fetched value), else on the
worker (:class:`~flowkit.arguments.FieldOfArgs`). Its digest is never the whole value's: two
calls reading two fields of one output must not share a cache key, so the field's value is
hashed where it is read. A :class:`~flowkit.graph.Select` (``fk.cond``) resolves to the branch
its predicate picked; a node of the branch not taken holds :data:`SKIPPED`.

A map node's mapped arguments are split into items (:meth:`Values.map_items`): one
:class:`BindingItem`, :class:`HandleItem`, or for a value already in the driver the
:class:`~flowkit.arguments.Constant` template the call passes it as.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from flowkit import keys
from flowkit.arguments import (
    Constant,
    DictOfArgs,
    FieldOfArgs,
    FromInput,
    ListOfArgs,
    Template,
    whole_input,
)
from flowkit.backend import Backend, fetch_many
from flowkit.errors import GraphError
from flowkit.fieldpath import Step, resolve
from flowkit.graph import (
    Binding,
    DictOf,
    FieldOf,
    Guard,
    InputRef,
    ListOf,
    Literal,
    OutputRef,
    Select,
)


class _Skipped:
    """The result of a node in a branch of ``fk.cond`` that was not taken."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = _Skipped()


@dataclass(frozen=True, slots=True)
class BindingItem:
    """An item the workflow wrote out (one element of a literal list of promises)."""

    binding: Binding


@dataclass(frozen=True, slots=True)
class HandleItem:
    """One output of an upstream map node, left where the backend keeps it (with its token,
    when the store knows it)."""

    handle: Any
    digest: str | None


# A value item (one element of a list fetched into the driver to learn its length) is its
# Constant template: the call passes it as it is, and one object per item is made, not two.
MapItem = Union[BindingItem, HandleItem, Constant]  # noqa: UP007 (runtime alias, 3.10)


class MapResult:
    """The result of a map node: the item handles and digests, in input order."""

    __slots__ = ("digests", "handles")

    def __init__(self, n: int) -> None:
        self.handles: list[Any] = [None] * n
        self.digests: list[str | None] = [None] * n


class Values:
    """Handles, digests and dynamic aliases of the finished nodes of one run."""

    def __init__(self, inputs: dict[str, Any], backend: Backend) -> None:
        self.inputs = inputs
        self.backend = backend
        self.results: dict[str, Any] = {}  # node id -> handle, or MapResult for a map node
        self.digests: dict[str, tuple[str | None, ...]] = {}
        self.aliases: dict[str, Binding] = {}

    def unalias(self, b: Binding) -> Binding:
        """``b`` with dynamic nodes' aliases and decided ``fk.cond`` selections followed."""
        while True:
            if isinstance(b, Select) and not b.per_item:
                b = b.then if self.taken(b.pred) else b.otherwise
            elif isinstance(b, OutputRef) and b.node in self.aliases:
                target = self.aliases[b.node]
                b = target if b.index is None else _element(self.unalias(target), b.index)
            else:
                return b

    def taken(self, pred: Binding) -> bool:
        """The value of an ``fk.cond`` predicate (fetched into the driver)."""
        return bool(self.value(pred))

    def runs(self, guards: tuple[Guard, ...]) -> bool:
        """Whether a node with ``guards`` runs: each predicate has its guard's value, read
        outermost first (an inner predicate of a branch not taken is never read). Per-item
        guards are not read here (:meth:`skipped_items`, when the map expands)."""
        return all(self.taken(g.pred) == g.when for g in guards if not g.per_item)

    def skipped_items(self, guards: tuple[Guard, ...], n: int) -> set[int]:
        """The items of a map node of ``fk.cond.map`` whose predicate picks the other branch."""
        skipped: set[int] = set()
        for g in guards:
            if g.per_item:
                preds = self.value(g.pred)
                if len(preds) != n:
                    raise GraphError(
                        f"fk.cond.map `{g.cond}`: {len(preds)} predicates for {n} items; the "
                        "list of predicates must be as long as the mapped lists"
                    )
                skipped.update(i for i, p in enumerate(preds) if bool(p) != g.when)
        return skipped

    def _picked(self, b: Select) -> list[tuple[Any, str | None]]:
        """(handle, digest) of each item of a per-item selection, from the branch it took."""
        preds = self.value(b.pred)
        sides = []
        for side in (self.unalias(b.then), self.unalias(b.otherwise)):
            res = self._result(side.node) if isinstance(side, OutputRef) else None
            if not isinstance(res, MapResult):
                raise GraphError(f"fk.cond.map `{b.cond}`: a branch is not a map's output")
            sides.append(res)
        then, other = sides
        return [
            (then.handles[i], then.digests[i]) if p else (other.handles[i], other.digests[i])
            for i, p in enumerate(preds)
        ]

    def _result(self, node: str) -> Any:
        res = self.results[node]
        if res is SKIPPED:
            raise GraphError(
                f"node `{node}` was skipped (a branch of fk.cond not taken) but its output "
                "was read; read a branch's output only through the result of fk.cond"
            )
        return res

    def template(self, b: Binding, flat: list[Any]) -> Template:
        """How a call rebuilds ``b``'s value; the handles it reads are appended to ``flat``."""
        b = self.unalias(b)
        if isinstance(b, Select):  # per item (fk.cond.map): each item from its branch
            start = len(flat)
            flat.extend(h for h, _ in self._picked(b))
            return ListOfArgs(tuple(whole_input(i) for i in range(start, len(flat))))
        if isinstance(b, FieldOf):
            base = self.unalias(b.base)
            if isinstance(base, (InputRef, Literal)):  # in the driver: read the field now
                return Constant(resolve(self.value(base), b.path))
            return FieldOfArgs(self.template(base, flat), b.path)
        if isinstance(b, OutputRef):
            res = self._result(b.node)
            if isinstance(res, MapResult):
                start = len(flat)
                flat.extend(res.handles)
                return ListOfArgs(tuple(whole_input(i) for i in range(start, len(flat))))
            flat.append(res)
            n = len(flat) - 1
            return whole_input(n) if b.index is None else FromInput(n, b.index)
        if isinstance(b, InputRef):
            return Constant(self.inputs[b.name])
        if isinstance(b, Literal):
            return Constant(b.value)
        if isinstance(b, ListOf):
            return ListOfArgs(tuple(self.template(x, flat) for x in b.items), b.as_tuple)
        assert isinstance(b, DictOf)
        return DictOfArgs(tuple((k, self.template(x, flat)) for k, x in b.items))

    def digest(self, b: Binding) -> str | None:
        """The token (:mod:`flowkit.keys`) of a binding's value when the run already knows it."""
        b = self.unalias(b)
        if isinstance(b, Select):
            picked = [d for _, d in self._picked(b)]
            return None if None in picked else keys.list_token([d for d in picked if d])
        if not isinstance(b, OutputRef):
            return None  # (a FieldOf too: the field is hashed where it is read, see above)
        res = self._result(b.node)
        if isinstance(res, MapResult):
            if any(d is None for d in res.digests):
                return None
            return keys.list_token([d for d in res.digests if d is not None])
        digests = self.digests.get(b.node, ())
        if b.index is None:
            return digests[0] if len(digests) == 1 else None
        return digests[b.index] if b.index < len(digests) else None

    def map_items(self, b: Binding) -> list[MapItem]:
        """The items of a mapped argument: sub-bindings, handles (kept where they are), or
        values (a list produced by one task is fetched to learn its length)."""
        b = self.unalias(b)
        if isinstance(b, Select):
            return [HandleItem(h, d) for h, d in self._picked(b)]
        if isinstance(b, ListOf):
            return [BindingItem(item) for item in b.items]
        if isinstance(b, OutputRef):
            res = self.results.get(b.node)
            if isinstance(res, MapResult):
                return [HandleItem(h, d) for h, d in zip(res.handles, res.digests, strict=True)]
        return [Constant(v) for v in self.value(b)]

    def value(self, b: Binding) -> Any:
        """A binding's value in the driver (handles fetched)."""
        b = self.unalias(b)
        if isinstance(b, Select):
            return fetch_many(self.backend, [h for h, _ in self._picked(b)])
        if isinstance(b, FieldOf):
            return resolve(self.value(b.base), b.path)
        if isinstance(b, OutputRef):
            res = self._result(b.node)
            if isinstance(res, MapResult):
                return fetch_many(self.backend, res.handles)
            value = self.backend.fetch(res)
            return value if b.index is None else value[b.index]
        if isinstance(b, InputRef):
            return self.inputs[b.name]
        if isinstance(b, Literal):
            return b.value
        if isinstance(b, ListOf):
            items = [self.value(x) for x in b.items]
            return tuple(items) if b.as_tuple else items
        assert isinstance(b, DictOf)
        return {k: self.value(x) for k, x in b.items}


def _element(target: Binding, index: int) -> Binding:
    """The binding of element ``index`` of ``target``'s value (a dynamic body's output)."""
    if isinstance(target, ListOf):
        return target.items[index]
    if isinstance(target, OutputRef) and target.index is None:
        return OutputRef(target.node, index)
    if isinstance(target, Literal):
        return Literal(target.value[index])
    if isinstance(target, FieldOf):
        return FieldOf(target.base, (*target.path, Step("key", index)))
    return FieldOf(target, (Step("key", index),))
