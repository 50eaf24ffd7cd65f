"""Do the lessons' own solutions earn full marks through the judge, sandboxed, with the demos gone?

One batch: every lesson's reference solutions, as one student would hand
them in, graded the way `course grade` grades a class (sandbox on). The
graded notebook holds no demo cell, so this also proves each lesson's tests
need nothing the demos set up.
"""

import json

import nbformat
import pytest

from autograder.normalize import is_demo
from tests.submissions import NOTEBOOKS, grade, make_submission

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

LESSONS = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir() and p.name[:2].isdigit())


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    for lesson in LESSONS:
        make_submission(root, "reference", lesson)
    out = tmp_path_factory.mktemp("graded-reference")
    return out, grade(root, out, "--jobs", "2", timeout=900)


@pytest.mark.parametrize("lesson", LESSONS)
def test_reference_solutions_earn_full_marks_sandboxed(batch, lesson):
    """Does each lesson's solution earn every point, graded, sandboxed, with no incident?"""
    out, rows = batch
    row = rows[("reference", lesson)]
    assert (row["status"], row["mode"]) == ("graded", "sandbox"), row
    assert float(row["score"]) == float(row["max_score"]) > 0, row
    result = json.loads((out / "results" / "reference" / f"{lesson}.json").read_text())
    assert [i for i in result["incidents"] if i["kind"] != "output_capped"] == []
    assert {d["status"] for d in result["decisions"]} == {"ok"}


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_graded_notebook_holds_no_demo_cell(batch, lesson):
    """Were the demo cells left out of what the judge ran?"""
    out, _ = batch
    graded = next((out / "autograded" / "reference" / lesson).glob("*.ipynb"))
    cells = nbformat.read(graded, as_version=4).cells
    assert cells and not [c for c in cells if is_demo(c)]
