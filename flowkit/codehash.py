"""The code fingerprint of a task: everything its behaviour depends on, hashed.

``fingerprint(fn)`` returns a :class:`Fingerprint`: a sha256 ``digest`` and the named
``components`` it was computed from (``flowkit cache explain`` prints the ones that changed).

Policy
------
* **What is hashed is the compiled code, not the source text.** Each function counts by its
  normalised bytecode: instruction names and arguments (constants by value, names by name, jump
  targets by instruction index), argument layout, flags, exception table and nested code objects
  (lambdas, comprehensions, inner functions). Comments, docstrings, blank lines, formatting and
  line numbers never reach the bytecode, and decorators live in the enclosing module's code, so
  none of them changes the fingerprint. Hashing what actually runs (rather than
  ``inspect.getsource``) also means a source file edited after import, a lambda on a shared line
  or a function with no source file cannot fool it. The bytecode format is named by the
  ``bytecode`` component (e.g. ``cpython-311``).
* **User code is followed transitively; installed code counts by version.** A module whose file
  lies under site-packages/dist-packages or the standard library is not user code; flowkit itself
  counts as installed code. Everything else (scripts, ``__main__``, notebooks, the user's own
  packages, editable installs) is user code. From the task function, every global, attribute chain
  on a user module (``utils.clean`` fingerprints ``utils.clean``, not all of ``utils``),
  function-level import, closure cell and default value is resolved to the object it names now:
  user functions become ``helper`` components, user classes ``class`` components (every method,
  user base classes followed), plain values ``constant`` / ``closure`` / ``default`` components
  hashed by value, and installed modules ``module `numpy``` -> ``"numpy==2.4.6"`` (stdlib:
  ``"python==3.11"``). Builtins and names not bound yet are ignored.
* **Objects that wrap a function** (flowkit ``TaskDef``, ``functools.lru_cache``, installed
  decorators) are followed through ``__wrapped__``; a *user* wrapper function is hashed itself, and
  the function it wraps is reached through its closure.
* **Values** are encoded canonically: JSON-like values directly (dicts and sets order-insensitive),
  functions/classes/modules inside them by reference, numpy arrays by dtype, shape and bytes, other
  objects through their pickle reduction (``__reduce_ex__``), recursively. A value that cannot be
  encoded stably counts by its type name and a warning is logged; fingerprinting never raises for
  a value.
* **Stable across processes**: no ids, addresses, file paths, line numbers or set orders reach a
  pre-image. Component names use qualified names relative to the task's own module, so running a
  script as ``__main__`` or importing it gives the same digest. The task's own module and name are
  not part of it (the cache key adds the task identity separately).
* **Fast**: the bytecode analysis is memoised per code object (code objects are immutable); the
  bindings (which object a global names now) are re-resolved on every call, so a re-executed
  notebook cell or a rebound global is always seen.

Example::

    fp = fingerprint(train)
    fp.digest                       # 'a3f9…'
    fp.components["helper `clean`"]  # digest of the helper's code and bindings
    describe_changes(old.components, fp.components)  # ['helper `clean` changed']
"""

from __future__ import annotations

import dis
import hashlib
import importlib.metadata
import importlib.util
import logging
import math
import os
import sys
import sysconfig
import threading
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowkit import hashing

logger = logging.getLogger(__name__)

__all__ = ["Fingerprint", "components_digest", "describe_changes", "fingerprint"]

Json = Any  # a JSON-able structure (kept as Any: the recursive type does not help mypy here)

# Packages that count as installed code even when installed editable (flowkit itself).
_INSTALLED_TOPLEVELS = frozenset({"flowkit", "flowkit_ray"})
_BYTECODE = sys.implementation.cache_tag or sys.implementation.name
_PYTHON = f"python=={sys.version_info.major}.{sys.version_info.minor}"
_MAX_VALUE_DEPTH = 64


@dataclass(frozen=True)
class Fingerprint:
    """The code fingerprint of one task function.

    ``digest`` is ``sha256(canonical_json(["code", components]))``; ``components`` maps
    human-readable names (``"function `train`"``, ``"helper `clean`"``, ``"constant `FACTOR`"``,
    ``"class `Scaler`"``, ``"closure `threshold`"``, ``"default `alpha`"``, ``"module `numpy`"``,
    ``"bytecode"``) to digests or, for installed modules, ``"dist==version"``.
    """

    digest: str
    components: dict[str, str] = field(hash=False)


def fingerprint(fn: Callable[..., Any]) -> Fingerprint:
    """Fingerprint the code of ``fn`` and of the user code it reaches.

    ``fn`` may be a plain function, a bound method, or any object wrapping one through
    ``__wrapped__`` (a flowkit ``TaskDef``). Raises ``TypeError`` when no Python function is found.
    """
    target = _unwrap_root(fn)
    walker = _Walker(root_module=_module_name_of(target))
    walker.root(target)
    components = dict(sorted(walker.components.items()))
    components["bytecode"] = _BYTECODE
    return Fingerprint(digest=components_digest(components), components=components)


