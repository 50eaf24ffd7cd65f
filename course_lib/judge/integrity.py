"""What the tests rely on stays as the course made it: sealed modules, guarded classes, a snapshot.

Three layers, from prevention to detection:

* :func:`seal` turns every protected module (``threading``, ``socket``,
  ``course_lib.grading``, ...) into a :class:`SealedModule`, whose
  attributes code running from a notebook cell cannot set or delete:
  ``threading.Lock = fake`` raises, whatever alias or method got the module
  there. The course's own code and the tests (by their file names) may
  still patch a module for the length of a check (the scheduler does).
* :func:`owner` tells who is writing: walking out from the writer's frame,
  the first frame that is course code (``course_lib/`` or a test the judge
  compiled) or a notebook cell decides; library frames in between are
  transparent, so ``dataclasses.dataclass(TrustedClass)`` called from a cell
  is the cell's doing. The audit hook (:mod:`course_lib.judge.audit`) uses it
  to refuse, as it happens, attributes set on the protected modules' classes.
* :class:`Snapshot` compares the identities of the protected modules'
  functions and classes (and those classes' methods) with the ones taken at
  start-up; the runner compares before and after every test and the
  scheduler after every controlled run, so a change that slipped past the
  other two is still seen and reported.

What it trades off: sealing costs one frame walk per attribute *write* on a
protected module (reads are untouched), and writes are rare. Code with no
cell and no course frame on its stack (IPython's own machinery, the import
system adding a submodule) is trusted: the solution policy keeps student
code from handing such code a module to change.
"""

from __future__ import annotations

import os
import sys
import types

__all__ = ["TEST_FILE", "STANDARD", "course_modules", "protected_names", "SealedModule", "is_cell", "owner", "seal", "protected_types", "Snapshot",
           "scheduler_stand_ins"]

#: The file name the runner compiles every test with: the scheduler traces it, the audit trusts it.
TEST_FILE = "<course-test>"
_COURSE_LIB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Modules whose functions and classes the tests rely on.
STANDARD = ("builtins", "threading", "socket", "queue", "time", "select", "selectors", "socketserver",
            "ipaddress", "collections", "functools", "itertools", "contextlib", "dataclasses", "json",
            "re", "datetime", "random", "math", "concurrent.futures", "concurrent.futures.thread",
            "asyncio", "multiprocessing", "os", "signal", "_thread", "types", "enum", "abc", "copy",
            "struct", "errno", "statistics", "string", "typing", "heapq", "bisect", "weakref")


def course_modules() -> tuple[str, ...]:
    """Every ``course_lib`` module the lessons and tests use, found in the package itself
    (the judge and the widgets excepted: tests never use them)."""
    import pkgutil

    import course_lib

    names = ["course_lib"]
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        if info.name.startswith(("course_lib.judge", "course_lib.widgets")):
            continue
        names.append(info.name)
    return tuple(sorted(names))


def protected_names() -> tuple[str, ...]:
    """Every protected module: the standard ones and the course's own, found in the package."""
    return STANDARD + course_modules()


def is_cell(filename: str) -> bool:
    """Is this the file name IPython gives a notebook cell's code?"""
    return (filename.startswith("<ipython-input-")
            or (os.sep + "ipykernel_" in filename and filename.endswith(".py")
                and os.path.basename(filename)[:-3].isdigit()))


def _is_course(filename: str) -> bool:
    return filename == TEST_FILE or filename.startswith(_COURSE_LIB + os.sep)


def owner(frame) -> str:
    """"course", "cell" or "library": who the code at ``frame`` is acting for."""
    while frame is not None:
        name = frame.f_code.co_filename
        if _is_course(name):
            return "course"
        if is_cell(name):
            return "cell"
        frame = frame.f_back
    return "library"


