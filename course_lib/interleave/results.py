"""What a run or a search gives back: steps, traces, deadlocks, explorations, and their rendering."""

from __future__ import annotations

import ast
import html
import linecache
from dataclasses import dataclass, field
from typing import Any, Sequence

TRACE_ROWS = 30      # a longer run is shown by its start and its end
CODE_WIDTH = 44      # characters of a line of code in the text table
VALUE_WIDTH = 24     # characters of one value's repr in the text table

# ----------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------
@dataclass
class Step:
    """One step of a run: which thread ran what, and the values after it."""

    index: int
    thread: str
    line: int | None
    source: str
    op: str
    event: str  # "ran", "blocked", "timed out", "finished", "raised", "started"
    detail: str
    shared: dict
    locals: dict


@dataclass
class Deadlock:
    """Every unfinished thread is blocked; ``cycle`` is the wait-for cycle, if any.

    Each cycle entry is ``(thread, holds, waits_for)``: the thread holds lock
    ``holds`` and waits for ``waits_for``, which the next entry's thread holds.
    """

    cycle: list[tuple[str, str, str]]
    blocked: dict[str, str]  # every blocked thread -> what it waits for

    def __str__(self) -> str:
        if self.cycle:
            parts = [f"{t} holds {h} and waits for {w}" for t, h, w in self.cycle]
            return "deadlock: " + "; ".join(parts) + " (a cycle)"
        waits = ", ".join(f"{t} waits for {w}" for t, w in self.blocked.items())
        return f"every thread is blocked and nobody can wake them: {waits}"

    def plot(self, ax=None, width: float = 5.0, height: float = 4.0):
        """Draw the cycle as a resource-allocation graph (threads as boxes, locks as circles; its
        wait-for graph has the threads only, T1 -> T2 when T1 waits for a lock T2 holds);
        returns the Figure."""
        import math

        from course_lib.timeline import new_figure

        if ax is None:
            fig = new_figure(width, height)
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        nodes: list[tuple[str, str]] = []  # (kind, name) around a circle
        for thread, holds, _waits in self.cycle:
            nodes.append(("thread", thread))
            nodes.append(("lock", holds))
        if not nodes:  # no cycle: list the blocked threads
            ax.text(0.5, 0.5, str(self), ha="center", va="center", wrap=True)
            ax.axis("off")
            return fig
        # order: thread_i, then the lock it waits for (held by thread_i+1)
        ordered = []
        for index, (thread, _holds, waits) in enumerate(self.cycle):
            ordered.append(("thread", thread))
            ordered.append(("lock", waits))
        n = len(ordered)
        pos = {}
        for i, node in enumerate(ordered):
            angle = math.pi / 2 - 2 * math.pi * i / n
            pos[i] = (math.cos(angle), math.sin(angle))
        for i, (kind, name) in enumerate(ordered):
            x, y = pos[i]
            style = dict(boxstyle="round,pad=0.4", fc="#c6dbef") if kind == "thread" else \
                dict(boxstyle="circle,pad=0.3", fc="#fdd0a2")
            ax.text(x, y, name, ha="center", va="center", fontsize=10, bbox=style, zorder=3)
        for i, (kind, _name) in enumerate(ordered):
            j = (i + 1) % n
            label = "waits for" if kind == "thread" else "held by"
            colour = "#cb181d" if kind == "thread" else "#238b45"
            (x0, y0), (x1, y1) = pos[i], pos[j]
            ax.annotate("", xy=(x0 + 0.78 * (x1 - x0), y0 + 0.78 * (y1 - y0)),
                        xytext=(x0 + 0.22 * (x1 - x0), y0 + 0.22 * (y1 - y0)),
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=2), zorder=2)
            ax.text((x0 + x1) / 2 * 1.12, (y0 + y1) / 2 * 1.12, label, color=colour,
                    ha="center", va="center", fontsize=9)
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title("resource-allocation graph: a cycle")
        return fig


