""""Break it" exercises: correct-looking code with a bug, and the learner plays the scheduler.

Each :class:`Program` is a small concurrent program (a check-then-act on a
balance, ``if`` instead of ``while`` around ``Condition.wait``, two locks
taken in opposite order) and the promise it breaks. The learner writes a
*schedule* in :func:`course_lib.interleave.replay`'s notation (``"0x2 1x3 0"``:
thread 0 for two steps, thread 1 for three, then thread 0) and
:func:`attempt` replays it step by step; a graded test calls
:func:`expect_breaks`, which gives the points only when the schedule is valid
*and* breaks the promise. The programs live here, not in the notebook, so a
solution cell cannot redefine the code its schedule is judged on.

    show(program)                 the program's code, highlighted, lines numbered as the trace's, with its goal
    attempt(program, schedule)    replay it: the step table and what happened
    expect_breaks(program, schedule)  for test cells: CheckFailed unless it breaks
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .grading import CheckFailed
from .interleave import ScheduleError, Trace, compact, replay

__all__ = ["Program", "OVERDRAFT", "EMPTY_GET", "OPPOSITE_LOCKS", "PROGRAMS", "parse", "attempt",
           "expect_breaks", "listing", "show", "MAX_STEPS"]

MAX_STEPS = 400  # more than any program here needs; a longer schedule is refused unread


@dataclass(frozen=True)
class Program:
    name: str
    goal: str                                   # what the learner's schedule must make happen
    setup: Callable[[], Any]
    workers: tuple
    names: tuple
    broken: Callable[[Trace], str]              # why the promise is broken, "" if it held
    describe: Callable[[Any], str]              # the final state, in words
    granularity: str = "line"
    observe: Callable[[Any], dict] | None = None
    code: tuple = field(default_factory=tuple)  # what show() displays


# ---------------------------------------------------------------------------
# Lesson 03: the check comes before the lock
# ---------------------------------------------------------------------------
class Account:
    """A balance that must never go below zero. The lock is there — but too late."""

    def __init__(self, balance):
        self.balance = balance
        self.lock = threading.Lock()

    def withdraw(self, amount):
        if self.balance >= amount:     # check ...
            with self.lock:            # ... then act: another withdrawal may have come between
                self.balance -= amount
            return True
        return False


def _account():
    return Account(100)


def alice(account):
    account.withdraw(80)


def bob(account):
    account.withdraw(80)


def _overdrawn(trace: Trace) -> str:
    if trace.outcome == "finished" and trace.state.balance < 0:
        return f"the balance ended at {trace.state.balance}: the bank paid out money it did not have"
    return ""


OVERDRAFT = Program(
    name="overdraft", goal="make the balance end below zero (both withdrawals of 80 from 100 succeed)",
    setup=_account, workers=(alice, bob), names=("alice", "bob"), broken=_overdrawn,
    describe=lambda a: f"balance = {a.balance}", observe=lambda a: {"balance": a.balance},
    code=(Account, alice, bob))


# ---------------------------------------------------------------------------
# Lesson 04: `if` where `while` belongs
# ---------------------------------------------------------------------------
class Mailbox:
    """A buffer whose get() waits for an item — checking only once."""

    def __init__(self):
        self.items = []
        self.ready = threading.Condition()

    def put(self, item):
        with self.ready:
            self.items.append(item)
            self.ready.notify()

    def get(self):
        with self.ready:
            if not self.items:         # should be `while`: after waking, look again
                self.ready.wait()
            return self.items.pop(0)


def _mailbox():
    box = Mailbox()
    box.got = []
    return box


def consumer_a(box):
    box.got.append(box.get())


def consumer_b(box):
    box.got.append(box.get())


def producer(box):
    box.put("first")
    box.put("second")


def _empty_get(trace: Trace) -> str:
    for name, exc in trace.errors.items():
        if isinstance(exc, IndexError):
            return f"{name} woke up, did not look again, and took from an empty buffer ({exc})"
    return ""


EMPTY_GET = Program(
    name="empty_get", goal="make a consumer take from an empty buffer (an IndexError in get)",
    setup=_mailbox, workers=(consumer_a, consumer_b, producer), names=("consumer_a", "consumer_b", "producer"),
    broken=_empty_get, describe=lambda b: f"items left = {b.items}, consumers got {b.got}",
    granularity="sync", observe=lambda b: {"items": list(b.items)}, code=(Mailbox, consumer_a, consumer_b, producer))


# ---------------------------------------------------------------------------
# Lesson 05: two locks, opposite orders
# ---------------------------------------------------------------------------
class Accounts:
    """Two accounts, a lock each; a transfer holds both locks."""

    def __init__(self):
        self.savings, self.current = 50, 50
        self.savings_lock = threading.Lock()
        self.current_lock = threading.Lock()


def to_current(accounts):
    with accounts.savings_lock:
        with accounts.current_lock:
            accounts.savings -= 10
            accounts.current += 10


def to_savings(accounts):
    with accounts.current_lock:
        with accounts.savings_lock:
            accounts.current -= 10
            accounts.savings += 10


def _deadlocked(trace: Trace) -> str:
    if trace.outcome == "deadlock":
        return trace.message
    return ""


OPPOSITE_LOCKS = Program(
    name="opposite_locks", goal="make both transfers wait for each other forever (a deadlock)",
    setup=Accounts, workers=(to_current, to_savings), names=("to_current", "to_savings"),
    broken=_deadlocked, describe=lambda a: f"savings = {a.savings}, current = {a.current}",
    granularity="sync", code=(Accounts, to_current, to_savings))

PROGRAMS = {p.name: p for p in (OVERDRAFT, EMPTY_GET, OPPOSITE_LOCKS)}


# ---------------------------------------------------------------------------
# Replaying a learner's schedule
# ---------------------------------------------------------------------------
def _threads(program: Program) -> str:
    return ", ".join(f"{i} ({n})" for i, n in enumerate(program.names))


def parse(program: Program, schedule) -> list[int]:
    """The schedule as a list of thread numbers; ValueError, said plainly, if it is not one."""
    if type(schedule) is not str:
        raise ValueError(f"write the schedule as a str such as \"0x2 1x3 0\", not a {type(schedule).__name__}")
    steps: list[int] = []
    for token in schedule.lower().replace(",", " ").split():
        thread, x, times = token.partition("x")
        if not thread.isdigit() or (x and not times.isdigit()) or (x and int(times) == 0):
            raise ValueError(f"{token!r} is not a step: write a thread number, or NxK for thread N "
                             "K times (e.g. 0x2)")
        count = int(times) if x else 1
        if len(steps) + count > MAX_STEPS:
            raise ValueError(f"the schedule is longer than {MAX_STEPS} steps; no program here needs that many")
        if int(thread) >= len(program.workers):
            raise ValueError(f"there is no thread {thread}: the threads are {_threads(program)}")
        steps.extend([int(thread)] * count)
    return steps


def _run(program: Program, steps: list[int]) -> Trace:
    return replay(program.setup, list(program.workers), steps, names=list(program.names),
                  observe=program.observe, granularity=program.granularity, max_steps=MAX_STEPS + 200,
                  timeout=10.0, step_timeout=2.0)


@dataclass
class Attempt:
    """What a schedule did: valid or not, broken or not, and the run's trace."""

    program: Program
    schedule: str
    trace: Trace | None
    verdict: str        # "broken", "held", "invalid"
    message: str

    def _repr_html_(self) -> str:
        import html

        colour = {"broken": "#1a7f37", "held": "#9a6700", "invalid": "#b31d28"}[self.verdict]
        table = self.trace._repr_html_() if self.trace is not None else ""
        return (f'<p style="color:{colour};font-weight:600">{html.escape(self.message)}</p>' + table)

    def __str__(self) -> str:
        return self.message + ("\n" + str(self.trace) if self.trace is not None else "")


