"""Does lesson 02 autograde its fixture submissions with the expected scores, in bounded time?

One batch, graded once per module: a correct submission; one whose
``run_concurrently`` runs the tasks one after another; and three broken
tickers — one that sleeps with ``time.sleep`` (cannot stop promptly), one that
busy-waits on the clock, one that ignores its stop event; and three
predictions of what ``Event.wait`` returns: a wrong one, a right one written
another way, and one in the wrong form. Points: predict_event_wait_correct 1
(the prediction in the lesson body); run_concurrently results_in_order 1,
overlaps 1, errors 1; start_ticker ticks 1, stops_promptly 1, no_busy_wait 1
— 7 in all.
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "02-creating-and-sleeping-threads"
MAX_SCORE = 7.0

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

# Checks the clock every 5 ms: little CPU, but it is still a loop that polls.
CLOCK_POLLING = '''
def start_ticker(interval, tick, stop):
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ValueError("interval must be a positive number")

    def run():
        due = time.monotonic() + interval
        while not stop.is_set():
            if time.monotonic() >= due:
                tick()
                due += interval
            time.sleep(0.005)

    ticker = threading.Thread(target=run, name="ticker", daemon=True)
    ticker.start()
    return ticker
'''

# Correct in other styles: a pool with a worker per task; a ticker that keeps to a schedule
# (no drift) and still waits with stop.wait.
POOL_PER_TASK = '''
import concurrent.futures


def run_concurrently(tasks):
    if not tasks:
        return []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(tasks))
    try:
        futures = [pool.submit(function, *args) for function, args in tasks]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True)
'''

SCHEDULED_TICKER = '''
def start_ticker(interval, tick, stop):
    if type(interval) not in (int, float) or not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")

    def run():
        due = time.monotonic() + interval
        while not stop.wait(max(0.0, due - time.monotonic())):
            tick()
            due += interval

    ticker = threading.Thread(target=run, name="ticker", daemon=True)
    ticker.start()
    return ticker
'''

# Forgets to join: returns while the tasks still run.
NO_JOIN = '''
def run_concurrently(tasks):
    results = [None] * len(tasks)

    def run(index, function, args):
        results[index] = function(*args)

    for index, (function, args) in enumerate(tasks):
        threading.Thread(target=run, args=(index, function, args)).start()
    return results
'''

# The prediction: what Event.wait(0.2) returns on an event nobody sets, then on one already set.
# The visible check wants two bools in a tuple or a list; the hidden one, the right values.
WRONG_PREDICTION = "PREDICTED_WAIT_RESULTS = (True, True)  # 'True because the wait is over'\n"
PREDICTION_COMPUTED = "PREDICTED_WAIT_RESULTS = [1 > 2, 2 > 1]\n"
# Equal to the answer by ==, but 0 and 1 are not bools: the form check refuses it.
PREDICTION_AS_INTS = "PREDICTED_WAIT_RESULTS = (0, 1)\n"

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # never joins: results_in_order (a 1-second task is not done when it returns) and errors fail;
    # overlaps passes when its barrier happens to trip before the check reads the results.
    # And a ticker that polls the clock every 5 ms: no_busy_wait (it wakes ~100 times in 0.5 s).
    "no_join_clock_polling": ({"run_concurrently_solution": NO_JOIN, "start_ticker_solution": CLOCK_POLLING},
                              {MAX_SCORE - 4, MAX_SCORE - 3}),
    # correct in other styles (a pool of one worker per task; a drift-free ticker): full marks
    "unusual": ({"run_concurrently_solution": POOL_PER_TASK, "start_ticker_solution": SCHEDULED_TICKER},
                MAX_SCORE),
    # fails results_in_order (tasks wait for later ones), overlaps, errors (stops at the first error)
    "sequential": ({"run_concurrently_solution": SEQUENTIAL}, 4.0),
    # fails stops_promptly only
    "sleeps_instead_of_waiting": ({"start_ticker_solution": SLEEPS_INSTEAD_OF_WAITING}, 6.0),
    # fails no_busy_wait only
    "busy_waits": ({"start_ticker_solution": BUSY_WAITS}, 6.0),
    # fails every ticker test
    "never_stops": ({"start_ticker_solution": NEVER_STOPS}, 4.0),
    # a wrong prediction: its point, and only that
    "wrong_prediction": ({"predict_event_wait": WRONG_PREDICTION}, 6.0),
    # the right prediction, computed and written as a list: full marks
    "prediction_computed": ({"predict_event_wait": PREDICTION_COMPUTED}, MAX_SCORE),
    # the right values as ints instead of bools: refused by the form check
    "prediction_as_ints": ({"predict_event_wait": PREDICTION_AS_INTS}, 6.0),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=240, timeout=400)
