"""Which attribute names a solution may read on any object, decided once for the policy and the kernel.

The policy (``autograder.policy``) applies these rules to every ``obj.name``
it reads in a solution's source. A ``getattr(obj, name)`` whose name is
computed (taken from a table, a loop) cannot be checked from the source, so
the judge kernel gives the notebook's namespace its own ``getattr`` and
``hasattr`` that apply the same rule to the name when the call runs: a
computed name reads exactly what a written public ``obj.name`` could, and
nothing more. The lesson's own cells share the namespace, so they too read
only public names through ``getattr``/``hasattr`` in a judge kernel. The
tests keep the real built-ins (the runner never copies a built-in's name
from the notebook into the tests' namespace).
"""

from __future__ import annotations

import builtins

__all__ = ["READABLE_DUNDERS", "FORBIDDEN_ATTRIBUTES", "FRAME_PREFIXES", "INTERNAL_STRINGS", "PUBLIC_UNDERSCORE",
           "WRITTEN_ONLY",
           "is_public_name", "checked_getattr", "checked_hasattr", "NamePolicyError"]

#: Dunder attributes a solution may read on anything (plain data).
READABLE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__"})
#: Attributes that reach frames, code objects or other modules, whatever object they are read from.
FORBIDDEN_ATTRIBUTES = frozenset({
    "sys", "os", "gc", "builtins", "modules", "importlib", "inspect", "ctypes", "linecache",
    "traceback", "settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads",
    "fromfd", "format_map", "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace",
    "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next",
    "co_code", "co_consts", "func_globals", "kernel", "shell", "user_ns", "get_stack", "print_stack", "reducer",
    "Formatter", "get_field", "get_value", "vformat", "get_type_hints", "ForwardRef", "grading",
})
FRAME_PREFIXES = ("f_", "gi_", "cr_", "ag_", "tb_", "co_")
#: Whole strings refused (besides dunder and frame names): library helpers such as
#: operator.attrgetter read attributes named in strings.
INTERNAL_STRINGS = frozenset({"sys", "builtins", "modules", "user_ns", "get_ipython", "gc"})
#: Public names a solution may use only written out, where the policy checks how: ``str.format`` walks the
#: attribute and item chains its template names (dunders included), so it is allowed only called on a
#: literal template without such fields; a value of it, or a read by name, would take any template.
WRITTEN_ONLY = frozenset({"format"})
#: Underscore names that are public API (namedtuple's methods).
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


class NamePolicyError(PermissionError):
    """A computed attribute name the solution rules do not let it read (not an AttributeError, so
    ``getattr``'s default cannot swallow the refusal)."""


def is_public_name(name, *, _underscore=PUBLIC_UNDERSCORE | READABLE_DUNDERS,
                   _refused=FORBIDDEN_ATTRIBUTES | INTERNAL_STRINGS | WRITTEN_ONLY, _prefixes=FRAME_PREFIXES) -> bool:
    """May a solution read ``name`` on any object? Public, and not one that leads to the interpreter.
    (The sets are bound as defaults, frozen when the judge starts.)"""
    if type(name) is not str or not name.isidentifier():
        return False
    if name.startswith("_"):
        return name in _underscore
    return not (name in _refused or name.startswith(_prefixes))


def _make(real_getattr, real_hasattr):
    """The checked pair. Everything they use is bound here, when the judge starts (closures, not
    module globals looked up at call time: nothing a cell changes later reaches them)."""
    missing, public, refused = object(), is_public_name, NamePolicyError

    def refuse(function: str, obj, name) -> None:
        # A module is never the object: the policy refuses a module used as a value, and the reachability
        # walk proves none is reachable as one (the lesson's own cells, which may, get this getattr too).
        if not public(name):
            raise refused(f"{function}(obj, {name!r}): a computed attribute name must be a public one "
                          "(no leading underscore, nothing that leads to the interpreter); write obj.name "
                          "for your own private attributes")

    def getattr(obj, name, default=missing, /):  # noqa: A001 - it stands in for the built-in in cells
        """getattr(obj, name[, default]) for a solution: ``name`` must be a public attribute name."""
        refuse("getattr", obj, name)
        if default is missing:
            return real_getattr(obj, name)
        return real_getattr(obj, name, default)

    def hasattr(obj, name, /):  # noqa: A001
        """hasattr(obj, name) for a solution: ``name`` must be a public attribute name."""
        refuse("hasattr", obj, name)
        return real_hasattr(obj, name)

    return getattr, hasattr


checked_getattr, checked_hasattr = _make(builtins.getattr, builtins.hasattr)
