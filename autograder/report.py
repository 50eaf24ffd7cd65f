"""The class report: one self-contained HTML page telling the instructor where the class struggled.

``write_report(results, out)`` reads the per-submission results the grading
workers write (``OUT/results/<student>/<lesson>.json``) and writes
``out/report.html``: per lesson the score distribution and the mean share of
points earned per test cell (PNG plots embedded as base64, so the page can
be mailed or archived as one file), the tests that failed most with their
most common messages and who failed them, a student × test matrix (each
cell coloured by its result and linking to that student's feedback page;
sorted by student, total or any test through links in its header), the
submissions that timed out, crashed or could not be graded with why, where
the grading time went, how to grade again, and every submission with the
mode it was graded in (sandbox or not) and its lateness.

The page has no script, so the matrix sorts without one: each order is a
copy of the table, and the header's links show one copy through CSS's
``:target`` (a class of 30 and 10 tests costs a few kB per order).

Trade-offs: plots are drawn with matplotlib's Agg canvas directly (no
pyplot), so writing a report never changes the caller's backend or leaks
figures; messages and reasons come from student code, so every piece of text
is escaped and the page has no script. Rows may lack keys (an error row has
no tests or timing) and numbers may be strings (rows read back from
grades.csv): both are tolerated.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "PROBLEM_STATUSES", "INTEGRITY_STATUSES", "TIMING_STEPS", "TOP_FAILED", "TOP_MESSAGES",
    "MESSAGE_CHARS", "ADDRESS", "write_report", "render"
]

PROBLEM_STATUSES = ("timeout", "timeout-partial", "kernel_died", "error")
INTEGRITY_STATUSES = ("tampered", "rejected")  # listed first: rows an instructor must read
TIMING_STEPS = ("prepare", "autograde", "feedback", "bookkeeping")
TOP_FAILED = 10          # failed tests listed per lesson
TOP_MESSAGES = 3         # messages shown per failed test
MESSAGE_CHARS = 300      # a message is cut to this length on the page
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")  # object addresses differ per run: group messages without them


def write_report(results: list[dict], out: Path) -> Path:
    """Write ``out/report.html`` for ``results`` (one dict per submission); return its path."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from .results import write_atomic
    from .sanitize import sanitize_page

    try:
        submissions = json.loads((out / "batch.json").read_text(encoding="utf-8")).get("submissions")
    except (OSError, ValueError, AttributeError):
        submissions = None
    page = sanitize_page(render(results, out=out, submissions=submissions))
    path = out / "report.html"
    write_atomic(path, page)
    return path


def render(results: list[dict], *, out: Path | None = None, submissions: str | None = None) -> str:
    """The report as one HTML string (``out`` and ``submissions`` complete the regrade commands)."""
    rows = [_clean(r) for r in results]
    lessons = sorted({r["lesson"] for r in rows if r["lesson"]})
    parts = [_HEAD, f"<h1>Class report</h1>\n<p>{_overview(rows)}</p>", _integrity_section(rows)]
    if not rows:
        parts.append("<p>No results yet: nothing was graded.</p>")
    parts.append(_lessons_table(rows, lessons))
    for lesson in lessons:
        parts.append(_lesson_section(lesson, [r for r in rows if r["lesson"] == lesson]))
    parts.append(_problems_section(rows))
    parts.append(_regrade_section(rows, out, submissions))
    parts.append(_timing_section(rows))
    parts.append(_all_rows_section(rows))
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


# --- data ------------------------------------------------------------------

