"""The hint panel of a lesson's Exercises section: pick an exercise, get its next hint.

The same staged hints as ``course hint`` (:mod:`course_lib.selfstudy.hints`),
recorded in the same progress file, so a hint seen here is not shown again
as new in the terminal. The panel shows every hint already seen for the
chosen exercise, the newest last, and says when none is left.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import ipywidgets as widgets

from course_lib.selfstudy import hints as _hints
from course_lib.selfstudy import progress as _progress
from course_lib.selfstudy import workfiles as _workfiles
from course_lib.selfstudy import released as _released

__all__ = ["HintPanel", "hint_panel"]


def _markdown(text: str) -> str:
    """Hints are short markdown: paragraphs, `code` and fenced blocks are enough here."""
    try:
        import mistune  # nbconvert's markdown renderer; the hints are the course's own text
    except ImportError:  # pragma: no cover
        return f"<pre>{html.escape(text)}</pre>"
    return mistune.html(text)


class HintPanel(widgets.VBox):
    """A drop-down of the lesson's exercises, a "Show the next hint" button, the hints seen.

    Methods for the caller:
        HintPanel(lesson, work=None)   display it as the cell's result
        next_hint()                    what the button does: show (and record) the next hint
    """

    def __init__(self, lesson: str, *, work: Path | str | None = None):
        self.note = ""
        try:
            self.work = _progress.work_folder(work or os.getcwd())
        except _workfiles.UnsafePath:  # a link in the folder's path: nothing is written through it
            self.work = Path(tempfile.mkdtemp(prefix="course-hints-"))
            self.note = " (not saved: your work folder's path has a symbolic link in it)"
        except ValueError:  # the instructor's source notebook: hints still work, counted for this panel only
            self.work = Path(tempfile.mkdtemp(prefix="course-hints-"))
            self.note = " (not saved: this is the course's source notebook)"
        try:  # the source notebook where this machine has it, else the lesson's released hints file
            self.lesson, found = _released.hint_exercises_for(lesson, self.work)
            self.off = ""
        except LookupError as exc:  # hints turned off for this class, or the lesson not fetched here
            self.lesson, found, self.off = str(lesson), [], str(exc).strip("'\"")
        self._exercises = {e.name: e for e in found}  # read once
        # Labelled as the notebook numbers them ("Exercise 1 — SafeCounter"); the value is the name.
        self.choice = widgets.Dropdown(options=[(e.label, e.name) for e in self._exercises.values()],
                                       description="exercise", layout=widgets.Layout(width="auto"))
        self.button = widgets.Button(description="Show the next hint", icon="lightbulb-o",
                                     button_style="info", disabled=bool(self.off),
                                     layout=widgets.Layout(width="auto", min_width="13em"))
        self.status = widgets.HTML()
        self.shown = widgets.HTML()
        self.button.on_click(lambda _: self.next_hint())
        self.choice.observe(lambda _: self._redraw(), names="value")
        super().__init__([widgets.HBox([self.choice, self.button, self.status]), self.shown])
        self.add_class("course-hint-panel")
        self._redraw()

    def next_hint(self) -> _hints.Hint:
        hint = _hints.next_hint(self.lesson, self.choice.value, self.work)
        self._redraw(exhausted=hint.exhausted)
        return hint

    def _redraw(self, exhausted: bool = False) -> None:
        if self.off:
            self.status.value = f"<span>{html.escape(self.off)}</span>"
            return
        exercise = self._exercises[self.choice.value]
        seen = exercise.hints[: _progress.hints_seen(self.work, self.lesson, exercise.name)]
        self.status.value = f"<span>{len(seen)} of {len(exercise.hints)} hints seen{self.note}</span>"
        parts = [f'<div class="course-hint"><b>Hint {i} of {len(exercise.hints)}</b>{_markdown(text)}</div>'
                 for i, text in enumerate(seen, 1)]
        if exhausted or (seen and len(seen) == len(exercise.hints)):
            parts.append("<p><i>No more hints for this exercise. Check your notebook with "
                         "<code>course check</code>; once you have, <code>course solutions "
                         f"{self.lesson[:2]} --out DIR</code> explains the reference solution.</i></p>")
        self.shown.value = "".join(parts)


def hint_panel(lesson: str, *, work: Path | str | None = None) -> HintPanel:
    """A :class:`HintPanel` for ``lesson`` ('03' or its full id), to display in the notebook."""
    return HintPanel(lesson, work=work)
