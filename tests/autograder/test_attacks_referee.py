"""Can a student beat the referee? A third round of attacks, written against the judge of issue 27.

The judge runs each test itself (never as an IPython cell), judges data-only
tests in the grader, seals the protected modules, guards methods' ``self``,
signs its channel and, outside lesson 01, forbids processes with seccomp.
This corpus attacks that design on every lesson, each attack one student's
submission graded for real by ``course grade --jobs 2`` in the sandbox, all
of a lesson's submissions in one batch beside its blank notebook (every
solution cell the released stub). Payloads that several lessons share are
files in ``tests/autograder/attacks/``; lesson-specific ones are strings
here. An attack passes when it

* scores no more than the blank notebook of its lesson (and, where it names
  tests, earns nothing on them: an exercise rule evaded must still cost the
  points of the test that states it);
* gets the status it deserves: ``rejected`` or ``tampered`` where it used a
  forbidden construct (reaching the shell, a private attribute of a library
  object, a protected class changed), ``graded`` otherwise;
* leaks nothing hidden: no hidden test line into any feedback file,
  ``results/`` or ``report.html``, and no hidden input or expected value
  (a string literal of a hidden block that the visible notebook does not
  show) into the feedback. Leaks are decided by the design, not by guessing
  encodings: an attack that encodes what it carries out declares its own
  decoder, and the check applies it — a cipher of the student's own is no
  disguise when the source was never readable in the first place.

Attacks that beat the grader today are ``xfail(strict=True)`` with the hole
in the reason: closing the hole turns them into XPASS (a failure), and the
mark is flipped then (``closed=`` keeps the hole's description beside the
attack that now guards its fix). Solutions in unusual but legitimate styles sit in the
same batches and must earn every point of their exercises, so the policy
does not buy safety by refusing honest work.
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
import time
import tokenize
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.submissions import NOTEBOOKS, Legit, grade, make_submission, source_notebook

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

PAYLOADS = Path(__file__).resolve().parent / "attacks"
LESSONS = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir() and p.name[:2].isdigit())
BLANK = "blank"
FORBIDDEN = frozenset({"rejected", "tampered"})
BATCH_SECONDS = 240  # one lesson's batch, --jobs 2, on a busy machine


def payload(name: str) -> str:
    return (PAYLOADS / name).read_text(encoding="utf-8")


def by_lesson(prefix: str) -> str:
    return next(lesson for lesson in LESSONS if lesson.startswith(prefix))


@dataclass(frozen=True)
class Attack:
    """One student's submission: the solution cells it fills in and what it deserves."""

    lesson: str
    question: str                                   # what the test asks of it
    replace: dict                                   # grade id -> source (the other cells stay stubs)
    statuses: frozenset = FORBIDDEN                 # the statuses it deserves
    hole: str | None = None                         # why it beats the grader today (xfail reason)
    closed: str | None = None                       # the hole it found, since closed: it guards the fix
    zero: tuple = ()                                # tests it must earn nothing on
    decode: Callable[[str], str] | None = None      # the attack's own cipher, undone by the leak check
    baseline: bool = True                           # False: it does some work; only `zero` is held to 0
    absent: tuple = ()                              # text its feedback must not show, plain or decoded (what
                                                    # it tried, done; never written whole in its own cells)



def unshift(text: str) -> str:
    """Undo leak_tests.py's cipher (each character one code point up)."""
    return "".join(chr(max(ord(c) - 1, 0)) for c in text)


def unshift3(text: str) -> str:
    """Undo tests_by_format.py's cipher (each character three code points up)."""
    return "".join(chr(max(ord(c) - 3, 0)) for c in text)


def first_solution_cell(lesson: str) -> str:
    """The grade id of the lesson's first solution cell: it runs before every test."""
    _, nb = source_notebook(lesson)
    return next(c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("solution") and not c.metadata["nbgrader"].get("grade"))


def reference(lesson: str, grade_id: str) -> str:
    """A solution cell's reference solution (its markers dropped): an attack that needs the work done."""
    _, nb = source_notebook(lesson)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return re.sub(r"^ *### (BEGIN|END) SOLUTION *\n?", "", source, flags=re.M)


# ------------------------------------------------------------------- the holes (xfail reasons)

H_INIT_SHELL = (
    "policy+audit hole: a special method may be read off anything, so threading.Thread.__init__(self) run "
    "in a class of the solution's own leaves sys.stderr (ipykernel's OutStream) in self._stderr, a private "
    "name the policy lets a method read on its own self; OutStream.session.parent is the kernel app and its "
    "public traitlets API trait_values()['shell'] is the shell (no private name, no 'shell' attribute); "
    "shell.ex(text) runs code no policy reads, and the audit hook ignores its sys._current_frames and "
    "frame reads because their immediate caller is not a solution cell. The payload replaces the runner's "
    "'test' handler in serve()'s frame: every test no peer checks is answered 'passed' without running")
H_WRAPS = (
    "policy hole: functools.wraps(x)(y) copies x.__dict__ into y.__dict__ (update_wrapper's default "
    "updated=('__dict__',)), with library code doing the writing, so no audit event and no policy rule; "
    "copied into an object of the solution's own class, every private attribute of any object becomes "
    "self._name. Thread()._stderr -> OutStream.session.parent._trait_values['shell'] -> "
    "shell.user_global_ns['threading'] -> threading._active -> the 'judge-runner' thread -> its "
    "_kwargs['tests']: the very dict the runner reads test sources from, hidden parts included")
H_WRAPS_REWRITE = H_WRAPS + "; rewritten to 'pass', every test no peer checks passes"
H_WRAPS_LEAK = (H_WRAPS + "; the hidden lines, shifted one code point, become the source of failing tests "
                "(raise ValueError(text) on line 1, a visible line), so the feedback carries them whole")


# --------------------------------------------------------------------- attacks on every lesson


#: Where the functools.wraps route also rewrites the tests (the leak shows the same route on every lesson).
REWRITE_LESSONS = ("01", "05", "09")


def every_lesson() -> dict[str, Attack]:
    """The attacks on the design itself, on every lesson (their payloads are files)."""
    rig = f"PAYLOAD = {payload('rig_the_runner.py')!r}\n" + payload("shell_by_thread_init.py")
    rewrite = payload("tests_by_wraps.py") + payload("rewrite_tests.py")
    leak = payload("tests_by_wraps.py") + payload("leak_tests.py")
    attacks = {}
    for lesson in LESSONS:
        cell = first_solution_cell(lesson)
        n = lesson[:2]
        attacks[f"{n}_rig_runner_via_shell"] = Attack(
            lesson, "Does a solution that reaches the shell through a borrowed Thread.__init__ and rigs the "
                    "runner's test handler earn nothing?", {cell: rig}, closed=H_INIT_SHELL)
        if n in REWRITE_LESSONS:
            attacks[f"{n}_rewrite_tests_via_wraps"] = Attack(
                lesson, "Does a solution that copies the runner thread's private state with functools.wraps and "
                        "rewrites the test sources earn nothing?", {cell: rewrite}, closed=H_WRAPS_REWRITE)
        attacks[f"{n}_leak_hidden_source"] = Attack(
            lesson, "Does a solution that reads every test's source and fails each test with its hidden "
                    "lines, enciphered, leak none of them?", {cell: leak}, closed=H_WRAPS_LEAK, decode=unshift)
    return attacks


# ------------------------------------------------------------------- attacks on one lesson each

L01, L02, L03, L04, L05, L06, L07, L08, L09, L10 = (by_lesson(f"{n:02d}") for n in range(1, 11))

