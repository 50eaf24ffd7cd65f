"""Does lesson 02 autograde its fixture submissions with the expected scores, in bounded time?

One batch, graded once per module: a correct submission; one whose
``run_concurrently`` runs the tasks one after another; and three broken
tickers — one that sleeps with ``time.sleep`` (cannot stop promptly), one that
busy-waits on the clock, one that ignores its stop event. Points:
run_concurrently results_in_order 1, overlaps 1, errors 1; start_ticker
ticks 1, stops_promptly 1, no_busy_wait 1 — 6 in all.
"""

import pytest

from submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "02-creating-and-sleeping-threads"
MAX_SCORE = 6.0

SEQUENTIAL = '''
def run_concurrently(tasks):
    return [function(*args) for function, args in tasks]
'''

SLEEPS_INSTEAD_OF_WAITING = '''
def start_ticker(interval, tick, stop):
    if interval <= 0:
        raise ValueError("interval must be positive")
    def run():
        while not stop.is_set():
            time.sleep(interval)
            if not stop.is_set():
                tick()
    ticker = threading.Thread(target=run, name="ticker", daemon=True)
    ticker.start()
    return ticker
'''

BUSY_WAITS = '''
def start_ticker(interval, tick, stop):
    if interval <= 0:
        raise ValueError("interval must be positive")
    def run():
        next_tick = time.monotonic() + interval
        while not stop.is_set():
            if time.monotonic() >= next_tick:
                tick()
                next_tick += interval
    ticker = threading.Thread(target=run, name="ticker", daemon=True)
    ticker.start()
    return ticker
'''

NEVER_STOPS = '''
def start_ticker(interval, tick, stop):
    if interval <= 0:
        raise ValueError("interval must be positive")
    def run():
        while True:  # never looks at stop
            time.sleep(interval)
            tick()
    ticker = threading.Thread(target=run, name="ticker", daemon=True)
    ticker.start()
    return ticker
'''

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # fails results_in_order (tasks wait for later ones), overlaps, errors (stops at the first error)
    "sequential": ({"run_concurrently_solution": SEQUENTIAL}, 3.0),
    # fails stops_promptly only
    "sleeps_instead_of_waiting": ({"start_ticker_solution": SLEEPS_INSTEAD_OF_WAITING}, 5.0),
    # fails no_busy_wait only
    "busy_waits": ({"start_ticker_solution": BUSY_WAITS}, 5.0),
    # fails every ticker test
    "never_stops": ({"start_ticker_solution": NEVER_STOPS}, 3.0),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=240, timeout=400)
