"""When the audit catches what the policy let through, does the whole pipeline withhold the points?

The policy refuses every known way to reach the interpreter, so no real
submission gets this far; here it is switched off for one in-process
grading run to prove the second layer end to end: the row is ``tampered``,
its score 0 with the would-be points kept, the feedback says why with the
line, and the class report lists it first.
"""

import json

import pytest

from autograder import grade as grade_mod
from autograder import policy, worker
from autograder.release import build_course
from autograder.report import render
from tests.submissions import MINI_COURSE, make_submission

pytestmark = pytest.mark.slow

LESSON = "01-mini"
TRACES = "import sys\ndef double(x):\n    sys.settrace(None)\n    return 2 * x"


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    root = tmp_path_factory.mktemp("subs")
    folder = make_submission(root, "tracer", LESSON, {"double": TRACES}, notebooks=MINI_COURSE).parent
    template = build_course(tmp_path_factory.mktemp("template"), [LESSON], notebooks=MINI_COURSE)
    job = worker.Job(student="tracer", lesson=LESSON, submission=str(folder), template=str(template),
                     sandbox=False)
    patch = pytest.MonkeyPatch()
    patch.setattr(policy, "check_source", lambda *a, **k: [])
    try:
        return worker.run(job)
    finally:
        patch.undo()


def test_the_row_is_tampered_and_its_points_withheld(tampered):
    """Is the score 0, the status tampered, and the points it would have had kept for review?"""
    result = tampered["result"]
    assert (result["status"], result["score"], result["withheld_score"]) == ("tampered", 0.0, 5.0), result
    assert "line 3 `sys.settrace(None)` raised sys.settrace" in result["reason"]
    assert all(t["score"] == 0.0 for t in result["tests"])


def test_the_feedback_says_grading_found_code_that_alters_the_grader(tampered):
    """Does the student read why, with the line, in their feedback?"""
    html = next(text for path, text in tampered["files"].items() if path.startswith("feedback/"))
    assert "Grading found code that alters the grader" in html and "sys.settrace" in html


def test_the_report_lists_tampering_before_anything_else(tampered, tmp_path):
    """Is a tampered row at the top of report.html, with its withheld points, and in grades.csv?"""
    page = render([tampered["result"], {"student_id": "ok", "lesson": LESSON, "score": 5, "max_score": 5,
                                        "status": "graded"}])
    top = page.index("Read these first")
    assert top < page.index("tracer", top) < page.index("Class report") + 10_000
    assert "withheld: 5" in page
    grade_mod.write_csv(tmp_path / "grades.csv", [grade_mod._csv_row(tampered["result"])])
    assert ",tampered," in (tmp_path / "grades.csv").read_text()
    assert json.dumps(tampered["result"])  # serialisable as the parent writes it
