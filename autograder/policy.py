"""What a solution cell may contain, checked by reading its code (``ast``) before it runs.

Student code and the tests share one Python process at grading, so a
solution that reaches into the interpreter (``sys``, ``gc``, frames,
``IPython``) or into the grader (``course_lib.grading``, the notebook's
history) can forge any verdict. No exercise of this course needs any of
that, so the grader refuses it before anything runs: an exercise whose
solution cell breaks the policy scores 0, its row is ``rejected``, and the
message names the line and the construct. ``course check`` applies the same
policy, so a student sees the message before handing in.

The rules, in one place (``LESSON_POLICY`` is the only per-lesson part):

* imports only from an allow-list of modules (the standard library the
  exercises need, and per lesson what that lesson teaches);
* never a name that reaches the interpreter or the notebook: ``exec``,
  ``eval``, ``compile``, ``globals``, ``locals``, ``vars``, ``open``,
  ``__import__``, ``get_ipython``, ``In``/``Out`` and the history names;
* ``getattr``/``hasattr`` only with a literal attribute name, ``setattr``
  and ``delattr`` never;
* no dunder attribute except the special methods classes define and call
  (``__init__``, ``__enter__``, ...) and ``__name__``/``__qualname__``/``__doc__``;
  no frame, code or traceback attributes (``f_globals``, ``gi_frame``, ...);
* a module is used only as ``module.public_name``: it is never passed
  around, rebound, assigned to or read for a private name;
* ``str.format`` only on a literal template without attribute or index fields.

One piece (about 550 lines) on purpose: the rules above and the ``ast`` visitor that
enforces them are read together when a rule changes, and a rule split from its check is how
a hole opens.

Trade-off: a policy read from the code is strict by design; a correct
solution written with a forbidden construct is refused with a message that
says what to use instead, rather than accepted on trust. What it cannot see
(and the audit hook of :mod:`course_lib.judge` watches instead) is written in
the README's threat model.
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

__all__ = ["Violation", "Bindings", "check_source", "notebook_bindings", "allowed_modules", "allows_processes",
           "LESSON_POLICY"]

#: Modules any lesson's solutions may import (and their submodules listed here).
BASE_MODULES = frozenset({
    "threading", "socket", "queue", "time", "collections", "collections.abc", "select",
    "selectors", "socketserver", "ipaddress", "concurrent", "concurrent.futures", "itertools",
    "functools", "dataclasses", "contextlib", "random", "re", "datetime", "errno", "struct",
    "math", "statistics", "string", "typing", "enum", "heapq", "bisect",
    "abc", "numbers", "decimal", "fractions", "textwrap", "json", "copy",
})

#: Per lesson (by its number): extra modules, and the only attributes of a module that may be used.
LESSON_POLICY: dict[str, dict] = {
    "01": {"modules": {"os", "multiprocessing", "course_lib.processes"},
           "attributes": {"os": {"getpid", "getppid", "cpu_count"}}},
    "07": {"modules": {"course_lib.servers"}},
    "08": {"modules": {"course_lib.chat"}},
    "10": {"modules": {"asyncio", "course_lib.servers", "course_lib.chat"}},
}

#: Names of the course's helper modules the notebooks import: solutions may read
#: their public names (``processes.SETTING``, ``servers.rfc867_time``), never
#: ``grading``, which the tests themselves use.
COURSE_MODULES = frozenset({"grading", "interleave", "servers", "chat", "processes", "timeline",
                            "widgets", "course_lib", "breakit", "selfstudy"})
#: ``breakit`` holds the programs a "break it" schedule is judged on: a solution never touches them.
NEVER_REFERENCED = frozenset({"grading", "course_lib", "breakit", "selfstudy"})

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

#: Dunder attributes a solution may use: the special methods a class defines and calls.
SPECIAL_METHODS = frozenset("""
__init__ __new__ __del__ __repr__ __str__ __bytes__ __format__ __hash__ __bool__ __len__
__lt__ __le__ __eq__ __ne__ __gt__ __ge__ __contains__ __iter__ __next__ __reversed__
__getitem__ __setitem__ __delitem__ __missing__ __call__ __enter__ __exit__ __aenter__
__aexit__ __aiter__ __anext__ __await__ __add__ __sub__ __mul__ __truediv__ __floordiv__
__mod__ __pow__ __neg__ __pos__ __abs__ __int__ __float__ __index__ __round__
__post_init__ __name__ __qualname__ __doc__ __init_subclass__ __set_name__
""".split())
#: Attributes that reach frames, code objects or other modules, whatever object they are read from.
FORBIDDEN_ATTRIBUTES = frozenset({
    "sys", "os", "gc", "builtins", "modules", "importlib", "inspect", "ctypes", "linecache",
    "traceback", "settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads",
    "fromfd", "format_map", "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace",
    "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next",
    "co_code", "co_consts", "func_globals", "kernel", "shell", "user_ns",
    # string.Formatter().get_field walks attributes named in a string; typing evaluates strings
    "Formatter", "get_field", "get_value", "vformat", "get_type_hints", "ForwardRef", "grading",
})
FRAME_PREFIXES = ("f_", "gi_", "cr_", "ag_", "tb_", "co_")
#: Whole strings refused (besides dunder and frame names): library helpers such as
#: functools.update_wrapper read attributes named in strings.
INTERNAL_STRINGS = frozenset({"sys", "builtins", "modules", "user_ns", "get_ipython", "gc"})
#: Underscore names that are public API (namedtuple's methods).
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


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


def notebook_bindings(sources) -> Bindings:
    """The names the given cell sources bind by importing (``np`` for ``import numpy as np``)."""
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
    return Bindings(modules, frozenset(imported))


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


def check_source(source: str, lesson: str, *, bindings: Bindings = Bindings()) -> list[Violation]:
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
    policy = LESSON_POLICY.get(_lesson_key(lesson), {})
    allowed = allowed_modules(lesson)
    refused = {alias for alias, module in bindings.modules.items()
               if alias not in COURSE_MODULES and module not in allowed}
    aliases = {alias: module for alias, module in bindings.modules.items()}
    aliases.update({name: f"course_lib.{name}" for name in COURSE_MODULES if name not in aliases})
    return _Checker(allowed, policy.get("attributes", {}), aliases, bindings.imported, refused).run(tree)


class _Checker(ast.NodeVisitor):
    def __init__(self, allowed: frozenset[str], attributes: dict, aliases: dict[str, str],
                 imported: frozenset[str], refused: set[str]):
        self.allowed = allowed
        self.attributes = attributes
        self.aliases = dict(aliases)     # name -> module, for the notebook's and this cell's imports
        self.modules = set(aliases)      # names bound to modules: in the notebook or by this cell's imports
        self.imported = set(imported)    # names bound by `from m import x` (classes, functions)
        self.refused = refused           # notebook modules this lesson's solutions may not use
        self.found: list[Violation] = []
        self._parents: dict[int, ast.AST] = {}

    def run(self, tree: ast.AST) -> list[Violation]:
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self._parents[id(child)] = node
        # Imports first: a module imported anywhere in the cell is a module everywhere in it.
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.modules.add(bound)
                    self.aliases[bound] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.imported.add(alias.asname or alias.name)
        # Private names the solution makes itself (self._lock = ..., a class's _helper): it may read those.
        self.own_names = {n.attr for n in ast.walk(tree)
                          if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        self.own_names.add(item.name)
                    elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        self.own_names.update(t.id for t in targets if isinstance(t, ast.Name))
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
        self.visit(tree)
        return sorted(set(self.found), key=lambda v: (v.line, v.construct))

    def _is_module(self, node: ast.Name) -> bool:
        """Does this name refer to a module? (A module name is never rebound in a solution: see
        _check_binding, so no scope can make it mean something else.)"""
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
                self._check_attribute_name(node, alias.name, base_is_module=True, module=module)
            self._check_binding(node, alias.asname or alias.name, via_import=True)

    # ---- names
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name in FORBIDDEN_NAMES:
            self.flag(node, name, FORBIDDEN_NAMES[name])
        elif HISTORY_NAME.match(name) and name != "_":
            self.flag(node, name, "the notebook's input and output history is the grader's")
        elif name.startswith("__") and name.endswith("__") and name != "__name__":
            self.flag(node, name, "dunder names reach the interpreter")
        if name in ("getattr", "hasattr"):
            self._check_getattr(node)
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

    def _check_getattr(self, node: ast.Name) -> None:
        call = self._parents.get(id(node))
        if not (isinstance(call, ast.Call) and call.func is node and len(call.args) >= 2
                and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str)):
            self.flag(node, node.id, f"{node.id} needs a literal attribute name; write obj.name instead")
            return
        base = call.args[0]
        is_module = isinstance(base, ast.Name) and (base.id in self.modules or base.id in self.imported)
        self._check_attribute_name(node, call.args[1].value, base_is_module=is_module,
                                   module=base.id if is_module else None)

    def _check_binding(self, node: ast.AST, name: str, *, via_import: bool = False) -> None:
        if name in COURSE_MODULES or (name in self.modules and not via_import):
            self.flag(node, name, f"a solution may not rebind {name}, which the notebook and the tests use "
                                  "(in any scope: pick another name)")
        elif name in BUILTIN_NAMES and self._at_top(node):
            self.flag(node, name, f"a solution may not replace the built-in {name} for the whole notebook "
                                  "(the tests use it too)")

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
            if isinstance(base, ast.Name) and base.id == "type":
                self.flag(node, f"class {node.name}(type)", "metaclasses change how classes are built; "
                                                            "no exercise needs one")
        self.generic_visit(node)

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
        base = node.value
        module = base.id if isinstance(base, ast.Name) and self._is_module(base) else None
        self._check_attribute_name(node, node.attr, base_is_module=module is not None, module=module)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = base
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            shared = isinstance(root, ast.Name) and (self._is_module(root) or root.id in self.imported)
            by_type = isinstance(root, ast.Call) and isinstance(root.func, ast.Name) and root.func.id == "type"
            if shared or by_type:
                target = ast.unparse(node)
                self.flag(node, f"{target} = ...",
                          "a solution may not change modules or classes the notebook and the tests share")
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

    def _check_attribute_name(self, node, attr: str, *, base_is_module: bool, module: str | None) -> None:
        where = f"{module}.{attr}" if module else f".{attr}"
        if _is_dunder(attr):
            if attr not in SPECIAL_METHODS:
                self.flag(node, where, "dunder attributes reach the interpreter's internals")
        elif attr in FORBIDDEN_ATTRIBUTES or attr.startswith(FRAME_PREFIXES):
            self.flag(node, where, "it reaches the interpreter, frames or other modules")
        elif base_is_module and attr.startswith("_"):
            self.flag(node, where, "a module's private names are not part of what it offers")
        elif attr.startswith("_") and attr not in self.own_names and attr not in PUBLIC_UNDERSCORE:
            self.flag(node, where, "a private attribute the solution did not define itself: use the public API")
        elif module and module in self.attributes and attr not in self.attributes[module]:
            allowed = ", ".join(sorted(self.attributes[module]))
            self.flag(node, where, f"of {module}, a solution here may use only {allowed}")

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
        if name in ("update_wrapper", "wraps") and (len(node.args) > 2 or any(
                k.arg in ("assigned", "updated", None) for k in node.keywords)):
            self.flag(node, f"{name}(..., assigned/updated)", "copying chosen attributes reads and writes "
                                                               "attributes named in strings; use @functools.wraps(f)")
        if name == "socket" and (any(isinstance(a, ast.Starred) for a in node.args)
                                 or any(k.arg is None for k in node.keywords)):
            self.flag(node, "socket.socket(*args)", "pass socket() its arguments one by one")
        if name == "register" and node.args and not isinstance(node.args[0], (ast.Name, ast.Attribute)):
            self.flag(node, ".register(...)", "register a function for a class named in the call")
        if isinstance(node.func, ast.Name) and node.func.id == "type" and len(node.args) == 3:
            self.flag(node, "type(name, bases, namespace)", "building classes at run time is not needed; "
                                                             "write a class statement")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg == "fileno":
            self.flag(node, "fileno=", "wrapping an existing file descriptor reaches the grader's files")
        self.generic_visit(node)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _not_allowed(module: str, allowed: frozenset[str]) -> str:
    shown = ", ".join(sorted(m for m in allowed if "." not in m))
    return f"{module or 'a relative import'} is not among the modules this lesson's solutions may import ({shown})"
