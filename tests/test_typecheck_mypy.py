"""The workflow edge check agrees with mypy on thousands of generated pairs of types (issue 9).

A differential test: pairs ``src -> dst`` are generated from a small type grammar, written into ONE
file as ``def f(x: SRC) -> None: y: DST = x``, and checked by one in-process mypy run; mypy's
verdict for each pair is read off the line numbers of its errors. flowkit's
:func:`~flowkit.typecheck.is_assignable` must give the same verdict for every pair, with one
documented exception: flowkit treats the mutable containers as covariant (a workflow edge hands
over a value, nothing writes it back). For that rule each pair is also asked as its *read-only
twin*, where ``list``, ``set`` and ``dict`` become the read-only classes ``ROList(Sequence[T_co])``,
``ROSet(AbstractSet[T_co])`` and ``RODict(Mapping[K, V_co])`` throughout both types. The twins are
subclasses rather than ``Sequence``/``AbstractSet``/``Mapping`` themselves so that the class still
matters: ``Sequence[int] -> list[int]`` or ``frozenset[int] -> set[int]`` stay errors, as they are
at run time. flowkit must agree with mypy's verdict on the twin, for every pair.

The grammar: int, float, complex, bool, str, bytes, None, Any, object, classes ``A <: B``, a
NamedTuple, a dataclass, an Enum, ``Literal[...]``, ``NewType`` (and a NewType of a NewType),
list / set / frozenset / dict / tuple (fixed, empty and variadic) / Sequence / Mapping / Iterable /
AbstractSet, bare generics, Optional, Union, ``X | Y`` and Annotated, nested up to depth 3. Pairs
come from a seeded generator (so a failure reproduces): every pair of atoms, every pair of
one-level shapes over a sample of atoms, random deep pairs with ``dst`` a mutation of ``src`` (a
widened or narrowed leaf, another container, a union member added or removed, ...), and each pair
reversed.
"""

from __future__ import annotations

import dataclasses
import random
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.typecheck import is_assignable

# The declarations both sides see: mypy reads this text at the top of the generated file, and
# the runtime types handed to flowkit are evaluated in a module executed from the same text.
PRELUDE = '''\
import enum
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, NewType, Optional, TypeVar, Union


class B:
    pass


class A(B):
    pass


class NT(NamedTuple):
    x: int
    y: str


@dataclass
class DC:
    x: int


class E(enum.Enum):
    RED = 1
    BLUE = 2


U = NewType("U", int)
V = NewType("V", U)

T_co = TypeVar("T_co", covariant=True)
K = TypeVar("K")
V_co = TypeVar("V_co", covariant=True)


class ROList(Sequence[T_co]):
    """The read-only twin of list."""


class ROSet(AbstractSet[T_co]):
    """The read-only twin of set."""


class RODict(Mapping[K, V_co]):
    """The read-only twin of dict."""

'''

ATOMS: tuple[str, ...] = (
    "int",
    "float",
    "complex",
    "bool",
    "str",
    "bytes",
    "None",
    "Any",
    "object",
    "A",
    "B",
    "NT",
    "DC",
    "E",
    "U",
    "V",
    "Literal[1]",
    "Literal[1, 2]",
    "Literal[True]",
    "Literal[True, False]",
    'Literal["a"]',
    'Literal["a", "b"]',
    'Literal[b"x"]',
    "Literal[E.RED]",
    "Literal[E.RED, E.BLUE]",
    "Literal[None]",
    "tuple[()]",
    "list",
    "set",
    "frozenset",
    "dict",
    "tuple",
    "Sequence",
    "Mapping",
    "Iterable",
)
# Atoms sampled inside one-level shapes: each relation of the grammar appears among them.
INNER_ATOMS: tuple[str, ...] = (
    "int",
    "float",
    "bool",
    "None",
    "Any",
    "object",
    "A",
    "B",
    "U",
    "E",
    "str",
    "Literal[1]",
    "Literal[True, False]",
)
UNARY: tuple[str, ...] = (
    "list",
    "set",
    "frozenset",
    "Sequence",
    "Iterable",
    "AbstractSet",
    "tuple...",  # tuple[X, ...]
    "tuple1",  # tuple[X]
    "Optional",
    "Annotated",
)
BINARY: tuple[str, ...] = ("dict", "Mapping", "tuple2", "Union", "|")
# The read-only twin of each mutable container (bare names included).
TWIN = {"list": "ROList", "set": "ROSet", "dict": "RODict"}
# Leaf replacements that keep a pair close to the edge of assignability.
NEAR: dict[str, tuple[str, ...]] = {
    "bool": ("int", "Literal[True, False]", "Literal[True]"),
    "int": ("bool", "float", "U", "Literal[1]", "complex"),
    "float": ("int", "complex"),
    "complex": ("float",),
    "A": ("B",),
    "B": ("A", "object"),
    "U": ("int", "V"),
    "V": ("U",),
    "E": ("Literal[E.RED, E.BLUE]", "Literal[E.RED]"),
    "Literal[1]": ("Literal[1, 2]", "int", "Literal[True]"),
    "Literal[1, 2]": ("Literal[1]", "int"),
    "Literal[True]": ("bool", "Literal[1]", "Literal[True, False]"),
    "Literal[True, False]": ("bool",),
    "Literal[E.RED]": ("E", "Literal[E.RED, E.BLUE]"),
    "Literal[E.RED, E.BLUE]": ("E",),
    "None": ("Literal[None]", "object", "Any"),
    "Literal[None]": ("None",),
    "NT": ("tuple[int, str]", "tuple[Any, ...]", "tuple"),
    "str": ('Literal["a"]', "Sequence[str]", "bytes"),
    "object": ("Any", "B"),
    "Any": ("object", "int"),
}
FAMILIES: tuple[tuple[str, ...], ...] = (
    ("list", "set", "frozenset", "Sequence", "Iterable", "AbstractSet", "tuple...", "tuple1"),
    ("dict", "Mapping"),
    ("Union", "|", "tuple2"),
    ("Optional", "Annotated"),
)

