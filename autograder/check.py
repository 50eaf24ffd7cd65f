"""``course check``: run a notebook's visible tests now, in a fresh kernel.

For a student or a self-study learner before submitting. It executes a copy
of the notebook (the file on disk is not changed) with the same per-cell
limit as grading, then reports each graded test cell: passed, failed with
its message, or not attempted (the exercise still raises
NotImplementedError). It says plainly that hidden tests run only at grading,
so "all passed" here never means full marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Limits
from .lessons import CourseError


@dataclass
class TestResult:
    grade_id: str
    points: float
    outcome: str       # passed, failed, not attempted
    message: str = ""


def check(notebook: Path, *, limits: Limits = Limits()) -> list[TestResult]:
    """Execute ``notebook`` and return one result per graded test cell."""
    import nbformat
    from nbclient import NotebookClient

    notebook = Path(notebook)
    if not notebook.is_file() or notebook.suffix != ".ipynb":
        raise CourseError(f"not a notebook: {notebook}")
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:
        raise CourseError(f"{notebook} is not a readable notebook: {str(exc).splitlines()[0]}")
    client = NotebookClient(nb, timeout=limits.cell_timeout, allow_errors=True,
                            kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(notebook.parent.resolve())}})
    try:
        client.execute()
    except Exception as exc:  # dead kernel: report what ran
        dead = f"the kernel stopped: {type(exc).__name__}"
    else:
        dead = ""
    results = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        points = float(meta.get("points", 0))
        if errors:
            err = errors[-1]
            outcome = "not attempted" if err.get("ename") == "NotImplementedError" else "failed"
            results.append(TestResult(meta["grade_id"], points, outcome, f"{err.get('ename')}: {err.get('evalue')}"))
        elif cell.get("execution_count") is None:
            results.append(TestResult(meta["grade_id"], points, "failed", dead or "this cell did not run"))
        else:
            results.append(TestResult(meta["grade_id"], points, "passed"))
    return results


def report(notebook: Path, results: list[TestResult]) -> str:
    lines = [f"Visible tests of {notebook}:"]
    for r in results:
        mark = {"passed": "PASS", "failed": "FAIL", "not attempted": "TODO"}[r.outcome]
        lines.append(f"  {mark}  {r.grade_id} ({r.points:g} pt)" + (f" — {r.message}" if r.message else ""))
    passed = sum(r.outcome == "passed" for r in results)
    lines.append(f"{passed} of {len(results)} test cells passed their visible checks.")
    lines.append("Hidden tests run only at grading: passing here does not guarantee full marks.")
    return "\n".join(lines)