def components_digest(components: Mapping[str, str]) -> str:
    """The digest of a component mapping: ``hash_struct("code", components)``."""
    return hashing.hash_struct("code", dict(components))


def describe_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Human-readable differences between two component mappings, sorted by name.

    >>> describe_changes({"helper `clean`": "a"}, {"helper `clean`": "b"})
    ['helper `clean` changed']
    """
    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            lines.append(f"{name} added")
        elif after is None:
            lines.append(f"{name} removed")
        elif "==" in before or "==" in after or name == "bytecode":
            lines.append(f"{name} changed ({before} -> {after})")
        else:
            lines.append(f"{name} changed")
    return lines


# --------------------------------------------------------------------------- canonical hashing


def _canonical_json(obj: Json) -> bytes:
    return hashing.canonical_json(obj)


def _sha256_json(obj: Json) -> str:
    return hashlib.sha256(hashing.canonical_json(obj)).hexdigest()


# --------------------------------------------------------------------------- where code lives


@dataclass(frozen=True)
class _Origin:
    """Where a module or function comes from: ``kind`` is "user", "stdlib" or "installed"."""

    kind: str
    top: str = ""  # top-level import name for stdlib / installed code


_USER = _Origin("user")


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _stdlib_dirs() -> tuple[str, ...]:
    base = {
        "base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    dirs = {sysconfig.get_path(key, vars=base) for key in ("stdlib", "platstdlib")}
    dirs.add(os.path.dirname(os.__file__))
    return tuple(sorted(_norm(d) for d in dirs if d))


def _site_dirs() -> tuple[str, ...]:
    dirs = {sysconfig.get_path(key) for key in ("purelib", "platlib")}
    return tuple(sorted(_norm(d) for d in dirs if d))


_STDLIB_DIRS = _stdlib_dirs()
_SITE_DIRS = _site_dirs()
_origin_lock = threading.Lock()
_path_origins: dict[str, _Origin] = {}


def _installed_dirs() -> dict[str, str]:
    """Directories of packages that always count as installed (flowkit), by top-level name."""
    found: dict[str, str] = {}
    for top in _INSTALLED_TOPLEVELS:
        mod = sys.modules.get(top)
        path = getattr(mod, "__file__", None)
        if path:
            found[top] = _norm(os.path.dirname(path))
    return found


def _under(path: str, root: str) -> str | None:
    """The first path part below ``root`` if ``path`` is inside it."""
    if path == root or not path.startswith(root + os.sep):
        return None
    rest = path[len(root) + 1 :]
    return rest.split(os.sep, 1)[0]


def _top_from_part(part: str) -> str:
    return part.split(".", 1)[0]


def _path_origin(filename: str) -> _Origin:
    """Classify a source file path (a ``co_filename`` or a module ``__file__``)."""
    if filename.startswith("<frozen "):
        return _Origin("stdlib", _top_from_part(filename[len("<frozen ") : -1]))
    if filename.startswith("<") or not filename:
        return _USER  # exec'd or generated code (notebook cells, dataclass methods): hash it
    with _origin_lock:
        cached = _path_origins.get(filename)
    if cached is not None:
        return cached
    origin = _classify_path(_norm(filename))
    with _origin_lock:
        _path_origins[filename] = origin
    return origin


def _classify_path(path: str) -> _Origin:
    for top, root in _installed_dirs().items():
        if path == root or path.startswith(root + os.sep):
            return _Origin("installed", top)
    parts = path.split(os.sep)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            idx = len(parts) - 1 - parts[::-1].index(marker)
            top = parts[idx + 1] if idx + 1 < len(parts) else ""
            return _Origin("installed", _top_from_part(top))
    for root in _SITE_DIRS:
        part = _under(path, root)
        if part is not None:
            return _Origin("installed", _top_from_part(part))
    for root in _STDLIB_DIRS:
        part = _under(path, root)
        if part is not None:
            return _Origin("stdlib", _top_from_part(part))
    return _USER


def _module_origin(module: types.ModuleType) -> _Origin:
    name = module.__name__
    top = name.split(".", 1)[0]
    if top in _INSTALLED_TOPLEVELS:
        return _Origin("installed", top)
    path = getattr(module, "__file__", None)
    if not path:
        paths = list(getattr(module, "__path__", []) or [])
        path = paths[0] if paths else None
    if path:
        origin = _path_origin(path)
        if origin.kind != "user":
            # Prefer the import name: a file path cannot tell `sklearn` from `scikit_learn`.
            return _Origin(origin.kind, top)
        return origin
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return _Origin("stdlib", top)
    return _USER  # __main__ in a notebook, modules built at run time


def _module_origin_by_name(name: str) -> _Origin:
    module = sys.modules.get(name)
    if isinstance(module, types.ModuleType):
        return _module_origin(module)
    return _USER


_versions: dict[str, str] = {}
_packages_distributions: Mapping[str, list[str]] | None = None


def _version_of(top: str) -> str:
    """``"dist==version"`` for an installed top-level package, ``"python==X.Y"`` for stdlib."""
    global _packages_distributions
    with _origin_lock:
        cached = _versions.get(top)
    if cached is not None:
        return cached
    try:
        # Fast path: the import name is the distribution name (numpy, pandas, ray, flowkit).
        result = f"{top}=={importlib.metadata.version(top)}"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        if _packages_distributions is None:
            # One scan of all installed distributions (~0.1 s), once per process.
            _packages_distributions = importlib.metadata.packages_distributions()
        dists = sorted(set(_packages_distributions.get(top, [])))
        if dists:
            result = ", ".join(f"{d}=={importlib.metadata.version(d)}" for d in dists)
        else:
            module_version = getattr(sys.modules.get(top), "__version__", None)
            result = (
                f"{top}=={module_version}"
                if isinstance(module_version, str)
                else (f"{top} (unversioned)")
            )
    with _origin_lock:
        _versions[top] = result
    return result


def _origin_version(origin: _Origin) -> str:
    return _PYTHON if origin.kind == "stdlib" else _version_of(origin.top)


# --------------------------------------------------------------------------- bytecode analysis


@dataclass(frozen=True)
class _Import:
    """A function-level ``import`` / ``from … import …``."""

    level: int
    module: str
    names: tuple[str, ...]  # the IMPORT_FROM names; empty for a plain ``import a.b``


@dataclass(frozen=True)
class _CodeInfo:
    """What one code object (with its nested code) contributes; immutable, so memoised."""

    digest: str  # sha256 of the normalised code (nested code objects by their digests)
    global_chains: tuple[tuple[str, ...], ...]  # LOAD_GLOBAL name + attribute chain
    deref_chains: tuple[tuple[str, ...], ...]  # free-variable loads + attribute chain
    imports: tuple[_Import, ...]


def _opnames(*names: str) -> frozenset[int]:
    return frozenset(dis.opmap[n] for n in names if n in dis.opmap)


_GLOBAL_LOADS = _opnames("LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS")
_DEREF_LOADS = _opnames("LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF")
_ATTR_LOADS = _opnames("LOAD_ATTR", "LOAD_METHOD")
_DROPPED = _opnames("NOP", "CACHE", "EXTENDED_ARG", "RESUME")
_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_IMPORT_FROM = dis.opmap["IMPORT_FROM"]
_CONST_OPS = frozenset(dis.hasconst)
_NAME_OPS = frozenset(dis.hasname) | frozenset(dis.haslocal) | frozenset(dis.hasfree)
_JUMP_OPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs) | frozenset(getattr(dis, "hasjump", ()))

# Memo of code analyses by id, each entry holding a weak reference that proves the id still
# names the same (immutable) code object; dead entries are dropped by the weakref callback.
_code_cache: dict[int, tuple[weakref.ref[types.CodeType], _CodeInfo]] = {}
_code_lock = threading.Lock()


def _code_info(code: types.CodeType) -> _CodeInfo:
    entry = _code_cache.get(id(code))
    if entry is not None and entry[0]() is code:
        return entry[1]
    info = _analyse(code)
    key = id(code)

    def forget(ref: weakref.ref[types.CodeType]) -> None:
        with _code_lock:
            if _code_cache.get(key, (None,))[0] is ref:
                del _code_cache[key]

    with _code_lock:
        _code_cache[key] = (weakref.ref(code, forget), info)
    return info


def _encode_const(value: object) -> Json:
    """Compile-time constants (the types the compiler can put in ``co_consts``)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, complex):
        return {"$complex": [_encode_const(value.real), _encode_const(value.imag)]}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, tuple):
        return {"$tuple": [_encode_const(v) for v in value]}
    if isinstance(value, frozenset):
        return {"$frozenset": sorted((_encode_const(v) for v in value), key=_canonical_json)}
    if isinstance(value, types.CodeType):
        return {"$code": [value.co_name, _code_info(value).digest]}
    if value is Ellipsis:
        return {"$ellipsis": True}
    return {"$const": type(value).__qualname__, "repr": repr(value)}