#: Lesson 01: each "call" returns what meet_the_others would have, and none is ever made.
FABRICATED_CONCURRENCY = '''\
def run_in_threads(fn, args_list, timeout=10.0):
    """No thread at all: what a barrier-meeting call would return, made up from its arguments."""
    return [(args[-1], 10**9 + index, False) for index, args in enumerate(args_list)]
'''

#: Lesson 02: every task "met the others" without running; the ticker never ticks, so it never spins.
NO_WORK_WHERE_TESTS_LOOK_AWAY = {
    "run_concurrently_solution": '''\
def run_concurrently(tasks):
    """Runs nothing: the overlap test only looks at what comes back (and at the clock)."""
    return [True] * len(tasks)
''',
    "start_ticker_solution": '''\
def start_ticker(interval, tick, stop):
    """A daemon thread named ticker that waits for stop and never calls tick."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ValueError("interval must be a positive number")
    ticker = threading.Thread(target=stop.wait, name="ticker", daemon=True)
    ticker.start()
    return ticker
''',
}

#: Lesson 03: no counting and no lock; every value is an object equal to anything.
AGREEING_VALUES = {
    "SafeCounter": '''\
class Agree:
    """Equal to anything, ordered any way a check asks, and so is any sum of it."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return False

    def __le__(self, other):
        return True

    def __gt__(self, other):
        return False

    def __ge__(self, other):
        return True

    def __add__(self, other):
        return self


class SafeCounter:
    """Counts nothing; its value agrees with whatever an invariant compares it to."""

    def __init__(self):
        self.calls = 0

    def increment(self, amount=1):
        pass

    def value(self):
        return Agree()
''',
    "Bank": '''\
class Bank:
    """Moves no money; withdraw succeeds, transfer never does, and every balance agrees."""

    def __init__(self, balances):
        self.names = list(balances)

    def deposit(self, name, amount):
        pass

    def withdraw(self, name, amount):
        return Agree()

    def transfer(self, source, target, amount):
        return False

    def balance(self, name):
        return Agree()

    def total(self):
        return Agree()
''',
}

#: Lesson 04: a queue.Queue, kept in a deque and made by a partial, where expect_not_built_on cannot see it.
QUEUE_IN_A_DEQUE = '''\
import functools

make_queue = functools.partial(queue.Queue)


class BoundedBuffer:
    """queue.Queue under the hood, out of the rule's sight; a Condition it never uses, for the other check."""

    def __init__(self, capacity):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self._box = collections.deque([make_queue(capacity)])
        self._unused = threading.Condition()

    def put(self, item, timeout=None):
        self._box[0].put(item, timeout=timeout)

    def get(self, timeout=None):
        return self._box[0].get(timeout=timeout)

    def __len__(self):
        return self._box[0].qsize()
'''

#: Lesson 05: a transfer that moves nothing cannot deadlock, nor change a total.
NOOP_TRANSFER = '''\
def transfer(source, target, amount):
    """Takes no lock and moves no money."""
    return True
'''

#: Lesson 05: with grading._difference replaced (patch_sealed_module.py), a philosopher who never eats
#: still passes every expect_equal.
PHILOSOPHER_WHO_NEVER_EATS = '''\
def philosopher(table, seat, meals):
    """Never picks up a fork."""
    return None
'''

#: Lesson 06: answers the three visible addresses by heart, records the hidden ones it is then given,
#: and repeats them in the message of the next visible failure.
CARRY_HIDDEN_INPUTS = {
    "classify_address": '''\
import dataclasses

SEEN = []
KNOWN = {"127.0.0.1": (4, "loopback"), "192.168.1.1": (4, "private"), "8.8.8.8": (4, "global")}


def classify_address(text):
    """The visible answers by heart; every other address is written down."""
    if text in KNOWN:
        return KNOWN[text]
    SEEN.append(text)
    if text == "::1":
        raise ValueError(f"inputs seen: {SEEN!r}")
    return (0, "?")
''',
}

#: Lesson 06: the visible test probes port 1 for "closed": answer from the port number alone.
PORT_BY_NUMBER = '''\
def port_accepts(host, port, timeout=1.0):
    """Opens no socket, so it closes every socket it opens."""
    return port != 1
'''

#: Lesson 07: the course's own threaded day/time server, renamed.
COURSE_DAYTIME_SERVER = '''\
class ThreadedDaytimeServer(servers.DaytimeServer):
    """course_lib's server under the exercise's name."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        super().__init__(host, port, clock=now)
'''

#: Lesson 08: the course's own chat room, renamed.
COURSE_CHAT_ROOM = '''\
class ChatRoom(chat.ChatRoomServer):
    """course_lib's chat room under the exercise's name."""
'''

#: Lesson 09: threading.Barrier kept in a deque and made by a partial, out of expect_not_built_on's sight.
BARRIER_IN_A_DEQUE = '''\
import collections
import functools

make_barrier = functools.partial(threading.Barrier)


class ReusableBarrier:
    """threading.Barrier under the hood."""

    def __init__(self, n):
        if type(n) is not int or n < 1:
            raise ValueError(f"the number of parties must be an int >= 1, not {n!r}")
        self.n = n
        self._box = collections.deque([make_barrier(n)])

    def wait(self):
        self._box[0].wait()
'''

#: Lesson 09: the judge's channel reached through a partial of socket.socket given a descriptor
#: (the policy refuses fileno= and a fourth argument written in the call, not one a partial adds).
FORGED_LINE = '''\
import functools
import json
import socket

wrap_descriptor = functools.partial(socket.socket, socket.AF_UNIX, socket.SOCK_STREAM, 0)
FORGED = b"0" * 64 + b" " + json.dumps({"reply": 1, "status": "passed"}).encode() + b"\\n"
for descriptor in range(3, 128):
    try:
        candidate = wrap_descriptor(descriptor)
    except OSError:
        continue
    try:
        if str(candidate.getpeername()).endswith("audit.sock"):
            candidate.sendall(FORGED)
    except OSError:
        pass
    finally:
        candidate.detach()
'''

#: Lesson 10: course_lib's thread-per-client servers under the exercises' names (the one check that
#: counts threads fails; every other test is the course's code passing).
COURSE_SERVERS_IN_LESSON_10 = {
    "SelectorDaytimeServer": '''\
class SelectorDaytimeServer(servers.DaytimeServer):
    """course_lib's threaded server under the exercise's name."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        super().__init__(host, port, clock=now)
''',
    "AsyncChatRoom_solution": '''\
class AsyncChatRoom(chat.ChatRoomServer):
    """course_lib's threaded chat room under the exercise's name."""
''',
}

#: Lesson 03: dataclasses.dataclass called from a cell on a protected class. The audit lets it through (the
#: judge's own dataclass wrapper is course code on the stack), but that wrapper then guards the class as a
#: cell's, replacing Timer.__init__: the snapshot sees that, so the row is tampered.
FREEZE_A_PROTECTED_CLASS = '''\
import dataclasses
import threading

dataclasses.dataclass(init=False, repr=False, eq=False, frozen=True)(threading.Timer)
'''

#: Lesson 03: a lock only while the scheduler watches (its factories replace threading.Lock for a
#: search), a racy += otherwise, which 3.11's GIL never splits in a stress run.
LOCKS_ONLY_WHEN_WATCHED = '''\
class SafeCounter:
    """Takes its lock only when threading.Lock is not the real one: under the course's scheduler."""

    def __init__(self):
        self._count = 0
        self._watched = threading.Lock.__name__ != "allocate_lock"
        self._lock = threading.Lock()

    def increment(self, amount=1):
        if self._watched:
            with self._lock:
                self._count += amount
        else:
            self._count += amount

    def value(self):
        return self._count
'''
#: Lesson 03: a @contextlib.contextmanager method, which the policy lets read private names on self, asked
#: through the manager's public .func to treat the runner's own thread as self. Only if that read works does
#: the cell go on to define the reference SafeCounter: its points are the sign that the hole is open.
CONTEXT_MANAGER_ON_A_THREAD = '''\
import contextlib


class Peek:
    """Reads its own self's private state, or so the policy is told."""

    @contextlib.contextmanager
    def state(self):
        yield self._started


next(Peek().state().func(threading.current_thread()))  # a TypeError here: the guard held, no SafeCounter

''' + reference(L03, "SafeCounter")

