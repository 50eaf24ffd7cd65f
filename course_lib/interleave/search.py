"""The searches: replay one schedule, explore many (DFS or random), stress with plain threads."""

from __future__ import annotations

import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

def replay(setup: Callable[[], Any] | None, workers, schedule: Sequence[int] | str = (),
           *, count: int | None = None, names: Sequence[str] | None = None,
           invariant: Callable[[Any], bool] | None = None,
           observe: Callable[[Any], dict] | None = None, granularity: str = "opcode",
           max_steps: int = 2000, timeout: float = 5.0, step_timeout: float = 1.0) -> Trace:
    """Run ``workers`` (each called as ``worker(state)``) following ``schedule``.

    ``schedule`` lists, step by step, the index of the thread that runs next
    (as :attr:`Trace.schedule` and :attr:`Exploration.schedule` give it, or a
    string like ``"0 0 1 1 0"``). When it runs out, the current thread keeps
    going while it can, then the lowest-numbered one that can run. ``observe``
    maps the state to the shared values shown after every step, e.g.
    ``lambda s: {"value": s.value}``. Never hangs: ``max_steps``, ``timeout``
    and ``step_timeout`` bound the run.
    """
    if isinstance(schedule, str):
        schedule = parse_schedule(schedule)
    schedule = list(schedule)
    workers, names, fns = _normalise(setup, workers, count, names)

    def choose(step, runnable, previous, voluntary):
        if step < len(schedule):
            return schedule[step]
        return _default_choice(runnable, previous, voluntary)

    with _Patched(fns):
        run = _Run(setup, workers, names, granularity, max_steps,
                   time.monotonic() + timeout, step_timeout, observe)
        trace = run.execute(choose)
    return _check_invariant(trace, invariant)
from .results import Exploration, StressResult, Trace, parse_schedule, replay_call
from .engine import _Patched, _Run, _check_invariant, _normalise, fire_after_run


def _default_choice(runnable, previous, voluntary):
    """Keep the current thread going (no preemption) unless it offered to yield."""
    if previous in runnable and not voluntary:
        return previous
    if previous is not None and voluntary:
        later = [i for i in runnable if i > previous]
        if later:
            return later[0]
    return runnable[0]


def explore(setup: Callable[[], Any] | None, workers, invariant: Callable[[Any], bool] | None = None,
            *, count: int | None = None, names: Sequence[str] | None = None,
            strategy: str = "dfs", preemption_bound: int | None = 2, max_schedules: int = 2000,
            seed: int = 0, observe: Callable[[Any], dict] | None = None,
            granularity: str = "opcode", max_steps: int = 2000, timeout: float = 10.0,
            step_timeout: float = 1.0, stop_on_failure: bool = True) -> Exploration:
    """Search interleavings of ``workers`` for one that breaks ``invariant`` or deadlocks.

    ``setup()`` makes a fresh shared state for every schedule; each worker is
    called as ``worker(state)`` (pass one function and ``count`` to run it in
    ``count`` threads); ``invariant(state)`` is checked when all have finished
    (return False, or raise AssertionError with a message). A run that
    deadlocks, raises, or hits a bound also counts as a failure.

    Both searches are fair to a thread that gives way: after ``time.sleep`` or
    ``checkpoint()`` it may go on at once, ahead of the others, at most twice in
    a row; the next time, another thread goes first. So a run that hits
    ``max_steps`` is a loop every thread takes part in (a livelock), not one
    thread spinning while another waits.

    ``strategy="dfs"`` tries every schedule with at most ``preemption_bound``
    switches away from a thread that could have continued (None: no bound),
    in depth-first order; ``strategy="random"`` picks the next thread at random
    at every step, reproducibly from ``seed``. Both stop after
    ``max_schedules`` schedules or ``timeout`` seconds.

    Returns an :class:`Exploration`: ``.failed``, ``.schedule`` and ``.trace``
    (replayable with :func:`replay`), or "no schedule failed, N tried".
    """
    if strategy not in ("dfs", "random"):
        raise ValueError("strategy must be 'dfs' or 'random'")
    given_workers, given_names = workers, names
    workers, names, fns = _normalise(setup, workers, count, names)
    started = time.monotonic()
    deadline = started + timeout
    tried = 0
    exhausted = False
    bound_text = (f"at most {preemption_bound} preemption{'' if preemption_bound == 1 else 's'}"
                  if strategy == "dfs" and preemption_bound is not None else
                  "no preemption bound" if strategy == "dfs" else f"seed {seed}")
    first_failure: Trace | None = None
    search = (_RandomSearch(seed) if strategy == "random" else _DepthFirst(preemption_bound))

    with _Patched(fns):
        while tried < max_schedules and time.monotonic() < deadline:
            run = _Run(setup, workers, names, granularity, max_steps,
                       min(deadline, time.monotonic() + timeout), step_timeout, observe)
            search.begin_run()
            trace = _check_invariant(run.execute(_GoodSamaritan(search.choose)), invariant)
            if trace.outcome == "time_limit" and time.monotonic() >= deadline:
                break  # cut short by the search's own deadline: not a schedule tried
            tried += 1
            if trace.failed:
                first_failure = first_failure or trace
                if stop_on_failure:
                    break
            if not search.next_run():
                exhausted = True
                break
    call = "" if first_failure is None else replay_call(
        setup, given_workers, first_failure.schedule, count=count, names=given_names,
        granularity=granularity, invariant=invariant)
    return Exploration(failed=first_failure is not None, tried=tried, exhausted=exhausted,
                       strategy=strategy, bound=bound_text,
                       elapsed=time.monotonic() - started, trace=first_failure, replay_call=call)