@dataclass
class Trace:
    """What one controlled run did, step by step, and how it ended.

    ``outcome`` is one of ``"finished"``, ``"invariant"`` (finished, but the
    invariant failed), ``"error"`` (a worker raised), ``"deadlock"``,
    ``"step_limit"``, ``"time_limit"``, ``"stuck"`` (a step did not come back:
    the thread is blocked outside the scheduler).
    """

    threads: list[str]
    steps: list[Step]
    schedule: tuple[int, ...]
    outcome: str
    message: str
    deadlock: Deadlock | None = None
    errors: dict = field(default_factory=dict)
    state: Any = None
    elapsed: float = 0.0
    left_behind: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome != "finished"

    def table(self, only_switches: bool = False) -> list[dict]:
        """The steps as a list of dicts (one per step), e.g. for pandas."""
        rows = []
        previous = None
        for step in self.steps:
            if only_switches and step.thread == previous and step.event == "ran":
                continue
            previous = step.thread
            rows.append({"step": step.index, "thread": step.thread, "line": step.line,
                         "code": step.source, "op": step.op, "event": step.event,
                         **step.shared, **{f"{step.thread}.{k}": v for k, v in step.locals.items()}})
        return rows

    def rows(self) -> list[tuple[str, Step]]:
        """The steps for reading: a run of steps of one thread on one line is one row ("8-10")."""
        rows: list[tuple[str, Step]] = []
        first = None
        for i, s in enumerate(self.steps):
            first = s if first is None else first
            after = self.steps[i + 1] if i + 1 < len(self.steps) else None
            same = (after is not None and after.thread == s.thread and after.line == s.line
                    and after.source == s.source and after.event == "ran" and s.event == "ran")
            if not same:
                label = str(s.index) if first.index == s.index else f"{first.index}-{s.index}"
                rows.append((label, s))
                first = None
        return rows

    def __str__(self) -> str:
        rows = self.rows()
        code_width = min(CODE_WIDTH, max([len(s.source) for _, s in rows] + [4]))

        def cut(text: str, width: int) -> str:
            return text if len(text) <= width else text[: width - 1] + "…"

        def value(v) -> str:
            return cut(repr(v), VALUE_WIDTH)

        lines = [f"{'step':>7}  {'thread':<10} {'line':>4}  {'code':<{code_width}}  values after the step"]
        shown = rows if len(rows) <= TRACE_ROWS else rows[:8] + [None] + rows[-(TRACE_ROWS - 9):]
        for row in shown:
            if row is None:
                lines.append(f"{'…':>7}  ({len(rows) - TRACE_ROWS + 1} rows left out: the whole run is in "
                             "the table this trace renders in the notebook)")
                continue
            label, s = row
            values = ", ".join(f"{k}={value(v)}" for k, v in {**s.shared, **s.locals}.items())
            note = f" [{s.event}{': ' + s.detail if s.detail else ''}]" if s.event != "ran" else ""
            lines.append(f"{label:>7}  {cut(s.thread, 10):<10} {s.line if s.line else '':>4}  "
                         f"{cut(s.source, code_width):<{code_width}}  {values}{note}".rstrip())
        lines.append(f"outcome: {self.outcome} — {self.message}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        palette = ["#deebf7", "#fee6ce", "#e5f5e0", "#efedf5", "#fde0ef", "#f0f0f0"]
        colour = {name: palette[i % len(palette)] for i, name in enumerate(self.threads)}
        shared_keys: list[str] = []
        for s in self.steps:
            for key in s.shared:
                if key not in shared_keys:
                    shared_keys.append(key)
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in
                       ["step", "thread", "line", "code", "op", *shared_keys, "locals after the step", "note"])
        body = []
        for s in self.steps:
            cells = [str(s.index), html.escape(s.thread), str(s.line or ""),
                     f"<code>{html.escape(s.source)}</code>", html.escape(s.op)]
            cells += [html.escape(repr(s.shared.get(k, ""))) for k in shared_keys]
            cells.append(html.escape(", ".join(f"{k}={v!r}" for k, v in s.locals.items())))
            note = s.event if s.event != "ran" else ""
            if s.detail:
                note += f": {s.detail}"
            cells.append(html.escape(note))
            body.append(f'<tr style="background:{colour.get(s.thread, "#fff")}">' +
                        "".join(f'<td style="text-align:left">{c}</td>' for c in cells) + "</tr>")
        verdict_colour = "#1a7f37" if not self.failed else "#b31d28"
        return (f'<table style="font-size:12px"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>'
                f'<p style="color:{verdict_colour};font-weight:600">{html.escape(self.outcome)}: '
                f'{html.escape(self.message)}</p>')

    def to_timeline(self):
        """The run as a course_lib.timeline.Timeline, one time unit per step."""
        from course_lib.timeline import Timeline

        tl = Timeline().start()
        tl.xlabel = "step"
        for s in self.steps:
            kind = {"blocked": "wait_lock", "timed out": "wait_lock"}.get(s.event, "run")
            code = (s.source.split("#")[0].strip() or f"line {s.line}") if s.line else "start"
            label = code if len(code) <= 24 else code[:23] + "…"
            tl.record(kind, s.index - 1, s.index, label=label, thread=s.thread)
        tl._t_end = len(self.steps)
        return tl


