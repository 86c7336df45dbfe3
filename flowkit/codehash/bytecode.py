"""Normalised bytecode: what a code object does, independent of how its source was laid out.

Policy: a code object is hashed by its instructions (constants by value, names by name, jump
targets and exception ranges by instruction index), argument layout, flags, local/free/cell
variable names and nested code objects (by their own digests and names). File names, line
numbers, positions, docstrings (an unreferenced first constant), ``NOP``\\s the compiler keeps for
line events, ``RESUME``, ``EXTENDED_ARG`` and inline caches are left out, so comments, blank
lines, formatting and moving code around never change a digest. The analysis also lists what the
code refers to: global names with their attribute chains (``utils.clean``), free-variable loads,
and function-level imports. Code objects are immutable, so each is analysed once per process.
"""

from __future__ import annotations

import dis
import hashlib
import math
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flowkit import hashing

Json = Any  # a JSON-able structure

# Names the bytecode dialect, so a digest is never compared across incompatible interpreters.
FORMAT = sys.implementation.cache_tag or sys.implementation.name


@dataclass(frozen=True)
class Import:
    """A function-level ``import`` / ``from … import …``."""

    level: int
    module: str
    names: tuple[str, ...]  # the IMPORT_FROM names; empty for a plain ``import a.b [as c]``


@dataclass(frozen=True)
class CodeInfo:
    """What one code object (with its nested code) contributes."""

    digest: str  # sha256 of the normalised code
    global_chains: tuple[tuple[str, ...], ...]  # a global name and the attributes read from it
    deref_chains: tuple[tuple[str, ...], ...]  # a free-variable load and its attributes
    imports: tuple[Import, ...]


def _ops(*names: str) -> frozenset[int]:
    return frozenset(dis.opmap[n] for n in names if n in dis.opmap)


_GLOBAL_LOADS = _ops("LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS")
_DEREF_LOADS = _ops("LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF")
_ATTR_LOADS = _ops("LOAD_ATTR", "LOAD_METHOD")
_DROPPED = _ops("NOP", "CACHE", "EXTENDED_ARG", "RESUME")
_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_IMPORT_FROM = dis.opmap["IMPORT_FROM"]
_CONST_OPS = frozenset(dis.hasconst)
_NAME_OPS = frozenset(dis.hasname) | frozenset(dis.haslocal) | frozenset(dis.hasfree)
_JUMP_OPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs) | frozenset(getattr(dis, "hasjump", ()))

# Analyses by id; each entry's weak reference proves the id still names the same code object,
# and its callback drops the entry when the code object dies (re-executed notebook cells).
_cache: dict[int, tuple[weakref.ref[types.CodeType], CodeInfo]] = {}
_lock = threading.Lock()


def code_info(code: types.CodeType) -> CodeInfo:
    """The (memoised) analysis of ``code``."""
    entry = _cache.get(id(code))
    if entry is not None and entry[0]() is code:
        return entry[1]
    info = _analyse(code)
    key = id(code)

    def forget(ref: weakref.ref[types.CodeType]) -> None:
        with _lock:
            if _cache.get(key, (None,))[0] is ref:
                del _cache[key]

    with _lock:
        _cache[key] = (weakref.ref(code, forget), info)
    return info


