"""``course progress``: what a learner has done, per lesson and exercise, in the terminal and as HTML.

Read from the progress file (:mod:`course_lib.selfstudy.progress`) against
the lessons' exercises, so an exercise never checked still has its row. An
exercise is *done* when its latest check passed every test it ran: the
hidden ones included when ``course check --hidden`` was run, otherwise the
visible ones (an exercise whose tests are all hidden is done only by
``--hidden``). The HTML page embeds its plot (exercises done per lesson), so
it is one file a browser opens without a server; it is written through
:mod:`course_lib.selfstudy.workfiles` (no link followed).

Only ``course check`` records checks: a test cell run in JupyterLab is the
learner's own try, not a check, and a hint seen in the panel is counted.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

from course_lib.selfstudy import exercises as exercises_mod
from course_lib.selfstudy import progress
from course_lib.selfstudy.workfiles import Folder

from . import lessons as lessons_mod

__all__ = ["Row", "COLUMNS", "progress_rows", "terminal_report", "figure", "html_report", "write_html"]


@dataclass
class Row:
    lesson: str
    exercise: str       # its label: "Exercise 1 — SafeCounter", "prediction — predict_lost_update"
    points: float
    checked_at: str
    visible: tuple[int, int] | None
    hidden: tuple[int, int] | None
    hints_seen: int
    hints_total: int

    @property
    def done(self) -> bool:
        latest = self.hidden or self.visible
        return latest is not None and latest[1] > 0 and latest[0] == latest[1]


def progress_rows(work: Path, notes: list[str] | None = None) -> list[Row]:
    """One row per exercise of every lesson, filled from ``work``'s progress file."""
    data = progress.load(work, notes)
    rows = []
    for lesson, exercises in _lessons(work):
        recorded = data["lessons"].get(lesson, {})
        for exercise in exercises:
            entry = recorded.get(exercise.name, {})
            rows.append(Row(lesson, exercise.label, exercise.points, entry.get("checked_at", ""),
                            tuple(entry["visible"]) if entry.get("visible") else None,
                            tuple(entry["hidden"]) if entry.get("hidden") else None,
                            min(int(entry.get("hints_seen", 0)), len(exercise.hints)), len(exercise.hints)))
    return rows


def _lessons(work: Path):
    """(lesson, exercises) from the source notebooks, or where there are none (a class hub), from the
    hints files of the lessons in the work folder."""
    from course_lib.selfstudy import released

    if lessons_mod.all_lessons():
        return [(lesson, exercises_mod.lesson_exercises(lesson)) for lesson in lessons_mod.all_lessons()]
    return [released.exercises_for(lesson, work) for lesson in released.released_lessons(work)]


def _ratio(value) -> str:
    return f"{value[0]}/{value[1]}" if value else "-"


def _hidden_allowed() -> bool:
    return os.environ.get("COURSE_HIDDEN_CHECKS", "on").lower() not in ("off", "0", "no")


def _cells(row: Row) -> list[str]:
    hidden = _ratio(row.hidden) if _hidden_allowed() else "off"
    return [row.exercise, "done" if row.done else ("checked" if row.checked_at else "-"),
            _ratio(row.visible), hidden, f"{row.hints_seen}/{row.hints_total}", row.checked_at or "never"]


HEADERS = ["exercise", "status", "visible", "hidden", "hints", "last check"]
#: What each column means, shown under the terminal report and on the page.
COLUMNS = {
    "status": "done = the latest `course check` passed every test it ran (hidden ones too after --hidden); "
              "checked = checked, something still fails; - = no check of your own code yet "
              "(only `course check` records checks: running a test cell in JupyterLab does not)",
    "visible": "visible tests passed / run by the latest `course check`",
    "hidden": "all tests passed / run by the latest `course check --hidden` (off: your course turned it off)",
    "hints": "hints seen / hints written for the exercise (`course hint` or the hint panel)",
    "last check": "when `course check` last ran your code for it",
}


def terminal_report(rows: list[Row]) -> str:
    widths = [max(len(h), *(len(_cells(r)[i]) for r in rows)) for i, h in enumerate(HEADERS)] if rows else []
    lines = []
    for lesson in dict.fromkeys(r.lesson for r in rows):
        mine = [r for r in rows if r.lesson == lesson]
        lines.append(f"{lesson}: {sum(r.done for r in mine)} of {len(mine)} exercises done")
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)))
        for r in mine:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(_cells(r), widths)))
    done = sum(r.done for r in rows)
    lines.append(f"{done} of {len(rows)} exercises done; {sum(r.hints_seen for r in rows)} hints used.")
    lines.append("Columns: " + "; ".join(f"{name}: {meaning}" for name, meaning in COLUMNS.items()) + ".")
    return "\n".join(lines)


def figure(rows: list[Row]):
    """The plot of exercises done per lesson (a matplotlib Figure; the legend sits above the bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lessons = list(dict.fromkeys(r.lesson for r in rows))
    done = [sum(r.done for r in rows if r.lesson == l) for l in lessons]
    total = [sum(1 for r in rows if r.lesson == l) for l in lessons]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    labels = [l[:2] for l in lessons]
    ax.bar(labels, total, color="#e5e7eb", label="exercises")
    ax.bar(labels, done, color="#1a7f37", label="done")
    ax.set_xlabel("lesson")
    ax.set_ylabel("exercises")
    ax.set_title("Exercises done per lesson", pad=24)
    ax.set_ylim(0, max(total, default=1) + 0.5)
    # Above the plot, never over a bar, whatever the counts.
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False, borderaxespad=0.2)
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def _plot(rows: list[Row]) -> str:
    import matplotlib.pyplot as plt

    fig = figure(rows)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def html_report(rows: list[Row], notes: list[str] = ()) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Threads &amp; Sockets — progress</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse;margin-bottom:1.5em}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;"
             "text-align:left}.done{color:#1a7f37;font-weight:600}</style></head><body>",
             "<h1>Your progress</h1>",
             f"<p>{sum(r.done for r in rows)} of {len(rows)} exercises done; "
             f"{sum(r.hints_seen for r in rows)} hints used.</p>",
             f'<img alt="exercises done per lesson" src="data:image/png;base64,{_plot(rows)}">']
    parts += [f"<p><i>{html.escape(n)}</i></p>" for n in notes]
    parts.append("<dl>" + "".join(f"<dt><b>{html.escape(name)}</b></dt><dd>{html.escape(meaning)}</dd>"
                                  for name, meaning in COLUMNS.items()) + "</dl>")
    for lesson in dict.fromkeys(r.lesson for r in rows):
        mine = [r for r in rows if r.lesson == lesson]
        parts.append(f"<h2>{html.escape(lesson)} — {sum(r.done for r in mine)} of {len(mine)} done</h2><table>")
        parts.append("<tr>" + "".join(f"<th>{h}</th>" for h in HEADERS) + "</tr>")
        for r in mine:
            cells = _cells(r)
            parts.append("<tr>" + "".join(
                f'<td class="{"done" if c == "done" else ""}">{html.escape(c)}</td>' for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_html(rows: list[Row], target: Path, notes: list[str] = ()) -> Path:
    """Write the page to ``target`` atomically; its folder is opened link-free (UnsafePath otherwise)."""
    target = Path(target)
    with Folder(target.parent, create=True) as folder:
        return folder.replace(target.name, html_report(rows, notes))