def _analyse(code: types.CodeType) -> _CodeInfo:
    bytecode = dis.Bytecode(code)
    instructions = list(bytecode)
    # Jump targets and exception ranges count in kept instructions, so that line-number NOPs
    # (which come and go with formatting) cannot shift them.
    index_at: dict[int, int] = {}
    kept = 0
    for ins in instructions:
        index_at[ins.offset] = kept
        if ins.opcode not in _DROPPED:
            kept += 1
    end = kept

    def idx(offset: int) -> int:
        return index_at.get(offset, end)

    ops: list[Json] = []
    global_chains: list[tuple[str, ...]] = []
    deref_chains: list[tuple[str, ...]] = []
    imports: list[_Import] = []
    nested: list[_CodeInfo] = []
    for pos, ins in enumerate(instructions):
        op = ins.opcode
        if op in _DROPPED:
            continue
        arg: Json
        if op in _CONST_OPS:
            arg = _encode_const(ins.argval)
            if isinstance(ins.argval, types.CodeType):
                nested.append(_code_info(ins.argval))
        elif op in _JUMP_OPS and isinstance(ins.argval, int):
            arg = idx(ins.argval)
        elif op in _NAME_OPS:
            arg = ins.argrepr  # the name, plus the push-NULL marker where there is one
        elif ins.argval is None or isinstance(ins.argval, (bool, int, str)):
            arg = ins.argval
        else:
            arg = _encode_const(ins.argval)
        ops.append([ins.opname, arg])

        if op in _GLOBAL_LOADS or op in _DEREF_LOADS:
            chain = (str(ins.argval), *_attr_chain(instructions, pos + 1))
            if op in _GLOBAL_LOADS:
                global_chains.append(chain)
            elif ins.argval in code.co_freevars:
                deref_chains.append(chain)
        elif op == _IMPORT_NAME:
            imports.append(_read_import(instructions, pos))

    exceptions = [
        [idx(e.start), idx(e.end), idx(e.target), e.depth, bool(e.lasti)]
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
    for sub in nested:
        global_chains.extend(sub.global_chains)
        deref_chains.extend(c for c in sub.deref_chains if c[0] in code.co_freevars)
        imports.extend(sub.imports)
    return _CodeInfo(
        _sha256_json(encoding), _dedupe(global_chains), _dedupe(deref_chains), _dedupe(imports)
    )


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


def _read_import(instructions: list[dis.Instruction], pos: int) -> _Import:
    """``LOAD_CONST level; LOAD_CONST fromlist; IMPORT_NAME module; [IMPORT_FROM name …]``."""
    consts = [i.argval for i in instructions[max(0, pos - 2) : pos] if i.opcode in _CONST_OPS]
    level = consts[0] if len(consts) == 2 and isinstance(consts[0], int) else 0
    fromlist = consts[1] if len(consts) == 2 else None
    names: list[str] = []
    if fromlist is not None:  # `import a.b as c` also uses IMPORT_FROM, but binds a.b itself
        for i in range(pos + 1, len(instructions)):
            ins = instructions[i]
            if ins.opcode == _IMPORT_FROM:
                names.append(str(ins.argval))
            elif not (ins.opname.startswith("STORE_") or ins.opcode in _DROPPED):
                break
    return _Import(level, str(instructions[pos].argval), tuple(names))


def _dedupe(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


# --------------------------------------------------------------------------- the walk


class _Unstable(Exception):
    """A value has no stable encoding."""


_warned: set[tuple[str, str]] = set()


def _warn_unstable(label: str, value: object, reason: str) -> None:
    key = (label, type(value).__qualname__)
    with _origin_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "%s: a value of type %s cannot be hashed stably (%s); only its type counts in the code "
        "fingerprint, so changes to it will not invalidate cached results. Make it a plain "
        "value (numbers, strings, lists, dicts, dataclasses) or pin the task with version=.",
        label,
        _type_name(type(value)),
        reason,
    )


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _module_name_of(obj: object) -> str:
    if isinstance(obj, types.FunctionType):
        name = obj.__globals__.get("__name__")
        if isinstance(name, str):
            return name
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else ""


def _wrapped(obj: object) -> object | None:
    try:
        inner = getattr(obj, "__wrapped__", None)
    except Exception:  # proxies may raise anything from __getattr__
        return None
    return inner if inner is not None and inner is not obj and callable(inner) else None


def _unwrap_root(fn: object) -> object:
    """Follow wrappers (a TaskDef, an installed decorator) down to the user's function."""
    obj = fn
    for _ in range(100):
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if isinstance(obj, types.FunctionType) and _function_origin(obj).kind == "user":
            return obj
        inner = _wrapped(obj)
        if inner is None:
            break
        obj = inner
    if not callable(obj):
        raise TypeError(
            f"cannot fingerprint {fn!r}: expected a function (or an object wrapping one through "
            "__wrapped__, such as a flowkit task); pass the function itself or pin the task's "
            "code with version="
        )
    return obj


def _function_origin(fn: types.FunctionType) -> _Origin:
    return _path_origin(fn.__code__.co_filename)


class _Walker:
    """One traversal: assigns component names and fills ``components``."""

    def __init__(self, root_module: str) -> None:
        self.root_module = root_module
        self.components: dict[str, str] = {}
        self._labels: dict[int, str] = {}  # id(object) -> its component name
        self._keep: list[object] = []  # keeps the ids above unique for the walk
        self._taken: set[str] = set()

    # ---- names -------------------------------------------------------------------------

    def _relative(self, module: str, name: str) -> str:
        if not module or module == self.root_module:
            return name
        return f"{module}.{name}"

    def _claim(self, obj: object, label: str) -> tuple[str, bool]:
        """The label of ``obj``; ``True`` when it was just claimed (the caller must fill it)."""
        known = self._labels.get(id(obj))
        if known is not None:
            return known, False
        unique, n = label, 1
        while unique in self._taken:
            n += 1
            unique = f"{label} #{n}"
        self._taken.add(unique)
        self._labels[id(obj)] = unique
        self._keep.append(obj)
        return unique, True

    # ---- nodes -------------------------------------------------------------------------

    def root(self, fn: object) -> None:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        label, _ = self._claim(fn, f"function `{name}`")
        if isinstance(fn, types.FunctionType) and _function_origin(fn).kind == "user":
            self.components[label] = _sha256_json(["function", self._function(fn, prefix="")])
        else:  # an installed function used as a task: it counts by reference and version
            self.components[label] = _sha256_json(["installed", self.ref(fn)])

    def _function(self, fn: types.FunctionType, prefix: str, inline: bool = False) -> Json:
        """The pre-image of a function: code, plus what its names are bound to right now.

        ``prefix`` names the owner of closure / default components (``""`` for the task);
        ``inline`` puts closure and default values into the pre-image instead (methods).
        """
        info = _code_info(fn.__code__)
        module = _module_name_of(fn)
        bindings: dict[str, str] = {}
        for chain in info.global_chains:
            self._bind_global(fn, module, chain, bindings)
        for imp in info.imports:
            self._bind_import(fn, imp, bindings)
        closure: dict[str, Json] = {}
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False))
        for name, cell in cells.items():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: the name is assigned later
                continue
            chains = [c for c in info.deref_chains if c[0] == name and len(c) > 1]
            if isinstance(value, types.ModuleType) and chains:
                for chain in chains:
                    self._bind_chain(value, chain, f"{prefix}{name}", bindings)
                continue
            closure[name] = self._slot("closure", f"{prefix}{name}", value, inline)
        defaults = [
            self._slot("default", f"{prefix}{_param_name(fn, i)}", v, inline)
            for i, v in enumerate(fn.__defaults__ or ())
        ]
        kwdefaults = {
            k: self._slot("default", f"{prefix}{k}", v, inline)
            for k, v in sorted((fn.__kwdefaults__ or {}).items())
        }
        return {
            "code": info.digest,
            "bindings": dict(sorted(bindings.items())),
            "closure": closure,
            "defaults": defaults,
            "kwdefaults": kwdefaults,
        }

    def _slot(self, kind: str, name: str, value: object, inline: bool) -> Json:
        """A closure cell or default value: its own component, or inline for methods."""
        if inline:
            return self._encode_or_type(value, f"{kind} `{name}`")
        if _is_code_like(value):
            return self.ref(value)
        label = f"{kind} `{name}`"
        self.components[label] = _sha256_json(self._encode_or_type(value, label))
        return label

    def _bind_global(
        self, fn: types.FunctionType, module: str, chain: tuple[str, ...], bindings: dict[str, str]
    ) -> None:
        head = chain[0]
        namespace = fn.__globals__
        if head not in namespace:
            return  # a builtin, or a global assigned later: not resolvable now
        value = namespace[head]
        self._bind_chain(value, chain, self._relative(module, head), bindings, module)

    def _bind_chain(
        self,
        value: object,
        chain: tuple[str, ...],
        place: str,
        bindings: dict[str, str],
        module: str = "",
    ) -> None:
        """Follow ``a.b.c`` through user modules; bind the object the chain stops at."""
        owner = module
        taken = 1
        while (
            taken < len(chain)
            and isinstance(value, types.ModuleType)
            and _module_origin(value).kind == "user"
        ):
            attr = chain[taken]
            try:
                nxt = getattr(value, attr)
            except AttributeError:
                return  # not resolvable now: ignored
            owner, value, taken = value.__name__, nxt, taken + 1
        key = ".".join(chain[:taken])
        if taken > 1:
            place = self._relative(owner, chain[taken - 1])
        bindings[key] = self.ref(value, constant_name=place)

    def _bind_import(self, fn: types.FunctionType, imp: _Import, bindings: dict[str, str]) -> None:
        target = imp.module
        if imp.level:
            package = fn.__globals__.get("__package__") or ""
            try:
                target = importlib.util.resolve_name("." * imp.level + imp.module, package)
            except (ImportError, ValueError):
                return
        module = sys.modules.get(target)
        if not isinstance(module, types.ModuleType):
            module = self._load_unimported(target, bindings)
            if module is None:
                return
        if not imp.names:
            bindings[f"import {target}"] = self.ref(module)
            return
        for name in imp.names:
            value = getattr(module, name, None)
            if value is None:
                value = sys.modules.get(f"{target}.{name}")
            if value is not None:
                bindings[f"from {target} import {name}"] = self.ref(
                    value, constant_name=self._relative(target, name)
                )

    def _load_unimported(self, target: str, bindings: dict[str, str]) -> types.ModuleType | None:
        """A module imported inside the task that the driver has not imported yet.

        Installed and stdlib modules count by version without being imported. A user module
        is imported now, as the task itself would: its code can only be fingerprinted loaded.
        """
        top = target.split(".", 1)[0]
        try:
            spec = importlib.util.find_spec(top)  # a top-level name runs no package code
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None  # not importable here: the task would fail, nothing to fingerprint
        if spec.origin in ("built-in", "frozen"):
            origin = _Origin("stdlib", top)
        else:
            locations = list(spec.submodule_search_locations or [])
            path = spec.origin or (locations[0] if locations else "")
            origin = _path_origin(path) if path else _USER
        if origin.kind != "user" or top in _INSTALLED_TOPLEVELS:
            kind = "installed" if top in _INSTALLED_TOPLEVELS else origin.kind
            bindings[f"import {target}"] = self._module_version(_Origin(kind, top))
            return None
        try:
            return importlib.import_module(target)
        except Exception as exc:
            logger.warning(
                "the task imports user module %r inside its body; importing it to fingerprint "
                "its code failed (%s: %s), so edits to it will not invalidate cached results",
                target,
                type(exc).__name__,
                exc,
            )
            return None

    # ---- references --------------------------------------------------------------------

    def ref(self, obj: object, constant_name: str = "", value_level: bool = False) -> str:
        """The reference string for ``obj``, adding the components it needs.

        ``constant_name`` names plain values bound at module level (``FACTOR`` or
        ``utils.FACTOR``); ``value_level`` marks references found inside a value, for which
        standard-library versions are not recorded.
        """
        seen: set[int] = set()
        while id(obj) not in seen:
            seen.add(id(obj))
            if isinstance(obj, types.FunctionType):
                origin = _function_origin(obj)
                if origin.kind == "user":
                    return self._helper(obj)
                inner = _wrapped(obj)
                self._installed(origin, value_level)
                if inner is None:
                    return f"ext:{_qualified(obj)}"
                obj = inner  # an installed decorator (torch.no_grad…): hash what it wraps
                continue
            if isinstance(obj, type):
                origin = _module_origin_by_name(obj.__module__)
                if origin.kind == "user":
                    return self._class(obj)
                self._installed(origin, value_level)
                return f"ext:{_qualified(obj)}"
            if isinstance(obj, types.ModuleType):
                origin = _module_origin(obj)
                if origin.kind == "user":
                    return self._whole_module(obj)
                return self._installed(origin, value_level) or f"ext:{obj.__name__}"
            if isinstance(
                obj,
                (
                    types.BuiltinFunctionType,
                    types.MethodDescriptorType,
                    types.WrapperDescriptorType,
                ),
            ):
                module = getattr(obj, "__module__", None) or ""
                origin = _module_origin_by_name(module) if module else _Origin("stdlib", "")
                if origin.kind != "user":
                    self._installed(origin, value_level)
                return f"ext:{module}:{getattr(obj, '__qualname__', '')}"
            if not isinstance(obj, types.MethodType):
                inner = _wrapped(obj)
                if inner is not None:  # a TaskDef, an lru_cache wrapper…
                    obj = inner
                    continue
            break
        return self._constant(obj, constant_name)

    def _installed(self, origin: _Origin, value_level: bool) -> str:
        if origin.kind == "user" or (value_level and origin.kind == "stdlib"):
            return ""
        if origin.top in ("", "builtins"):
            return ""
        return self._module_version(origin)

    def _module_version(self, origin: _Origin) -> str:
        label = f"module `{origin.top}`"
        self.components[label] = _origin_version(origin)
        return label

    def _helper(self, fn: types.FunctionType) -> str:
        module = _module_name_of(fn)
        name = self._relative(module, fn.__qualname__)
        label = f"helper `{name}`"
        if _wrapped(fn) is not None:
            # A user decorator's wrapper (functools.wraps copied the wrapped name onto it):
            # name it after the decorator, so the wrapped function keeps "helper `name`".
            code_name = getattr(fn.__code__, "co_qualname", fn.__code__.co_name)
            decorator = self._relative(module, code_name.split(".<locals>.", 1)[0])
            label = f"decorator `{decorator}` on `{name}`"
        label, new = self._claim(fn, label)
        if new:
            self.components[label] = ""  # claimed: cycles see the name, not a half-made digest
            self.components[label] = _sha256_json(["function", self._function(fn, name + ".")])
        return label

    def _class(self, cls: type) -> str:
        name = self._relative(cls.__module__, cls.__qualname__)
        label, new = self._claim(cls, f"class `{name}`")
        if new:
            self.components[label] = ""
            self.components[label] = _sha256_json(["class", self._class_preimage(cls, label)])
        return label

    def _class_preimage(self, cls: type, label: str) -> Json:
        bases = [self.ref(b) for b in cls.__bases__ if b is not object]
        meta = type(cls)
        members: list[Json] = []
        for name, member in sorted(vars(cls).items()):
            encoded = self._member(name, member, f"{label} member `{name}`")
            if encoded is not None:
                members.append([name, encoded])
        annotations = vars(cls).get("__annotations__", {})
        return {
            "bases": bases,
            "metaclass": None if meta is type else self.ref(meta),
            "annotations": {str(k): _annotation_text(v) for k, v in sorted(annotations.items())},
            "members": members,
        }

    def _member(self, name: str, member: object, label: str) -> Json:
        if name in _SKIPPED_MEMBERS or isinstance(member, _SKIPPED_MEMBER_TYPES):
            return None
        if isinstance(member, (staticmethod, classmethod)):
            return [type(member).__name__, self._method(member.__func__, label)]
        if isinstance(member, property):
            return [
                "property",
                [
                    self._method(f, label) if f is not None else None
                    for f in (member.fget, member.fset, member.fdel)
                ],
            ]
        if isinstance(member, types.FunctionType):
            return ["method", self._method(member, label)]
        is_dunder = name.startswith("__") and name.endswith("__")
        if is_dunder and name not in _KEPT_DUNDER_VALUES:
            return None  # derived class machinery (__dataclass_fields__, __pydantic_*__ …)
        try:
            return self._encode(member, depth=0, stack=())
        except _Unstable as exc:
            _warn_unstable(label, member, str(exc))
            return {"$unhashable": _type_name(type(member))}

    def _method(self, fn: object, label: str) -> Json:
        """A method is part of its class: inlined, through installed wrappers around it."""
        wrappers: list[str] = []
        while isinstance(fn, types.FunctionType):
            origin = _function_origin(fn)
            if origin.kind == "user":
                return [wrappers, self._function(fn, prefix="", inline=True)]
            inner = _wrapped(fn)
            if inner is None:
                break
            self._installed(origin, value_level=False)
            # Named by its own code: functools.wraps copied the user's names onto it.
            code = fn.__code__
            wrappers.append(f"{origin.top}:{getattr(code, 'co_qualname', code.co_name)}")
            fn = inner
        return self.ref(fn)

    def _whole_module(self, module: types.ModuleType) -> str:
        """A user module used as a value: everything it defines counts."""
        label, new = self._claim(module, f"module `{module.__name__}`")
        if not new:
            return label
        self.components[label] = ""
        members: dict[str, str] = {}
        for name, value in sorted(vars(module).items()):
            if name.startswith("__") or isinstance(value, types.ModuleType):
                continue
            defined_here = getattr(value, "__module__", module.__name__) == module.__name__
            if isinstance(value, (types.FunctionType, type)) and not defined_here:
                continue  # imported names are covered where they are defined
            members[name] = self.ref(value, constant_name=self._relative(module.__name__, name))
        self.components[label] = _sha256_json(["module", members])
        return label

    def _constant(self, value: object, name: str) -> str:
        if not name:
            return "value:" + _sha256_json(self._encode_or_type(value, "a value"))
        label = f"constant `{name}`"
        if label not in self.components:
            self.components[label] = ""  # claimed: a value reached again while encoding it
            self.components[label] = _sha256_json(self._encode_or_type(value, label))
        return label

    # ---- values ------------------------------------------------------------------------

    def _encode_or_type(self, value: object, label: str) -> Json:
        try:
            return self._encode(value, depth=0, stack=())
        except _Unstable as exc:
            _warn_unstable(label, value, str(exc))
            return {"$unhashable": _type_name(type(value))}
        except RecursionError:
            _warn_unstable(label, value, "nested too deeply")
            return {"$unhashable": _type_name(type(value))}

    def _encode(self, value: object, depth: int, stack: tuple[int, ...]) -> Json:
        if depth > _MAX_VALUE_DEPTH:
            raise _Unstable("nested too deeply")
        t = type(value)
        if value is None or t is bool or t is str or t is int:
            return value
        if isinstance(value, float) and t is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, (bytes, bytearray)) and t in (bytes, bytearray):
            return {f"${t.__name__}": hashlib.sha256(value).hexdigest()}
        if id(value) in stack:
            return {"$cycle": len(stack) - stack.index(id(value))}
        inner = (*stack, id(value))
        d = depth + 1
        if isinstance(value, list) and t is list:
            return [self._encode(v, d, inner) for v in value]
        if isinstance(value, tuple) and t is tuple:
            return {"$tuple": [self._encode(v, d, inner) for v in value]}
        if isinstance(value, dict) and t is dict:
            pairs = [
                [self._encode(k, d, inner), self._encode(v, d, inner)] for k, v in value.items()
            ]
            return {"$dict": sorted(pairs, key=_canonical_json)}
        if isinstance(value, (set, frozenset)) and t in (set, frozenset):
            elems = sorted((self._encode(v, d, inner) for v in value), key=_canonical_json)
            return {f"${t.__name__}": elems}
        if isinstance(value, complex) and t is complex:
            return {
                "$complex": [self._encode(value.real, d, inner), self._encode(value.imag, d, inner)]
            }
        if _is_code_like(value) or _wrapped(value) is not None:
            return {"$ref": self.ref(value, value_level=True)}
        if t.__module__ == "numpy" and t.__name__ == "ndarray":
            return self._encode_ndarray(value, d, inner)
        return self._encode_reduced(value, d, inner)

    def _encode_ndarray(self, arr: Any, depth: int, stack: tuple[int, ...]) -> Json:
        if arr.dtype.hasobject:
            return {
                "$ndarray": [arr.dtype.str, list(arr.shape)],
                "items": self._encode(arr.ravel().tolist(), depth, stack),
            }
        data = arr.tobytes(order="C")  # a copy only for non-contiguous arrays
        return {
            "$ndarray": [arr.dtype.str, list(arr.shape)],
            "sha256": hashlib.sha256(data).hexdigest(),
        }

    def _encode_reduced(self, value: object, depth: int, stack: tuple[int, ...]) -> Json:
        try:
            reduced = value.__reduce_ex__(4)
        except Exception as exc:
            raise _Unstable(f"it cannot be pickled: {exc}") from None
        if isinstance(reduced, str):  # a module-level singleton, pickled by name
            return {"$global": [_type_name(type(value)), reduced]}
        if not isinstance(reduced, tuple) or len(reduced) < 2:
            raise _Unstable("its __reduce_ex__ returned an unexpected value")
        func, args, *rest = reduced
        state = rest[0] if rest else None
        listitems = list(rest[1]) if len(rest) > 1 and rest[1] is not None else None
        dictitems = dict(rest[2]) if len(rest) > 2 and rest[2] is not None else None
        return {
            "$reduce": [
                self._encode(func, depth, stack),
                self._encode(args, depth, stack),
                self._encode(state, depth, stack),
                self._encode(listitems, depth, stack),
                self._encode(dictitems, depth, stack),
            ]
        }


