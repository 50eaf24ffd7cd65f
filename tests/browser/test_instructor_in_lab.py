"""Do nbgrader's extensions load and work in this JupyterLab, for an instructor and a student?

The installed JupyterLab must load nbgrader's server extensions (formgrader,
assignment list, course list, validate) and its lab extension; in the page,
the Nbgrader menu opens the formgrader on the course's lessons and the
assignment list, the Create Assignment panel reads a lesson's cells, and the
Validate button validates a student notebook.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import lab as lablib

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NBGRADER_SERVER_EXTENSIONS = ["formgrader", "assignment_list", "course_list", "validate_assignment"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter(lab, *args: str) -> str:
    """Output of a ``jupyter`` command run with the lab's (isolated) environment."""
    command = [str(Path(sys.executable).with_name("jupyter")), *args]
    result = subprocess.run(command, env=lab.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return ANSI.sub("", result.stdout + result.stderr)


def nbgrader_console_errors(page, since: int) -> list[str]:
    return [e for e in page.console_errors[since:] if "nbgrader" in e.lower()]


def close_main_widget(page, label: str) -> None:
    page.evaluate("""(label) => { for (const w of Array.from(window.jupyterapp.shell.widgets('main')))
                       if (w.title.label === label) w.close(); }""", label)


def test_nbgrader_server_extensions_are_enabled_and_valid(lab):
    """Does `jupyter server extension list` show every nbgrader server extension enabled and OK?"""
    listing = jupyter(lab, "server", "extension", "list")
    for name in NBGRADER_SERVER_EXTENSIONS:
        module = f"nbgrader.server_extensions.{name}"
        assert re.search(rf"{re.escape(module)}\s+enabled", listing), f"{module} is not enabled:\n{listing}"
        assert re.search(rf"{re.escape(module)}\s+OK", listing), f"{module} did not validate:\n{listing}"
    log = lab.log_text()
    for name in NBGRADER_SERVER_EXTENSIONS:
        assert f"nbgrader.server_extensions.{name} | extension was successfully loaded" in log, (
            f"the running JupyterLab did not load {name}:\n{log[-2000:]}")
    assert "course directory root is not a subdirectory" not in log, "formgrader cannot see the course"


def test_nbgrader_lab_extension_is_enabled(lab):
    """Does `jupyter labextension list` show nbgrader's (and the widgets') lab extension enabled and OK?"""
    listing = jupyter(lab, "labextension", "list")
    for package in ("@jupyter/nbgrader", "@jupyter-widgets/jupyterlab-manager"):
        assert re.search(rf"{re.escape(package)} v\S+ enabled OK", listing), (
            f"{package} is not enabled and OK in this JupyterLab:\n{listing}")


def test_nbgrader_menu_offers_its_tools(lab_page):
    """Does the menu bar have an Nbgrader menu with the formgrader, assignment list and create assignment?"""
    lab_page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Nbgrader$")).click()
    items = lab_page.locator(".lm-Menu-itemLabel").all_inner_texts()
    lab_page.keyboard.press("Escape")
    for wanted in ("Formgrader", "Assignment List", "Course List", "Create assignment"):
        assert wanted in items, f"the Nbgrader menu lacks {wanted!r}: {items}"


def test_formgrader_lists_the_lessons(lab_page):
    """Does Nbgrader > Formgrader render the Manage Assignments page listing every lesson?"""
    since = len(lab_page.console_errors)
    lablib.click_menu(lab_page, "Nbgrader", "Formgrader")
    frame = lab_page.frame_locator("iframe[src*='formgrader']")
    try:
        frame.get_by_role("heading", name="Manage Assignments").first.wait_for(timeout=lablib.OPEN_MS)
        for lesson in lablib.released_lessons():
            frame.get_by_text(lesson, exact=True).first.wait_for(timeout=lablib.OPEN_MS)
        assert frame.get_by_text("formgrader encountered an error").count() == 0
        lablib.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        lab_page.screenshot(path=str(lablib.SCREENSHOTS / "instructor-formgrader.png"))
    finally:
        close_main_widget(lab_page, "Formgrader")
    assert not nbgrader_console_errors(lab_page, since), nbgrader_console_errors(lab_page, since)


def test_assignment_list_renders(lab_page):
    """Does Nbgrader > Assignment List open the student's assignment list (released, downloaded, submitted)?"""
    since = len(lab_page.console_errors)
    lablib.click_menu(lab_page, "Nbgrader", "Assignment List")
    try:
        for heading in ("Released assignments", "Downloaded assignments", "Submitted assignments"):
            lab_page.get_by_text(heading).first.wait_for(timeout=lablib.OPEN_MS)
    finally:
        close_main_widget(lab_page, "Assignments")
    assert not nbgrader_console_errors(lab_page, since), nbgrader_console_errors(lab_page, since)


def test_create_assignment_panel_reads_a_lesson(lab_page, open_lesson):
    """Does the Create Assignment panel show a lesson's nbgrader cells (types and total points)?"""
    lesson = lablib.released_lessons()[0]
    open_lesson(lesson)
    tab = lab_page.locator(".lm-TabBar-tab").filter(has_text="Create Assignment")
    tab.click()
    try:
        panel = lab_page.locator("#nbgrader-create_assignemnt")  # sic: nbgrader's own id
        panel.get_by_text("Total points:").wait_for(timeout=lablib.WIDGET_MS)
        points = panel.locator("input").first.input_value()
        assert points.strip() and float(points) > 0, f"total points shown: {points!r}"
        selected = panel.locator("select").evaluate_all("els => els.map(e => e.options[e.selectedIndex].text)")
        assert "Autograded answer" in selected and "Autograded tests" in selected, (
            f"the panel does not show the lesson's solution and test cells: {sorted(set(selected))}")
        lab_page.screenshot(path=str(lablib.SCREENSHOTS / "instructor-create-assignment.png"))
    finally:
        tab.click()  # collapse the sidebar again


@pytest.fixture
def validate_copy(lab_root, student_release) -> str:
    """A fresh student copy of one lesson (Validate saves the notebook first)."""
    lessons = lablib.released_lessons()
    lesson = "06-networks" if "06-networks" in lessons else lessons[0]
    target = lab_root / "validate" / lesson
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(student_release / lesson, target)
    notebook = next(target.glob("*.ipynb"))
    return f"validate/{lesson}/{notebook.name}"


def test_validate_button_reports_the_failing_tests(lab_page, validate_copy):
    """Does a student notebook's Validate button run nbgrader validate and show that the stubs fail?"""
    panel_id = lablib.open_notebook(lab_page, validate_copy)
    try:
        lab_page.locator(f"[id='{panel_id}'] .validate-button").click()
        dialog = lab_page.locator(".jp-Dialog")
        dialog.get_by_text("Validation Results").wait_for(timeout=lablib.RUN_ALL_MS)
        text = dialog.inner_text()
        assert "The following cell failed" in text and "NotImplementedError" in text, text[:500]
        dialog.get_by_role("button").last.click()
        dialog.wait_for(state="detached", timeout=lablib.WIDGET_MS)
    finally:
        lablib.close_notebook(lab_page, panel_id)
