"""Does every lesson work as students see it, in JupyterLab in a real browser?

For each lesson of the student release, exactly as released (stubs
untouched, no tag added): Run > Run All Cells, then check that every code
cell ran, that the only errors are the one-line "not attempted yet" of an
untouched exercise, that no traceback appears except where the lesson states
one, that every plot is shown as a decoded image, that widgets render, and
that JupyterLab's news prompt does not cover the page; a screenshot of the
whole notebook goes under build/screenshots/. Then the widgets are driven by hand: the
producer/consumer sliders (lesson 04), the chat panel (lesson 08) and the
server control panel (lessons 06/07) — each check skips, saying why, when its
lesson or widget is not there yet.
"""

from __future__ import annotations

import re

import pytest

from . import lab as lablib

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LESSONS = lablib.released_lessons()


def describe(cells: list[dict]) -> str:
    return "\n".join(f"  cell {c['id']} (#{c['index']}): " + "; ".join(
        f"{e['ename']}: {e['evalue'][:160]}" for e in c["errors"]) for c in cells)


def test_there_are_lessons_to_drive():
    """Are there lessons under notebooks/ for the run-all checks (else they would pass by not running)?"""
    assert LESSONS, "no lesson folder NN-topic/ with a notebook under notebooks/"


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_runs_every_cell_of_the_untouched_lesson(lesson, lab_page, open_lesson, exercise_cells):
    """After Run All on the lesson as released, did every cell run, is every error the one-line
    "not attempted yet" of an exercise cell, every traceback one the lesson states, every plot an
    image, every widget drawn?"""
    panel_id = open_lesson(lesson)
    lablib.run_all(lab_page, panel_id)
    lablib.wait_for_images(lab_page, panel_id)
    cells = lablib.cell_report(lab_page, panel_id)
    lablib.screenshot_notebook(lab_page, panel_id, lablib.SCREENSHOTS / lesson)

    exercise = exercise_cells[lesson]
    code = [c for c in cells if c["type"] == "code" and not c["empty"]]
    not_run = [c["id"] for c in code if c["executionCount"] is None]
    not_one_line = [c for c in code if c["errors"] and not all(
        len(e["traceback"]) == 1 and e["traceback"][0].startswith(lablib.NOT_ATTEMPTED) for e in c["errors"])]
    outside = [c for c in code if c["errors"] and not exercise.get(c["id"], False)]
    tracebacks = {c["id"]: next(t for t in c["stderr"] if "Traceback" in t)[-600:] for c in code
                  if any("Traceback" in text for text in c["stderr"]) and lablib.STATED_TRACEBACK_TAG not in c["tags"]}
    unshown = [c["id"] for c in code if c["errors"] and not c["errorsShown"]]
    not_drawn = [c["id"] for c in code if c["imagesShown"] < c["images"]]
    broken_widgets = [(c["id"], c["widgetErrors"]) for c in code if c["widgetErrors"]]

    problems = []
    if not_run:
        problems.append(f"Run All stopped: cells never ran {not_run[:8]} (a cell that raises while its exercise "
                        "is untouched needs the tag raises-exception)")
    if not_one_line:
        problems.append("errors that are not one 'not attempted yet' line:\n" + describe(not_one_line))
    if outside:
        problems.append("cells outside the exercises show an error in the student version (if a cell "
                        "calls an exercise's function, tag it 'raises-exception'):\n" + describe(outside))
    if tracebacks:
        problems.append(f"tracebacks on stderr in cells {sorted(tracebacks)} that are not tagged "
                        f"{lablib.STATED_TRACEBACK_TAG!r} (a traceback the lesson shows on purpose):\n"
                        + "\n".join(f"{cell}: ...{text}" for cell, text in tracebacks.items()))
    if unshown:
        problems.append(f"errors in the notebook model but not shown in the page: {unshown}")
    if not_drawn:
        problems.append(f"plots not shown as images in cells {not_drawn}")
    if broken_widgets:
        problems.append(f"widgets failed to display: {broken_widgets}")
    assert not problems, f"{lesson}: " + "\n".join(problems)
    assert code and not lab_page.get_by_text("official Jupyter news").is_visible(), \
        "JupyterLab's news prompt covers the page: the course's lab settings were not applied"


# ---------------------------------------------------------------------------
# widgets, driven by hand


def widget_cell(student_release, lesson: str, needle: str, what: str):
    """The released cell of ``lesson`` that shows ``what`` (its source holds ``needle``), or a skip."""
    if lesson not in LESSONS:
        pytest.skip(f"lesson {lesson} is not under notebooks/ yet: no {what} to check")
    cell = lablib.released_cell(student_release, lesson, needle)
    if cell is None:
        pytest.skip(f"lesson {lesson} has no cell with {needle!r} yet: no {what} to check")
    return cell


def show_widget(lab_page, open_lesson, lesson: str, cell, exercise: dict):
    """Open the lesson, run it up to and including ``cell``; return (panel id, cell index, cell locator).

    ``exercise`` ({cell id: is exercise}, the ``exercise_cells`` fixture's entry for the lesson) names
    the cells that may fail in the student version: a prediction not yet written, its test."""
    panel_id = open_lesson(lesson)
    index = lablib.run_up_to(lab_page, panel_id, cell.id)
    located = lablib.cell_locator(lab_page, panel_id, index)
    located.locator(".jp-OutputArea-output .jupyter-widgets").first.wait_for(timeout=lablib.WIDGET_MS)
    errors = [c for c in lablib.cell_report(lab_page, panel_id)[: index + 1]
              if c["errors"] and not exercise.get(c["id"], False)]
    assert not errors, f"{lesson}: cells before the widget failed:\n{describe(errors)}"
    return panel_id, index, located


