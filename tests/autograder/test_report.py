"""autograder.report: the class report, from synthetic results (no kernels)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest

from autograder.report import write_report

L1, L2 = "01-processes-and-threads", "06-networks"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('pwned')</script>"


def result(student, lesson=L1, *, passed=("a", "b", "c"), status="graded", reason="", message="AssertionError: no",
           mode="sandbox", timing=None, seconds=2.0, incidents=()):
    """A worker result for ``lesson`` with tests a (1 pt), b (2 pts), c (1 pt); those not in ``passed`` fail."""
    points = {"a": 1.0, "b": 2.0, "c": 1.0}
    tests = [{"name": f"{lesson[:2]}_{n}", "notebook": lesson, "score": p if n in passed else 0.0,
              "max_score": p, "message": "" if n in passed else message} for n, p in points.items()]
    return {"student_id": student, "lesson": lesson, "score": sum(t["score"] for t in tests), "max_score": 4.0,
            "status": status, "reason": reason, "mode": mode, "tests": tests, "incidents": list(incidents),
            "timing": timing or {"prepare": 0.1, "autograde": 1.5, "feedback": 0.2, "bookkeeping": 0.05},
            "seconds": seconds}


def pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def tables(page: str) -> list[str]:
    return re.findall(r"<table.*?</table>", page, flags=re.S)


@pytest.fixture
def class_results():
    rows = [result(f"s{i:02d}") for i in range(6)]                                  # full marks
    rows += [result(f"w{i:02d}", passed=("a", "c"), message=f"AssertionError: lost an update in <Counter at 0x7f00aa{i:04x}>")
             for i in range(4)]                                                     # b fails, same message
    rows += [result("evil", passed=("a",), message=EVIL)]
    rows.append(result("slow", passed=(), status="timeout", reason="01_b: interrupted after 20 s",
                       incidents=[{"kind": "timeout", "cell": "01_b", "message": "interrupted after 20 s"}]))
    rows.append(result("boom", passed=("a",), status="kernel_died", reason="01_c: the kernel died (os._exit)",
                       mode="no-sandbox",
                       incidents=[{"kind": "kernel_died", "cell": "01_c", "message": "the kernel died (os._exit)"}]))
    rows.append({"student_id": "broken", "lesson": L1, "score": 0.0, "max_score": 4.0, "status": "error",
                 "reason": "no notebook in submitted/broken (expected 01.ipynb) <b>", "tests": []})
    rows += [result(f"n{i}", L2, passed=("a", "b")) for i in range(3)]
    return rows


def test_report_is_one_file_with_a_table_per_concern(class_results, tmp_path):
    """Does report.html hold the lessons, failed-tests, problems, timing and all-rows tables, self-contained?"""
    path = write_report(class_results, tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")
    for heading in ("Lessons", "Tests failed most", "Submissions that timed out, crashed or could not be graded",
                    "Where the time went", "Every submission"):
        assert f"{heading}</h" in page, heading
    plain = [t for t in tables(page) if 'class="matrix-table"' not in t]
    assert len(plain) == 1 + 2 + 1 + 1 + 1   # lessons, failed per lesson, problems, timing, all rows
    assert len(tables(page)) - len(plain) == 2 * (2 + 3)  # per lesson a matrix sorted 5 ways: student, total, 3 tests
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not load anything"


def test_scores_and_failures_are_counted_right(class_results, tmp_path):
    """Are the mean score, the failed counts and the grouped messages the expected values?"""
    page = write_report(class_results, tmp_path).read_text(encoding="utf-8")
    lessons = tables(page)[0]
    # 01: 6×4 + 4×2 + 1 (evil: a) + 0 (slow) + 1 (boom: a) + 0 (broken) = 34 over 14 rows
    assert f"{34 / 14:.2f} / 4" in lessons
    assert "<td>14</td>" in lessons and "<td>3</td>" in lessons   # rows; problems of 01
    assert f"{6:.2f} / 4" not in lessons and f"{3:.2f} / 4" in lessons  # 06: a+b = 3 each
    failed = tables(page)[1]
    # 01_b failed for w00..w03, evil, slow, boom out of 13 submissions with tests
    assert "<code>01_b</code></td><td>7 of 13 (54%)" in failed
    # four messages differing only by an object address are grouped as one, ahead of the others
    assert "(54%)</td><td>4× <code>AssertionError: lost an update in &lt;Counter at 0x…&gt;</code><br>2× <code>AssertionError: no</code>" in failed
    assert "0x7f00aa" not in failed


def test_problem_rows_say_why_and_in_which_mode(class_results, tmp_path):
    """Is every timeout, kernel death and error listed with its reason, incident and mode?"""
    page = write_report(class_results, tmp_path).read_text(encoding="utf-8")
    problems = tables(page)[-3]
    rows = re.findall(r"<tr><td>(.*?)</td><td>.*?</td><td><b>(.*?)</b></td><td>(.*?)</td>", problems)
    assert rows == [("broken", "error", "unknown"),
                    ("boom", "kernel_died", "no-sandbox"), ("slow", "timeout", "sandbox")]
    assert "the kernel died (os._exit)" in problems and "interrupted after 20 s" in problems
    assert "expected 01.ipynb) &lt;b&gt;" in problems
    every = tables(page)[-1]
    assert every.count("<td>sandbox</td>") == 15 and every.count("<td>no-sandbox</td>") == 1
    assert every.count("<td>unknown</td>") == 1


def test_student_text_is_escaped(class_results, tmp_path):
    """Does a <script> in a test message or a student id reach the page only escaped?"""
    class_results.append(result("<img src=x onerror=alert(1)>", passed=()))
    page = write_report(class_results, tmp_path).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "onerror=alert(1)>" not in page
    # The sanitiser re-serialises text: < and > stay escaped, quotes in text need no escape.
    assert html.escape(EVIL, quote=False) in page
    assert "&lt;img src=x onerror&#61;alert(1)&gt;" in page  # shown as text, its = an entity


def test_plots_are_embedded_pngs(class_results, tmp_path):
    """Are there a histogram and a bar chart per lesson, each decoding to a PNG?"""
    page = write_report(class_results, tmp_path).read_text(encoding="utf-8")
    images = pngs(page)
    assert len(images) == 4
    assert all(img.startswith(PNG_MAGIC) and len(img) > 1000 for img in images)


def test_where_the_time_went(tmp_path):
    """Does the timing table give the mean seconds per step and what the steps do not cover?"""
    rows = [result("a", timing={"prepare": 0.2, "autograde": 2.0, "feedback": 0.4, "bookkeeping": 0.2}, seconds=3.0),
            result("b", timing={"prepare": 0.4, "autograde": 4.0, "feedback": 0.6, "bookkeeping": 0.2}, seconds=6.0)]
    timing = tables(write_report(rows, tmp_path).read_text(encoding="utf-8"))[-2]
    assert "<td>autograde</td><td>3.00</td><td>67%</td><td>2</td>" in timing
    assert "<td>prepare</td><td>0.30</td><td>7%</td>" in timing
    assert "<td>outside these steps (hand-off to the worker, restarts)</td><td>0.50</td><td>11%</td>" in timing
    assert "<b>4.50</b>" in timing


def test_an_empty_class(tmp_path):
    """Does an empty result list still give a valid page that says nothing was graded?"""
    page = write_report([], tmp_path).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "nothing was graded" in page
    assert pngs(page) == []


def test_error_only_rows(tmp_path):
    """Do rows with no tests, no timing and even no max score give problems rows and no plot?"""
    rows = [{"student_id": "x", "lesson": L1, "score": 0.0, "max_score": 0.0, "status": "error",
             "reason": "grading failed: RuntimeError: boom", "tests": []},
            {"student_id": "y", "lesson": L1, "status": "timeout",
             "reason": "grading did not finish within 330 s and was stopped"},
            {"student_id": "z", "lesson": L1, "score": "0", "max_score": "", "status": "missing",
             "reason": "nothing submitted", "mode": ""}]
    page = write_report(rows, tmp_path).read_text(encoding="utf-8")
    assert pngs(page) == []
    assert "No submission of this lesson has a score" in page
    assert "grading failed: RuntimeError: boom" in page and "within 330 s" in page
    assert "No timing recorded" in page
    lessons = tables(page)[0]
    assert "<td>—</td>" in lessons and lessons.count("<td>1</td>") == 1  # mean "—", one missing


def test_all_passed_lesson_has_no_failed_table(tmp_path):
    """Does a lesson where every test passed say so instead of an empty table?"""
    page = write_report([result("a"), result("b")], tmp_path).read_text(encoding="utf-8")
    assert "Every test cell passed" in page
    assert "Tests failed most" not in page
    assert len(pngs(page)) == 2


def test_writing_a_report_leaves_pyplot_alone(tmp_path):
    """Does writing a report open no pyplot figure (it draws on its own Agg canvas)?"""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    write_report([result("a", passed=("a",))], tmp_path)
    assert plt.get_fignums() == before
    assert not list(Path(tmp_path).glob("*.tmp"))


def _matrix_view(page: str, lesson: str, order: str) -> str:
    anchor = "lesson-" + re.sub(r"[^A-Za-z0-9-]", "-", lesson)
    return re.search(rf'<div class="view[^"]*" id="m-{anchor}-{order}">(.*?)</div>', page, flags=re.S).group(1)


def test_the_matrix_shows_who_failed_what_and_links_each_cell_to_that_feedback(class_results, tmp_path):
    """Is there a row per submitted student and a column per test, each cell coloured by its result
    and linking to that student's own feedback page, and an error row with its reason?"""
    page = write_report(class_results, tmp_path).read_text(encoding="utf-8")
    view = _matrix_view(page, L1, "student")
    rows = re.findall(r"<tr>(.*?)</tr>", view, flags=re.S)[1:]
    assert len(rows) == 6 + 4 + 1 + 1 + 1 + 1  # full, partly, evil, slow, boom, broken
    w00 = next(r for r in rows if ">w00<" in r)
    cells = re.findall(r'<td class="(\w+)"[^>]*><a href="([^"]+)"[^>]*>([^<]+)</a>', w00)
    assert [(c, text) for c, _, text in cells] == [("part", "2 / 4"), ("pass", "1 / 1"), ("fail", "0 / 2"),
                                                   ("pass", "1 / 1")]
    assert {href for _, href, _ in cells} == {f"feedback/w00/{L1}/{L1}.html"}
    broken = next(r for r in rows if ">broken<" in r)
    assert 'colspan="3"' in broken and "no notebook in submitted/broken" in broken
    assert "&lt;b&gt;" in broken  # the reason is text


