"""What a solution cell may contain: an allow-list read from its code (``ast``) before it runs.

Solution cells run in the judge kernel beside the course's trusted code, so
a solution that could reach the interpreter (``sys``, frames, code objects),
the notebook's shell or the judge could change what a test sees. No
exercise needs any of that. The policy is an allow-list, and every rule in
it depends only on the code's shape and the lesson, never on names the
solution chose:

* **modules**: imports only from an allow-list (the standard library the
  exercises need, and per lesson what it teaches); a module is used only as
  ``module.name``, with ``name`` among that module's allowed attributes
  (:func:`module_attributes`: its public names that are not modules, minus
  a reviewed list of introspection and patching helpers); never passed
  around, rebound or assigned to;
* **names**: never one that reaches the interpreter or the notebook
  (``exec``, ``eval``, ``compile``, ``globals``, ``vars``, ``open``,
  ``__import__``, ``setattr``, ``get_ipython``, ``In``/``Out`` and the
  history names, any dunder name but ``__name__``);
* **reading attributes**: public names on anything; a private name
  (``_x``) only on ``self`` or ``cls`` inside the solution's own methods,
  and there not one a library base class defines (``Thread._stderr``);
  dunders only the special methods a class defines and calls, and
  ``__name__``, ``__qualname__``, ``__doc__``; no frame, code or traceback
  attribute; ``type(x)`` only compared or asked its ``__name__``;
  ``super()`` only without arguments;
* **changing attributes**: only of ``self``/``cls``, of an object the
  function itself just made by calling a class (``t = threading.Thread(...);
  t.daemon = True``), or, where a lesson says so, the attributes its
  exercise is about (lesson 05's ``balance``); never a dunder;
* ``getattr``/``hasattr`` called directly: a literal name by the rules above, a computed one
  checked when it runs (only a public name; :mod:`course_lib.judge.public`);
  ``str.format`` only on a literal template without attribute or index
  fields; no metaclass, no three-argument ``type``; class decorators only
  ``dataclasses.dataclass``, ``functools.total_ordering`` and ``enum.unique``.

``self`` means the first parameter of a function written directly in a
class body of the solution, with no decorator but ``property`` (and its
setters), ``classmethod``, ``functools.cached_property`` or
``abc.abstractmethod``. The judge kernel makes that true at run time:
:mod:`course_lib.judge.ownership` checks that a method reached through its
class is called with an instance of that class, so ``A.method(other)``
cannot turn a library object into ``self``.

The proof is a test, not this docstring: ``tests/autograder/test_reachability.py``
walks, in a live judge kernel holding a lesson's reference solutions, every
attribute and item chain these rules accept from every name a solution may
use, and asserts that none reaches the shell, the kernel, ``sys.modules``, a
frame, a code object, ``In``/``Out``, the judge, a module as a value or a
mutable attribute of a protected module.

One piece (about 600 lines) on purpose: the rules and the ``ast`` visitor
that enforces them are read together when a rule changes; a rule split
from its check is how a hole opens.

Trade-off: strict by design. A correct solution written with a refused
construct is refused with a message that says what to use instead, rather
than accepted on trust; the idiom corpus (tests/lessons/) keeps the rules
from refusing the standard ways of writing each exercise.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import re
import string
import types
from dataclasses import dataclass, field

# What a solution may read on any object, by name: one rule for the source here and for a computed
# getattr(obj, name) when it runs in the judge kernel.
from course_lib.judge.public import (FORBIDDEN_ATTRIBUTES, FRAME_PREFIXES, INTERNAL_STRINGS, PUBLIC_UNDERSCORE,
                                     READABLE_DUNDERS, WRITTEN_ONLY)

__all__ = ["Violation", "Bindings", "check_source", "notebook_bindings", "allowed_modules", "allows_processes",
           "module_attributes", "allowed_builtins", "LESSON_POLICY", "SPECIAL_METHODS", "READABLE_DUNDERS",
           "SELF_BUILTINS", "SELF_DECORATORS"]

#: Modules any lesson's solutions may import (and their submodules listed here).
BASE_MODULES = frozenset({
    "threading", "socket", "queue", "time", "collections", "collections.abc", "select",
    "selectors", "socketserver", "ipaddress", "concurrent", "concurrent.futures", "itertools",
    "functools", "dataclasses", "contextlib", "random", "re", "datetime", "errno", "struct",
    "math", "statistics", "string", "typing", "enum", "heapq", "bisect",
    "abc", "numbers", "decimal", "fractions", "textwrap", "json", "copy",
})

#: Per lesson (by its number): extra modules, the only attributes of a module that may be used,
#: and the attributes of objects the tests hand in that its exercises may change.
LESSON_POLICY: dict[str, dict] = {
    "01": {"modules": {"os", "multiprocessing", "course_lib.processes"},
           "attributes": {"os": {"getpid", "getppid", "cpu_count"},
                          "multiprocessing": {"get_context", "active_children", "current_process", "cpu_count",
                                              "Process", "Queue", "Pipe", "Pool", "Value", "Array", "Lock",
                                              "Event", "Manager", "TimeoutError", "ProcessError"}}},
    "05": {"writable": {"balance"}},
    # The course's servers are what a lesson's exercise is built against, never what it is built on:
    # of course_lib.servers a solution uses only the clock and the asyncio runner, of chat nothing.
    "07": {"modules": {"course_lib.servers"}, "attributes": {"course_lib.servers": {"rfc867_time"}}},
    "08": {"modules": set()},
    "10": {"modules": {"asyncio", "course_lib.servers"},
           "attributes": {"course_lib.servers": {"rfc867_time", "AsyncioServer"}}},
}

#: Attributes no module offers a solution, whatever the lesson: they reach threads' internals,
#: frames, tracing, or change classes and modules from outside.
DENIED_ATTRIBUTES = {
    "threading": {"settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads", "gettrace",
                  "getprofile", "enumerate", "excepthook", "__excepthook__"},
    "functools": {"update_wrapper", "WRAPPER_ASSIGNMENTS", "WRAPPER_UPDATES"},
    "dataclasses": {"make_dataclass"},
    "abc": {"update_abstractmethods"},
    "enum": {"global_enum", "global_enum_repr", "global_str", "global_flag_repr", "show_flag_values",
             "pickle_by_enum_name", "pickle_by_global_name", "EnumType", "EnumMeta"},
    "typing": {"EXCLUDED_ATTRIBUTES", "get_type_hints", "ForwardRef", "get_overloads", "clear_overloads", "no_type_check",
               "no_type_check_decorator", "runtime_checkable"},
    "string": {"Formatter"},
    "asyncio": {"all_tasks", "current_task", "get_event_loop", "get_running_loop", "set_event_loop",
                "get_event_loop_policy", "set_event_loop_policy", "set_child_watcher", "get_child_watcher",
                "create_subprocess_exec", "create_subprocess_shell", "run_coroutine_threadsafe"},
    "socket": {"fromfd", "fromshare", "dup", "send_fds", "recv_fds", "sethostname"},
    "select": {"epoll", "kqueue", "devpoll"},
    "selectors": {"EpollSelector", "DevpollSelector", "KqueueSelector"},
    "contextlib": {"redirect_stdout", "redirect_stderr"},
    "copy": {"dispatch_table"},
    # mutable tables of a module, shared with every test (found by tests/autograder/test_reachability.py)
    "errno": {"errorcode"},
}

#: Names of the course's helper modules the notebooks import: solutions may read
#: their public names (``processes.SETTING``, ``servers.rfc867_time``), never
#: ``grading``, which the tests themselves use.
COURSE_MODULES = frozenset({"grading", "interleave", "servers", "chat", "processes", "timeline",
                            "widgets", "course_lib", "breakit", "selfstudy"})
#: Modules of the course a solution never touches: the tests' helpers and the break-it programs.
NEVER_REFERENCED = frozenset({"grading", "course_lib", "breakit", "selfstudy", "interleave", "timeline",
                              "widgets"})

FORBIDDEN_NAMES = {
    "exec": "exec runs code the grader cannot read",
    "eval": "eval runs code the grader cannot read",
    "compile": "compile makes code the grader cannot read",
    "globals": "globals() reaches the notebook's namespace",
    "locals": "locals() reaches the interpreter's frames",
    "vars": "vars() reaches an object's or the notebook's namespace",
    "open": "open reads files; no exercise needs a file",
    "__import__": "__import__ imports modules past the allow-list",
    "__builtins__": "__builtins__ reaches the interpreter",
    "get_ipython": "get_ipython reaches the notebook's kernel",
    "breakpoint": "breakpoint waits for a debugger",
    "help": "help starts the interactive help",
    "setattr": "setattr can change modules and classes the grader uses; assign the attribute directly",
    "delattr": "delattr can change modules and classes the grader uses",
}
#: Built-in names (ValueError, print, ...): a solution may shadow them inside a function, never
#: for the whole notebook, where the tests would catch or call the replacement.
BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
HISTORY_NAME = re.compile(r"^(In|Out|_ih|_oh|_dh|_i+|_i\d+|_\d+|_+)$")

#: Dunder attributes a solution may define and call: the special methods of a class.
SPECIAL_METHODS = frozenset("""
__init__ __new__ __del__ __repr__ __str__ __bytes__ __format__ __hash__ __bool__ __len__
__lt__ __le__ __eq__ __ne__ __gt__ __ge__ __contains__ __iter__ __next__ __reversed__
__getitem__ __setitem__ __delitem__ __missing__ __call__ __enter__ __exit__ __aenter__
__aexit__ __aiter__ __anext__ __await__ __add__ __sub__ __mul__ __truediv__ __floordiv__
__mod__ __pow__ __neg__ __pos__ __abs__ __int__ __float__ __index__ __round__
__post_init__ __init_subclass__ __set_name__
""".split())
#: Decorators after which a method's first parameter is still its own instance (or class): the
#: built-ins by their bare names, the others as module.name (the module resolved through its alias) or
#: a name this cell imports from that module, and a property's own ``@name.setter``/``getter``/``deleter``.
#: A decorator the cell could have bound itself (a class body's ``property = staticmethod``, its own
#: ``def cached_property``) is none of these. The judge guards what each returns
#: (:mod:`course_lib.judge.ownership`; a context manager's ``.func`` included).
SELF_BUILTINS = frozenset({"property", "classmethod"})
SELF_DECORATORS = frozenset({("functools", "cached_property"), ("abc", "abstractmethod"),
                             ("contextlib", "contextmanager"), ("contextlib", "asynccontextmanager")})
PROPERTY_PARTS = frozenset({"setter", "getter", "deleter"})
CLASS_DECORATORS = frozenset({"dataclasses.dataclass", "dataclass", "functools.total_ordering",
                              "total_ordering", "enum.unique", "unique"})


@dataclass(frozen=True)
class Violation:
    """One construct a solution cell may not use: where, what, and why."""

    line: int
    construct: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.construct} — {self.why}"


@dataclass(frozen=True)
class Bindings:
    """What the notebook's own cells bound with ``import``: alias -> module, and ``from`` names."""

    modules: dict = field(default_factory=dict)
    imported: frozenset = frozenset()
    #: What the notebook's own cells (not the tests) define: their functions and classes.
    #: Tests and those cells' functions look them up in the notebook's namespace, so no solution rebinds them.
    defined: frozenset = frozenset()


