"""The package's shape, checked: every module says what it exports, none imports another's
private names, and no module grows past about 500 lines unless its docstring says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p for package in ("autograder", "course_lib") for p in (REPO / package).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("path", [p for p in MODULES if p.relative_to(REPO).parts[0] == "autograder"],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_autograder_module_has_an_all_and_imports_no_private_name(path):
    """Does the module name its interface, and take only public names from its neighbours?"""
    tree = _tree(path)
    assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(t, ast.Name)}
    assert "__all__" in assigned, f"{path.name} has no __all__"
    private = [f"{'.' * node.level}{node.module or ''}.{alias.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.level > 0 for alias in node.names
               if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not private, f"{path.name} imports private names: {private}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_is_much_over_500_lines_unless_it_says_why(path):
    """Is a big module one concern on purpose (its docstring says "One piece"), not by drift?"""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines > 520:
        assert "One piece" in (ast.get_docstring(_tree(path)) or ""), f"{path.name}: {lines} lines"