class _GoodSamaritan:
    """Fairness to a thread that gives way, after CHESS's (Musuvathi and Qadeer, "Fair stateless model
    checking", PLDI 2008): a thread that sleeps or checkpoints may be chosen again at once, ahead of
    the others that could run, at most ``passes`` times in a row; the next time it gives way, another
    thread goes first.

    Why bounded and not never: a real ``sleep(0)`` may well go on at once, and a race or a deadlock can
    sit right behind it, so that schedule must stay in the search. Why bounded at all: a search that
    chose a try-lock-and-back-off loop again after every sleep, while its partner never ran, called the
    step limit a livelock. Only the choice right after giving way is limited: a switch forced anywhere
    else would be a preemption the bound does not count.
    """

    def __init__(self, choose: Callable, passes: int = 2):
        self.choose = choose
        self.passes_allowed = passes
        self.again: dict[int, int] = {}   # thread -> times in a row it was chosen right after giving way

    def __call__(self, step, runnable, previous, voluntary) -> int:
        gave_way = voluntary and previous is not None
        allowed = runnable
        if gave_way and self.again.get(previous, 0) >= self.passes_allowed and len(runnable) > 1:
            allowed = [i for i in runnable if i != previous]
        pick = self.choose(step, allowed, previous, voluntary)
        if gave_way:
            self.again[previous] = self.again.get(previous, 0) + 1 if pick == previous else 0
        return pick


@dataclass
class _Decision:
    """One point of a run where the scheduler chose who goes next."""

    runnable: list[int]
    previous: int | None
    voluntary: bool          # did the previous thread give way (sleep, wait) rather than being preempted?
    chosen: int
    tried: set = field(default_factory=set)
    spent_before: int = 0    # preemptions spent on the way to this point

    def preempts(self, choice: int) -> int:
        """1 if choosing ``choice`` switches away from a thread that could have gone on."""
        return int(self.previous is not None and not self.voluntary
                   and self.previous in self.runnable and choice != self.previous)


