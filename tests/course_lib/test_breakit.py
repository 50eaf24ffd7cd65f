"""Do "break it" schedules earn points only when they are valid and break the program's promise?

For each program: a breaking schedule passes; a schedule naming a finished,
blocked or missing thread, a malformed or endless one, and one that is not a
plain str are refused with a message; a valid schedule that does not break
the program fails with the final state shown. Replays are deterministic, so
every case is exact; no run may leave a thread behind.
"""

import threading

import pytest

from course_lib import breakit
from course_lib.grading import CheckFailed

BREAKING = {
    "overdraft": ["0x3 1x3 0", "0x4 1x4", " 0X3,1X3\n0 "],  # both checks pass before either withdraws
    "empty_get": ["0x3 1 2x3 0 1 0 2x2", "0x3 1 2x3 0 1"],  # b takes 'first' before a wakes
    "opposite_locks": ["0x2 1x2", "1x2 0x2"],         # each holds its first lock
}
HOLDING = {  # valid, but the promise holds
    "overdraft": ("0x7 1", "balance = 20"),
    "empty_get": ("0x3 2x5 1", "consumers got ['first', 'second']"),
    "opposite_locks": ("0x3 1x3", "savings = 50, current = 50"),
}


@pytest.fixture(autouse=True)
def no_thread_left():
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left behind: {left}"


@pytest.mark.parametrize("name,schedule", [(n, s) for n, ss in BREAKING.items() for s in ss])
def test_a_breaking_schedule_passes_and_says_how(name, schedule):
    result = breakit.expect_breaks(breakit.PROGRAMS[name], schedule)
    assert result.verdict == "broken" and result.message.startswith("broken:")
    assert result.trace.failed or name == "overdraft"


@pytest.mark.parametrize("name", sorted(HOLDING))
def test_a_valid_schedule_that_breaks_nothing_fails_with_the_final_state(name):
    schedule, final = HOLDING[name]
    with pytest.raises(CheckFailed) as failed:
        breakit.expect_breaks(breakit.PROGRAMS[name], schedule)
    message = str(failed.value)
    assert "kept its promise" in message and final in message
    assert "What your schedule did:" in message and "Goal:" in message


@pytest.mark.parametrize("name,schedule,words", [
    ("overdraft", "0x7 1x4 0", "naming threads that had finished"),        # alice is done by then
    ("empty_get", "0x3 0", "which is blocked"),                            # a waits on an empty buffer
    ("opposite_locks", "0x2 1x2 0x3", "which is blocked on state.current_lock"),
    ("empty_get", "0x3 2x3 1x3 0", "which is done"),
    ("overdraft", "0x3 2", "there is no thread 2"),
    ("overdraft", "0x3 bob", "is not a step"),
    ("overdraft", "0x-1", "is not a step"),
    ("overdraft", "0x0", "is not a step"),
    ("overdraft", "0x99999999999999", "longer than"),
    ("opposite_locks", "0x3 1x3 0", "the run ended after 6 steps"),
])
def test_an_invalid_schedule_gets_a_clear_message_and_no_points(name, schedule, words):
    with pytest.raises(CheckFailed) as failed:
        breakit.expect_breaks(breakit.PROGRAMS[name], schedule)
    assert "not a valid schedule" in str(failed.value) and words in str(failed.value)


class Sneaky(str):
    """A str that would say anything: only a plain str is a schedule."""

    def split(self, *args):
        return ["0", "0", "0", "1", "1", "1", "0"]


@pytest.mark.parametrize("answer", [Sneaky("0x7 1"), ["0", "1"], 3, None, b"0x2 1x2"])
def test_a_schedule_is_a_plain_str(answer):
    with pytest.raises(CheckFailed, match="write the schedule as a str"):
        breakit.expect_breaks(breakit.OPPOSITE_LOCKS, answer)


def test_the_empty_schedule_runs_each_thread_to_its_end_and_breaks_nothing():
    """The default order never preempts, so no program here breaks without the learner's choices."""
    for program in breakit.PROGRAMS.values():
        assert breakit.attempt(program, "").verdict == "held"


def test_show_gives_the_code_and_the_goal():
    shown = breakit.show(breakit.OVERDRAFT)
    text = getattr(shown, "data", shown)
    assert "if self.balance >= amount" in text and "Goal:" in text and "0 (alice), 1 (bob)" in text


@pytest.mark.parametrize("name", sorted(breakit.PROGRAMS))
def test_the_listing_numbers_each_line_as_the_step_table_does(name):
    """Does every line the trace names appear in show()'s listing under that same number, with its code?"""
    program = breakit.PROGRAMS[name]
    listed = {}
    for row in breakit.listing(program).splitlines():
        number, _, code = row.strip().partition("  ")
        if number.isdigit():
            listed[int(number)] = code.strip()
    trace = breakit.attempt(program, "").trace
    named = [(s.line, s.source) for s in trace.steps if s.line and s.source in listed.values()]
    assert named, "the run goes through the listed code"
    for line, source in named:
        assert listed.get(line) == source.strip(), f"trace line {line} is {source!r}, listing says {listed.get(line)!r}"


def test_an_attempt_renders_its_verdict_and_steps_in_a_notebook():
    html = breakit.attempt(breakit.OVERDRAFT, "0x3 1x3 0")._repr_html_()
    assert "broken" in html and "<table" in html and "balance" in html