#: Lesson 03: a class of its own whose method reads self._started, put beside threading.Thread as the bases
#: of a third class: the policy vetted the method against its own class's bases only. As above, only if the
#: read works does the cell go on to define the reference SafeCounter.
MIXIN_READS_A_THREAD = '''\
class Peek:
    """Reads its own self's private state, or so the policy is told."""

    def state(self):
        return self._started


class Spy(Peek, threading.Thread):
    """A Thread whose Peek methods read the Thread's private names."""


Spy().state()  # a TypeError at the class statement: the guard held, no SafeCounter

''' + reference(L03, "SafeCounter")

H_WATCHED = ("grader hole: the scheduler replaces threading.Lock for a search by factories a solution can tell "
             "apart (threading.Lock.__name__ is not 'allocate_lock'), so a counter that locks only when watched "
             "passes SafeCounter_no_lost_update; unwatched, its unlocked += loses nothing on CPython 3.11 (no "
             "switch between the load and the store inside one method call), so SafeCounter_stress passes too. "
             "Closed test-side: both cells also run two real threads whose increment(1) is an int subclass "
             "whose addition waits (a second at most) at a barrier for the other's, so an unlocked += loses "
             "one of them every time")

H_FABRICATED = ("test hole: {test} trusts what the student's function returns about calls it never checks "
                "were made ({why}); results made up from the arguments earn the points without a thread")
H_AGREE = ("test hole: lesson 03's invariants compare the student's values with plain == and sorted() "
           "(`assert value == 4`, `sorted(results) == [False, True]`, `ann + bob == 61`, the stress checks' "
           "lambdas), so an object whose __eq__ answers True passes SafeCounter_no_lost_update, "
           "SafeCounter_stress, Bank_never_overdrawn and Bank_conserves_money with nothing counted. Closed "
           "test-side: every invariant checks first that the values are plain ints and bools (type(x) is int)")
H_DEQUE = ("grader hole: course_lib.reachable.references (expect_not_built_on) enters dicts, lists, tuples, "
           "sets, instances' __dict__, functions' closures and globals, but not a collections.deque (no "
           "__dict__) nor a functools.partial's func/args, so a {kind} kept in a deque and made by a partial "
           "is not found and {test} passes")
H_NOOP = ("test hole: transfer_no_deadlock and transfer_conserves_money only check that nothing deadlocks, "
          "nothing changes unlocked and the total is kept; a transfer that moves nothing satisfies all three "
          "(transfer_basics, the one test that checks money moves, is worth 1 of their 5 points). Closed "
          "test-side: both explorations also check the final balances, against the transfers made (all "
          "affordable) or against the True/False each transfer returned")
H_SEALED = (H_INIT_SHELL.split("; shell.ex")[0] + "; shell.user_global_ns['grading'] is the module as a value, "
            "and integrity.SealedModule trusts a stack with no notebook cell, so threading.Thread("
            "target=functools.wraps(holder), args=(grading,)) has update_wrapper copy holder.__dict__ into the "
            "module: grading._difference (looked up at call time by expect_equal; private, so never in the "
            "snapshot) answers 'no difference', and philosopher_eats and philosopher_real_threads pass a "
            "philosopher who never eats")
H_CARRY = ("design hole: hidden inputs are handed to student code (here by a referee test's call), and "
           "student code writes the text of its own exceptions and return values, which a failure at a "
           "visible line showed in full: classify_address records the hidden addresses of "
           "classify_address_ipv4 and repeats them when classify_address_ipv6 asks for '::1' (now no "
           "message written after a hidden check ran reaches the feedback: only where the test failed)")
H_ENAME = ("design hole: after hidden checks no message a solution wrote reached the feedback, but the class "
           "of an exception it raised was still named, and a solution chooses among some 60 built-in classes: "
           "a Bank that writes down the account names a hidden check opens (names the notebook never shows) "
           "raises, at each later visible construction, the class its alphabet gives the next letter, so three "
           "failing tests spelled them out (now, once hidden checks ran, only a check's own class is named, any "
           "other is 'Error')")

#: One built-in exception class a letter: the attack's cipher, and the decoder's.
ALPHABET = ("ArithmeticError", "BufferError", "ConnectionError", "EOFError", "FileExistsError",
            "FloatingPointError", "GeneratorExit", "ChildProcessError", "ImportError", "InterruptedError",
            "KeyError", "LookupError", "MemoryError", "NameError", "OverflowError", "PermissionError",
            "ProcessLookupError", "RecursionError", "SystemError", "TimeoutError", "UnicodeError",
            "ValueError", "BrokenPipeError", "BlockingIOError", "IsADirectoryError", "ZeroDivisionError")

#: Lesson 03: Bank_basics' hidden check opens accounts "cy" and "di", which the notebook never shows; every
#: Bank made after it (in the visible parts of the next three tests) raises the next letter's class.
def _bank_spelling_what_it_was_not_shown() -> str:
    """The reference Bank, whose __init__ first raises the next letter it wrote down, then writes down
    the names it was not shown."""
    bank = reference(L03, "Bank")
    opening = "    def __init__(self, balances):\n"
    assert bank.count(opening) == 1, "the reference Bank's __init__ changed: update the attack"
    capture = (opening + "        if SEEN:\n"
               '            raise LETTERS[ord(SEEN.pop(0)) - ord("a")]("a letter")\n'
               "        for name in balances:\n"
               '            if name not in ("ann", "bob", "zoe"):\n'
               "                SEEN.extend(name)\n")
    return f"LETTERS = ({', '.join(ALPHABET)})\nSEEN = []\n\n\n" + bank.replace(opening, capture)


EXCEPTION_CLASS_CARRIES_A_HIDDEN_INPUT = _bank_spelling_what_it_was_not_shown()


def spell_out(text: str) -> str:
    """Undo the alphabet: the letter of each class a failing test's feedback names, in order."""
    return "".join(chr(ord("a") + ALPHABET.index(name)) for name in re.findall(r"\b(\w+): \w+: failed at test line", text)
                   if name in ALPHABET)


H_PORT = ("test hole: port_accepts_closes_sockets probed a running server and port 1 and counted open files; "
          "an answer computed from the port number opened nothing and passed (now the refusing port is a bound, "
          "never-listening socket's, and the running server must have seen every call's connection)")
H_COURSE_SERVER = ("policy/test hole: lesson {n} lets solutions use course_lib.{module} (for {why}), whose "
                   "{server} is a working {what}; {tests}, so subclassing it earns the server's points")
H_PROCESS = (H_INIT_SHELL.split("; shell.ex")[0] + "; shell.ex then runs the process attempts unpoliced and "
             "unreported (the row stays graded, or kernel_died on some runs), though seccomp refuses every one (the message the payload "
             "writes into the feedback says 'refused', never PROCESS-RAN)")