def image_src(cell_locator) -> str:
    return cell_locator.locator(".jupyter-widgets img").first.get_attribute("src") or ""


def wait_for_text(page, locator, pattern: str, timeout: int = lablib.WIDGET_MS) -> str:
    """Wait until ``locator``'s text (or value) matches the regex ``pattern``; return it."""
    from playwright.sync_api import expect

    expect(locator).to_have_text(re.compile(pattern), timeout=timeout)
    return locator.inner_text()


def test_producer_consumer_sliders_change_the_live_plot(lab_page, open_lesson, student_release, exercise_cells):
    """Lesson 04: does Start run the demo, and does moving the producers slider to 0 drain the queue in the plot?"""
    lesson = "04-producer-consumer"
    cell = widget_cell(student_release, lesson, "producer_consumer_demo(", "producer/consumer demo")
    panel_id, index, located = show_widget(lab_page, open_lesson, lesson, cell, exercise_cells[lesson])
    sliders = located.locator(".widget-slider")
    assert sliders.count() >= 5, "the demo shows its five sliders"
    status = located.locator(".widget-html code").first
    before = image_src(located)
    assert before, "the demo shows its plot as an image"

    located.get_by_role("button", name="Start").click()
    wait_for_text(lab_page, status, r"^running .*produced [1-9]")
    lab_page.wait_for_function("([el, src]) => el.getAttribute('src') !== src",
                               arg=[located.locator(".jupyter-widgets img").first.element_handle(), before],
                               timeout=lablib.WIDGET_MS)
    running = image_src(located)

    producers = sliders.filter(has=lab_page.locator(".widget-label", has_text=re.compile(r"^producers$")))
    producers.locator(".noUi-handle").focus()
    producers.locator(".noUi-handle").press("Home")  # the keyboard way to the slider's minimum
    wait_for_text(lab_page, producers.locator(".widget-readout"), r"^0$")
    # No producer left, consumers still running: the queue drains, in the numbers and the plot.
    wait_for_text(lab_page, status, r"^running .*in the queue 0/")
    lab_page.wait_for_function("([el, src]) => el.getAttribute('src') !== src",
                               arg=[located.locator(".jupyter-widgets img").first.element_handle(), running],
                               timeout=lablib.WIDGET_MS)
    lablib.screenshot_cell(lab_page, panel_id, index, lablib.SCREENSHOTS / f"{lesson}-widget.png")

    located.get_by_role("button", name="Stop").click()
    wait_for_text(lab_page, status, r"^stopped ")
    assert located.get_by_role("button", name="Start").is_enabled(), "Start is enabled again after Stop"


def test_chat_panel_sends_and_shows_the_reply(lab_page, open_lesson, student_release, exercise_cells):
    """Lesson 08: does the chat panel send what is typed and show the in-kernel bot's reply?"""
    lesson = "08-two-way-chat"
    cell = widget_cell(student_release, lesson, "ChatPanel(", "chat panel")
    panel_id, index, located = show_widget(lab_page, open_lesson, lesson, cell, exercise_cells[lesson])
    wait_for_text(lab_page, located.locator(".chat-status"), r"^connected to ")
    messages = located.locator("textarea")
    replies_before = messages.input_value().count("@you")

    box = located.locator("input[placeholder^='type a message']")
    box.fill("hello from the browser")
    located.get_by_role("button", name="Send").click()
    from playwright.sync_api import expect

    expect(messages).to_have_value(re.compile(r"(^|\n)me: hello from the browser(\n|$)"),
                                   timeout=lablib.WIDGET_MS)
    lab_page.wait_for_function(
        "([el, n]) => (el.value.match(/@you/g) || []).length > n",
        arg=[messages.element_handle(), replies_before], timeout=lablib.WIDGET_MS)
    assert box.input_value() == "", "the input box is cleared after sending"
    lablib.screenshot_cell(lab_page, panel_id, index, lablib.SCREENSHOTS / f"{lesson}-widget.png")


@pytest.mark.parametrize("lesson", ["07-daytime-client-server"])
def test_server_panel_stops_a_server(lesson, lab_page, open_lesson, student_release, exercise_cells):
    """Lessons 06/07: does the server control panel list a running server and stop it with its button?"""
    cell = widget_cell(student_release, lesson, "ServerPanel(", "server control panel")
    panel_id, index, located = show_widget(lab_page, open_lesson, lesson, cell, exercise_cells[lesson])
    rows = located.locator(".widget-hbox").filter(has=lab_page.get_by_role("button", name="Stop", exact=True))
    running = rows.filter(has_text=re.compile(r"\brunning\b"))
    if running.count() == 0:
        pytest.fail(f"{lesson}: the server panel shows no running server to stop: "
                    f"{located.locator('.jp-OutputArea-output').inner_text()[:300]!r}")
    row = running.first
    name = row.locator("b").first.inner_text()
    row.get_by_role("button", name="Stop", exact=True).click()
    stopped = rows.filter(has=lab_page.locator("b", has_text=re.compile(rf"^{re.escape(name)}$")))
    wait_for_text(lab_page, stopped.first, r"\bstopped\b")
    from playwright.sync_api import expect

    expect(stopped.first.get_by_role("button", name="Stop", exact=True)).to_be_disabled(
        timeout=lablib.WIDGET_MS)
    lablib.screenshot_cell(lab_page, panel_id, index, lablib.SCREENSHOTS / f"{lesson}-widget.png")