_SKIPPED_MEMBERS = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__dict__",
        "__weakref__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "_abc_impl",
    }
)
_SKIPPED_MEMBER_TYPES = (types.MemberDescriptorType, types.GetSetDescriptorType)
_KEPT_DUNDER_VALUES = frozenset({"__slots__", "__hash__", "__match_args__"})


def _is_code_like(value: object) -> bool:
    """Functions, classes and modules: hashed by what they are, not pickled."""
    return isinstance(
        value,
        (
            types.FunctionType,
            type,
            types.ModuleType,
            types.BuiltinFunctionType,
            types.MethodDescriptorType,
            types.WrapperDescriptorType,
        ),
    )


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"


def _param_name(fn: types.FunctionType, default_index: int) -> str:
    """The positional parameter a ``__defaults__`` entry belongs to."""
    code = fn.__code__
    names = code.co_varnames[: code.co_argcount]
    defaults = fn.__defaults__ or ()
    return names[len(names) - len(defaults) + default_index]


def _annotation_text(annotation: object) -> str:
    """An annotation as text without module names (``__main__.X`` vs ``pipeline.X``)."""
    if isinstance(annotation, str):
        return annotation
    args = getattr(annotation, "__args__", None)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and isinstance(args, tuple):
        inner = ", ".join(_annotation_text(a) for a in args)
        return f"{_annotation_text(origin)}[{inner}]"
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation)