def _num(value, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _clean(result: dict) -> dict:
    """A result with every key the report reads, numbers as floats."""
    tests = []
    for t in result.get("tests") or []:
        tests.append({"name": str(t.get("name", "?")), "notebook": str(t.get("notebook", "")),
                      "score": _num(t.get("score")), "max_score": _num(t.get("max_score")),
                      "message": str(t.get("message") or "")})
    timing = {k: _num(v, None) for k, v in (result.get("timing") or {}).items()}
    return {
        "student_id": str(result.get("student_id", "?")), "lesson": str(result.get("lesson") or ""),
        "score": _num(result.get("score")), "max_score": _num(result.get("max_score")),
        "status": str(result.get("status") or "error"), "reason": str(result.get("reason") or ""),
        "mode": str(result.get("mode") or "unknown"), "tests": tests,
        "incidents": [i for i in result.get("incidents") or [] if isinstance(i, dict)],
        "timing": {k: v for k, v in timing.items() if v is not None},
        "late_by": str(result.get("late_by") or ""), "penalty": _num(result.get("penalty")),
        "submitted_at": str(result.get("submitted_at") or ""),
        "seconds": _num(result.get("seconds"), None),
        "withheld_score": None if result.get("withheld_score") is None else _num(result.get("withheld_score")),
    }


def _scored(rows: list[dict]) -> list[dict]:
    """Rows with a score to count: submitted and with points available."""
    return [r for r in rows if r["status"] != "missing" and r["max_score"] > 0]


def _fraction(score: float, max_score: float) -> float:
    return min(max(score / max_score, 0.0), 1.0) if max_score > 0 else 0.0


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


# --- sections --------------------------------------------------------------

def _overview(rows: list[dict]) -> str:
    statuses = Counter(r["status"] for r in rows)
    modes = Counter(r["mode"] for r in rows if r["status"] != "missing")
    text = (f"{len(rows)} result(s) from {len({r['student_id'] for r in rows})} student(s): "
            + (", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none"))
    if modes:
        text += ". Graded in mode " + ", ".join(f"{m} ({n})" for m, n in sorted(modes.items()))
    if "no-sandbox" in modes:
        text += ". Rows marked no-sandbox ran student code without the sandbox"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _e(text) + f". Written {stamp}."


def _lessons_table(rows: list[dict], lessons: list[str]) -> str:
    if not lessons:
        return ""
    body = []
    for lesson in lessons:
        mine = [r for r in rows if r["lesson"] == lesson]
        scored = _scored(mine)
        mean = _mean(r["score"] for r in scored)
        top = max((r["max_score"] for r in scored), default=0.0)
        counts = Counter(r["status"] for r in mine)
        body.append([f'<a href="#{_anchor(lesson)}">{_e(lesson)}</a>', str(len(mine)),
                     f"{mean:.2f} / {top:g}" if mean is not None else "—",
                     str(counts.get("graded", 0)),
                     str(sum(counts.get(s, 0) for s in PROBLEM_STATUSES)), str(counts.get("missing", 0))])
    return "<h2>Lessons</h2>\n" + _table(
        ["lesson", "rows", "mean score", "graded", "timed out / crashed / error", "missing"], body, raw=True)


def _lesson_section(lesson: str, rows: list[dict]) -> str:
    parts = [f'<h2 id="{_anchor(lesson)}">{_e(lesson)}</h2>']
    scored = _scored(rows)
    if not scored:
        parts.append("<p>No submission of this lesson has a score (see the problems below).</p>")
        return "\n".join(parts)
    fractions = [_fraction(r["score"], r["max_score"]) for r in scored]
    parts.append(f"<h3>Score distribution ({len(scored)} submission(s))</h3>")
    parts.append(_img(_histogram(fractions, lesson), f"score distribution for {lesson}"))

    per_test: dict[str, list[tuple[float, dict]]] = defaultdict(list)  # first-seen order = notebook order
    for r in scored:
        for t in r["tests"]:
            if t["max_score"] > 0:
                per_test[t["name"]].append((_fraction(t["score"], t["max_score"]), {**t, "student_id": r["student_id"]}))
    if per_test:
        means = {name: _mean(f for f, _ in items) for name, items in per_test.items()}
        parts.append("<h3>Share of points earned per test cell</h3>")
        parts.append(_img(_bars(means, lesson), f"mean share of points per test in {lesson}"))
        parts.append(_failed_table(per_test))
    parts.append(_matrix(lesson, rows))
    return "\n".join(parts)


def _failed_table(per_test: dict[str, list[tuple[float, dict]]]) -> str:
    failing = []
    for name, items in per_test.items():
        failed = [t for f, t in items if f < 1.0]
        if failed:
            failing.append((len(failed), len(items), name, failed))
    if not failing:
        return "<p>Every test cell passed in every graded submission.</p>"
    failing.sort(key=lambda x: (-x[0] / x[1], -x[0], x[2]))
    body = []
    for n_failed, n_all, name, failed in failing[:TOP_FAILED]:
        messages = Counter(ADDRESS.sub("0x…", t["message"].strip()) or "(no error: not run, or partial points)"
                           for t in failed)
        shown = "<br>".join(f"{n}× <code>{_e(_cut(m))}</code>" for m, n in messages.most_common(TOP_MESSAGES))
        who = ", ".join(sorted(_e(t["student_id"]) for t in failed))
        body.append([f"<code>{_e(name)}</code>", f"{n_failed} of {n_all} ({n_failed / n_all:.0%})", shown, who])
    title = "<h3>Tests failed most</h3>"
    more = f"<p>… and {len(failing) - TOP_FAILED} more failing test(s).</p>" if len(failing) > TOP_FAILED else ""
    return title + "\n" + _table(["test", "failed", "most common messages", "who"], body, raw=True,
                                 css="failed") + more


def _integrity_section(rows: list[dict]) -> str:
    """Tampered rows (points withheld) and rejected solution cells, at the top of the page."""
    flagged = sorted((r for r in rows if r["status"] in INTEGRITY_STATUSES),
                     key=lambda r: (INTEGRITY_STATUSES.index(r["status"]), r["lesson"], r["student_id"]))
    head = "<h2>Read these first: tampering and rejected solutions</h2>"
    if not flagged:
        return head + "\n<p>None: no submission altered the grader or broke the solution-cell policy.</p>"
    body = []
    for r in flagged:
        withheld = r.get("withheld_score")
        score = f"{r['score']:g} / {r['max_score']:g}" + (
            f" (withheld: {_num(withheld):g})" if withheld is not None else "")
        body.append([_e(r["student_id"]), _e(r["lesson"]), f"<b>{_e(r['status'])}</b>",
                     _e(_cut(r["reason"])) or "—", score])
    return head + "\n" + _table(["student", "lesson", "status", "why", "score"], body, raw=True, css="problems")


def _problems_section(rows: list[dict]) -> str:
    problems = sorted((r for r in rows if r["status"] in PROBLEM_STATUSES),
                      key=lambda r: (r["lesson"], r["status"], r["student_id"]))
    head = "<h2>Submissions that timed out, crashed or could not be graded</h2>"
    if not problems:
        return head + "\n<p>None.</p>"
    body = []
    for r in problems:
        incidents = "<br>".join(
            f"{_e(i.get('kind', '?'))} in <code>{_e(i.get('cell', '?'))}</code>: {_e(_cut(str(i.get('message', ''))))}"
            for i in r["incidents"] if i.get("kind") != "output_capped") or ""
        body.append([_e(r["student_id"]), _e(r["lesson"]), f"<b>{_e(r['status'])}</b>", _e(r["mode"]),
                     _e(_cut(r["reason"])) or "—", incidents or "—", f"{r['score']:g} / {r['max_score']:g}"])
    return head + "\n" + _table(["student", "lesson", "status", "mode", "why", "incidents", "score"],
                                body, raw=True, css="problems")


def _timing_section(rows: list[dict]) -> str:
    timed = [r for r in rows if r["timing"]]
    head = "<h2>Where the time went</h2>"
    if not timed:
        return head + "\n<p>No timing recorded.</p>"
    totals = [r["seconds"] for r in timed if r["seconds"] is not None]
    mean_total = _mean(totals)
    body = []
    steps = list(TIMING_STEPS) + sorted({k for r in timed for k in r["timing"]} - set(TIMING_STEPS))
    accounted = 0.0
    for step in steps:
        values = [r["timing"][step] for r in timed if step in r["timing"]]
        mean = _mean(values)
        if mean is None:
            continue
        accounted += mean
        share = f"{mean / mean_total:.0%}" if mean_total else "—"
        body.append([step, f"{mean:.2f}", share, str(len(values))])
    if mean_total:
        other = max(mean_total - accounted, 0.0)
        body.append(["outside these steps (hand-off to the worker, restarts)", f"{other:.2f}", f"{other / mean_total:.0%}", str(len(totals))])
        body.append(["<b>total per submission</b>", f"<b>{mean_total:.2f}</b>", "100%", str(len(totals))])
    note = ("<p>Mean seconds per submission: the steps as the grading worker timed them, the total as "
            "the grading command saw it. <i>autograde</i> includes the kernel start and running the "
            "notebook.</p>")
    return head + "\n" + note + "\n" + _table(["step", "mean s", "share", "submissions"], body, raw=True)


def _all_rows_section(rows: list[dict]) -> str:
    if not rows:
        return ""
    body = [[_e(r["student_id"]), _e(r["lesson"]), f"{r['score']:g}", f"{r['max_score']:g}", _e(r["status"]),
             _e(r["mode"]), _e(r["late_by"]), f"{r['penalty']:g}" if r["penalty"] else "",
             "" if r["seconds"] is None else f"{r['seconds']:.1f}"]
            for r in sorted(rows, key=lambda r: (r["student_id"], r["lesson"]))]
    return ("<h2>Every submission</h2>\n<details><summary>"
            f"{len(rows)} row(s)</summary>\n"
            + _table(["student", "lesson", "score", "max", "status", "mode", "late by", "penalty", "seconds"],
                     body, raw=True)
            + "</details>")


def _feedback_href(row: dict, notebook: str) -> str:
    from urllib.parse import quote

    return "/".join(quote(part, safe="") for part in ("feedback", row["student_id"], row["lesson"], notebook + ".html"))


def _matrix(lesson: str, rows: list[dict]) -> str:
    """Students × tests, each cell the points and a link to that student's feedback; one sorted copy per order."""
    submitted = [r for r in rows if r["status"] != "missing"]
    names: list[str] = []
    for r in submitted:
        names += [t["name"] for t in r["tests"] if t["name"] not in names]
    if not submitted or not names:
        return ""
    notebook = next((t["notebook"] for r in submitted for t in r["tests"] if t["notebook"]), lesson)
    points = {(r["student_id"], t["name"]): t for r in submitted for t in r["tests"]}
    key = _anchor(lesson)
    orders = [("student", "student", lambda r: r["student_id"]),
              ("total", "total", lambda r: (r["score"], r["student_id"]))]
    orders += [(f"t{i}", name, (lambda name: lambda r: (_fraction(points[(r["student_id"], name)]["score"],
                                                                   points[(r["student_id"], name)]["max_score"])
                                                         if (r["student_id"], name) in points else -1.0,
                                                         r["student_id"]))(name))
               for i, name in enumerate(names)]
    views = []
    for n, (tag, _, order) in enumerate(orders):
        head = [f'<th><a href="#m-{key}-student">student</a></th>', f'<th><a href="#m-{key}-total">total</a></th>']
        head += [f'<th><a href="#m-{key}-t{i}" title="sort by this test, failures first">{_e(name)}</a></th>'
                 for i, name in enumerate(names)]
        lines = [f'<table class="matrix-table">', "<tr>" + "".join(head) + "</tr>"]
        for r in sorted(submitted, key=order):
            href = _feedback_href(r, notebook)
            cells = [f'<td><a href="{href}">{_e(r["student_id"])}</a></td>',
                     f'<td class="{_css_result(r["score"], r["max_score"])}"><a href="{href}">'
                     f'{r["score"]:g} / {r["max_score"]:g}</a></td>']
            if not r["tests"]:
                cells.append(f'<td class="none" colspan="{len(names)}"><a href="{href}">{_e(r["status"])}: '
                             f'{_e(_cut(r["reason"]))}</a></td>')
            for name in names if r["tests"] else []:
                t = points.get((r["student_id"], name))
                if t is None:
                    cells.append('<td class="none">—</td>')
                    continue
                title = _e(_cut(t["message"])) if t["message"] else "passed"
                cells.append(f'<td class="{_css_result(t["score"], t["max_score"])}" title="{title}">'
                             f'<a href="{href}">{t["score"]:g} / {t["max_score"]:g}</a></td>')
            lines.append("<tr>" + "".join(cells) + "</tr>")
        lines.append("</table>")
        views.append(f'<div class="view{" default" if n == 0 else ""}" id="m-{key}-{tag}">' + "\n".join(lines)
                     + "</div>")
    return ("<h3>Who failed what</h3>\n<p>Each cell is a test's points and links to that student's feedback; "
            "red failed, amber partly passed, green passed. Click a column's name to sort by it.</p>\n"
            f'<div class="matrix">' + "\n".join(views) + "</div>")


def _css_result(score: float, max_score: float) -> str:
    if max_score <= 0:
        return "none"
    return "pass" if score >= max_score else "fail" if score <= 0 else "part"


def _regrade_section(rows: list[dict], out: Path | None, submissions: str | None) -> str:
    """The commands that grade again: everything, one lesson, one student."""
    import shlex

    subs = shlex.quote(submissions) if submissions else "SUBMISSIONS"
    where = shlex.quote(str(out)) if out is not None else "OUT"
    base = f"course grade {subs} --out {where}"
    lesson = next((r["lesson"] for r in rows if r["lesson"]), "LESSON")
    student = next((r["student_id"] for r in rows if r["status"] not in ("graded", "missing")),
                   next((r["student_id"] for r in rows), "STUDENT"))
    items = [
        ("a new or changed hand-in (the rest unchanged and skipped)", base),
        ("everything, after you fixed a test or the grader", f"{base} --force"),
        ("one lesson", f"{base} --lesson {shlex.quote(lesson)} --force"),
        ("one student's lesson", f"{base} --lesson {shlex.quote(lesson)} --student {shlex.quote(student)} --force"),
        ("only grades.csv, tests.csv and this page, from results/", f"course report {where}"),
    ]
    return ("<h2>Grading again</h2>\n<ul>" + "".join(f"<li>{_e(what)}: <code>{_e(cmd)}</code></li>"
                                                      for what, cmd in items) + "</ul>")


# --- plots -----------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _histogram(fractions: list[float], lesson: str) -> bytes:
    fig = _figure(6, 2.8)
    ax = fig.add_subplot()
    ax.hist([100 * f for f in fractions], bins=[i * 10 for i in range(11)], color="#4477aa", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score (% of the points)")
    ax.set_ylabel("submissions")
    ax.set_title(_plain(lesson))
    ax.yaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


def _bars(means: dict[str, float], lesson: str) -> bytes:
    names = list(means)
    fig = _figure(7, 0.7 + 0.28 * len(names))
    ax = fig.add_subplot()
    values = [100 * means[n] for n in names]
    positions = list(range(len(names)))[::-1]  # first test on top
    colors = ["#cc6677" if v < 50 else "#ddcc77" if v < 80 else "#117733" for v in values]
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, [_plain(n) for n in names], fontsize=8)
    for y, v in zip(positions, values):
        ax.text(min(v + 1, 88), y, f"{v:.0f}%", va="center", fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("mean share of the test's points earned (%)")
    ax.set_title(_plain(lesson))
    return _png(fig)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


# --- html ------------------------------------------------------------------

def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "…"


def _plain(text: str) -> str:
    """A label matplotlib shows as written ($ would start mathtext)."""
    return text.replace("$", r"\$")


def _anchor(lesson: str) -> str:
    return "lesson-" + re.sub(r"[^A-Za-z0-9-]", "-", lesson)


def _table(header: list[str], body: list[list[str]], *, raw: bool = False, css: str = "") -> str:
    """A table; cells are escaped unless ``raw`` (the caller escaped them)."""
    cell = (lambda c: c) if raw else _e
    lines = [f'<table class="{css}">' if css else "<table>",
             "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in body]
    lines.append("</table>")
    return "\n".join(lines)


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Class report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td code { white-space: pre-wrap; word-break: break-word; }
table.failed td:first-child code { white-space: nowrap; }
img { max-width: 100%; }
.matrix > .view { display: none; overflow-x: auto; }
.matrix > .view.default { display: block; }
.matrix:has(> .view:target) > .view.default { display: none; }
.matrix > .view:target { display: block; }
table.matrix-table td { text-align: center; white-space: nowrap; }
table.matrix-table td a { color: inherit; text-decoration: none; display: block; }
td.pass { background: #cfe8cf; } td.fail { background: #f2b8b8; } td.part { background: #f7e3a1; }
td.none { background: #eee; text-align: left; }
</style></head><body>"""
