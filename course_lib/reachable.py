"""What an object's code can reach: its attributes, its class, what its methods name.

Two parts of the course need the same walk. The scheduler
(:mod:`course_lib.interleave`) swaps locks made *before* a run (in a class
body, a module global, a closure) for cooperative ones while the run lasts;
a test (:func:`course_lib.grading.expect_not_built_on`) asks whether a
class is secretly built on something an exercise rules out, such as a
``queue.Queue`` kept in a module-level dict. Both follow references the way
the code itself would: an instance's attributes and its class (and the
class's bases), a function's closure cells, defaults and the globals its
code names, the items of containers, and ``module.name`` where a function
names both. Modules themselves are not entered.
"""

from __future__ import annotations

import collections
import functools
import types
from typing import Any, Callable, Iterator

from .judge.ownership import OwnMethod

__all__ = ["references", "global_names"]

MAX_DEPTH = 4
MAX_ITEMS = 200  # of one container
_SKIP_MODULES = frozenset({"builtins", "threading", "queue", "_thread", "collections", "socket", "selectors"})


def global_names(code: types.CodeType) -> set[str]:
    """The global and attribute names a code object (and the functions nested in it) use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def _set_item(container, key, value) -> None:
    container[key] = value


def references(root, max_depth: int = MAX_DEPTH, opaque: tuple[type, ...] = ()
               ) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
    """Yield ``(path, value, replace)`` for each value reachable from ``root``.

    ``path`` says where it was found (``state.counter``, ``Counter._lock``,
    ``add: global _store['q']``); ``replace(new)`` puts another value in its
    place (None where it cannot be replaced, as in a tuple). Each object is
    visited once, at most ``max_depth`` references from the root. Values of
    the ``opaque`` types are yielded but not looked into (the scheduler's
    own locks, whose insides are its business).
    """
    seen: set[int] = set()
    yield from _walk(root, "state", 0, max_depth, seen, tuple(opaque))


def _entries(obj, path: str):
    """(sub-path, value, replace) of the references held directly by ``obj``."""
    if isinstance(obj, dict):
        for key, value in list(obj.items())[:MAX_ITEMS]:
            yield f"{path}[{key!r}]", value, (lambda new, o=obj, k=key: _set_item(o, k, new))
    elif isinstance(obj, list):
        for index, value in enumerate(obj[:MAX_ITEMS]):
            yield f"{path}[{index}]", value, (lambda new, o=obj, i=index: _set_item(o, i, new))
    elif isinstance(obj, (tuple, set, frozenset, collections.deque)):
        for index, value in enumerate(list(obj)[:MAX_ITEMS]):
            yield f"{path}[{index}]", value, None
    elif isinstance(obj, functools.partial):  # partial(Server.serve, server): what it will call, with what
        yield f"{path}.func", obj.func, None
        for index, value in enumerate(obj.args[:MAX_ITEMS]):
            yield f"{path}.args[{index}]", value, None
        for key, value in list(obj.keywords.items())[:MAX_ITEMS]:
            yield f"{path}.keywords[{key!r}]", value, None
    elif isinstance(obj, type):
        if obj.__module__ in _SKIP_MODULES:
            return
        for klass in obj.__mro__:
            if klass is object or klass.__module__ in _SKIP_MODULES:
                continue
            for name, value in list(vars(klass).items()):
                if name.startswith("__") and name not in ("__init__", "__call__"):
                    continue
                if isinstance(value, property):
                    for accessor in (value.fget, value.fset):
                        if accessor is not None:
                            yield f"{klass.__name__}.{name}", accessor, None
                    continue
                if isinstance(value, OwnMethod):  # a judge kernel's guard around a cell's method
                    value = value.function
                yield (f"{klass.__name__}.{name}", getattr(value, "__func__", value),
                       lambda new, k=klass, n=name: setattr(k, n, new))
    elif isinstance(obj, (types.FunctionType, types.MethodType)):
        owner = getattr(obj, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            yield f"{path}.__self__", owner, None
        fn = getattr(obj, "__func__", obj)
        if not isinstance(fn, types.FunctionType):
            return
        name = fn.__name__
        for index, cell in enumerate(fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:
                continue  # not bound yet
            yield (f"{name}: closure {fn.__code__.co_freevars[index]}", value,
                   lambda new, c=cell: setattr(c, "cell_contents", new))
        namespace = fn.__globals__
        used = global_names(fn.__code__)
        for global_name in sorted(used):
            if global_name not in namespace:
                continue
            value = namespace[global_name]
            if isinstance(value, types.ModuleType):
                # module.attribute, where the code names both (queue.Queue, mod.LOCK)
                for attribute in sorted(used):
                    if attribute in vars(value):
                        yield (f"{name}: {global_name}.{attribute}", vars(value)[attribute],
                               lambda new, m=value, a=attribute: setattr(m, a, new))
                continue
            yield (f"{name}: global {global_name}", value,
                   lambda new, ns=namespace, k=global_name: _set_item(ns, k, new))
        for index, value in enumerate(fn.__defaults__ or ()):
            yield f"{name}: default {index}", value, None
    elif not isinstance(obj, types.ModuleType):
        if hasattr(obj, "__dict__"):
            for name, value in list(vars(obj).items()):
                yield f"{path}.{name}", value, (lambda new, d=vars(obj), k=name: _set_item(d, k, new))
        for klass in type(obj).__mro__:  # __slots__ hold references too
            for name in getattr(klass, "__slots__", ()) if isinstance(getattr(klass, "__slots__", ()), (tuple, list)) else ():
                if name in ("__dict__", "__weakref__") or not hasattr(obj, name):
                    continue
                yield (f"{path}.{name}", getattr(obj, name),
                       lambda new, o=obj, n=name: object.__setattr__(o, n, new))
        yield f"type({path})", type(obj), None


_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), types.ModuleType, types.CodeType)


def _walk(obj, path: str, depth: int, max_depth: int, seen: set[int], opaque: tuple = ()):
    if depth >= max_depth or isinstance(obj, _ATOMS) or id(obj) in seen or (opaque and isinstance(obj, opaque)):
        return
    if type(obj).__name__ == "Condition" and type(obj).__module__ == "threading":
        return  # a unit of its own (its lock and waiters are its business)
    seen.add(id(obj))
    for sub_path, value, replace in list(_entries(obj, path)):
        yield sub_path, value, replace
        yield from _walk(value, sub_path, depth + 1, max_depth, seen, opaque)