def attempt(program: Program, schedule) -> Attempt:
    """Replay ``schedule`` on ``program`` and say what happened (never raises for a bad schedule)."""
    try:
        steps = parse(program, schedule)
    except ValueError as exc:
        return Attempt(program, str(schedule), None, "invalid", f"not a valid schedule: {exc}")
    try:
        trace = _run(program, steps)
    except ScheduleError as exc:
        return Attempt(program, schedule, None, "invalid",
                       f"not a valid schedule: {exc}. A thread that is blocked or has finished cannot "
                       "run: replay a shorter prefix with attempt() to see who can run at that step.")
    if len(steps) > len(trace.schedule):
        return Attempt(program, schedule, trace, "invalid",
                       f"not a valid schedule: the run ended after {len(trace.schedule)} steps "
                       f"({trace.outcome}), but your schedule goes on for {len(steps) - len(trace.schedule)} "
                       "more, naming threads that had finished or were stuck: cut it there")
    why = program.broken(trace)
    if why:
        return Attempt(program, schedule, trace, "broken",
                       f"broken: {why}. Full schedule as run: {compact(trace.schedule)}")
    return Attempt(program, schedule, trace, "held",
                   f"your schedule ran ({compact(trace.schedule)} with the default order after it) "
                   f"and the program kept its promise: {trace.outcome}, {program.describe(trace.state)}")


def _switches(trace: Trace, limit: int = 12) -> str:
    """The run in a few lines for a one-line feedback message: who ran which line, at each switch."""
    rows = trace.table(only_switches=True)
    parts = [f"{r['step']}:{r['thread']} `{r['code'][:40]}`" for r in rows[:limit]]
    if len(rows) > limit:
        parts.append(f"... ({len(rows) - limit} more)")
    return "; ".join(parts)


def expect_breaks(program: Program, schedule) -> Attempt:
    """For a test cell: pass only if ``schedule`` is valid and breaks ``program``'s promise."""
    result = attempt(program, schedule)
    if result.verdict != "broken":
        what = f" What your schedule did: {_switches(result.trace)}." if result.trace is not None else ""
        raise CheckFailed(f"{result.message}.{what} Goal: {program.goal}.")
    return result


def listing(program: Program) -> str:
    """The program's code with each line numbered as the step tables number it (this file's lines)."""
    parts = []
    for obj in program.code:
        lines, first = inspect.getsourcelines(obj)
        parts.append("".join(f"{number:>4}  {line}" for number, line in enumerate(lines, first)))
    return "\n".join(parts)


def show(program: Program):
    """The program's code (highlighted in a notebook), its lines numbered as the trace's ``line``, and the goal."""
    header = (f"# Goal: {program.goal}.\n# Threads: {_threads(program)}; "
              f"one step = one {'line' if program.granularity == 'line' else 'lock or condition operation'}"
              " (and a thread's start).\n# The numbers are the `line` column of attempt()'s step table.\n\n")
    text = header + listing(program)
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - outside IPython
        return text
    return Code(text, language="python")
