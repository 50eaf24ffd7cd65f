"""Does lesson 04 autograde its fixture submissions with the expected scores, in bounded time?

One batch, graded once per module: a correct submission, one that loses
items (a buffer that drops items when full, a pipeline with ``None`` as its
sentinel), one that busy-waits (a buffer that polls instead of waiting on its
Condition), one whose pipeline never stops (no sentinels: consumers block
in ``get`` forever), one with a wrong prediction, and one that only answers
the prediction (right, as an expression; ``True`` is refused as not a count),
and "break it" schedules that are harmless, invalid, judged on a redefined
Mailbox, or right in another notation.
Points: the prediction (how many of two consumers one sentinel stops) 1;
BoundedBuffer fifo 1, timeouts 1, blocks 2, no_busy_wait 1, no_loss 2;
run_pipeline all_items 2, concurrent 1, clean_shutdown 1; break it (a consumer
takes from an empty buffer) 2 — 14 in all.
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "04-producer-consumer"
MAX_SCORE = 14.0

DROPPING_BUFFER = '''
class BoundedBuffer:
    """Drops the item when full instead of waiting."""

    def __init__(self, capacity):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        self._capacity = capacity
        self._items = collections.deque()
        self._not_empty = threading.Condition()

    def put(self, item, timeout=None):
        with self._not_empty:
            if len(self._items) < self._capacity:
                self._items.append(item)
                self._not_empty.notify()

    def get(self, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("negative timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_empty:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise queue.Empty
                self._not_empty.wait(remaining)
            return self._items.popleft()

    def __len__(self):
        return len(self._items)
'''

NONE_SENTINEL_PIPELINE = '''
def run_pipeline(sources, work, consumers, capacity=8):
    if consumers < 1:
        raise ValueError("consumers must be >= 1")
    items = queue.Queue(maxsize=capacity)
    results = []
    def produce(source):
        for item in source:
            items.put(item)
    def consume():
        while True:
            item = items.get()
            if item is None:  # the bug: None is also a real item
                return
            results.append(work(item))
    producers = [threading.Thread(target=produce, args=(s,)) for s in sources]
    workers = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in producers + workers:
        t.start()
    for t in producers:
        t.join()
    for _ in workers:
        items.put(None)
    for t in workers:
        t.join()
    return results
'''

POLLING_BUFFER = '''
class BoundedBuffer:
    """Correct results, but waits by checking again and again (busy waiting)."""

    def __init__(self, capacity):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        self._capacity = capacity
        self._items = collections.deque()
        self._cond = threading.Condition()  # used as a plain lock: nobody ever waits on it

    def _poll(self, ready, act, timeout, error):
        if timeout is not None and timeout < 0:
            raise ValueError("negative timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                if ready():
                    return act()
            if deadline is not None and time.monotonic() >= deadline:
                raise error
            time.sleep(0)

    def put(self, item, timeout=None):
        self._poll(lambda: len(self._items) < self._capacity, lambda: self._items.append(item),
                   timeout, queue.Full)

    def get(self, timeout=None):
        return self._poll(lambda: bool(self._items), self._items.popleft, timeout, queue.Empty)

    def __len__(self):
        return len(self._items)
'''

NEVER_STOPS_PIPELINE = '''
def run_pipeline(sources, work, consumers, capacity=8):
    items = queue.Queue(maxsize=capacity)
    results = []
    def produce(source):
        for item in source:
            items.put(item)
    def consume():
        while True:  # no sentinel: nothing ever tells a consumer to stop
            results.append(work(items.get()))
    threads = [threading.Thread(target=produce, args=(s,)) for s in sources]
    threads += [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
'''

# Breaks a rule the exercise states, in a way that is easy to miss: a queue.Queue per buffer,
# kept in a module-level dict instead of an attribute.
QUEUE_IN_A_GLOBAL = '''
_QUEUES = {}

class BoundedBuffer:
    def __init__(self, capacity):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        self._cond = threading.Condition()  # for show: the queue does the work
        _QUEUES[id(self)] = queue.Queue(capacity)

    def put(self, item, timeout=None):
        _QUEUES[id(self)].put(item, timeout=timeout)

    def get(self, timeout=None):
        return _QUEUES[id(self)].get(timeout=timeout)

    def __len__(self):
        return _QUEUES[id(self)].qsize()
'''

# Consumers that poll instead of waiting for a sentinel.
POLLING_PIPELINE = '''
def run_pipeline(sources, work, consumers, capacity=8):
    if isinstance(consumers, bool) or not isinstance(consumers, int) or consumers < 1:
        raise ValueError("consumers must be an int >= 1")
    items = queue.Queue(maxsize=capacity)
    results, lock = [], threading.Lock()
    done = threading.Event()

    def produce(source):
        for item in source:
            items.put(item)

    def consume():
        while True:
            try:
                item = items.get(timeout=0.05)
            except queue.Empty:
                if done.is_set():
                    return
                continue
            result = work(item)
            with lock:
                results.append(result)

    producers = [threading.Thread(target=produce, args=(s,)) for s in sources]
    workers = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in producers + workers:
        t.start()
    for t in producers:
        t.join()
    done.set()
    for t in workers:
        t.join()
    return results
'''

# Correct in other styles: one Condition with wait_for and notify_all; a single sentinel that
# each consumer puts back for the next one.
ONE_CONDITION_BUFFER = '''
class BoundedBuffer:
    def __init__(self, capacity):
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self._items, self._capacity = [], capacity
        self._changed = threading.Condition()

    def put(self, item, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) < self._capacity, timeout):
                raise queue.Full("still full")
            self._items.append(item)
            self._changed.notify_all()

    def get(self, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        with self._changed:
            if not self._changed.wait_for(lambda: self._items, timeout):
                raise queue.Empty("still empty")
            item = self._items.pop(0)
            self._changed.notify_all()
            return item

    def __len__(self):
        with self._changed:
            return len(self._items)
'''

PASS_ALONG_SENTINEL = '''
class _Done:
    pass  # the one sentinel: each consumer that takes it puts it back for the next


def run_pipeline(sources, work, consumers, capacity=8):
    if type(consumers) is not int or consumers < 1:
        raise ValueError("consumers must be an int >= 1")
    items, results = queue.Queue(capacity), queue.Queue()

    def consume():
        while (item := items.get()) is not _Done:
            results.put(work(item))
        items.put(_Done)

    producers = [threading.Thread(target=lambda s=s: [items.put(x) for x in s]) for s in sources]
    workers = [threading.Thread(target=consume) for _ in range(consumers)]
    for thread in producers + workers:
        thread.start()
    for thread in producers:
        thread.join()
    items.put(_Done)
    for thread in workers:
        thread.join()
    return [results.get() for _ in range(results.qsize())]
'''

# The prediction: a wrong count, the right one written as an expression, and True (== 1, but a bool).
WRONG_PREDICTION = "CONSUMERS_STOPPED = 2  # as if every consumer saw the one sentinel"
PREDICTION_AS_EXPRESSION = "CONSUMERS_STOPPED = 2 - 1"
PREDICTION_AS_BOOL = "CONSUMERS_STOPPED = True"

NO_BUFFER = '''
class BoundedBuffer:
    def __init__(self, capacity):
        raise NotImplementedError()
'''
NO_PIPELINE = "def run_pipeline(sources, work, consumers, capacity=8):\n    raise NotImplementedError()"
NO_SCHEDULE = "raise NotImplementedError()"
# "break it": valid but harmless (both consumers wait, then each gets an item) ...
HARMLESS_SCHEDULE = 'EMPTY_GET_SCHEDULE = "0x3 2x5 1"'
# ... names consumer_a while it waits on the empty buffer ...
INVALID_SCHEDULE = 'EMPTY_GET_SCHEDULE = "0x3 0"'
# ... the breaking one, written out step by step with commas: it counts all the same
SPELLED_OUT_SCHEDULE = 'EMPTY_GET_SCHEDULE = "0,0,0,1,2,2,2,0,1"'
# ... and a cell that redefines the buggy code as always failing: the schedule is judged on
# course_lib.breakit's own Mailbox, so this breaks nothing
REDEFINED_MAILBOX = """
class Mailbox:
    def get(self):
        return [].pop()