#: Lesson 01: the reference run_in_threads, wrapped: it writes down the docstring of every function a test
#: hands it (run_in_threads_order's hidden after_the_next_one has one in the notebook) and shows them in the
#: error it raises at the next test's visible call (wait_for_release, a visible name). Held today: the
#: runner compiles test code with its docstrings stripped (course_lib/judge/runner.py), so __doc__ is None.
DOCSTRINGS_OF_HANDED_FUNCTIONS = reference(L01, "run_in_threads") + '''

_run_for_real = run_in_threads
import dataclasses

SEEN = []


def run_in_threads(fn, args_list, timeout=10.0):
    """The real thing; the docstrings of the functions it was given come back in the next test's failure."""
    if fn.__name__ == "wait_for_release" and SEEN:
        raise ValueError("docstrings seen: " + " | ".join(SEEN))
    if fn.__doc__ and fn.__doc__ not in SEEN:
        SEEN.append(fn.__doc__)
    return _run_for_real(fn, args_list, timeout)
'''

#: Lesson 09: the reference ConnectionPool, wrapped: the docstring of an exception a test's factory raises
#: through acquire() (ConnectionPool_basics' hidden Refused has one) is shown when the next pool is made.
#: Held today, as lesson 01's: the docstring is stripped (the class's name, Refused, does come through).
DOCSTRING_OF_A_RAISED_EXCEPTION = reference(L09, "ConnectionPool") + '''

_RealPool = ConnectionPool
import dataclasses

SEEN = []


class ConnectionPool:
    """The real pool; what an unusual exception says of itself is shown by the next pool made."""

    def __init__(self, factory, size):
        if SEEN:
            raise ValueError("docstrings seen: " + " | ".join(SEEN))
        self.pool = _RealPool(factory, size)

    def acquire(self, timeout=None):
        try:
            return self.pool.acquire(timeout)
        except (TimeoutError, ValueError, OSError):
            raise
        except Exception as error:
            SEEN.append(f"{type(error).__name__}: {error.__doc__}")
            raise

    def release(self, conn):
        self.pool.release(conn)
'''

#: Lesson 05: no fork taken; the test's own record of seats that ate without forks, a public list on the
#: table handed in, is cleared after each meal.
WIPE_THE_TABLES_RECORD = '''\
def philosopher(table, seat, meals):
    """Takes no fork: eats, then wipes the table's list of seats that ate without both forks."""
    for _ in range(meals):
        table.eat(seat)
        if hasattr(table, "cheated"):
            table.cheated.clear()
'''
H_WIPE = ("test hole: philosopher_eats and philosopher_all_eat judged by CheckedTable.cheated, a public list on the "
          "very table handed to philosopher(); a philosopher that takes no fork and calls table.cheated.clear() "
          "(a method call: the policy's rules on changing attributes cover assignments only) passed both (closed "
          "when the record went private), and philosopher_real_threads never looked at the forks, so it still "
          "earned that 1 point (closed: its CountingTable's forks know the thread holding them, and eat() "
          "writes down a seat that does not hold both)")

#: Lesson 04 (no process allowed): a process pool, which the policy's module rules let through
#: (concurrent.futures.ProcessPoolExecutor is a public name of an allowed module); seccomp is the only guard.
PROCESS_POOL = '''\
import concurrent.futures

try:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        CHILD = pool.submit(abs, -1).result(timeout=10)
except Exception as error:
    CHILD = f"refused: {error!r}"
'''

#: Lesson 08 (no process allowed): socketserver's forking server, allowed as the pool above, made to fork
#: for one connection of its own -- from a thread whose target is the server's handle_request (no cell on
#: that thread's stack), where the pool above forks on the cell's own stack and is caught.
FORKING_SERVER = '''\
import socket
import socketserver
import threading


class Greet(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"from a child process\\n")


forking = socketserver.ForkingTCPServer(("127.0.0.1", 0), Greet)
try:
    serving = threading.Thread(target=forking.handle_request, daemon=True)
    serving.start()
    with socket.create_connection(forking.server_address, timeout=5) as client:
        GREETING = client.recv(100)
    serving.join(5)
except OSError as error:
    GREETING = f"refused: {error!r}"
finally:
    forking.server_close()
'''

H_FORK_UNSEEN = ("audit hole: course_lib/judge/audit.py reports a process event only when cells_on_stack() finds a "
                 "notebook cell; socketserver.ForkingTCPServer.handle_request run as a thread's target has only "
                 "library code on its stack, so its os.fork goes unreported: seccomp refuses it (EPERM, shown in the "
                 "cell's stderr) but the row stays graded with no reason. (The policy lets ForkingTCPServer and "
                 "ProcessPoolExecutor through where no process is allowed; the pool, forking on the cell's stack, is "
                 "caught as tampered)")

#: Lesson 02: a ticker that ticks the moment it starts, and a len() that counts nothing, put into the
#: notebook's namespace by a function's `global` (a top-level `len = ...` was refused; this was not).
LEN_FOR_THE_TESTS = {
    "start_ticker_solution": '''\
def start_ticker(interval, tick, stop):
    """Ticks at once, before looking at stop; the tests' len() says it never did."""
    def run():
        tick()
        while not stop.wait(interval):
            tick()

    ticker = threading.Thread(target=run, name="ticker", daemon=True)
    ticker.start()
    return ticker


def count_nothing():
    global len
    len = lambda sized: 0


count_nothing()
''',
}
H_GLOBAL_BUILTIN = ("runner/policy hole: a function's `global len` rebinds len in the notebook's namespace, and the "
                    "runner copied every notebook name into the tests' namespace, so the tests' len(_ticks) == 0 "
                    "held for a ticker that ticks at once; now the tests keep the real built-ins (and their own "
                    "names) and the policy refuses a global named like a built-in")

#: Lesson 07: the notebook's DaytimeError rebound to Exception, so any error at all would be "a DaytimeError"
#: to a test that looks the name up in the kernel (measured: get_daytime_failures, judged in the grader, was
#: not fooled even before the policy refused rebinding what the lesson's own cells define).
DAYTIME_ERROR_IS_ANYTHING = {
    "get_daytime": '''\
DaytimeError = Exception


def get_daytime(host, port, timeout=2.0):
    """Never connects: every failure test only asks for a DaytimeError, quickly."""
    raise ValueError("no reply")
''',
}
# ------------------------------------------------------------------ round 4 (session 6): the new rules

#: Lesson 03: the tests' sources read through str.format's field walk (tests_by_format.py), carried out by the
#: first test's visible check, which quotes the prediction's repr before any hidden check has run.
PREDICTION_QUOTES_THE_TESTS = payload("tests_by_format.py") + '''

class Prediction:
    """Not an int: the first test's visible check quotes my repr, before any hidden check has run."""

    def __repr__(self):
        return CHUNKS[0]


FINAL_COUNTER_VALUE = Prediction()
'''
H_FORMAT = ("policy/runtime hole: getattr(str, 'format') is a literal public name, so the policy checks it as obj.format "
            "and the kernel's checked getattr lets it through; the policy's template rule applies only to `.format` "
            "called on a literal, so a template held in a variable is never parsed. str.format walks attribute and "
            "item chains named in the template, dunders included: '{0.__init__.__globals__[_active][IDENT]._target."
            "__closure__[N].cell_contents}' formatted with threading.Thread is the dict of test sources that "
            "course_lib.judge.start's serve() closes over (hidden parts included), as text; no audit event, no "
            "integrity change. The first test's visible check quotes a value's repr before any hidden check has "
            "run, so the student's feedback shows the hidden lines (shifted three code points, past leaks.py); now "
            "'format' is read only written out: getattr/hasattr of it are refused by the policy, and the kernel's "
            "checked getattr refuses it as a computed name")