class _RandomSearch:
    """Pick the next thread at random at every step, reproducibly from the seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def begin_run(self) -> None:
        pass

    def choose(self, step, runnable, previous, voluntary) -> int:
        return self.rng.choice(runnable)

    def next_run(self) -> bool:
        return True  # never exhausted: bounded by max_schedules and the timeout


class _DepthFirst:
    """Every schedule with at most ``bound`` preemptions, depth first (None: no bound).

    A run replays the recorded choices (the prefix), then goes on with the
    default choice; after it, the deepest decision with an untried choice the
    bound allows is changed and the next run replays up to there. A run that
    takes another way than its prefix (a lock order that depends on ``id()``)
    is searched on from the point where it diverged.
    """

    def __init__(self, bound: int | None):
        self.bound = bound
        self.stack: list[_Decision] = []
        self.prefix: list[int] = []

    def begin_run(self) -> None:
        self.decisions: list[_Decision] = []
        self.diverged: int | None = None

    def choose(self, step, runnable, previous, voluntary) -> int:
        if step < len(self.prefix) and self.prefix[step] in runnable:
            pick = self.prefix[step]
        else:
            if step < len(self.prefix) and self.diverged is None:
                self.diverged = step
                del self.prefix[step:]
            pick = _default_choice(runnable, previous, voluntary)
        self.decisions.append(_Decision(runnable, previous, voluntary, pick))
        return pick

    def _affordable(self, decision: _Decision, choice: int) -> bool:
        return self.bound is None or decision.spent_before + decision.preempts(choice) <= self.bound

    def next_run(self) -> bool:
        """Set the prefix of the next run; False when no schedule is left to try."""
        if self.diverged is not None:
            del self.stack[self.diverged:]
        for decision in self.decisions[len(self.stack):]:
            last = self.stack[-1] if self.stack else None
            decision.spent_before = last.spent_before + last.preempts(last.chosen) if last else 0
            decision.tried = {decision.chosen}
            self.stack.append(decision)
        while self.stack:
            decision = self.stack[-1]
            options = [t for t in decision.runnable if t not in decision.tried and self._affordable(decision, t)]
            if options:
                decision.chosen = options[0]
                decision.tried.add(decision.chosen)
                self.prefix = [d.chosen for d in self.stack]
                return True
            self.stack.pop()
        return False


def stress(setup: Callable[[], Any] | None, workers, invariant: Callable[[Any], bool], *,
           count: int | None = None, runs: int = 20, switch_interval: float | None = 1e-6,
           timeout: float = 10.0) -> StressResult:
    """Run the workers as plain threads ``runs`` times and count invariant failures.

    No scheduler: this is what happens "for real", so it shows a race only
    when the interpreter happens to switch at the wrong moment. With
    ``switch_interval`` the interpreter is asked to switch threads more often
    for the duration (``sys.setswitchinterval``). Bounded by ``timeout`` in
    total; a run whose threads do not finish counts as a failure, and they
    are left as daemons (named ``stress:...``).
    """
    workers, names, _ = _normalise(setup, workers, count, None)
    started = time.monotonic()
    deadline = started + timeout
    failures, messages = 0, []
    old_interval = sys.getswitchinterval()
    done_runs = 0
    try:
        if switch_interval is not None:
            sys.setswitchinterval(switch_interval)
        for _ in range(runs):
            if time.monotonic() >= deadline:
                break
            state = setup() if setup is not None else None
            errors: list[BaseException] = []

            def wrap(fn):
                def body():
                    try:
                        fn(state)
                    except BaseException as exc:  # counted as a failed run
                        errors.append(exc)
                return body

            threads = [threading.Thread(target=wrap(fn), name=f"stress:{name}", daemon=True)
                       for fn, name in zip(workers, names)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            done_runs += 1
            if any(t.is_alive() for t in threads):
                failures += 1
                messages.append("threads did not finish before the time limit")
                break
            if errors:
                failures += 1
                messages.append(f"{type(errors[0]).__name__}: {errors[0]}")
                continue
            try:
                ok = invariant(state)
            except AssertionError as exc:
                ok = False
                messages.append(str(exc))
            if ok is False:
                failures += 1
    finally:
        sys.setswitchinterval(old_interval)
        fire_after_run()
    return StressResult(runs=done_runs, failures=failures, messages=messages,
                        elapsed=time.monotonic() - started)