EMPTY_GET_SCHEDULE = ""
"""

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # correct in other styles (one Condition with wait_for; a sentinel passed along): full marks
    "unusual": ({"bounded_buffer_solution": ONE_CONDITION_BUFFER,
                 "run_pipeline_solution": PASS_ALONG_SENTINEL}, MAX_SCORE),
    # a queue.Queue kept in a module-level dict: fifo's hidden rule check (1); polling consumers:
    # clean_shutdown (1); the prediction as True (equal to 1, but a bool, not a count): refused by
    # the visible type check (1)
    "rule_breaker": ({"bounded_buffer_solution": QUEUE_IN_A_GLOBAL,
                      "run_pipeline_solution": POLLING_PIPELINE,
                      "predict_one_sentinel": PREDICTION_AS_BOOL}, MAX_SCORE - 3),
    # the prediction 1; buffer: fifo 1 + no_busy_wait 1; pipeline: concurrent 1 + clean_shutdown 1
    "loses_items": ({"bounded_buffer_solution": DROPPING_BUFFER,
                     "run_pipeline_solution": NONE_SENTINEL_PIPELINE}, 7.0),
    # everything but no_busy_wait (1)
    "busy_waits": ({"bounded_buffer_solution": POLLING_BUFFER}, MAX_SCORE - 1),
    # the prediction 1, the buffer's 7 and the break-it 2; every pipeline cell times out
    "never_stops": ({"run_pipeline_solution": NEVER_STOPS_PIPELINE}, 10.0),
    # a wrong prediction costs its one point and nothing else
    "wrong_prediction": ({"predict_one_sentinel": WRONG_PREDICTION}, MAX_SCORE - 1),
    # only the prediction, right as an expression (an int all the same): its point alone
    "prediction_only": ({"predict_one_sentinel": PREDICTION_AS_EXPRESSION,
                         "bounded_buffer_solution": NO_BUFFER, "run_pipeline_solution": NO_PIPELINE,
                         "break_empty_get": NO_SCHEDULE}, 1.0),
    # "break it" (2): a harmless schedule, an invalid one and a redefined Mailbox earn nothing ...
    "break_it_harmless": ({"break_empty_get": HARMLESS_SCHEDULE}, MAX_SCORE - 2),
    "break_it_invalid": ({"break_empty_get": INVALID_SCHEDULE}, MAX_SCORE - 2),
    "break_it_redefined": ({"break_empty_get": REDEFINED_MAILBOX}, MAX_SCORE - 2),
    # ... the breaking schedule in another notation earns both points
    "break_it_spelled_out": ({"break_empty_get": SPELLED_OUT_SCHEDULE}, MAX_SCORE),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=240, timeout=400)