MAX_DEPTH = 3
SEED = 20240917


@dataclasses.dataclass(frozen=True)
class Ty:
    """A node of the type grammar: an atom (no args) or a constructor applied to its args."""

    head: str
    args: tuple[Ty, ...] = ()

    def depth(self) -> int:
        return 1 + max(a.depth() for a in self.args) if self.args else 0

    def text(self, twin: bool = False) -> str:
        """The annotation's source text; ``twin`` swaps mutable containers for read-only ones."""
        if not self.args:
            return TWIN.get(self.head, self.head) if twin else self.head
        a = [x.text(twin) for x in self.args]
        h = self.head
        if h == "tuple...":
            return f"tuple[{a[0]}, ...]"
        if h in ("tuple1", "tuple2"):
            return f"tuple[{', '.join(a)}]"
        if h == "|":
            return " | ".join(a)
        if h == "Annotated":
            return f'Annotated[{a[0]}, "m"]'
        name = TWIN.get(h, h) if twin else h
        return f"{name}[{', '.join(a)}]"

    def nodes(self, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Ty]]:
        yield path, self
        for i, x in enumerate(self.args):
            yield from x.nodes((*path, i))

    def replace(self, path: tuple[int, ...], new: Ty) -> Ty:
        if not path:
            return new
        i, rest = path[0], path[1:]
        args = list(self.args)
        args[i] = args[i].replace(rest, new)
        return Ty(self.head, tuple(args))


def arity(head: str) -> int:
    return 1 if head in UNARY else 2


def random_type(rnd: random.Random, depth: int) -> Ty:
    if depth == 0 or rnd.random() < 0.3:
        return Ty(rnd.choice(ATOMS))
    head = rnd.choice(UNARY + BINARY)
    return Ty(head, tuple(random_type(rnd, depth - 1) for _ in range(arity(head))))


def mutate(rnd: random.Random, t: Ty) -> Ty:
    """A type near *t*: one node replaced by a neighbour, rewrapped or unwrapped."""
    path, node = rnd.choice(list(t.nodes()))
    move = rnd.random()
    if not node.args:
        if move < 0.6 and node.head in NEAR:
            new = Ty(rnd.choice(NEAR[node.head]))
        elif move < 0.8:
            new = Ty(rnd.choice(("Optional", "Annotated", "list", "Sequence")), (node,))
        else:
            new = Ty(rnd.choice(ATOMS))
        return t.replace(path, new)
    if move < 0.45:  # another constructor of the same family
        family = next(f for f in FAMILIES if node.head in f)
        head = rnd.choice([h for h in family if arity(h) == len(node.args)] or [node.head])
        new = Ty(head, node.args)
    elif move < 0.6:  # unwrap
        new = rnd.choice(node.args)
    elif move < 0.75:  # widen with a union member
        new = Ty(rnd.choice(("Union", "|")), (node, Ty(rnd.choice(INNER_ATOMS))))
    elif move < 0.85 and len(node.args) == 2:  # swap
        new = Ty(node.head, (node.args[1], node.args[0]))
    else:  # replace one argument
        i = rnd.randrange(len(node.args))
        args = list(node.args)
        args[i] = mutate(rnd, args[i])
        new = Ty(node.head, tuple(args))
    return t.replace(path, new)