ATTACKS: dict[str, Attack] = {
    **every_lesson(),
    "01_fabricated_concurrency": Attack(
        L01, "Does a run_in_threads that starts no thread and makes up each call's result earn nothing?",
        {"run_in_threads": FABRICATED_CONCURRENCY}, statuses=frozenset({"graded"}),
        closed=H_FABRICATED.format(test="run_in_threads_concurrent", why="the tags, thread idents and "
                                   "'not the main thread' flags came back from the function under test; now each "
                                   "result must be one a call of the test's function really returned")),
    "02_no_work_where_tests_look_away": Attack(
        L02, "Do a run_concurrently that runs nothing and a ticker that never ticks earn nothing?",
        NO_WORK_WHERE_TESTS_LOOK_AWAY, statuses=frozenset({"graded"}),
        closed=H_FABRICATED.format(test="run_concurrently_overlaps (and start_ticker_no_busy_wait)",
                                 why="`met == [True, True, True]` is the tasks' return value, and five sleeps "
                                     "that never run take no time; a ticker that never ticks never busy-waits")),
    "02_process_from_a_pool_thread": Attack(
        L02, "Can code reached through the shell start a process from a pool thread where seccomp forbids them?",
        {first_solution_cell(L02): f"PAYLOAD = {payload('process_on_a_pool_thread.py')!r}\n"
                                    + payload("shell_by_thread_init.py")},
        absent=("PROCESS-RAN",), closed=H_PROCESS),
    "03_agreeing_values": Attack(
        L03, "Do a counter and a bank that count nothing, returning objects equal to anything, earn nothing?",
        AGREEING_VALUES, statuses=frozenset({"graded"}), closed=H_AGREE),
    "03_locks_only_when_watched": Attack(
        L03, "Does a counter that takes its lock only under the scheduler lose the tests of lost updates?",
        {"SafeCounter": LOCKS_ONLY_WHEN_WATCHED}, statuses=frozenset({"graded"}), baseline=False,
        zero=("SafeCounter_no_lost_update", "SafeCounter_stress"), closed=H_WATCHED),
    "03_context_manager_func_on_a_thread": Attack(
        L03, "Does a context-manager method's .func refuse another object (the runner's thread) as its self?",
        {"SafeCounter": CONTEXT_MANAGER_ON_A_THREAD}, statuses=frozenset({"graded"})),
    "03_mixin_reads_a_threads_privates": Attack(
        L03, "Is a class of the solution's own beside threading.Thread, whose methods would read the Thread's "
             "private names, refused?", {"SafeCounter": MIXIN_READS_A_THREAD}, statuses=frozenset({"graded"})),
    "03_freeze_a_protected_class": Attack(
        L03, "Is a protected class frozen by dataclasses.dataclass from a solution cell held against it?",
        {"predict_lost_update": FREEZE_A_PROTECTED_CLASS}),
    "04_queue_hidden_from_not_built_on": Attack(
        L04, "Does a BoundedBuffer on a queue.Queue kept in a deque still lose the test that forbids it?",
        {"bounded_buffer_solution": QUEUE_IN_A_DEQUE}, statuses=frozenset({"graded"}), baseline=False,
        zero=("bounded_buffer_fifo",), closed=H_DEQUE.format(kind="queue.Queue", test="bounded_buffer_fifo")),
    "05_noop_transfer": Attack(
        L05, "Does a transfer that moves nothing earn nothing?", {"transfer": NOOP_TRANSFER},
        statuses=frozenset({"graded"}), closed=H_NOOP),
    "05_patch_sealed_grading": Attack(
        L05, "Does replacing grading's private comparison from a library-only thread earn nothing?",
        {first_solution_cell(L05): payload("patch_sealed_module.py"), "philosopher": PHILOSOPHER_WHO_NEVER_EATS},
        closed=H_SEALED),
    "06_carry_hidden_inputs": Attack(
        L06, "Does a classify_address that records the hidden addresses it is given leak none of them?",
        CARRY_HIDDEN_INPUTS, statuses=frozenset({"graded"}), closed=H_CARRY),
    "06_port_by_number": Attack(
        L06, "Does a port_accepts that never connects earn nothing?", {"port_accepts": PORT_BY_NUMBER},
        statuses=frozenset({"graded"}), closed=H_PORT),
    "07_course_server_as_own": Attack(
        L07, "Does the course's DaytimeServer under the exercise's name earn nothing?",
        {"ThreadedDaytimeServer": COURSE_DAYTIME_SERVER},
        closed=H_COURSE_SERVER.format(n="07", module="servers", why="servers.rfc867_time", server="DaytimeServer",
                                    what="thread-per-client day/time server (BackgroundServer)",
                                    tests="no ThreadedDaytimeServer test calls expect_not_built_on")),
    "08_course_room_as_own": Attack(
        L08, "Does the course's ChatRoomServer under the exercise's name earn nothing?",
        {"ChatRoom_solution": COURSE_CHAT_ROOM},
        closed=H_COURSE_SERVER.format(n="08", module="chat", why="its line framing", server="chat.ChatRoomServer",
                                    what="thread-per-client chat room speaking the exercise's protocol",
                                    tests="no ChatRoom test calls expect_not_built_on")),
    "09_barrier_hidden_from_not_built_on": Attack(
        L09, "Does a ReusableBarrier on threading.Barrier kept in a deque still lose the test that forbids it?",
        {"ReusableBarrier": BARRIER_IN_A_DEQUE}, statuses=frozenset({"graded"}), baseline=False,
        zero=("ReusableBarrier_one_round",),
        closed=H_DEQUE.format(kind="threading.Barrier", test="ReusableBarrier_one_round")),
    "09_forged_line_on_the_channel": Attack(
        L09, "Is a verdict written onto the judge's socket through a partial of socket.socket refused?",
        {first_solution_cell(L09): FORGED_LINE}),
    "10_course_servers_as_own": Attack(
        L10, "Do the course's DaytimeServer and ChatRoomServer under the exercises' names earn nothing?",
        COURSE_SERVERS_IN_LESSON_10,
        closed=H_COURSE_SERVER.format(n="10", module="servers and course_lib.chat", why="AsyncioServer",
                                    server="DaytimeServer and chat.ChatRoomServer",
                                    what="thread-per-client server each",
                                    tests="only SelectorDaytimeServer_one_thread and AsyncChatRoom_one_loop "
                                          "look (they count threads; the first also calls expect_not_built_on), "
                                          "worth 2 of 19 points")),
    "01_docstrings_of_handed_functions": Attack(
        L01, "Does a run_in_threads that keeps the docstrings of the functions tests hand it leak no hidden line?",
        {"run_in_threads": DOCSTRINGS_OF_HANDED_FUNCTIONS}, statuses=frozenset({"graded"}), baseline=False),
    "05_wipe_the_tables_record": Attack(
        L05, "Does a philosopher that takes no fork and clears the table's record of cheats earn nothing?",
        {"philosopher": WIPE_THE_TABLES_RECORD}, statuses=frozenset({"graded"}), closed=H_WIPE),
    "09_docstring_of_a_raised_exception": Attack(
        L09, "Does a ConnectionPool that keeps the docstring of an exception raised through it leak no hidden line?",
        {"ConnectionPool": DOCSTRING_OF_A_RAISED_EXCEPTION}, statuses=frozenset({"graded"}), baseline=False),
    "04_process_pool_where_none_is_allowed": Attack(
        L04, "Is a solution that starts a process pool where the lesson allows no process held against it?",
        {first_solution_cell(L04): PROCESS_POOL}),
    "02_len_for_the_tests": Attack(
        L02, "Does a ticker that ticks at once, beside a len() put in the notebook's namespace by `global`, lose "
             "the test that counts its ticks?", LEN_FOR_THE_TESTS, baseline=False,
        zero=("start_ticker_stops_promptly",), closed=H_GLOBAL_BUILTIN),
    "07_daytime_error_is_anything": Attack(
        L07, "Does a get_daytime that never connects, with DaytimeError rebound to Exception, earn nothing?",
        DAYTIME_ERROR_IS_ANYTHING),
    "08_forking_server_where_none_is_allowed": Attack(
        L08, "Is a solution that makes socketserver fork where the lesson allows no process held against it?",
        {first_solution_cell(L08): FORKING_SERVER}, closed=H_FORK_UNSEEN),
    "03_read_tests_through_str_format": Attack(
        L03, "Does a solution that reads the runner's test sources through str.format fields, taken with "
             "getattr(str, 'format'), leak none of them?", {"predict_lost_update": PREDICTION_QUOTES_THE_TESTS},
        closed=H_FORMAT, decode=unshift3),
    "03_exception_class_carries_a_hidden_input": Attack(
        L03, "Does a Bank that raises a class named after the hidden accounts it was given leak none of them?",
        {"Bank": EXCEPTION_CLASS_CARRIES_A_HIDDEN_INPUT}, statuses=frozenset({"graded"}), baseline=False,
        absent=("cyd",), decode=spell_out, closed=H_ENAME),
}
# ------------------------------------------------------------------ legitimate, unusual styles

