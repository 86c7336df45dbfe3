"""The walk from a task function through the user code it reaches, naming each component.

Policy: every name the code reads is resolved to the object it is bound to *now* (globals and
attribute chains through user modules, function-level imports, closure cells, defaults):

* user functions -> ``helper `name``` (their code plus these bindings, recursively);
  a user decorator's wrapper -> ``decorator `deco` on `name```;
* user classes -> ``class `name``` (bases, metaclass, annotations and every member; methods are
  inlined, data members encoded by value, derived dunder data such as ``__dataclass_fields__``
  skipped);
* plain values -> ``constant `NAME```, ``closure `var```, ``default `param```;
* installed and stdlib code -> ``module `top``` = its version, and a by-name reference;
* builtins and names not bound yet -> nothing.

Names are relative to the task's own module (``clean``, ``utils.clean``), never contain ids or
paths, and get a ``#2`` suffix on the rare clash. Each function records which reference every
name resolved to, so swapping two globals changes the digest even though no code changed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
import types
from collections import deque
from collections.abc import Callable
from typing import Any

from flowkit import hashing, naming
from flowkit.codehash import origins
from flowkit.codehash.bytecode import Import, code_info
from flowkit.codehash.values import Json, ValueEncoder, is_code_like, wrapped

logger = logging.getLogger(__name__)

# Class members that are bookkeeping, not behaviour (or are hashed separately).
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
_BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
)


def sha256_json(obj: Json) -> str:
    return hashlib.sha256(hashing.canonical_json(obj)).hexdigest()


def module_name_of(obj: object) -> str:
    """The module a function's globals belong to (or the object's ``__module__``)."""
    if isinstance(obj, types.FunctionType):
        name = obj.__globals__.get("__name__")
        if isinstance(name, str):
            return name
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else ""


def unwrap_root(fn: object) -> object:
    """Follow wrappers (a TaskDef, an installed decorator) down to the user's function."""
    obj = fn
    for _ in range(100):
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if isinstance(obj, types.FunctionType) and origins.function_origin(obj).kind == "user":
            return obj
        inner = wrapped(obj)
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