def generate_pairs() -> list[tuple[Ty, Ty]]:
    """Every pair of atoms, one-level shapes over sampled atoms, random deep pairs; reversed too."""
    rnd = random.Random(SEED)
    pairs: list[tuple[Ty, Ty]] = [
        # The wrong verdicts named in issue 9, item 9.
        (Ty("list", (Ty("None"),)), Ty("list", (Ty("float"),))),
        (Ty("set", (Ty("None"),)), Ty("set", (Ty("float"),))),
        (Ty("tuple...", (Ty("Any"),)), Ty("tuple2", (Ty("A"), Ty("B")))),
    ]
    pairs += [(Ty(s), Ty(d)) for s in ATOMS for d in ATOMS]
    pairs += shape_pairs(rnd)
    pairs += mutated_pairs(rnd, 5600 - len(pairs))
    for _ in range(600):  # unrelated pairs
        pairs.append((random_type(rnd, 2), random_type(rnd, 2)))
    pairs += [(d, s) for s, d in pairs]
    return list(dict.fromkeys(pairs))


def _leaf(rnd: random.Random) -> Ty:
    return Ty(rnd.choice(INNER_ATOMS))


def shape_pairs(rnd: random.Random) -> list[tuple[Ty, Ty]]:
    """One-level shapes over sampled atoms: every pair of unary, then of binary containers."""
    pairs = [
        (Ty(c1, (_leaf(rnd),)), Ty(c2, (_leaf(rnd),)))
        for c1 in UNARY
        for c2 in UNARY
        for _ in range(10)
    ]
    for c1 in BINARY:
        for c2 in BINARY:
            for _ in range(16):
                s = Ty(c1, (_leaf(rnd), _leaf(rnd)))
                d = Ty(c2, (_leaf(rnd), _leaf(rnd)))
                pairs.append((s, d))
    return pairs


def mutated_pairs(rnd: random.Random, count: int) -> list[tuple[Ty, Ty]]:
    """``count`` random deep pairs (none if ``count`` <= 0), ``dst`` a mutation of ``src``."""
    pairs: list[tuple[Ty, Ty]] = []
    while len(pairs) < count:
        src = random_type(rnd, MAX_DEPTH)
        dst = src
        for _ in range(rnd.choice((1, 1, 2, 3))):
            dst = mutate(rnd, dst)
        if dst.depth() <= MAX_DEPTH:
            pairs.append((src, dst))
    return pairs


class Universe:
    """The runtime side: the prelude executed as a module, and annotations evaluated in it."""

    def __init__(self) -> None:
        self.module = types.ModuleType("fk_type_grammar")
        sys.modules[self.module.__name__] = self.module  # dataclass/NamedTuple look it up
        exec(compile(PRELUDE, "<fk_type_grammar>", "exec"), self.module.__dict__)

    def eval(self, text: str) -> Any:
        return eval(text, self.module.__dict__)


UNIVERSE = Universe()


def runtime_pairs(universe: Universe, pairs: list[tuple[Ty, Ty]]) -> list[tuple[Ty, Ty, Any, Any]]:
    """Pairs whose annotations evaluate at run time (``None | None`` does not), with the types."""
    out = []
    for s, d in pairs:
        try:
            out.append((s, d, universe.eval(s.text()), universe.eval(d.text())))
        except TypeError:
            continue
    return out


_ERROR = re.compile(r"^[^:]+:(\d+): error: (.*?)(?:  \[([a-z-]+)\])?$")


def mypy_verdicts(tmp_path: Path, pairs: list[tuple[Ty, Ty]]) -> list[tuple[bool, bool]]:
    """(as written, read-only twin) verdicts of ONE mypy run over all pairs."""
    from mypy import api

    lines = PRELUDE.splitlines()
    where: dict[int, tuple[int, int]] = {}  # line -> (pair index, 0 as written | 1 twin)
    for i, (s, d) in enumerate(pairs):
        lines += [
            "",
            f"def f{i}(x: {s.text()}, xt: {s.text(twin=True)}) -> None:",
            f"    y: {d.text()} = x",
            f"    yt: {d.text(twin=True)} = xt",
        ]
        where[len(lines) - 1] = (i, 0)
        where[len(lines)] = (i, 1)
    source = tmp_path / "pairs.py"
    source.write_text("\n".join(lines) + "\n")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")  # not the project's strict settings
    stdout, stderr, _ = api.run(
        [
            "--config-file",
            str(config),
            "--python-version",
            "3.11",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--show-error-codes",
            "--no-error-summary",
            "--no-pretty",
            str(source),
        ]
    )
    ok = [[True, True] for _ in pairs]
    unexpected = []
    for line in stdout.splitlines():
        m = _ERROR.match(line)
        if m is None:
            if ": note: " not in line:
                unexpected.append(line)
            continue
        lineno, code = int(m.group(1)), m.group(3)
        if lineno not in where or code != "assignment":
            unexpected.append(line)
            continue
        i, twin = where[lineno]
        ok[i][twin] = False
    assert not unexpected and not stderr, (
        "mypy reported something other than assignment errors; the generated file is wrong:\n"
        + "\n".join(unexpected[:20])
        + stderr
    )
    return [(a, b) for a, b in ok]