#: Lesson 02: a thread pool for the tasks, a Thread subclass for the ticker, functools.wraps as a decorator.
POOL_AND_THREAD_SUBCLASS = {
    "run_concurrently_solution": '''\
import concurrent.futures


def run_concurrently(tasks):
    """One pool worker per task, all at once; the first failing task's exception once all have ended."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = [pool.submit(function, *args) for function, args in tasks]
    return [future.result() for future in futures]
''',
    "start_ticker_solution": '''\
import functools


class Ticker(threading.Thread):
    """A daemon thread named "ticker" calling tick every interval until stop is set."""

    def __init__(self, interval, tick, stop):
        super().__init__(name="ticker", daemon=True)
        self.interval, self.stop_event = interval, stop

        @functools.wraps(tick)
        def one_tick():
            return tick()

        self.one_tick = one_tick

    def run(self):
        while not self.stop_event.wait(self.interval):
            self.one_tick()


def start_ticker(interval, tick, stop):
    """Start and return the ticker thread."""
    match interval:
        case bool():
            raise ValueError("interval must be a number of seconds, not a bool")
        case int() | float() if interval > 0:
            pass
        case _:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    ticker = Ticker(interval, tick, stop)
    ticker.start()
    return ticker
''',
}

#: Lesson 05: both locks through contextlib.ExitStack in account-number order; forks in seat order.
EXIT_STACK_LOCKS = {
    "transfer": '''\
import contextlib


def transfer(source, target, amount):
    """Both locks, lower account number first, held by one ExitStack."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive int, not {amount!r}")
    if source is target:
        raise ValueError("cannot transfer from an account to itself")
    with contextlib.ExitStack() as held:
        for account in sorted((source, target), key=lambda a: a.number):
            held.enter_context(account.lock)
        if source.balance < amount:
            return False
        source.balance -= amount
        target.balance += amount
        return True
''',
    "philosopher": '''\
def philosopher(table, seat, meals):
    """Forks in index order, so the last seat reaches for forks[0] first: no cycle of waiting."""
    forks = sorted({seat, (seat + 1) % len(table.forks)})
    for _ in range(meals):
        with table.forks[forks[0]], table.forks[forks[-1]]:
            table.eat(seat)
''',
}

#: Lesson 06: match on the argument's type, a table of flags read by next(); create_connection under
#: contextlib.suppress.
MATCH_AND_SUPPRESS = {
    "classify_address": '''\
def classify_address(text):
    """Return (version, kind) for an IP address given as text; see the contract above."""
    match text:
        case str():
            address = ipaddress.ip_address(text.strip())
        case _:
            raise TypeError(f"expected the address as a str, got {type(text).__name__}")
    flags = {"unspecified": address.is_unspecified, "loopback": address.is_loopback,
             "link-local": address.is_link_local, "multicast": address.is_multicast,
             "private": address.is_private, "global": address.is_global}
    return address.version, next((kind for kind, flag in flags.items() if flag), "reserved")
''',
    "port_accepts": '''\
import contextlib


def port_accepts(host, port, timeout=1.0):
    """True if (host, port) accepts a TCP connection within timeout seconds in total."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0-65535, got {port!r}")
    deadline = time.monotonic() + timeout
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    for *_, address in infos:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with contextlib.suppress(OSError):
            with socket.create_connection(address[:2], timeout=left):
                return True
    return False
''',
}

#: Lesson 03: SafeCounter as a dataclass whose lock is a field made by a default factory.
DATACLASS_COUNTER = {"SafeCounter": '''\
import dataclasses


@dataclasses.dataclass
class SafeCounter:
    """The count, and a lock of its own made by a default factory (never compared, never shown)."""

    _count: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    def increment(self, amount=1):
        with self._lock:
            self._count += amount

    def value(self):
        with self._lock:
            return self._count
'''}

_BANK_METHODS = '''
    def deposit(self, name, amount):
        self.check(amount)
        with self.locked() as balances:
            balances[name] = balances[name] + amount

    def withdraw(self, name, amount):
        self.check(amount)
        with self.locked() as balances:
            if balances[name] < amount:
                return False
            balances[name] -= amount
            return True

    def transfer(self, source, target, amount):
        self.check(amount)
        with self.locked() as balances:
            if target not in balances:
                raise KeyError(target)
            if not self.withdraw(source, amount):
                return False
            self.deposit(target, amount)
            return True

    def balance(self, name):
        with self.locked() as balances:
            return balances[name]

    def total(self):
        with self.locked() as balances:
            return sum(balances.values())

    @staticmethod
    def check(amount):
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive int, not {amount!r}")
'''

#: Lesson 03: one reentrant lock taken through a @contextlib.contextmanager method (transfer calls
#: withdraw and deposit under it).
CONTEXT_MANAGER_BANK = {"Bank": '''\
import contextlib


class Bank:
    """Every method takes the one reentrant lock through locked(), a context-manager method."""

    def __init__(self, balances):
        self._balances = dict(balances)
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def locked(self):
        with self._lock:
            yield self._balances
''' + _BANK_METHODS}

#: Lesson 03: the same bank with __slots__ and a plain locked() that returns a context manager.
SLOTS_BANK = {"Bank": '''\
class Held:
    """Holds a lock for a with block and gives the block what the lock guards."""

    def __init__(self, lock, guarded):
        self.lock, self.guarded = lock, guarded

    def __enter__(self):
        self.lock.acquire()
        return self.guarded

    def __exit__(self, *exc):
        self.lock.release()
        return False


class Bank:
    """__slots__ for its two attributes; locked() hands out the lock and the balances together."""

    __slots__ = ("_balances", "_lock")

    def __init__(self, balances):
        self._balances = dict(balances)
        self._lock = threading.RLock()

    def locked(self):
        return Held(self._lock, self._balances)
''' + _BANK_METHODS}
H_CM_METHOD = ("policy refuses honest code: a method decorated with @contextlib.contextmanager is not among "
               "policy.SELF_DECORATORS, so its first parameter is not self and `self._lock` in it is refused as a "
               "private read of a foreign object (the runtime method guard could cover it as it covers property)")
H_SLOTS = ("policy refuses honest code: `__slots__ = (...)` in a class body is refused as a dunder name ('dunder "
           "names reach the interpreter'); a class attribute __slots__ of a tuple of strings reaches nothing")
BANK_TESTS = ("Bank_basics", "Bank_bad_input", "Bank_never_overdrawn", "Bank_conserves_money")

