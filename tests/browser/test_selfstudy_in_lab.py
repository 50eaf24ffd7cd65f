"""A learner alone, in JupyterLab in a real browser: the hint panel, a "break it" exercise answered
and checked in the page, and the `course progress` page opened in Chromium — each with a screenshot."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from . import lab as lablib
from .test_lessons_in_lab import show_widget, wait_for_text, widget_cell

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LESSON = "03-race-conditions-and-locks"


def test_the_hint_panel_shows_the_next_hint(lab_page, open_lesson, student_release, exercise_cells):
    """Lesson 03: is the button's label whole, are the exercises numbered as in the notebook, and does
    "Show the next hint" show hint 1, then hint 2, and count them?"""
    cell = widget_cell(student_release, LESSON, "hint_panel(", "hint panel")
    panel_id, index, located = show_widget(lab_page, open_lesson, LESSON, cell, exercise_cells[LESSON])
    button = located.get_by_role("button", name="Show the next hint")
    fits = button.evaluate("b => b.scrollWidth <= b.clientWidth && b.innerText.trim() === 'Show the next hint'")
    assert fits, "the button's label is cut off"
    assert "Exercise 1 — SafeCounter" in located.locator("select").inner_text().replace("\xa0", " "), \
        "numbered as in the notebook"
    button.click()
    wait_for_text(lab_page, located.locator(".course-hint").first, r"^Hint 1 of \d")
    button.click()
    wait_for_text(lab_page, located.locator(".course-hint").nth(1), r"^Hint 2 of \d")
    assert re.search(r"2 of \d hints seen", located.locator(".course-hint-panel").inner_text())
    lablib.screenshot_cell(lab_page, panel_id, index, lablib.SCREENSHOTS / f"{LESSON}-hints.png")


def answer_and_check(page, panel_id: str, grade_id: str, answer: str) -> dict:
    """Type ``answer`` into the solution cell ``grade_id`` as a learner would, run it and its test."""
    cells = lablib.cell_report(page, panel_id)
    index = page.evaluate(lablib.js("""([id, gid]) => panelById(id).content.widgets.findIndex(
        c => (c.model.getMetadata('nbgrader') || {}).grade_id === gid)"""), [panel_id, grade_id])
    assert index >= 0, f"no solution cell {grade_id}"
    editor = lablib.cell_locator(page, panel_id, index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(answer)
    page.keyboard.press("Shift+Enter")   # runs the answer, moves to its test cell
    page.keyboard.press("Shift+Enter")   # runs the test
    page.wait_for_function(lablib.js("""([id, i]) => {
        const p = panelById(id); const k = p.sessionContext.session?.kernel;
        return k && k.status === 'idle' && p.content.widgets[i + 1].model.executionCount !== null;
      }"""), arg=[panel_id, index], timeout=lablib.WIDGET_MS)
    assert len(cells) == len(lablib.cell_report(page, panel_id))
    return lablib.cell_report(page, panel_id)[index + 1] | {"index": index + 1}


def test_a_break_it_schedule_is_answered_and_checked_in_the_page(lab_page, open_lesson, student_release):
    """Lesson 03: a wrong schedule shows what it did and fails; the breaking one passes."""
    if lablib.released_cell(student_release, LESSON, "breakit") is None and \
            "break_overdraft" not in (student_release / LESSON / f"{LESSON}.ipynb").read_text():
        pytest.fail("lesson 03 has no break-it exercise")
    panel_id = open_lesson(LESSON)
    held = answer_and_check(lab_page, panel_id, "break_overdraft", 'OVERDRAFT_SCHEDULE = "0x7 1"')
    assert held["errors"] and "kept its promise" in held["errors"][0]["evalue"], held
    broken = answer_and_check(lab_page, panel_id, "break_overdraft", 'OVERDRAFT_SCHEDULE = "0x3 1x3 0"')
    assert not broken["errors"], broken["errors"]
    located = lablib.cell_locator(lab_page, panel_id, broken["index"])
    wait_for_text(lab_page, located.locator(".jp-OutputArea-output").last, r"[Pp]assed|broken")
    lablib.screenshot_cell(lab_page, panel_id, broken["index"], lablib.SCREENSHOTS / f"{LESSON}-break-it.png")


def test_the_progress_page_opens_in_chromium(browser, student_release, tmp_path):
    """Does `course progress` write a page that Chromium shows, table and plot, for this work folder?"""
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "progress", "--work", str(student_release)],
                          capture_output=True, text=True, timeout=120, cwd=lablib.REPO)
    assert done.returncode == 0, done.stderr
    page_file = student_release / "progress.html"
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_function("() => { const i = document.querySelector('img');"
                               " return i && i.complete && i.naturalWidth > 0; }", timeout=lablib.RENDER_MS)
        text = page.locator("body").inner_text()
        assert "Your progress" in text and LESSON in text and "exercises done" in text
        shot = lablib.SCREENSHOTS / "progress.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        lablib.assert_not_blank(shot)
    finally:
        context.close()