def _v(ok: bool) -> str:
    return "accepts" if ok else "rejects"


def test_edge_check_agrees_with_mypy(tmp_path: Path) -> None:
    rows = runtime_pairs(UNIVERSE, generate_pairs())
    verdicts = mypy_verdicts(tmp_path, [(s, d) for s, d, _, _ in rows])

    disagree = []
    twin_broken = []
    for (s, d, src, dst), (as_written, twin) in zip(rows, verdicts, strict=True):
        if as_written and not twin:
            twin_broken.append(f"{s.text()} -> {d.text()}")
        flowkit = is_assignable(src, dst)
        if flowkit != twin:
            disagree.append(
                f"{s.text()}  ->  {d.text()}:  mypy {_v(as_written)} (read-only twin: "
                f"{_v(twin)}), flowkit {_v(flowkit)}"
            )
    # The twin only relaxes variance: whatever mypy accepts as written it accepts as a twin.
    assert not twin_broken, "twin rejects what mypy accepts:\n" + "\n".join(twin_broken[:20])
    assert not disagree, (
        f"flowkit disagrees with mypy on {len(disagree)} of {len(rows)} pairs "
        "(src -> dst: verdicts):\n" + "\n".join(disagree[:80])
    )

    # The generator reaches every kind of verdict, in numbers.
    accepted = sum(twin for _, twin in verdicts)
    covariance_only = sum(twin and not as_written for as_written, twin in verdicts)
    assert len(rows) >= 8000
    assert accepted >= 1500 and len(rows) - accepted >= 1500
    assert covariance_only >= 100


def test_flowkit_agrees_with_mypy_on_the_read_only_twins(tmp_path: Path) -> None:
    """The twin classes are user generics over the ABCs; flowkit reads them as mypy does."""
    rnd = random.Random(SEED + 1)
    pairs = [
        p
        for p in generate_pairs()
        if any(n.head in TWIN for t in p for _, n in t.nodes()) and rnd.random() < 0.25
    ]
    twins = [
        (s, d, UNIVERSE.eval(s.text(twin=True)), UNIVERSE.eval(d.text(twin=True)))
        for s, d, _, _ in runtime_pairs(UNIVERSE, pairs)
    ]
    verdicts = mypy_verdicts(tmp_path, [(s, d) for s, d, _, _ in twins])
    disagree = [
        f"{s.text(twin=True)}  ->  {d.text(twin=True)}: mypy {_v(v)}, flowkit {_v(not v)}"
        for (s, d, src, dst), (_, v) in zip(twins, verdicts, strict=True)
        if is_assignable(src, dst) != v
    ]
    assert not disagree, "\n".join(disagree[:80])


# --------------------------------------------------------------------------------------------
# Properties of the relation that need no oracle: every generated type against itself, Any and
# object, and against its widening with a union member.


def _types() -> st.SearchStrategy[Ty]:
    atoms = st.sampled_from(ATOMS).map(Ty)

    def extend(inner: st.SearchStrategy[Ty]) -> st.SearchStrategy[Ty]:
        unary = st.builds(lambda h, a: Ty(h, (a,)), st.sampled_from(UNARY), inner)
        binary = st.builds(lambda h, a, b: Ty(h, (a, b)), st.sampled_from(BINARY), inner, inner)
        return unary | binary

    return st.recursive(atoms, extend, max_leaves=6).filter(lambda t: t.depth() <= MAX_DEPTH)


@settings(max_examples=300, deadline=None, database=None)
@given(t=_types(), extra=st.sampled_from(ATOMS))
def test_reflexive_and_widening(t: Ty, extra: str) -> None:
    u = UNIVERSE
    try:
        tp = u.eval(t.text())
        wider = u.eval(f"Union[{t.text()}, {extra}]")
    except TypeError:
        return
    assert is_assignable(tp, tp), t.text()
    assert is_assignable(tp, wider), f"{t.text()} -> Union[{t.text()}, {extra}]"
    assert is_assignable(tp, object) and is_assignable(tp, Any) and is_assignable(Any, tp)
    assert is_assignable(u.eval("Optional[" + t.text() + "]"), tp) == is_assignable(type(None), tp)
