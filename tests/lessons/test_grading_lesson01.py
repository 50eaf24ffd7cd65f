"""Does lesson 01 autograde its fixture submissions with the expected scores, in the sandbox?

Lesson 01 is the one whose graded code starts child processes (``spawn``),
so it is graded here *inside* the sandbox: the spawned interpreter must find
``course_lib`` and the semaphores a process pool needs. One batch, graded
once per module. Points: predict_shared_memory_correct 1 (the prediction in
the lesson body); run_in_threads basics 1, concurrent 2, order 1, timeout 1;
thread_sees_global_value 1; process_sees_global value 1, child 1; speedup
values 1, invalid 1; classify_workload_rules 1 — 12 in all.
Which cells each wrong solution fails is pinned down, without the pipeline,
in test_lesson_01_exercises.py; this file checks the pipeline awards it.
"""

import pytest

from tests.submissions import lesson_grading_tests
from tests.lessons.test_lesson_01_exercises import WRONG

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

LESSON = "01-processes-and-threads"
MAX_SCORE = 12.0

LOOPING_RUN_IN_THREADS = "def run_in_threads(fn, args_list, timeout=10.0):\n    while True:\n        pass\n"

# Correct in other styles: a Thread subclass that keeps its result; a spawned Pool of one.
THREAD_SUBCLASS = '''
class _Call(threading.Thread):
    def __init__(self, fn, args):
        super().__init__(daemon=True)
        self.fn, self.args, self.result = fn, args, None

    def run(self):
        self.result = self.fn(*self.args)


def run_in_threads(fn, args_list, timeout=10.0):
    calls = [_Call(fn, args) for args in args_list]
    for call in calls:
        call.start()
    deadline = time.monotonic() + timeout
    for call in calls:
        call.join(max(0.0, deadline - time.monotonic()))
    if any(call.is_alive() for call in calls):
        raise TimeoutError(f"calls still running after {timeout} s")
    return [call.result for call in calls]
'''

POOL_OF_ONE = '''
def process_sees_global(value):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(processes.set_setting, (value,))
    return processes.SETTING
'''

LAMBDA_TARGET = '''
def thread_sees_global(value):
    worker = threading.Thread(target=lambda: processes.set_setting(value))
    worker.start()
    worker.join(20)
    return processes.SETTING
'''

SPEEDUP_WITH_MATH = '''
import math


def speedup(serial_s, parallel_s):
    if min(serial_s, parallel_s) <= 0 or math.isnan(serial_s) or math.isnan(parallel_s):
        raise ValueError("both times must be greater than 0")
    return serial_s / parallel_s
'''

CLASSIFY_BY_TABLE = '''
def classify_workload(serial_s, threads_s, processes_s):
    gains = {"io-bound": serial_s / threads_s, "cpu-bound": serial_s / processes_s}
    for kind in ("io-bound", "cpu-bound"):  # threads first: if threads help, it waits on I/O
        if gains[kind] >= 1.5:
            return kind
    return "neither"
'''

# Never starts a process: answers what a process would have left behind.
NO_PROCESS = '''
def process_sees_global(value):
    return processes.SETTING
'''

# The prediction: counter after the thread and after the forked child. The visible check wants two
# ints in a tuple or a list; the hidden one, the right values.
WRONG_PREDICTION = "PREDICTED_COUNTERS = (1, 2)  # the child's bump is seen too\n"
PREDICTION_AS_LIST = "PREDICTED_COUNTERS = [1, 1]\n"
# Equal to the answer by ==, but bools are not ints here: the form check refuses it.
PREDICTION_AS_BOOLS = "PREDICTED_COUNTERS = (True, True)\n"

FIXTURES = {
    # student: (replacements by solution grade id, expected score)
    "correct": ({}, MAX_SCORE),
    # correct in other styles (a Thread subclass, a lambda target, a spawned Pool of one, math, a
    # table of speed-ups): full marks
    "unusual": ({"run_in_threads": THREAD_SUBCLASS, "thread_sees_global": LAMBDA_TARGET,
                 "process_sees_global": POOL_OF_ONE, "speedup": SPEEDUP_WITH_MATH,
                 "classify_workload": CLASSIFY_BY_TABLE}, MAX_SCORE),
    # serial run_in_threads: concurrent 2 + timeout 1; an import that copies SETTING: 1;
    # a hard-coded ORIGINAL: child 1; speedup without ValueError: 1; '>' for '>=': 1;
    # a prediction written as bools: 1
    "wrong": ({"predict_shared_memory": PREDICTION_AS_BOOLS,
               "run_in_threads": WRONG["run_in_threads"]["serial"][0],
               "thread_sees_global": WRONG["thread_sees_global"]["import_copies_the_value"][0],
               "process_sees_global": WRONG["process_sees_global"]["hard_coded"][0],
               "speedup": WRONG["speedup"]["no_validation"][0],
               "classify_workload": WRONG["classify_workload"]["strict_threshold"][0]}, 4.0),
    # a thread where a process is asked for: value 1 + child 1
    "thread_for_process": ({"process_sees_global": WRONG["process_sees_global"]["thread_not_process"][0]},
                           10.0),
    # run_in_threads never returns: its 5 points, and only those
    # and a process_sees_global that starts no process at all: value 1 (the answer is right), child 0
    "looping": ({"run_in_threads": LOOPING_RUN_IN_THREADS, "process_sees_global": NO_PROCESS}, 6.0),
    # the prediction that the child's change reaches us: its point, and only that
    "wrong_prediction": ({"predict_shared_memory": WRONG_PREDICTION}, 11.0),
    # the right prediction written as a list: full marks
    "prediction_as_list": ({"predict_shared_memory": PREDICTION_AS_LIST}, MAX_SCORE),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--jobs", "2", max_score=MAX_SCORE, within=240, timeout=400)