def text(value: str) -> Json:
    """A string, or its bytes when it cannot be UTF-8 encoded (a lone surrogate)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return {"$surrogates": value.encode("utf-8", "surrogatepass").hex()}
    return value


def _sort_key(obj: Json) -> bytes:
    return hashing.canonical_json(obj)


def encode_const(value: object) -> Json:
    """A compile-time constant (the types the compiler puts in ``co_consts``)."""
    if isinstance(value, str):
        return text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, complex):
        return {"$complex": [encode_const(value.real), encode_const(value.imag)]}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, tuple):
        return {"$tuple": [encode_const(v) for v in value]}
    if isinstance(value, frozenset):  # sorted: set order depends on the hash seed
        return {"$frozenset": sorted((encode_const(v) for v in value), key=_sort_key)}
    if isinstance(value, types.CodeType):
        return {"$code": [value.co_name, code_info(value).digest]}
    if value is Ellipsis:
        return {"$ellipsis": True}
    return {"$const": type(value).__qualname__, "repr": repr(value)}


def _analyse(code: types.CodeType) -> CodeInfo:
    bytecode = dis.Bytecode(code)
    instructions = list(bytecode)
    index = _kept_index(instructions)
    refs = _Refs()
    ops: list[Json] = []
    for pos, ins in enumerate(instructions):
        if ins.opcode in _DROPPED:
            continue
        ops.append([ins.opname, _encode_arg(ins, index, refs.nested)])
        refs.note(code, instructions, pos)
    exceptions = [
        [index(e.start), index(e.end), index(e.target), e.depth, bool(e.lasti)]
        for e in getattr(bytecode, "exception_entries", ())
    ]
    encoding = {
        "args": [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount],
        "flags": code.co_flags,
        "varnames": list(code.co_varnames),
        "freevars": list(code.co_freevars),
        "cellvars": list(code.co_cellvars),
        "ops": ops,
        "exceptions": exceptions,
    }
    refs.take_nested(code)
    return CodeInfo(
        digest=hashlib.sha256(hashing.canonical_json(encoding)).hexdigest(),
        global_chains=_dedupe(refs.global_chains),
        deref_chains=_dedupe(refs.deref_chains),
        imports=_dedupe(refs.imports),
    )


def _kept_index(instructions: list[dis.Instruction]) -> Callable[[int], int]:
    """Maps an instruction offset to its index among the kept instructions.

    Jump targets and exception ranges count kept instructions, so line-event NOPs (which
    come and go with formatting) cannot shift them.
    """
    index_at: dict[int, int] = {}
    kept = 0
    for ins in instructions:
        index_at[ins.offset] = kept
        if ins.opcode not in _DROPPED:
            kept += 1

    def index(offset: int) -> int:
        return index_at.get(offset, kept)

    return index


def _encode_arg(ins: dis.Instruction, index: Callable[[int], int], nested: list[CodeInfo]) -> Json:
    """An instruction's argument as it enters the digest (nested code is added to ``nested``)."""
    op = ins.opcode
    if op in _CONST_OPS:
        arg = encode_const(ins.argval)
        if isinstance(ins.argval, types.CodeType):
            nested.append(code_info(ins.argval))
        return arg
    if op in _JUMP_OPS and isinstance(ins.argval, int):
        return index(ins.argval)
    if op in _NAME_OPS:
        return ins.argrepr  # the name, plus the push-NULL marker where there is one
    if ins.argval is None or isinstance(ins.argval, (bool, int)):
        return ins.argval
    return encode_const(ins.argval)


@dataclass
class _Refs:
    """What a code object refers to, gathered while its instructions are read."""

    global_chains: list[tuple[str, ...]] = field(default_factory=list)
    deref_chains: list[tuple[str, ...]] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    nested: list[CodeInfo] = field(default_factory=list)

    def note(self, code: types.CodeType, instructions: list[dis.Instruction], pos: int) -> None:
        """Record what the instruction at ``pos`` refers to, if anything."""
        ins = instructions[pos]
        op = ins.opcode
        if op in _GLOBAL_LOADS:
            self.global_chains.append((str(ins.argval), *_attr_chain(instructions, pos + 1)))
        elif op in _DEREF_LOADS and ins.argval in code.co_freevars:
            self.deref_chains.append((str(ins.argval), *_attr_chain(instructions, pos + 1)))
        elif op == _IMPORT_NAME:
            self.imports.append(_read_import(instructions, pos))

    def take_nested(self, code: types.CodeType) -> None:
        """Nested code shares the globals; its free variables pass through ``code``'s."""
        for sub in self.nested:
            self.global_chains.extend(sub.global_chains)
            self.deref_chains.extend(c for c in sub.deref_chains if c[0] in code.co_freevars)
            self.imports.extend(sub.imports)


def _attr_chain(instructions: list[dis.Instruction], start: int) -> list[str]:
    chain: list[str] = []
    for pos in range(start, len(instructions)):
        ins = instructions[pos]
        if ins.opcode in _DROPPED:
            continue
        if ins.opcode not in _ATTR_LOADS:
            break
        chain.append(str(ins.argval))
    return chain


def _read_import(instructions: list[dis.Instruction], pos: int) -> Import:
    """``LOAD_CONST level; LOAD_CONST fromlist; IMPORT_NAME module; [IMPORT_FROM name …]``."""
    consts = [i.argval for i in instructions[max(0, pos - 2) : pos] if i.opcode in _CONST_OPS]
    level = consts[0] if len(consts) == 2 and isinstance(consts[0], int) else 0
    fromlist = consts[1] if len(consts) == 2 else None
    names: list[str] = []
    if fromlist is not None:  # `import a.b as c` uses IMPORT_FROM too, but binds a.b itself
        for i in range(pos + 1, len(instructions)):
            ins = instructions[i]
            if ins.opcode == _IMPORT_FROM:
                names.append(str(ins.argval))
            elif not (ins.opname.startswith("STORE_") or ins.opcode in _DROPPED):
                break
    return Import(level, str(instructions[pos].argval), tuple(names))


def _dedupe(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))