def test_the_matrix_sorts_by_total_and_by_any_test_without_a_script(class_results, tmp_path):
    """Does each header link show a copy sorted by that column (failures of a test first), with no script?"""
    page = write_report(class_results, tmp_path).read_text(encoding="utf-8")
    anchor = "lesson-" + L1
    header = re.search(r"<tr>(.*?)</tr>", _matrix_view(page, L1, "student"), flags=re.S).group(1)
    assert re.findall(r'href="#([^"]+)"', header) == [f"m-{anchor}-{o}" for o in ("student", "total", "t0", "t1", "t2")]
    first = lambda order: re.findall(r"<tr><td><a [^>]*>([^<]+)</a>", _matrix_view(page, L1, order))  # noqa: E731
    assert first("student") == sorted(first("student"))
    assert first("total")[:2] == ["broken", "slow"]          # 0 points first
    assert set(first("t1")[:8]) == {"evil", "slow", "boom", "w00", "w01", "w02", "w03", "broken"}  # 01_b failed
    assert "<script" not in page and ".view:target" in page


def test_the_report_says_how_to_grade_again(class_results, tmp_path):
    """Does the page give the commands for all, one lesson and one student, with this batch's folders?"""
    import json

    out = tmp_path / "grading"
    out.mkdir()
    (out / "batch.json").write_text(json.dumps({"submissions": "/courses/fall/submitted"}))
    page = html.unescape(write_report(class_results, out).read_text(encoding="utf-8"))
    base = f"course grade /courses/fall/submitted --out {out}"
    for command in (f"{base} --force", f"{base} --lesson {L1} --force", f"course report {out}"):
        assert command in page, command
    assert re.search(rf"{re.escape(base)} --lesson {L1} --student \w+ --force", page)
