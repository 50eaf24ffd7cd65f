"""Does the hint panel give the staged hints one at a time, recorded like `course hint`?"""

import json

from course_lib.selfstudy import exercises, hints, progress
from course_lib.widgets import hint_panel

LESSON = "03-race-conditions-and-locks"


def test_the_panel_shows_one_more_hint_per_click_and_says_when_none_is_left(tmp_path):
    work = tmp_path / "work"
    (work / LESSON).mkdir(parents=True)
    panel = hint_panel("03", work=work / LESSON)  # from inside a lesson folder: the folder above
    assert panel.work == work.resolve()
    first = panel.choice.value
    assert panel.choice.label == "prediction — predict_lost_update", "labelled as the notebook numbers them"
    assert "Exercise 1 — SafeCounter" in [label for label, _ in panel.choice.options]
    assert panel.button.layout.width == "auto", "the button is as wide as its label"
    total = len(exercises.find_exercise(LESSON, first).hints)
    assert total >= 2 and "0 of" in panel.status.value and panel.shown.value == ""
    for number in range(1, total + 1):
        panel.button.click()
        assert f"Hint {number} of {total}" in panel.shown.value
        assert f"{number} of {total} hints seen" in panel.status.value
    assert "No more hints" in panel.shown.value
    assert panel.next_hint().exhausted
    saved = json.loads((work / progress.FILE_NAME).read_text())
    assert saved["lessons"][LESSON][first]["hints_seen"] == total


def test_a_hint_seen_in_the_panel_is_not_new_in_the_terminal(tmp_path):
    panel = hint_panel(LESSON, work=tmp_path)
    panel.choice.value = panel.choice.options[-1][1]
    panel.button.click()
    nxt = hints.next_hint(LESSON, panel.choice.value, tmp_path)
    assert nxt.number == 2
    panel._redraw()
    assert "Hint 2 of" in panel.shown.value
