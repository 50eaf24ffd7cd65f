"""The notebook that is graded: the lesson's own cells, with the student's solution cells put in.

A submission is not run as handed in. From the released lesson (setup
cells and test cells, whose hidden parts nbgrader restores from the
gradebook) the grader builds a *normalized* notebook, and from the
submission it takes only the source text of each solution cell, matched by
``grade_id``. Cells the student added, edited or deleted elsewhere are not
run; demo cells (tag ``demo``: plots, stress demos, servers started for
show) are left out. Every solution cell is read by :mod:`autograder.policy`
before anything runs: a rejected, missing or duplicated solution keeps the
lesson's stub (which raises ``NotImplementedError``) and its exercise scores
0 with the reason.

An *exercise* is a run of solution cells and the graded test cells after
it, up to the next solution cell: :func:`exercises` maps each test to the
solution cells it checks, which is how one rejected cell costs exactly its
own exercise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

__all__ = ["DEMO_TAG", "Decision", "Normalized", "normalize", "exercises", "is_solution", "is_test", "notebook_bindings"]

DEMO_TAG = "demo"


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell) -> bool:
    meta = _meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_test(cell) -> bool:
    meta = _meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade"))


def is_demo(cell) -> bool:
    return DEMO_TAG in (cell.get("metadata", {}).get("tags") or [])


def notebook_bindings(cells):
    """What the policy must know of a notebook's cells besides the solutions (:class:`policy.Bindings`):
    the names they import, and what the lesson's own cells (not tests, not demos) define."""
    from . import policy

    code = [c for c in cells if c.get("cell_type") == "code" and not is_solution(c)]
    return policy.notebook_bindings((c.source for c in code),
                                    course=(c.source for c in code if not is_test(c) and not is_demo(c)))


@dataclass
class Decision:
    """What happened to one solution cell of the lesson."""

    grade_id: str
    status: str                 # ok, missing, duplicated, rejected
    message: str = ""


@dataclass
class Normalized:
    notebook: nbformat.NotebookNode
    decisions: list[Decision] = field(default_factory=list)
    exercise_of: dict[str, list[str]] = field(default_factory=dict)  # test grade id -> solution grade ids

    def rejected(self) -> list[Decision]:
        return [d for d in self.decisions if d.status != "ok"]

    def lost(self) -> dict[str, str]:
        """Test grade id -> why it scores 0 whatever ran (its exercise's solution was not taken)."""
        why = {d.grade_id: d for d in self.decisions if d.status != "ok"}
        lost = {}
        for test, solutions in self.exercise_of.items():
            reasons = [f"{why[s].grade_id}: {why[s].message}" for s in solutions if s in why]
            if reasons:
                lost[test] = "; ".join(reasons)
        return lost


def exercises(nb) -> dict[str, list[str]]:
    """Map every graded test cell's grade id to the solution cells it checks."""
    out: dict[str, list[str]] = {}
    group: list[str] = []
    tests_seen = False
    for cell in nb.cells:
        if is_solution(cell):
            if tests_seen:
                group, tests_seen = [], False
            group.append(_meta(cell)["grade_id"])
        elif is_test(cell):
            out[_meta(cell)["grade_id"]] = list(group)
            tests_seen = True
    return out


def solution_sources(submitted) -> dict[str, list[str]]:
    """grade id -> the sources of the submitted code cells that carry it (usually one)."""
    found: dict[str, list[str]] = {}
    for cell in submitted.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        grade_id = _meta(cell).get("grade_id")
        if isinstance(grade_id, str):
            source = cell.get("source", "")
            found.setdefault(grade_id, []).append("".join(source) if isinstance(source, list) else str(source))
    return found


def normalize(release, submitted, lesson: str) -> Normalized:
    """The notebook to grade: ``release``'s cells minus demos, solutions from ``submitted``."""
    from . import policy

    cells = [c for c in release.cells if not is_demo(c)]
    bindings = notebook_bindings(cells)
    given = solution_sources(submitted)
    solution_ids = {_meta(c)["grade_id"] for c in cells if is_solution(c)}
    single = {grade_id: sources[0] for grade_id, sources in given.items()
              if len(sources) == 1 and grade_id in solution_ids}
    violations = policy.check_cells(single, lesson, bindings=bindings)
    result = Normalized(notebook=nbformat.v4.new_notebook(metadata=release.metadata),
                        exercise_of=exercises(release))
    for cell in cells:
        cell = nbformat.from_dict(cell)  # a copy: the release template is shared by every job
        if is_solution(cell):
            grade_id = _meta(cell)["grade_id"]
            sources = given.get(grade_id, [])
            if not sources:
                decision = Decision(grade_id, "missing", "the submission has no solution cell with this id")
            elif len(sources) > 1:
                decision = Decision(grade_id, "duplicated",
                                    f"the submission has {len(sources)} solution cells with this id")
            else:
                found = violations.get(grade_id, [])
                if found:
                    decision = Decision(grade_id, "rejected", "; ".join(str(v) for v in found[:5]))
                else:
                    decision = Decision(grade_id, "ok")
                    cell.source = sources[0]
            result.decisions.append(decision)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        result.notebook.cells.append(cell)
    return result
