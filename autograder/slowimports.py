"""What a course process need not import: jsonschema's unused format checkers, packages' heavy ``__init__``.

One home for the start-up savings that ``course check``, ``course grade`` and the grading workers
share (benchmarks/bench_check.py measures them).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["skip_format_checkers", "skip_slow_imports", "without_its_init"]


#: jsonschema's optional string-format checkers: nbformat's schemas use no ``format`` keyword, so none is used,
#: yet importing them took about 0.2 s of a check (``python -X importtime``).
_UNUSED_FORMAT_CHECKERS = ("rfc3987_syntax", "rfc3987", "rfc3986_validator", "rfc3339_validator", "isoduration",
                           "fqdn", "webcolors", "jsonpointer", "uri_template")
#: Packages whose ``__init__`` imports far more than a check uses (nbgrader's: its server extensions and the
#: gradebook's SQLAlchemy; nbconvert's: every exporter and filter, with mistune, bs4, bleach and jinja2).
_HEAVY_PACKAGES = ("nbgrader", "nbgrader.preprocessors", "nbconvert", "nbconvert.exporters",
                   "nbconvert.preprocessors")


def skip_slow_imports() -> None:
    """Keep a check's start-up to what it uses (most of a one-exercise check's own CPU was imports).

    jsonschema's format checkers are marked absent, so it skips those formats
    (none is in a notebook schema); each package of ``_HEAVY_PACKAGES`` is set
    up without running its ``__init__`` (:func:`without_its_init`). Measured
    in benchmarks/bench_check.py; only for this process.
    """
    skip_format_checkers()
    for name in _HEAVY_PACKAGES:
        without_its_init(name)


def skip_format_checkers() -> None:
    """Mark jsonschema's unused format checkers absent, so it skips those formats (no notebook schema uses one).

    Most of the time is ``rfc3987_syntax``'s IRI grammar (2-6 s of CPU at import): it is most of a check's
    start-up and of a grading process's (``course grade`` and each of its workers). Only for this process.
    """
    for name in _UNUSED_FORMAT_CHECKERS:
        sys.modules.setdefault(name, None)


def without_its_init(name: str) -> None:
    """Set package ``name`` up without running its ``__init__``; a name it exports is imported when first asked for.

    Where each name comes from is read from the ``from X import Y`` lines of
    the real ``__init__`` (top level, or in a ``try``), so the names and the
    objects are the package's own, only later. A submodule imports as usual.
    Nothing is done when the package is imported already, or laid out otherwise.
    """
    import ast
    import importlib
    import importlib.util

    if name in sys.modules or ("." in name and name.rpartition(".")[0] not in sys.modules):
        return
    try:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations or not spec.origin:
            return
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (ImportError, OSError, SyntaxError, ValueError):
        return
    where = {}  # exported name -> (module, attribute); attribute None: the module itself
    nodes = [*tree.body, *(n for t in tree.body if isinstance(t, ast.Try) for n in t.body)]
    for node in nodes:
        if not isinstance(node, ast.ImportFrom) or node.level > 1:
            continue
        origin = f"{name}.{node.module}" if node.level == 1 and node.module else name if node.level == 1 else node.module
        for alias in node.names:
            if alias.name == "*":
                return  # its names cannot be known without running it: import it whole
            target = (f"{name}.{alias.name}", None) if origin == name else (origin, alias.name)
            where[alias.asname or alias.name] = target
    package = importlib.util.module_from_spec(spec)
    package.__all__ = sorted(n for n in where if not n.startswith("_"))

    def named(wanted: str):
        if wanted not in where:
            raise AttributeError(f"module {name!r} has no attribute {wanted!r}")
        module, attribute = where[wanted]
        value = importlib.import_module(module)
        value = value if attribute is None else getattr(value, attribute)
        setattr(package, wanted, value)
        return value

    package.__getattr__ = named
    sys.modules[name] = package
    if "." in name:
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, package)