def notebook_bindings(sources, *, course=()) -> Bindings:
    """The names the given cell sources bind by importing (``np`` for ``import numpy as np``), and what
    the ``course`` sources (the notebook's own cells, neither solutions nor tests) define."""
    modules, imported = {}, set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    if f"{node.module}.{a.name}" in BASE_MODULES or node.module == "course_lib":
                        modules[a.asname or a.name] = f"{node.module}.{a.name}"
                    else:
                        imported.add(a.asname or a.name)
    return Bindings(modules, frozenset(imported), frozenset().union(*map(_defined_names, course)))


def _defined_names(source: str) -> frozenset[str]:
    """The functions and classes a cell defines at its top level (its imports: a solution may import the
    same, and a module name is never rebound anyway)."""
    try:
        tree = ast.parse(_as_ipython_runs_it(source))
    except SyntaxError:
        return frozenset()
    return frozenset(node.name for node in tree.body
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))


def _as_ipython_runs_it(source: str) -> str:
    """The code IPython compiles for a cell: its transforms turn ``%magic``, ``!cmd``,
    ``name?`` and autocall lines into calls, so a cell that is not plain Python is read
    as what will really run."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # without IPython nothing runs a cell either
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


@functools.lru_cache(maxsize=None)
def _module(name: str):
    """The module ``name`` as the grader imports it (to resolve ``module.attr.attr`` chains), or None."""
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def _lesson_key(lesson: str) -> str:
    return lesson.split("-", 1)[0]


def allows_processes(lesson: str) -> bool:
    """May this lesson's solutions start processes (lesson 01's do, with multiprocessing)?"""
    return "multiprocessing" in allowed_modules(lesson)


def allowed_modules(lesson: str) -> frozenset[str]:
    """The modules a solution cell of ``lesson`` may import."""
    extra = LESSON_POLICY.get(_lesson_key(lesson), {}).get("modules", set())
    return BASE_MODULES | frozenset(extra)


@functools.lru_cache(maxsize=None)
def _public_attributes(module_name: str) -> frozenset[str]:
    module = _module(module_name)
    if module is None:
        return frozenset()
    names = set(getattr(module, "__all__", None) or ()) | {n for n in dir(module) if not n.startswith("_")}
    return frozenset(n for n in names if not n.startswith("_")
                     and not isinstance(getattr(module, n, None), types.ModuleType))


def module_attributes(module_name: str, lesson: str) -> frozenset[str]:
    """The attributes of ``module_name`` a solution of ``lesson`` may use (its public, non-module
    names, minus the denied ones, or the lesson's own list for that module)."""
    listed = LESSON_POLICY.get(_lesson_key(lesson), {}).get("attributes", {}).get(module_name)
    if listed is not None:
        return frozenset(listed)
    return _public_attributes(module_name) - DENIED_ATTRIBUTES.get(module_name, set())


def allowed_builtins() -> frozenset[str]:
    """The built-in names a solution may use."""
    return BUILTIN_NAMES - set(FORBIDDEN_NAMES)


def writable_attributes(lesson: str) -> frozenset[str]:
    """Attributes of objects the tests hand in that this lesson's exercises may change."""
    return frozenset(LESSON_POLICY.get(_lesson_key(lesson), {}).get("writable", set()))


@functools.lru_cache(maxsize=None)
def _library_private_names(qualified: str) -> frozenset[str]:
    """Private names a library class (``threading.Thread``) and its default instance define."""
    module_name, _, name = qualified.rpartition(".")
    value = _module(module_name)
    for part in name.split("."):
        value = getattr(value, part, None) if value is not None else None
    if not isinstance(value, type):
        return frozenset()
    names = {n for n in dir(value) if n.startswith("_") and not n.startswith("__")}
    try:
        names |= {n for n in vars(value()) if n.startswith("_") and not n.startswith("__")}
    except Exception:
        pass
    return frozenset(names)


def top_level_names(source: str) -> frozenset[str]:
    """The names a cell binds at its top level (what another cell could be changing under it)."""
    try:
        tree = ast.parse(_as_ipython_runs_it(source))
    except SyntaxError:
        return frozenset()
    names = set()
    for node in tree.body:
        for inner in [node] + [n for n in ast.walk(node) if not isinstance(node, (ast.FunctionDef,
                                                                                  ast.AsyncFunctionDef, ast.ClassDef))]:
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(inner.name)
            elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                names.add(inner.id)
            elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in inner.names)
    return frozenset(names)


