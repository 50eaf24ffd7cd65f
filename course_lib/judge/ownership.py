"""A method's ``self`` is its own class's instance: checked at run time for classes made in cells.

The solution policy lets a method read and set private attributes of
``self`` and ``cls``. That is safe only if ``self`` really is an instance
of the class: in plain Python, ``SafeCounter.increment(threading.Event)``
calls the function with a library class as ``self``, and
``self.wait = ...`` would then change ``threading.Event`` for everyone. So
in a judge kernel every class whose ``class`` statement runs in a notebook
cell has its functions replaced, as the class is made, by :class:`OwnMethod`
descriptors: through an instance they bind as usual; through the class they
give a function that refuses a first argument that is not an instance of
the class (as Python 2's unbound methods did). Properties (their getter,
setter and deleter) and ``functools.cached_property`` are wrapped the same
way; the classes ``dataclasses.dataclass`` and ``functools.total_ordering``
return (which may be new, or have new methods) are wrapped again. A
``@contextlib.contextmanager`` (or ``asynccontextmanager``) method is made
again around the checked function: the context manager it returns keeps
its function in the public attribute ``func``, which must not be the
unchecked one (``bank.locked().func(other)``).

A class made in a cell may not put a library class beside a class of the
notebook's own that does not extend it (``class B(Mine, threading.Thread)``):
the policy checked ``Mine``'s methods against the private names of
``Mine``'s own bases only, and through ``B`` they would read ``Thread``'s.
The class statement raises ``TypeError`` instead.

What it trades off: one Python-level ``__get__`` per method call on such
classes (about 0.3 µs), and this file is not traced by the scheduler, so
schedules are the same as without it. Classes made by libraries, and every
class outside a judge kernel, are untouched.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import sys
import types
import weakref

from .integrity import is_cell

__all__ = ["OwnMethod", "install", "guard_class", "refuse_mixed_bases"]


def _checked(function, cls):
    """``function`` reached through ``cls``: its first argument must be an instance of ``cls``."""
    name = getattr(function, "__qualname__", "?")

    def call(*args, **kwargs):
        if not args or not isinstance(args[0], cls):
            raise TypeError(f"{name}() needs a {cls.__name__} as its first argument "
                            "(call it on an instance: obj.method(...))")
        return function(*args, **kwargs)

    for attribute in ("__name__", "__qualname__", "__doc__", "__module__", "__isabstractmethod__"):
        if hasattr(function, attribute):
            setattr(call, attribute, getattr(function, attribute))
    return call


def _made_by(decorator):
    def example():
        yield

    return decorator(example).__code__


#: The code of the function each context-manager decorator returns -> that decorator.
_CONTEXT_MANAGERS = {_made_by(d): d for d in (contextlib.contextmanager, contextlib.asynccontextmanager)}


def _context_manager_method(function, cls):
    """``function`` made by ``@contextlib.contextmanager`` (or the async one): made again around the
    checked generator function, or None if it is not one."""
    decorator = _CONTEXT_MANAGERS.get(function.__code__)
    wrapped = getattr(function, "__wrapped__", None)
    if decorator is None or not isinstance(wrapped, types.FunctionType):
        return None
    return decorator(_checked(wrapped, cls))


class OwnMethod:
    """A function of a class made in a cell: bound through an instance, checked through the class."""

    __slots__ = ("_function", "_checked")

    def __init__(self, function, cls):
        self._function = function
        self._checked = _checked(function, cls)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self._checked
        return types.MethodType(self._function, instance)

    @property
    def function(self):
        return self._function


#: The classes made in cells (those guard_class has guarded).
_GUARDED: "weakref.WeakSet[type]" = weakref.WeakSet()


def refuse_mixed_bases(cls: type) -> None:
    """Raise TypeError if a cell's class in ``cls``'s MRO does not extend a library class in it."""
    own = [c for c in cls.__mro__ if c is cls or c in _GUARDED]
    library = [c for c in cls.__mro__ if c not in own and c is not object]
    for mine in own:
        for theirs in library:
            if not issubclass(mine, theirs):
                raise TypeError(
                    f"class {cls.__name__}: {mine.__name__}'s methods would see the private state of "
                    f"{theirs.__module__}.{theirs.__qualname__}, which {mine.__name__} does not extend; "
                    f"extend {theirs.__qualname__} in the class whose methods use it")


def guard_class(cls: type) -> type:
    """Wrap the functions, properties and cached properties ``cls`` defines itself."""
    _GUARDED.add(cls)
    for name, value in list(vars(cls).items()):
        if isinstance(value, types.FunctionType) and name != "__new__":
            replacement = OwnMethod(_context_manager_method(value, cls) or value, cls)
        elif isinstance(value, OwnMethod):  # copied into a new class (dataclass(slots=True)): this class's now
            replacement = OwnMethod(value.function, cls)
        elif isinstance(value, property):
            replacement = property(*(None if f is None else _checked(f, cls)
                                     for f in (value.fget, value.fset, value.fdel)), value.__doc__)
        elif isinstance(value, functools.cached_property) and isinstance(value.func, types.FunctionType):
            value.func = _checked(value.func, cls)
            continue
        else:
            continue
        try:
            type.__setattr__(cls, name, replacement)
        except (AttributeError, TypeError):  # an enum member name, a read-only class: left as it is
            pass
    return cls


def install() -> None:
    """Guard every class made from now on by a notebook cell's ``class`` statement, and the classes
    the class decorators the policy allows return. Called once, before any cell runs."""
    getframe = sys._getframe
    real_build_class = builtins.__build_class__

    def written_in_a_cell(depth: int) -> bool:
        # The statement's own file decides: a library imported by a cell (%matplotlib) is not the cell.
        return is_cell(getframe(depth + 1).f_code.co_filename)

    def build_class(func, name, *bases, **keywords):
        cls = real_build_class(func, name, *bases, **keywords)
        if isinstance(cls, type) and written_in_a_cell(1):
            refuse_mixed_bases(cls)
            guard_class(cls)
        return cls

    builtins.__build_class__ = build_class

    import dataclasses

    real_dataclass = dataclasses.dataclass

    def dataclass(cls=None, /, **options):
        def wrap(target):
            made = real_dataclass(target, **options)
            return guard_class(made) if written_in_a_cell(1) or written_in_a_cell(2) else made

        return wrap if cls is None else wrap(cls)

    functools.update_wrapper(dataclass, real_dataclass)
    dataclasses.dataclass = dataclass

    real_total_ordering = functools.total_ordering

    def total_ordering(cls):
        made = real_total_ordering(cls)
        return guard_class(made) if written_in_a_cell(1) else made

    functools.update_wrapper(total_ordering, real_total_ordering)
    functools.total_ordering = total_ordering