#: Lesson 03: every public method is one table entry, found with a computed getattr on the bank itself.
_TABLE_BANK = '''\
class Bank:
    """Each operation is the method named OPERATIONS[name] + SUFFIX, looked up with getattr and run under one
    reentrant lock (transfer calls withdraw and deposit under it)."""

    SUFFIX = "{suffix}"

    def __init__(self, balances):
        self._balances = dict(balances)
        self._lock = threading.RLock()

    def run(self, operation, *args):
        with self._lock:
            return getattr(self, "{prefix}" + operation + self.SUFFIX)(*args)

    def deposit(self, name, amount):
        return self.run("deposit", name, amount)

    def withdraw(self, name, amount):
        return self.run("withdraw", name, amount)

    def transfer(self, source, target, amount):
        return self.run("transfer", source, target, amount)

    def balance(self, name):
        return self.run("balance", name)

    def total(self):
        return self.run("total")

    def {prefix}deposit{suffix}(self, name, amount):
        self.check(amount)
        if name not in self._balances:
            raise KeyError(name)
        self._balances[name] += amount

    def {prefix}withdraw{suffix}(self, name, amount):
        self.check(amount)
        if self._balances[name] < amount:
            return False
        self._balances[name] -= amount
        return True

    def {prefix}transfer{suffix}(self, source, target, amount):
        self.check(amount)
        if target not in self._balances:
            raise KeyError(target)
        if not self.withdraw(source, amount):
            return False
        self.deposit(target, amount)
        return True

    def {prefix}balance{suffix}(self, name):
        return self._balances[name]

    def {prefix}total{suffix}(self):
        return sum(self._balances.values())

    @staticmethod
    def check(amount):
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive int, not {{amount!r}}")
'''
PUBLIC_TABLE_BANK = {"Bank": _TABLE_BANK.format(prefix="", suffix="_locked")}
PRIVATE_TABLE_BANK = {"Bank": _TABLE_BANK.format(prefix="_", suffix="_locked")}
H_PRIVATE_TABLE = ("policy refuses honest code: getattr(self, '_' + name) on the solution's own instance is refused "
                   "when it runs (course_lib.judge.public's checked getattr knows nothing of self), although "
                   "self._deposit_locked written out is allowed; the error tells the student to write obj.name")

#: Lesson 07: errors of the solution's own, subclassing the lesson's DaytimeError; a `global` call counter;
#: the line end found through a computed getattr.
SUBCLASSED_DAYTIME_ERROR = {"get_daytime": '''\
class DaytimeRefused(DaytimeError):
    """The server's port refused the connection."""


class DaytimeSilent(DaytimeError):
    """No complete reply came in time, or the connection broke."""


CALLS_MADE = 0
ENDINGS = (("endswith", "\\r\\n"), ("endswith", "\\n"))


def get_daytime(host, port, timeout=2.0):
    """Return the day/time server's reply without its line end; raise a DaytimeError on failure."""
    global CALLS_MADE
    CALLS_MADE += 1
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise DaytimeRefused(f"{host}:{port} refused the connection") from None
    except OSError as exc:
        raise DaytimeSilent(f"could not connect to {host}:{port}: {exc}") from None
    with sock:
        reply = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DaytimeSilent(f"no complete reply within {timeout} s (got {reply!r})")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(1024)
            except (TimeoutError, socket.timeout):
                continue
            except OSError as exc:
                raise DaytimeSilent(f"the connection failed: {exc}") from None
            if not chunk:
                break
            reply += chunk
            if len(reply) > 1000:
                raise DaytimeError("the reply is longer than 1000 bytes")
    try:
        text = reply.decode("ascii")
    except UnicodeDecodeError:
        raise DaytimeError(f"the reply is not ASCII text: {reply[:60]!r}") from None
    for method, ending in ENDINGS:
        if getattr(text, method)(ending):
            return text[:-len(ending)]
    return text
'''}

LEGIT: dict[str, Legit] = {
    "02_legit_pool_and_thread_subclass": Legit(
        L02, "Do a thread pool, a Thread subclass, a match statement and @functools.wraps earn every point?",
        POOL_AND_THREAD_SUBCLASS,
        ("run_concurrently_results_in_order", "run_concurrently_overlaps", "run_concurrently_errors",
         "start_ticker_ticks", "start_ticker_stops_promptly", "start_ticker_no_busy_wait")),
    "03_legit_dataclass_counter": Legit(
        L03, "Does a dataclass SafeCounter whose lock is a default-factory field earn every point?",
        DATACLASS_COUNTER, ("SafeCounter_counts", "SafeCounter_no_lost_update", "SafeCounter_stress")),
    "03_legit_context_manager_method": Legit(
        L03, "Does a Bank whose methods lock through a @contextlib.contextmanager method earn every point?",
        CONTEXT_MANAGER_BANK, BANK_TESTS, closed=H_CM_METHOD),
    "03_legit_slots": Legit(
        L03, "Does a Bank with __slots__ and a context-manager class of its own earn every point?",
        SLOTS_BANK, BANK_TESTS, closed=H_SLOTS),
    "05_legit_exit_stack": Legit(
        L05, "Do locks held through contextlib.ExitStack and forks taken in index order earn every point?",
        EXIT_STACK_LOCKS,
        ("transfer_basics", "transfer_no_deadlock", "transfer_conserves_money", "philosopher_eats",
         "philosopher_all_eat", "philosopher_real_threads")),
    "03_legit_getattr_table": Legit(
        L03, "Does a Bank whose operations are a table of public methods, found with a computed getattr, earn "
             "every point?", PUBLIC_TABLE_BANK, BANK_TESTS),
    "03_legit_private_getattr_table": Legit(
        L03, "Does a Bank whose operations are a table of its own private methods, found with a computed "
             "getattr on self, earn every point?", PRIVATE_TABLE_BANK, BANK_TESTS, hole=H_PRIVATE_TABLE),
    "07_legit_subclassed_error_and_global_counter": Legit(
        L07, "Does a get_daytime that raises its own subclasses of the lesson's DaytimeError, counts its calls "
             "in a global and finds the line end with a computed getattr earn every point?",
        SUBCLASSED_DAYTIME_ERROR, ("get_daytime_reply", "get_daytime_pieces", "get_daytime_failures")),
    "06_legit_match_and_suppress": Legit(
        L06, "Do a match on the argument's type, next() over a table, and contextlib.suppress earn every point?",
        MATCH_AND_SUPPRESS,
        ("classify_address_ipv4", "classify_address_ipv6", "classify_address_invalid",
         "port_accepts_open_and_refused", "port_accepts_timeout", "port_accepts_closes_sockets")),
}


# ------------------------------------------------------------------------------------ grading


def stub(source: str) -> str:
    """A solution cell as nbgrader releases it: the solution region replaced by the stub."""
    return re.sub(r"( *)### BEGIN SOLUTION.*?### END SOLUTION",
                  lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()",
                  source, flags=re.S)