class Walker:
    """One traversal from a root function; fills :attr:`components`."""

    def __init__(self, root_module: str) -> None:
        self.root_module = naming.module_name(root_module)
        self.components: dict[str, str] = {}
        self._labels: dict[int, str] = {}  # id(object) -> its component name
        self._keep: list[object] = []  # keeps those ids unique for the walk
        self._taken: set[str] = set()
        self._values = ValueEncoder(lambda obj: self.ref(obj, value_level=True))
        # Nodes whose names are claimed but whose pre-images are still to build. Pre-images hold
        # names, never other digests, so a worklist replaces recursion: cycles and deep helper
        # chains cost nothing special.
        self._pending: deque[tuple[str, Callable[[], Json]]] = deque()

    # ---- names ---------------------------------------------------------------------------

    def _relative(self, module: str, name: str) -> str:
        module = naming.module_name(module)  # a script's names match whether run or imported
        return name if not module or module == self.root_module else f"{module}.{name}"

    def _claim(self, obj: object, label: str) -> tuple[str, bool]:
        """The label of ``obj``; ``True`` when just claimed (the caller must then fill it)."""
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

    # ---- functions -----------------------------------------------------------------------

    def run(self, fn: object) -> None:
        """Fingerprint ``fn`` (the task) and everything it reaches."""
        name = getattr(fn, "__name__", None) or type(fn).__name__
        label, _ = self._claim(fn, f"function `{name}`")
        if isinstance(fn, types.FunctionType) and origins.function_origin(fn).kind == "user":
            self.components[label] = sha256_json(["function", self._function(fn, prefix="")])
        else:  # an installed function used as a task counts by reference and version
            self.components[label] = sha256_json(["installed", self.ref(fn)])
        self._drain()

    def root(self, obj: object) -> str:
        """Fingerprint ``obj`` (a class, function or value) and all it reaches; its reference."""
        label = self.ref(obj)
        self._drain()
        return label

    def _drain(self) -> None:
        while self._pending:
            label, build = self._pending.popleft()
            self.components[label] = sha256_json(build())

    def _function(self, fn: types.FunctionType, prefix: str, inline: bool = False) -> Json:
        """A function's pre-image: its code, plus what each name it reads is bound to now.

        ``prefix`` names the owner of closure / default components (``""`` for the task);
        ``inline`` puts closure and default values into the pre-image instead (methods).
        """
        info = code_info(fn.__code__)
        module = module_name_of(fn)
        bindings: dict[str, str] = {}
        for chain in info.global_chains:
            if chain[0] in fn.__globals__:  # else a builtin, or a global not assigned yet
                value = fn.__globals__[chain[0]]
                self._bind_chain(value, chain, module, self._relative(module, chain[0]), bindings)
        for imp in info.imports:
            self._bind_import(fn, imp, bindings)
        closure: dict[str, Json] = {}
        cells = zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False)
        for name, cell in cells:
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: assigned later
                continue
            chains = [c for c in info.deref_chains if c[0] == name and len(c) > 1]
            if isinstance(value, types.ModuleType) and chains:
                for chain in chains:
                    self._bind_chain(value, chain, "", f"{prefix}{name}", bindings)
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
        """A closure cell or default value: its own component, or inline (methods)."""
        label = f"{kind} `{name}`"
        if inline:
            return self._values.encode_or_type(value, label)
        if is_code_like(value):
            return self.ref(value)
        self.components[label] = sha256_json(self._values.encode_or_type(value, label))
        return label

    def _bind_chain(
        self,
        value: object,
        chain: tuple[str, ...],
        module: str,
        place: str,
        bindings: dict[str, str],
    ) -> None:
        """Follow ``a.b.c`` through user modules; bind the object where the chain stops."""
        taken = 1
        while (
            taken < len(chain)
            and isinstance(value, types.ModuleType)
            and origins.module_origin(value).kind == "user"
        ):
            try:
                nxt = getattr(value, chain[taken])
            except Exception:  # AttributeError, or a lazy module's __getattr__ failing
                return  # not resolvable now: ignored
            module, value, taken = value.__name__, nxt, taken + 1
        if taken > 1:
            place = self._relative(module, chain[taken - 1])
        bindings[".".join(chain[:taken])] = self.ref(value, constant_name=place)

    def _bind_import(self, fn: types.FunctionType, imp: Import, bindings: dict[str, str]) -> None:
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
            value = _safe_getattr(module, name)
            if value is None:
                value = sys.modules.get(f"{target}.{name}")
            if value is not None:
                place = self._relative(target, name)
                bindings[f"from {target} import {name}"] = self.ref(value, constant_name=place)

    def _load_unimported(self, target: str, bindings: dict[str, str]) -> types.ModuleType | None:
        """A module the task imports in its body that is not imported yet.

        Installed and stdlib modules count by version without being imported. A user module is
        imported now, as the task itself would: its code can only be fingerprinted once loaded.
        """
        top = target.split(".", 1)[0]
        origin = origins.spec_origin(top)
        if origin is None:
            return None  # not importable here: nothing to fingerprint
        if origin.kind != "user":
            bindings[f"import {target}"] = self._module_version(origin)
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

    # ---- references ----------------------------------------------------------------------

    def ref(self, obj: object, constant_name: str = "", value_level: bool = False) -> str:
        """The reference string for ``obj``, adding the components it needs.

        ``constant_name`` names a plain value's binding (``FACTOR``, ``utils.FACTOR``);
        ``value_level`` marks references found inside a value, whose stdlib versions are not
        recorded (``copyreg`` reconstructors say nothing about behaviour).
        """
        seen: set[int] = set()
        while id(obj) not in seen:
            seen.add(id(obj))
            found = self._code_ref(obj, value_level)
            if found is not None:
                return found
            inner = None if isinstance(obj, types.MethodType) else wrapped(obj)
            if inner is None:
                break
            # a TaskDef, an lru_cache wrapper, an installed decorator (torch.no_grad…):
            # reference what it wraps
            obj = inner
        return self._constant(obj, constant_name)

    def _code_ref(self, obj: object, value_level: bool) -> str | None:
        """The reference for a function, class, module or builtin; None for anything else
        and for an installed function that wraps another (the caller follows the wrapper)."""
        if isinstance(obj, types.FunctionType):
            origin = origins.function_origin(obj)
            if origin.kind == "user":
                return self._helper(obj)
            self._installed(origin, value_level)
            return None if wrapped(obj) is not None else f"ext:{_qualified(obj)}"
        if isinstance(obj, type):
            origin = origins.module_origin_by_name(obj.__module__)
            if origin.kind == "user":
                return self._class(obj)
            self._installed(origin, value_level)
            return f"ext:{_qualified(obj)}"
        if isinstance(obj, types.ModuleType):
            origin = origins.module_origin(obj)
            if origin.kind == "user":
                return self._whole_module(obj)
            return self._installed(origin, value_level) or f"ext:{obj.__name__}"
        if isinstance(obj, _BUILTIN_CALLABLES):
            module = getattr(obj, "__module__", None) or ""
            self._installed(origins.module_origin_by_name(module), value_level)
            return f"ext:{module}:{getattr(obj, '__qualname__', '')}"
        return None

    def _installed(self, origin: origins.Origin, value_level: bool) -> str:
        if origin.kind == "user" or (value_level and origin.kind == "stdlib"):
            return ""
        if origin.top in ("", "builtins"):
            return ""
        return self._module_version(origin)

    def _module_version(self, origin: origins.Origin) -> str:
        label = f"module `{origin.top}`"
        self.components[label] = origins.version(origin)
        return label

    def _constant(self, value: object, name: str) -> str:
        if not name:
            return "value:" + sha256_json(self._values.encode_or_type(value, "a value"))
        label = f"constant `{name}`"
        if label not in self.components:
            self.components[label] = ""  # claimed: the value may be reached again inside itself
            self.components[label] = sha256_json(self._values.encode_or_type(value, label))
        return label

    def _helper(self, fn: types.FunctionType) -> str:
        module = module_name_of(fn)
        name = self._relative(module, fn.__qualname__)
        label = f"helper `{name}`"
        if wrapped(fn) is not None:
            # A user decorator's wrapper (functools.wraps copied the wrapped name onto it):
            # named after the decorator, so the wrapped function keeps "helper `name`".
            code_name = getattr(fn.__code__, "co_qualname", fn.__code__.co_name)
            decorator = self._relative(module, code_name.split(".<locals>.", 1)[0])
            label = f"decorator `{decorator}` on `{name}`"
        base = label
        label, new = self._claim(fn, label)
        if new:
            # Closure/default components are prefixed by the owner ("<lambda>#2." on a clash).
            prefix = name + label[len(base) :].replace(" ", "") + "."
            self._pending.append((label, lambda: ["function", self._function(fn, prefix)]))
        return label

    # ---- classes and modules -------------------------------------------------------------

    def _class(self, cls: type) -> str:
        label, new = self._claim(cls, f"class `{self._relative(cls.__module__, cls.__qualname__)}`")
        if new:
            self._pending.append((label, lambda: ["class", self._class_preimage(cls, label)]))
        return label

    def _class_preimage(self, cls: type, label: str) -> Json:
        members: list[Json] = []
        for name, member in sorted(vars(cls).items()):
            encoded = self._member(name, member, f"{label} member `{name}`")
            if encoded is not None:
                members.append([name, encoded])
        annotations = vars(cls).get("__annotations__", None)
        if not isinstance(annotations, dict):
            annotations = {}
        return {
            "bases": [self.ref(b) for b in cls.__bases__ if b is not object],
            "metaclass": None if type(cls) is type else self.ref(type(cls)),
            # By value: types by reference, typing constructs and Annotated metadata reduced.
            "annotations": self._values.encode_or_type(annotations, f"{label} annotations"),
            "members": members,
        }

    def _member(self, name: str, member: object, label: str) -> Json:
        if name in _SKIPPED_MEMBERS or isinstance(member, _SKIPPED_MEMBER_TYPES):
            return None
        if isinstance(member, (staticmethod, classmethod)):
            return [type(member).__name__, self._method(member.__func__)]
        if isinstance(member, property):
            accessors = (member.fget, member.fset, member.fdel)
            return ["property", [None if f is None else self._method(f) for f in accessors]]
        if isinstance(member, types.FunctionType):
            return ["method", self._method(member)]
        if name.startswith("__") and name.endswith("__") and name not in _KEPT_DUNDER_VALUES:
            return None  # derived class machinery (__dataclass_fields__, __pydantic_*__ …)
        return self._values.encode_or_type(member, label)

    def _method(self, fn: object) -> Json:
        """A method is part of its class: inlined, through installed wrappers around it."""
        wrappers: list[str] = []
        while isinstance(fn, types.FunctionType):
            origin = origins.function_origin(fn)
            if origin.kind == "user":
                return [wrappers, self._function(fn, prefix="", inline=True)]
            inner = wrapped(fn)
            if inner is None:
                break
            self._installed(origin, value_level=False)
            # Named by its own code: functools.wraps copied the user's names onto it.
            code = fn.__code__
            wrappers.append(f"{origin.top}:{getattr(code, 'co_qualname', code.co_name)}")
            fn = inner
        return self.ref(fn)

    def _whole_module(self, module: types.ModuleType) -> str:
        """A user module used as a value (not through ``module.attr``): all it defines counts."""
        label, new = self._claim(module, f"module `{module.__name__}`")
        if new:
            self._pending.append((label, lambda: ["module", self._module_members(module)]))
        return label

    def _module_members(self, module: types.ModuleType) -> Json:
        members: dict[str, str] = {}
        for name, value in sorted(vars(module).items(), key=lambda item: str(item[0])):
            if not isinstance(name, str) or name.startswith("__"):
                continue
            if isinstance(value, types.ModuleType):
                continue
            defined_here = getattr(value, "__module__", module.__name__) == module.__name__
            if isinstance(value, (types.FunctionType, type)) and not defined_here:
                continue  # imported names are covered where they are defined
            members[name] = self.ref(value, constant_name=self._relative(module.__name__, name))
        return members


def _safe_getattr(obj: object, name: str) -> object | None:
    try:
        return getattr(obj, name, None)
    except Exception:  # a lazy module's __getattr__ may raise ImportError
        return None


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"


def _param_name(fn: types.FunctionType, default_index: int) -> str:
    """The positional parameter a ``__defaults__`` entry belongs to."""
    names = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    return names[len(names) - len(fn.__defaults__ or ()) + default_index]