@dataclass
class Exploration:
    """The result of :func:`explore`: a failing schedule and its trace, or how many passed."""

    failed: bool
    tried: int
    exhausted: bool
    strategy: str
    bound: str
    elapsed: float
    trace: Trace | None = None  # the failing run (or None)
    replay_call: str = ""       # code that replays the failing run, ready to paste into the notebook

    @property
    def schedule(self) -> tuple[int, ...] | None:
        return self.trace.schedule if self.trace else None

    @property
    def deadlock(self) -> Deadlock | None:
        return self.trace.deadlock if self.trace else None

    @property
    def message(self) -> str:
        if self.failed:
            how = (f"Replay it, step by step: {self.replay_call}" if self.replay_call else
                   f"Its schedule is \"{compact(self.trace.schedule)}\" (interleave.replay runs it again, "
                   "with the setup and workers this search used)")
            return f"schedule {self.tried} failed ({self.trace.outcome}): {self.trace.message}. {how}"
        scope = "all schedules" if self.exhausted else "schedules"
        return (f"no schedule failed, {self.tried} tried ({scope} with {self.bound}, "
                f"{self.strategy}, {self.elapsed:.2f} s)")

    def __str__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#b31d28" if self.failed else "#1a7f37"
        text = f'<p style="color:{colour};font-weight:600">{html.escape(self.message)}</p>'
        return text + (self.trace._repr_html_() if self.failed else "")


@dataclass
class StressResult:
    """Plain-thread runs: how many of them broke the invariant."""

    runs: int
    failures: int
    messages: list[str]
    elapsed: float

    def __str__(self) -> str:
        text = f"{self.failures} of {self.runs} stress runs broke the invariant ({self.elapsed:.2f} s)"
        if self.failures == 0:
            text += " — evidence, not proof: no race happened in these runs, which does not mean none can"
        return text


def _lambda_source(fn) -> str | None:
    """The text of a lambda written in a cell or file (``lambda: Rounds(Barrier)``), if it can be found."""
    code = fn.__code__
    text = "".join(linecache.getlines(code.co_filename))
    if not text:
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno]
    start = next(((line, col) for line, _, col, _ in code.co_positions() if line is not None and col is not None),
                 None)
    if len(found) > 1 and start is not None:
        found = [n for n in found if (n.body.lineno, n.body.col_offset) <= start
                 <= (n.body.end_lineno, n.body.end_col_offset)]
    return ast.get_source_segment(text, found[0]) if len(found) == 1 else None


def expression(fn) -> str | None:
    """Code that names ``fn`` in a notebook: its name, ``module.name`` or a lambda's text; None if none does."""
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if not callable(fn) or qualname is None or "<locals>" in qualname:
        return None
    if qualname == "<lambda>":
        if getattr(fn, "__closure__", None):  # it reads a function's local variables: not runnable on its own
            return None
        return _lambda_source(fn)
    if module in ("__main__", "builtins"):
        return qualname
    if module and module.startswith("course_lib."):
        return f"{module.rsplit('.', 1)[-1]}.{qualname}"  # as the lessons import it: from course_lib import X
    return f"{module}.{qualname}" if module else None


def replay_call(setup, workers, schedule: Sequence[int], *, count: int | None = None,
                names: Sequence[str] | None = None, granularity: str = "opcode",
                invariant=None) -> str:
    """``interleave.replay(...)`` that runs ``schedule`` again, or "" if a part cannot be written as code."""
    parts = ["None" if setup is None else expression(setup)]
    if callable(workers):
        parts.append(expression(workers))
    else:
        listed = [expression(w) for w in workers]
        parts.append(None if None in listed else "[" + ", ".join(listed) + "]")
    if None in parts:
        return ""
    parts.append(f'"{compact(schedule)}"')
    if callable(workers) and count:
        parts.append(f"count={count}")
    if names is not None:
        parts.append(f"names={list(names)!r}")
    if granularity != "opcode":
        parts.append(f"granularity={granularity!r}")
    if invariant is not None:
        written = expression(invariant)
        if written is None:
            return ""
        parts.append(f"invariant={written}")
    return f"interleave.replay({', '.join(parts)})"


def compact(schedule: Sequence[int]) -> str:
    """A schedule as run-length text: ``(0, 0, 0, 1, 1, 0)`` -> ``"0x3 1x2 0"``.

    :func:`replay` accepts this text as well as the list.
    """
    runs: list[list[int]] = []
    for thread in schedule:
        if runs and runs[-1][0] == thread:
            runs[-1][1] += 1
        else:
            runs.append([thread, 1])
    return " ".join(f"{t}x{n}" if n > 1 else str(t) for t, n in runs)


def parse_schedule(text: str) -> list[int]:
    """The inverse of :func:`compact`; also accepts plain ``"0 0 1"`` or ``"0,0,1"``."""
    steps: list[int] = []
    for token in text.replace(",", " ").split():
        thread, _, times = token.partition("x")
        steps.extend([int(thread)] * (int(times) if times else 1))
    return steps