def check_cells(sources: dict[str, str], lesson: str, *, bindings: Bindings = Bindings()) -> dict[str, list[Violation]]:
    """:func:`check_source` for every solution cell of one notebook (grade id -> source), each told
    which names the *other* solution cells bind (a class another cell rebinds is no longer its own)."""
    bound = {grade_id: top_level_names(source) for grade_id, source in sources.items()}
    found = {}
    for grade_id, source in sources.items():
        elsewhere = frozenset().union(*(names for other, names in bound.items() if other != grade_id))
        found[grade_id] = check_source(source, lesson, bindings=bindings, bound_elsewhere=elsewhere)
    return found


def check_source(source: str, lesson: str, *, bindings: Bindings = Bindings(),
                 bound_elsewhere: frozenset = frozenset()) -> list[Violation]:
    """Every policy violation in one solution cell's ``source`` (empty: the cell is allowed).

    ``bindings`` are the names the notebook's own cells imported
    (:func:`notebook_bindings`): modules among them follow the module rules,
    and one the lesson does not allow (``os`` outside lesson 01) is refused.
    IPython magics (``%time``, ``!ls``) are not Python and are refused.
    """
    code = _as_ipython_runs_it(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []  # a plain syntax error: the cell fails when it runs, and nothing of it runs
    if code != source:
        try:
            ast.parse(source)
        except SyntaxError as error:  # IPython syntax: magics, !shell, ?help, autocall
            return [Violation(error.lineno or 1, (error.text or "").strip()[:40],
                              "IPython magics, shell escapes, ?help and autocall are not allowed in a solution "
                              "cell: write plain Python")]
    allowed = allowed_modules(lesson)
    refused = {alias for alias, module in bindings.modules.items()
               if alias not in COURSE_MODULES and module not in allowed}
    aliases = {alias: module for alias, module in bindings.modules.items()}
    aliases.update({name: f"course_lib.{name}" for name in COURSE_MODULES if name not in aliases})
    return _Checker(lesson, allowed, aliases, bindings.imported, refused, bound_elsewhere,
                    defined=bindings.defined).run(tree)


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    return ast.unparse(node)


def _class_scope_nodes(cls: ast.ClassDef):
    """The nodes of a class body evaluated in the class's own scope (not inside its defs and lambdas;
    a def's decorators and defaults are, and the def's name is bound there)."""
    stack = list(cls.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = list(node.decorator_list)
            if not isinstance(node, ast.ClassDef):
                inner += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
            else:
                inner += node.bases + [k.value for k in node.keywords]
            stack.extend(inner)
        elif not isinstance(node, ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _not_allowed(module: str, allowed: frozenset[str]) -> str:
    shown = ", ".join(sorted(m for m in allowed if "." not in m))
    return f"{module or 'a relative import'} is not among the modules this lesson's solutions may import ({shown})"


class _Checker(ast.NodeVisitor):
    def __init__(self, lesson: str, allowed: frozenset[str], aliases: dict[str, str],
                 imported: frozenset[str], refused: set[str], bound_elsewhere: frozenset = frozenset(),
                 *, defined: frozenset = frozenset()):
        self.lesson = lesson
        self.defined = defined  # what the notebook's own cells define (see Bindings.defined)
        self.bound_elsewhere = bound_elsewhere  # top-level names other solution cells bind
        self.allowed = allowed
        self.aliases = dict(aliases)     # name -> module, for the notebook's and this cell's imports
        self.modules = set(aliases)      # names bound to modules: in the notebook or by this cell's imports
        self.imported = set(imported)    # names bound by `from m import x` (classes, functions)
        self.refused = refused           # notebook modules this lesson's solutions may not use
        self.writable = writable_attributes(lesson)
        self.found: list[Violation] = []
        self._parents: dict[int, ast.AST] = {}
        self._self_names: dict[int, tuple[str, frozenset]] = {}  # function id -> (self name, library privates)
        self._fresh: dict[int, set[str]] = {}                    # function id -> locals made by calling a class
        self._fresh_self_attrs: set[str] = set()                 # self.x always made by calling a class
        self._own_classes: set[str] = set()                      # classes the cell defines
        self._class_privates: dict[str, frozenset] = {}          # own class bound once -> library privates
        self._custom_new: set[str] = set()                       # ... whose __new__ the cell writes
        self._class_methods: dict[int, frozenset] = {}           # class id -> its methods that keep self
        self._imported_from: dict[str, tuple] = {}               # name -> (module, name) of this cell's imports
        self._bind_counts: dict[str, int] = {}

    # ---- set-up: scopes, own classes, what "self" is where
    def run(self, tree: ast.AST) -> list[Violation]:
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self._parents[id(child)] = node
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.modules.add(bound)
                    self.aliases[bound] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.imported.add(alias.asname or alias.name)
                    if not node.level:
                        self._imported_from[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.ClassDef):
                self._own_classes.add(node.name)
                if any(isinstance(i, ast.FunctionDef) and i.name == "__new__" for i in node.body):
                    self._custom_new.add(node.name)
        # A name bound to something read from a module (`x = threading.Thread`) is shared too.
        for _ in range(2):
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    root = node.value
                    while isinstance(root, (ast.Attribute, ast.Subscript)):
                        root = root.value
                    if isinstance(root, ast.Name) and (root.id in self.modules or root.id in self.imported) \
                            and root is not node.value:
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        self.imported.update(t.id for t in targets if isinstance(t, ast.Name))
        self._bind_counts = self._count_binds(tree)
        top = top_level_names(ast.unparse(tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                privates = self._base_privates(node)
                binds = sum(1 for n in ast.walk(tree) if (isinstance(n, (ast.ClassDef, ast.FunctionDef,
                                                                        ast.AsyncFunctionDef)) and n.name == node.name)
                            or (isinstance(n, ast.Name) and n.id == node.name and not isinstance(n.ctx, ast.Load)))
                if binds == 1 and node.name in top and node.name not in self.bound_elsewhere \
                        and isinstance(self._parents.get(id(node)), ast.Module):
                    self._class_privates[node.name] = privates
                methods = set()
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and self._keeps_self(item, node):
                        params = item.args.posonlyargs + item.args.args
                        if params:
                            self._self_names[id(item)] = (params[0].arg, privates)
                            methods.add(item.name)
                self._class_methods[id(node)] = frozenset(methods)
        self._find_fresh(tree)
        self.visit(tree)
        return sorted(set(self.found), key=lambda v: (v.line, v.construct))

    def _keeps_self(self, function, cls: ast.ClassDef) -> bool:
        """Is this method's first parameter its own instance (or class) whatever calls it?"""
        if function.name == "__new__":
            return False  # a static method: its first argument is whatever the caller passes
        return all(self._self_decorator(decorator, cls) for decorator in function.decorator_list)

    def _self_decorator(self, decorator: ast.expr, cls: ast.ClassDef) -> bool:
        """Is ``decorator`` one of :data:`SELF_DECORATORS`, the real one, whatever the cell bound?"""
        if isinstance(decorator, ast.Name):
            if decorator.id in SELF_BUILTINS:
                return self._binds_in_cell(decorator.id) == 0 and decorator.id not in self.modules
            imported = self._imported_from.get(decorator.id)
            return (imported in SELF_DECORATORS and self._binds_in_cell(decorator.id) == 1
                    and decorator.id not in self.bound_elsewhere)
        if isinstance(decorator, ast.Attribute) and isinstance(decorator.value, ast.Name):
            root = decorator.value.id
            if root in self.modules:
                return (self.aliases.get(root), decorator.attr) in SELF_DECORATORS
            return decorator.attr in PROPERTY_PARTS and self._is_property(root, cls)
        return False

    def _is_property(self, name: str, cls: ast.ClassDef) -> bool:
        """Is ``name`` in the body of ``cls`` a property the class builds itself: bound only by defs,
        the first ``@property``, the others ``@name.setter`` (``getter``, ``deleter``)?"""
        defs = [item for item in cls.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                and item.name == name]
        if not defs or self._count_binds(cls, class_scope=True).get(name, 0) != len(defs):
            return False
        first, rest = defs[0], defs[1:]
        if len(first.decorator_list) != 1 or not (isinstance(first.decorator_list[0], ast.Name)
                                                   and self._self_decorator(first.decorator_list[0], cls)
                                                   and first.decorator_list[0].id == "property"):
            return False
        return all(len(d.decorator_list) == 1 and isinstance(d.decorator_list[0], ast.Attribute)
                   and d.decorator_list[0].attr in PROPERTY_PARTS and isinstance(d.decorator_list[0].value, ast.Name)
                   and d.decorator_list[0].value.id == name for d in rest)

    def _binds_in_cell(self, name: str) -> int:
        """How many times the cell binds ``name``, in any scope and by any statement."""
        return self._bind_counts.get(name, 0)

    def _count_binds(self, tree: ast.AST, *, class_scope: bool = False) -> dict[str, int]:
        """How many times each name is bound under ``tree``; with ``class_scope``, in the body of the
        class ``tree`` itself (its defs' and nested classes' names, not what they bind inside)."""
        counts: dict[str, int] = {}
        for node in (_class_scope_nodes(tree) if class_scope else ast.walk(tree)):
            names = []
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                names = [node.id]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [(a.asname or a.name).split(".")[0] for a in node.names]
            elif isinstance(node, ast.arg):
                names = [node.arg]
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                names = list(node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names = [node.name]
            elif type(node).__name__ in ("MatchAs", "MatchStar") and getattr(node, "name", None):
                names = [node.name]
            elif type(node).__name__ == "MatchMapping" and getattr(node, "rest", None):
                names = [node.rest]
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def _method_used_as_a_value(self, node: ast.Name) -> bool:
        """Is ``node`` a method's name read in its own class body (``keep = [f]``, ``f(other)``,
        ``v.fget``)? There the function is not yet guarded, so ``self`` would be whatever it is given.
        Only ``@v.setter`` (``getter``, ``deleter``) above another def of the property is a use."""
        child, parent = node, self._parents.get(id(node))
        while parent is not None:
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and child in parent.body:
                return False
            if isinstance(parent, ast.Lambda) and child is parent.body:
                return False
            if isinstance(parent, ast.ClassDef):
                if child not in parent.body or node.id not in self._class_methods.get(id(parent), ()):
                    return False
                attribute = self._parents.get(id(node))
                decorated = self._parents.get(id(attribute))
                return not (isinstance(attribute, ast.Attribute) and attribute.attr in PROPERTY_PARTS
                            and isinstance(decorated, ast.FunctionDef) and attribute in decorated.decorator_list
                            and decorated.name == node.id)
            child, parent = parent, self._parents.get(id(parent))
        return False

    def _base_privates(self, node: ast.ClassDef) -> frozenset:
        """Private names the library base classes of ``node`` define (``self`` may not read them)."""
        names: set[str] = set()
        for base in node.bases:
            dotted = ast.unparse(base)
            root = dotted.split(".")[0]
            if root in self._own_classes:
                continue
            module = self.aliases.get(root)
            if module:
                names |= _library_private_names(module + dotted[len(root):])
            elif root in self.imported:
                for module in set(self.aliases.values()):
                    names |= _library_private_names(f"{module}.{dotted}")
        return frozenset(names)

    def _makes_instance(self, value: ast.AST) -> bool:
        """Is ``value`` a call of a class that returns a new instance (not a metaclass, not enum)?"""
        if not isinstance(value, ast.Call):
            return False
        func = value.func
        if isinstance(func, ast.Name) and func.id in self._own_classes:
            return func.id not in self._custom_new
        dotted = ast.unparse(func)
        root = dotted.split(".")[0]
        if root not in self.aliases:
            return False
        target = _module(self.aliases[root])
        for part in dotted.split(".")[1:]:
            target = getattr(target, part, None)
        if not isinstance(target, type) or issubclass(target, type):
            return False
        import enum

        return not issubclass(target, enum.Enum)

    def _find_fresh(self, tree: ast.AST) -> None:
        """Locals bound once, from a class call, per function; self attributes always bound so."""
        stores: dict[tuple[int, str], list] = {}
        self_stores: dict[str, list] = {}
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = [(t, node.value) for t in node.targets]
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [(node.target, node.value if isinstance(node, ast.AnnAssign) else None)]
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.NamedExpr)):
                found = ([node.target] if isinstance(node, (ast.For, ast.AsyncFor, ast.NamedExpr)) else
                         [i.optional_vars for i in node.items if i.optional_vars is not None])
                targets = [(t, node.value if isinstance(node, ast.NamedExpr) else None) for t in found]
            for target, value in targets:
                scope = self._scope(node)
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
                        stores.setdefault((id(scope), name.id), []).append(value if name is target else None)
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    function = self._scope(node)
                    me = self._self_names.get(id(function), (None,))[0]
                    if me and target.value.id == me:
                        self_stores.setdefault(target.attr, []).append(value)
        for (scope_id, name), values in stores.items():
            if len(values) == 1 and self._makes_instance(values[0]):
                self._fresh.setdefault(scope_id, set()).add(name)
        self._fresh_self_attrs = {a for a, values in self_stores.items() if all(self._makes_instance(v) for v in values)}

    def _scope(self, node: ast.AST):
        parent = self._parents.get(id(node))
        while parent is not None and not isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            parent = self._parents.get(id(parent))
        return parent

    def _is_self(self, node: ast.AST) -> frozenset | None:
        """The library privates to avoid if ``node`` is its method's own ``self``/``cls`` (also from a
        function nested in the method); None otherwise."""
        if not isinstance(node, ast.Name):
            return None
        name = node.id
        scope = self._scope(node)
        while scope is not None:
            entry = self._self_names.get(id(scope))
            if entry is not None and entry[0] == name:
                return None if self._binds(scope, name, params=False) else entry[1]
            alias = self._self_alias(scope, name)
            if alias is not None:
                return alias
            if self._binds(scope, name, params=True):
                return None  # a nested function's own parameter or local of that name
            scope = self._scope(scope)
        if name in self._class_privates and self._inside_class(node, name):
            return self._class_privates[name]
        return None

    def _self_alias(self, scope, name: str) -> frozenset | None:
        """``room = self`` in a method, once: ``room`` is ``self`` too (for functions nested in it)."""
        entry = self._self_names.get(id(scope))
        if entry is None:
            return None
        stores = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == name
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        if len(stores) != 1:
            return None
        assign = self._parents.get(id(stores[0]))
        if (isinstance(assign, ast.Assign) and assign.targets == [stores[0]] and isinstance(assign.value, ast.Name)
                and assign.value.id == entry[0] and not self._binds(scope, entry[0], params=False)
                and not any(isinstance(n, (ast.Global, ast.Nonlocal)) and name in n.names for n in ast.walk(scope))):
            return entry[1]
        return None

    def _inside_class(self, node: ast.AST, name: str) -> bool:
        """Is ``node`` inside the body of the class called ``name``?"""
        parent = self._parents.get(id(node))
        while parent is not None:
            if isinstance(parent, ast.ClassDef) and parent.name == name:
                return True
            parent = self._parents.get(id(parent))
        return False

    def _binds(self, scope, name: str, *, params: bool) -> bool:
        """Does ``scope`` (a function) bind ``name`` itself: a parameter (if ``params``), an assignment,
        a ``global``/``nonlocal``? Nested functions count too: conservative, never wrong in our favour."""
        arguments = scope.args
        names = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
        names |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        if params and name in names:
            return True
        for inner in ast.walk(scope):
            if isinstance(inner, ast.Name) and inner.id == name and isinstance(inner.ctx, (ast.Store, ast.Del)):
                return True
            if isinstance(inner, (ast.Global, ast.Nonlocal)) and name in inner.names:
                return True
        return False

    def _is_module(self, node: ast.Name) -> bool:
        return node.id in self.modules

    def flag(self, node: ast.AST, construct: str, why: str) -> None:
        self.found.append(Violation(getattr(node, "lineno", 1), construct, why))

    # ---- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in self.allowed:
                self.flag(node, f"import {alias.name}", _not_allowed(alias.name, self.allowed))
            self._check_binding(node, alias.asname or alias.name.split(".")[0], via_import=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module not in self.allowed:
            self.flag(node, f"from {'.' * node.level}{module} import ...", _not_allowed(module, self.allowed))
            return
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if alias.name == "*":
                self.flag(node, f"from {module} import *", "import the names you use, one by one")
            elif full in self.allowed:
                self.modules.add(alias.asname or alias.name)
            else:
                self._check_module_attribute(node, module, alias.name)
            self._check_binding(node, alias.asname or alias.name, via_import=True)

    # ---- names
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name in FORBIDDEN_NAMES:
            self.flag(node, name, FORBIDDEN_NAMES[name])
        elif HISTORY_NAME.match(name) and name != "_":
            self.flag(node, name, "the notebook's input and output history is the grader's")
        elif name.startswith("__") and name.endswith("__") and name != "__name__" and not self._declares_slots(node):
            self.flag(node, name, "dunder names reach the interpreter")
        if isinstance(node.ctx, ast.Load) and self._method_used_as_a_value(node):
            self.flag(node, name, "a method is called on an instance (obj.method()), not used as a value in its "
                                  "class body, where it is not yet the class's own")
        if name in ("getattr", "hasattr"):
            self._check_getattr(node)
        if name == "type":
            self._check_type_call(node)
        if name == "super":
            call = self._parents.get(id(node))
            if isinstance(call, ast.Call) and call.func is node and (call.args or call.keywords):
                self.flag(node, "super(...)", "call super() without arguments, inside the class's own method")
        if name in NEVER_REFERENCED:
            self.flag(node, name, f"{name} belongs to the tests (course_lib.{name}); a solution never uses it"
                      if name != "course_lib" else "course_lib belongs to the tests; a solution never uses it")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._check_binding(node, name)
        elif self._is_module(node) and name not in NEVER_REFERENCED:
            parent = self._parents.get(id(node))
            if name in self.refused:
                self.flag(node, name, f"{name} is not among the modules this lesson's solutions may use")
            elif not (isinstance(parent, ast.Attribute) and parent.value is node):
                self.flag(node, name, f"the module {name} may only be used as {name}.something")
        self.generic_visit(node)

    def _declares_slots(self, node: ast.Name) -> bool:
        """``__slots__ = ("_a", "b")`` as a statement of a class body: the names of the instance's
        attributes, as literal strings (each an identifier; a dunder among them is refused as a string)."""
        assign = self._parents.get(id(node))
        if not (node.id == "__slots__" and isinstance(node.ctx, ast.Store) and isinstance(assign, ast.Assign)
                and assign.targets == [node] and isinstance(self._parents.get(id(assign)), ast.ClassDef)):
            return False
        value = assign.value
        items = value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]
        return all(isinstance(i, ast.Constant) and isinstance(i.value, str) and i.value.isidentifier()
                   for i in items)

    def _check_type_call(self, node: ast.Name) -> None:
        call = self._parents.get(id(node))
        if not (isinstance(call, ast.Call) and call.func is node):
            return
        if len(call.args) == 3:
            self.flag(node, "type(name, bases, namespace)", "building classes at run time is not needed; "
                                                             "write a class statement")
            return
        parent = self._parents.get(id(call))
        if isinstance(parent, ast.Attribute) and parent.attr in ("__name__", "__qualname__"):
            return
        if isinstance(parent, ast.Compare) and all(isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.In,
                                                                   ast.NotIn)) for op in parent.ops):
            return
        self.flag(call, "type(...)", "type(x) may only be compared (type(x) is int) or asked its __name__; "
                                     "use isinstance, or call the class by its name")

    def _check_getattr(self, node: ast.Name) -> None:
        """A literal name is read as ``obj.name`` is. A computed one is allowed in a plain call: the judge
        kernel's own ``getattr``/``hasattr`` (:mod:`course_lib.judge.public`) refuse any name but a public
        one when the call runs, which reads no more than a written ``obj.public_name`` could."""
        call = self._parents.get(id(node))
        arity = (2, 3) if node.id == "getattr" else (2,)
        if not (isinstance(call, ast.Call) and call.func is node and len(call.args) in arity and not call.keywords
                and not any(isinstance(a, ast.Starred) for a in call.args)):
            self.flag(node, node.id, f"call {node.id}(obj, name) directly, or write obj.name")
            return
        if isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str):
            if call.args[1].value in WRITTEN_ONLY:
                self.flag(node, f"{node.id}(..., {call.args[1].value!r})",
                          f"write '...'.{call.args[1].value}(...) on a literal template where it stands, or use an f-string")
                return
            self._check_read(call.args[0], call.args[1].value, node)

    def _check_binding(self, node: ast.AST, name: str, *, via_import: bool = False) -> None:
        if name in COURSE_MODULES or (name in self.modules and not via_import):
            self.flag(node, name, f"a solution may not rebind {name}, which the notebook and the tests use "
                                  "(in any scope: pick another name)")
        elif name in BUILTIN_NAMES and self._at_top(node):
            self.flag(node, name, f"a solution may not replace the built-in {name} for the whole notebook "
                                  "(the tests use it too)")
        elif name in self.defined and self._at_top(node):
            self.flag(node, name, f"{name} is defined by the notebook's own cells, which the tests use: "
                                  "a solution may not rebind it (pick another name)")

    def _at_top(self, node: ast.AST) -> bool:
        parent = self._parents.get(id(node))
        while parent is not None:
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                return False
            parent = self._parents.get(id(parent))
        return True

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.modules or name in COURSE_MODULES:
                self.flag(node, f"global {name}", f"a solution may not rebind {name}")
            elif name in BUILTIN_NAMES:
                self.flag(node, f"global {name}", f"a global named {name} would replace the built-in for the "
                                                  "whole notebook: pick another name")
            elif name in self.defined:
                self.flag(node, f"global {name}", f"{name} is defined by the notebook's own cells, which the "
                                                  "tests use: a solution may not rebind it (pick another name)")
        self.generic_visit(node)

    visit_Nonlocal = visit_Global

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_FunctionDef(self, node) -> None:
        self._check_annotation(node.returns)
        in_class = isinstance(self._parents.get(id(node)), ast.ClassDef)
        if _is_dunder(node.name) and not in_class:
            self.flag(node, f"def {node.name}", "dunder functions belong inside a class")
        elif _is_dunder(node.name) and node.name not in SPECIAL_METHODS:
            self.flag(node, f"def {node.name}", "a solution's classes define the ordinary special methods "
                                                "(__init__, __enter__, __eq__, ...), not hooks into attribute "
                                                "access or class creation")
        self._check_binding(node, node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_binding(node, node.name)
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self.flag(node, "metaclass=", "metaclasses change how classes are built; no exercise needs one")
        for base in node.bases:
            if self._is_metaclass(base):
                self.flag(node, f"class {node.name}({ast.unparse(base)})",
                          "metaclasses change how classes are built; no exercise needs one")
        for decorator in node.decorator_list:
            if _decorator_name(decorator) not in CLASS_DECORATORS:
                self.flag(decorator, f"@{_decorator_name(decorator)}",
                          "a class may be decorated only with dataclasses.dataclass, functools.total_ordering "
                          "or enum.unique")
        self.generic_visit(node)

    def _is_metaclass(self, base: ast.AST) -> bool:
        if isinstance(base, ast.Name) and base.id == "type":
            return True
        dotted = ast.unparse(base)
        root = dotted.split(".")[0]
        if root not in self.aliases:
            return False
        value = _module(self.aliases[root])
        for part in dotted.split(".")[1:]:
            value = getattr(value, part, None)
        return isinstance(value, type) and issubclass(value, type)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node) -> None:
        if node.rest:
            self._check_binding(node, node.rest)
        self.generic_visit(node)

    def visit_MatchClass(self, node) -> None:
        for name in node.kwd_attrs:  # `case Point(x=...)` reads the attribute x
            self._check_read(node.cls, name, node)
        self.generic_visit(node)

    # ---- string annotations: typing.get_type_hints and functools.singledispatch evaluate them
    def visit_arg(self, node: ast.arg) -> None:
        if node.arg in COURSE_MODULES or node.arg in self.modules:
            self._check_binding(node, node.arg)
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def _check_annotation(self, annotation) -> None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                inner = ast.parse(annotation.value, mode="eval")
            except SyntaxError:
                self.flag(annotation, "a string annotation", "an annotation in quotes must be a plain type name")
                return
            for node in ast.walk(inner):
                for child in ast.iter_child_nodes(node):
                    self._parents[id(child)] = node
                if hasattr(node, "lineno"):
                    node.lineno = annotation.lineno
            self.visit(inner.body)
            if not isinstance(inner.body, (ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.BinOp)):
                self.flag(annotation, "a string annotation", "an annotation in quotes must be a plain type name")

    # ---- attributes
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self._check_read(node.value, node.attr, node)
        else:
            self._check_write(node)
        if node.attr == "format":
            call = self._parents.get(id(node))
            if isinstance(call, ast.Call) and call.func is node:
                self._check_format(node)
            else:
                self.flag(node, ".format", "call .format on a literal template where it stands, or use an f-string")
        self._check_module_chain(node)
        call = self._parents.get(id(node))
        if node.attr == "socket" and isinstance(call, ast.Call) and call.func is node and len(call.args) > 3:
            self.flag(node, "socket.socket(..., fileno)", "wrapping an existing file descriptor reaches the grader's files")
        self.generic_visit(node)

    def _check_read(self, base: ast.AST, attr: str, node: ast.AST) -> None:
        module = base.id if isinstance(base, ast.Name) and self._is_module(base) else None
        if module is not None:
            self._check_module_attribute(node, self.aliases.get(module, module), attr, shown=module)
            return
        where = f".{attr}"
        if _is_dunder(attr):
            if attr not in SPECIAL_METHODS and attr not in READABLE_DUNDERS:
                self.flag(node, where, "dunder attributes reach the interpreter's internals")
            elif attr in SPECIAL_METHODS and self._library_class_function(base, node):
                # threading.Thread.__init__(mine) runs a library class's code on an object of the
                # solution's own, leaving that library's private state (Thread keeps sys.stderr) in it.
                self.flag(node, f"{ast.unparse(base)}{where}",
                          "a library class's special method is called through the class only by its own "
                          "subclasses (class Mine(Base): ... Base.__init__(self)), or use super()")
        elif attr in FORBIDDEN_ATTRIBUTES or attr.startswith(FRAME_PREFIXES):
            self.flag(node, where, "it reaches the interpreter, frames or other modules")
        elif attr.startswith("_") and attr not in PUBLIC_UNDERSCORE:
            library = self._is_self(base)
            if library is None:
                self.flag(node, where, "a private attribute may be read only on self (or cls) in the class's own "
                                       "methods; give the class a public method or property for it")
            elif attr in library:
                self.flag(node, where, f"{attr} is a private attribute of a library class this class extends; "
                                       "pick another name for your own")

    def _library_class_function(self, base: ast.AST, node: ast.AST) -> bool:
        """Is ``base`` a library class (``threading.Thread``, an imported or built-in class) that is not
        a base of the class this code is in? ``object`` is allowed: its special methods keep no state."""
        root = base
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name) or root.id in self._own_classes:
            return False
        if not (self._is_module(root) or root.id in self.imported
                or (base is root and isinstance(getattr(builtins, root.id, None), type))):
            return False
        if ast.unparse(base) == "object":
            return False
        parent = self._parents.get(id(node))
        while parent is not None:
            if isinstance(parent, ast.ClassDef) and ast.unparse(base) in {ast.unparse(b) for b in parent.bases}:
                return False
            parent = self._parents.get(id(parent))
        return True

    def _check_write(self, node: ast.Attribute) -> None:
        target = ast.unparse(node)
        if _is_dunder(node.attr):
            self.flag(node, f"{target} = ...", "a solution never sets dunder attributes")
            return
        if node.attr.startswith(FRAME_PREFIXES) and node.attr[3:4] != "" and node.attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"{target} = ...", "it reaches the interpreter")
            return
        base = node.value
        root = base
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value
        if isinstance(root, ast.Name) and (self._is_module(root) or root.id in self.imported):
            self.flag(node, f"{target} = ...", "a solution may not change modules or classes the notebook and the "
                                               "tests share")
            return
        if self._is_self(base) is not None:
            return
        if node.attr.startswith("_"):
            self.flag(node, f"{target} = ...", "a private attribute may be set only on self (or cls)")
            return
        if isinstance(base, ast.Name) and base.id in self._fresh.get(id(self._scope(node)), set()):
            return
        if (isinstance(base, ast.Attribute) and self._is_self(base.value) is not None
                and base.attr in self._fresh_self_attrs):
            return
        if node.attr in self.writable:
            return
        self.flag(node, f"{target} = ...", "a solution changes attributes only of its own objects: self (or cls), "
                                           "or an object the function has just made by calling a class")

    def _check_module_attribute(self, node, module: str, attr: str, shown: str | None = None) -> None:
        shown = shown or module
        where = f"{shown}.{attr}"
        if attr.startswith("_"):
            self.flag(node, where, "a module's private names are not part of what it offers")
            return
        if attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, where, "it reaches the interpreter, frames or other modules")
            return
        value = getattr(_module(module), attr, None) if _module(module) is not None else None
        if isinstance(value, types.ModuleType) or f"{module}.{attr}" in self.allowed:
            return  # a submodule: _check_module_chain decides
        if module.startswith("course_lib"):
            if module not in self.allowed and module.rpartition(".")[2] not in NEVER_REFERENCED:
                self.flag(node, where, f"this lesson's solutions do not use {module}: the exercise is to build "
                                       "what it does")
                return
            listed = LESSON_POLICY.get(_lesson_key(self.lesson), {}).get("attributes", {}).get(module)
            if listed is not None and attr not in listed:
                self.flag(node, where, f"of {module}, a solution here may use only {', '.join(sorted(listed))}: "
                                       "the exercise is to build what the course's own servers do")
            return
        allowed = module_attributes(module, self.lesson)
        if attr not in allowed:
            listed = LESSON_POLICY.get(_lesson_key(self.lesson), {}).get("attributes", {}).get(module)
            if listed is not None:
                self.flag(node, where, f"of {module}, a solution here may use only {', '.join(sorted(listed))}")
            else:
                self.flag(node, where, f"{module}.{attr} is not among what solutions may use of {module} "
                                       "(it inspects or patches the running program)")

    def _check_module_chain(self, node: ast.Attribute) -> None:
        """``module.a.b``: every step that is itself a module must be one this lesson allows."""
        chain = []
        root = node
        while isinstance(root, ast.Attribute):
            chain.append(root.attr)
            root = root.value
        if not (isinstance(root, ast.Name) and root.id in self.aliases) or isinstance(self._parents.get(id(node)), ast.Attribute):
            return  # checked once, from the outermost attribute of the chain
        name = self.aliases[root.id]
        value = _module(name)
        for attr in reversed(chain):
            parent = value
            value = getattr(parent, attr, None) if parent is not None else None
            if value is None and isinstance(parent, types.ModuleType):  # a submodule not imported yet
                value = _module(f"{parent.__name__}.{attr}")
            if not isinstance(value, types.ModuleType):
                return
            if value.__name__ not in self.allowed and not value.__name__.startswith("course_lib."):
                self.flag(node, f"{root.id}.{'.'.join(reversed(chain))}",
                          f"it reaches the module {value.__name__}, which this lesson's solutions may not use")
                return
            if value.__name__ == "course_lib.grading":
                self.flag(node, f"{root.id}.{'.'.join(reversed(chain))}", "course_lib.grading belongs to the tests")
                return

    def _check_format(self, node: ast.Attribute) -> None:
        template = node.value
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            self.flag(node, ".format", "use an f-string, or .format on a literal template")
            return
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template.value) if f]
        except ValueError:
            return
        if any("." in f or "[" in f for f in fields):
            self.flag(node, ".format", "a template field may not read attributes or items; use an f-string")

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and (_is_dunder(value) and value not in SPECIAL_METHODS
                                       or value in INTERNAL_STRINGS
                                       or value.startswith(FRAME_PREFIXES) and value.isidentifier()):
            self.flag(node, repr(value)[:40], "a string that names the interpreter's internals is refused: "
                                              "library functions read attributes named in strings")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("update_wrapper", "wraps") and (len(node.args) > 1 or node.keywords):
            self.flag(node, f"{name}(..., assigned/updated)", "copying chosen attributes reads and writes "
                                                               "attributes named in strings; use @functools.wraps(f)")
        elif name == "update_wrapper" or (name == "wraps" and not self._decorates_a_function(node)):
            # update_wrapper copies the wrapped object's __dict__ into the wrapper: aimed at an object of
            # the solution's own class, any object's private attributes (a module's too) become self._x.
            # As a decorator of a def, the wrapper is a function, whose attributes a solution never reads.
            self.flag(node, f"{name}(...)", "functools.wraps copies one object's attributes into another; "
                                            "use it only as @functools.wraps(f) above a def")
        if name == "partial" and node.args and ast.unparse(node.args[0]).endswith(("update_wrapper", "wraps")):
            self.flag(node, "partial(update_wrapper/wraps, ...)", "copying chosen attributes reads and writes "
                                                                  "attributes named in strings")
        if name == "socket" and (any(isinstance(a, ast.Starred) for a in node.args)
                                 or any(k.arg is None for k in node.keywords)):
            self.flag(node, "socket.socket(*args)", "pass socket() its arguments one by one")
        self.generic_visit(node)

    def _decorates_a_function(self, node: ast.Call) -> bool:
        parent = self._parents.get(id(node))
        return isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and node in parent.decorator_list

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg == "fileno":
            self.flag(node, "fileno=", "wrapping an existing file descriptor reaches the grader's files")
        self.generic_visit(node)