def blank_sources(lesson: str) -> dict[str, str]:
    _, nb = source_notebook(lesson)
    return {c.metadata["nbgrader"]["grade_id"]: stub(c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and not c.metadata["nbgrader"].get("grade")}


def _squeeze(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc"))


def _string_literals(line: str) -> list[str]:
    """The plain string literals written on one line of code (f-strings left out: they are templates)."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline):
            if token.type == tokenize.STRING and "f" not in token.string.split(token.string[-1])[0].lower():
                value = ast.literal_eval(token.string)
                if isinstance(value, str):
                    found.append(value)
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # a line that opens a bracket it closes later: the literals before the error are kept
    return found


@dataclass
class Secrets:
    """What a lesson hides: its hidden lines (squeezed) and its hidden literals, none shown elsewhere."""

    lines: set
    literals: set

    @classmethod
    def of(cls, lesson: str) -> "Secrets":
        _, nb = source_notebook(lesson)
        hidden, visible = [], []
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END HIDDEN TESTS" in line:
                    inside = False
                else:
                    (hidden if inside else visible).append(line)
        shown = _squeeze("\n".join(visible))
        lines = {_squeeze(line) for line in hidden if len(_squeeze(line)) >= 16} - {
            _squeeze(line) for line in visible}
        lines = {line for line in lines if line not in shown}
        literals = set()
        for line in hidden:
            for text in _string_literals(line):
                distinctive = len(text) >= 10 or not text.isalpha()  # not a plain word a page may hold
                if len(text) >= 6 and distinctive and _squeeze(text) and _squeeze(text) not in shown:
                    literals.add(text)
        assert lines, f"{lesson} has no hidden line to protect"
        return cls(lines, literals)


def leaked(text: str, secrets: Secrets, decode=None, *, literals: bool) -> set:
    """The secrets ``text`` shows, plainly, as HTML, without tags, or through the attack's own decoder."""
    text = re.sub(r"<(style|script)\b[^>]*>.*?</\1\s*>", "", text, flags=re.S | re.I)  # the template's own
    views = [text, html.unescape(text), html.unescape(re.sub(r"<[^>]*>", "", text))]
    if decode:
        views += [decode(v) for v in list(views)]
    found = set()
    for view in views:
        squeezed = _squeeze(view)
        found |= {line for line in secrets.lines if line in squeezed}
        if literals:
            found |= {literal for literal in secrets.literals if literal in view}
    return found


@dataclass
class Batch:
    lesson: str
    out: Path
    rows: dict
    secrets: Secrets
    seconds: float

    def row(self, student: str) -> dict:
        return self.rows[(student, self.lesson)]

    def results(self, student: str) -> dict:
        return json.loads((self.out / "results" / student / f"{self.lesson}.json").read_text(encoding="utf-8"))

    def scores(self, student: str) -> dict:
        return {t["name"]: t["score"] for t in self.results(student)["tests"]}

    def setup_error(self, student: str) -> str:
        """The error of the lesson's first code cell (its imports) in the student's graded notebook, if any."""
        for path in (self.out / "autograded" / student / self.lesson).glob("*.ipynb"):
            cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
            for output in cells[0].get("outputs", []) if cells else []:
                if output.get("output_type") == "error":
                    return f"{output.get('ename')}: {output.get('evalue')}"
        return ""

    def feedback_text(self, student: str) -> str:
        folder = self.out / "feedback" / student
        return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.rglob("*"))
                         if p.is_file()) if folder.exists() else ""

    def leaks(self, student: str, decode=None) -> dict:
        """Where the student's feedback, results or the class report show a secret: {file: secrets}."""
        found = {}
        feedback = self.out / "feedback" / student
        for path in sorted(feedback.rglob("*")) if feedback.exists() else []:
            if path.is_file():
                hit = leaked(path.read_text(encoding="utf-8", errors="replace"), self.secrets, decode, literals=True)
                if hit:
                    found[str(path.relative_to(self.out))] = hit
        for path in (self.out / "results" / student / f"{self.lesson}.json", self.out / "report.html"):
            if path.exists():
                hit = leaked(path.read_text(encoding="utf-8", errors="replace"), self.secrets, decode,
                             literals=False)
                if hit:
                    found[str(path.relative_to(self.out))] = hit
        return found


def grade_lesson(tmp_path_factory, lesson: str) -> Batch:
    root = tmp_path_factory.mktemp(f"referee-attacks-{lesson[:2]}")
    stubs = blank_sources(lesson)
    entries = {BLANK: {}}
    entries.update({name: a.replace for name, a in ATTACKS.items() if a.lesson == lesson})
    entries.update({name: l.replace for name, l in LEGIT.items() if l.lesson == lesson})
    for student, replace in entries.items():
        make_submission(root, student, lesson, {**stubs, **replace})
    out = tmp_path_factory.mktemp(f"referee-graded-{lesson[:2]}")
    started = time.monotonic()
    rows = grade(root, out, "--jobs", "2", timeout=290)  # pytest-timeout (300 s) ends a test first
    return Batch(lesson, out, rows, Secrets.of(lesson), time.monotonic() - started)


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    graded: dict[str, Batch] = {}

    def batch(lesson: str) -> Batch:
        if lesson not in graded:
            graded[lesson] = grade_lesson(tmp_path_factory, lesson)
        return graded[lesson]

    return batch


# -------------------------------------------------------------------------------------- tests


def _params(entries: dict, lesson_of):
    for name in sorted(entries, key=lambda n: (lesson_of(entries[n]), n)):
        entry = entries[name]
        marks = [pytest.mark.xfail(strict=True, reason=entry.hole)] if getattr(entry, "hole", None) else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_blank_notebook_earns_nothing_and_leaks_nothing(batches, lesson):
    """Is the blank notebook (every attack's baseline) graded, within the batch's time, without a leak?"""
    batch = batches(lesson)
    row = batch.row(BLANK)
    assert row["status"] == "graded", row
    assert not batch.leaks(BLANK), batch.leaks(BLANK)
    expected = {BLANK} | {n for n, a in ATTACKS.items() if a.lesson == lesson} | {
        n for n, l in LEGIT.items() if l.lesson == lesson}
    assert {s for s, graded_lesson in batch.rows if graded_lesson == lesson} >= expected
    assert batch.seconds < BATCH_SECONDS, f"{lesson}: the batch took {batch.seconds:.0f} s"


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_lesson_setup_cell_runs_in_the_judge(batches, lesson):
    """Does the lesson's own first cell (its imports, %matplotlib included) run without an error in the judge
    kernel, so that every other verdict here is about the submission and not about a broken setup?"""
    error = batches(lesson).setup_error(BLANK)
    assert not error, f"{lesson}'s setup cell failed in the judge kernel: {error}"


@pytest.mark.parametrize("name", list(_params(ATTACKS, lambda a: a.lesson)))
def test_attack_earns_nothing_and_leaks_nothing(batches, name):
    """Does this attack earn no more than the blank notebook (nothing on the tests it aims at), get the
    status it deserves, and leak nothing hidden?"""
    attack = ATTACKS[name]
    batch = batches(attack.lesson)
    row, blank = batch.row(name), batch.row(BLANK)
    context = f"{attack.question}\nrow: {row}"
    leaks = batch.leaks(name, attack.decode)
    assert not leaks, f"{context}\nhidden test text leaked: {leaks}"
    shown = batch.feedback_text(name)
    views = [shown, attack.decode(shown)] if attack.decode else [shown]
    assert not [text for text in attack.absent for view in views if text in view], (
        f"{context}\nthe feedback says: {shown[:2000]}")
    if attack.baseline:
        assert float(row["score"]) <= float(blank["score"]), context
    if attack.zero:
        scores = batch.scores(name)
        earned = {t: scores.get(t) for t in attack.zero if scores.get(t)}
        assert not earned, f"{context}\nearned points on {earned}"
    assert row["status"] in attack.statuses, context


@pytest.mark.parametrize("name", list(_params(LEGIT, lambda l: l.lesson)))
def test_a_correct_solution_in_an_unusual_style_earns_full_marks(batches, name):
    """Does a correct solution in an unusual but legitimate style pass the policy and earn every point
    of its exercises?"""
    legit = LEGIT[name]
    batch = batches(legit.lesson)
    row = batch.row(name)
    assert row["status"] == "graded", f"{legit.question}\nrow: {row}"
    tests = {t["name"]: t for t in batch.results(name)["tests"]}
    short = {t: tests[t] for t in legit.full_tests if tests[t]["score"] != tests[t]["max_score"]}
    assert not short, f"{legit.question}\nlost points: {short}"
    assert not batch.leaks(name)