def _sealed_module_class() -> type:
    """The module class whose setters refuse cells (helpers bound in its closure, not as defaults)."""
    getframe, who, set_attr, del_attr = sys._getframe, owner, types.ModuleType.__setattr__, types.ModuleType.__delattr__

    class SealedModule(types.ModuleType):
        """A module whose attributes a notebook cell's code cannot set or delete."""

        def __setattr__(self, name, value):
            if who(getframe(1)) == "cell":
                raise AttributeError(f"{self.__name__}.{name} belongs to the course: a solution cannot change it")
            set_attr(self, name, value)

        def __delattr__(self, name):
            if who(getframe(1)) == "cell":
                raise AttributeError(f"{self.__name__}.{name} belongs to the course: a solution cannot remove it")
            del_attr(self, name)

    return SealedModule


SealedModule = _sealed_module_class()


def seal(names) -> list[types.ModuleType]:
    """Import and seal the modules ``names``; returns them (the trusted module table)."""
    import importlib

    sealed = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        if type(module) is types.ModuleType:
            module.__class__ = SealedModule
        sealed.append(module)
    return sealed


def protected_types(modules) -> frozenset[int]:
    """The ids of the classes the sealed modules define or export (a class set on them is refused)."""
    found = set()
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, type) and type(value) is not SealedModule:
                found.add(id(value))
    return frozenset(found)


def _tracked(value) -> bool:
    """Is this a value whose identity the tests rely on (code, a class, a module), not data?"""
    return isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
                              types.ModuleType, staticmethod, classmethod, property)) or (
        callable(value) and type(value).__module__ in ("builtins", "functools", "_functools"))


_METHODS = ("__init__", "__call__", "__eq__", "__enter__", "__exit__", "__new__", "__hash__", "__bool__",
            "__iter__", "__len__", "__getattribute__", "__getattr__", "__repr__", "__str__")


def scheduler_stand_ins() -> dict[int, object]:
    """The controlled scheduler's stand-ins (for ``threading.Lock``, ``RLock``, ``Condition`` and
    ``time.sleep``), each mapped to what it stands in for.

    Why: a search stays patched while a test's setup or invariant runs student code; when that code
    hangs, the test's time bound gives up on the search and leaves the patch in place. That is the
    course's own patch, to be counted as the original, not the student's tampering (the student's row
    is a timeout, or a failed check). A solution cannot install one itself: the modules are sealed.
    """
    from course_lib.interleave import primitives as p

    return {id(p._lock_factory): p._REAL_LOCK, id(p._rlock_factory): p._REAL_RLOCK,
            id(p._condition_factory): p._REAL_CONDITION, id(p._sleep): p._REAL_SLEEP}


class Snapshot:
    """Identities of the protected modules' functions and classes, and of those classes' methods."""

    def __init__(self, modules, builtin_names):
        self.modules = list(modules)
        self.builtin_names = builtin_names  # the built-ins before IPython added its own
        self.stand_ins = scheduler_stand_ins()
        self.seen: dict[str, dict] = {}
        self.changed()  # the first snapshot

    def _shape(self, module) -> dict:
        names = self.builtin_names if module.__name__ == "builtins" else None
        shape = {}
        for name, value in list(vars(module).items()):
            # Public names only: libraries patch private ones at import (typing_extensions does
            # typing._collect_parameters), and no solution may reach a module's private name.
            if (names is not None and name not in names) or name.startswith("_") or not _tracked(value):
                continue
            value = self.stand_ins.get(id(value), value)
            shape[name] = id(value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if (not attr.startswith("__") or attr in _METHODS) and _tracked(member):
                        shape[f"{name}.{attr}"] = id(member)
        return shape

    def changed(self) -> str:
        """What differs from the snapshot ("" if nothing); the snapshot follows the change."""
        for module in self.modules:
            shape = self._shape(module)
            before = self.seen.setdefault(module.__name__, shape)
            if before is shape:
                continue
            for key, ident in before.items():
                if shape.get(key) != ident:
                    self.seen[module.__name__] = shape
                    return f"{module.__name__}.{key} was replaced or removed"
            for key in shape.keys() - before.keys():
                if "." in key:  # a method added to a protected class
                    self.seen[module.__name__] = shape
                    return f"{module.__name__}.{key} was added"
        return ""
