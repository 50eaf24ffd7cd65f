"""How fast is the controlled scheduler, and how does it compare with plain stress?

Run: .venv/bin/python benchmarks/bench_interleave.py [--audit] [--frontrun]

Reports, all measured in this one process:

* schedules explored per second for the two-thread counter (locked, so the
  search runs to exhaustion), and steps per second;
* the cost of one step (wall and CPU microseconds) in lesson 04's kind of
  search: a 1-slot buffer on a Condition, 2 producers and 2 consumers,
  ``granularity="sync"``, 100 random schedules (what ``bounded_buffer_blocks``
  runs), and how many of those steps switched threads;
* time to the first failing schedule for the racy counter (DFS, and random
  over 20 seeds);
* how many of 20 plain stress runs (2 threads x 500,000 increments, switch
  interval 1 us) lose an update, and how long they take — the ratio is the
  point: the scheduler finds the race every time in milliseconds, stress
  finds it sometimes or never;
* with --audit, the step cost again once the judge kernel's audit hook
  (course_lib.judge.audit) is installed in this process, as it is when a
  test cell explores schedules (a hook cannot be removed: it comes last);
* with --frontrun, frontrun 0.7.0's explore on the same programs, for the
  record of why course_lib.interleave does not use it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.interleave import explore, stress  # noqa: E402
from tests.programs import Counter, LockedCounter, OneSlot  # noqa: E402  (shared with tests/course_lib/test_interleave.py)


def once(c):
    c.increment()


class StressCounter(Counter):
    rounds = 500_000


def many(c):
    for _ in range(c.rounds):
        c.value += 1


def buffer_search(rounds: int = 3) -> tuple[int, int, float, float]:
    """(steps, steps that switched threads, wall s, CPU s) of the best of ``rounds`` searches."""
    from course_lib.interleave import engine

    counted = []
    execute = engine._Run.execute

    def counting(run, choose):
        trace = execute(run, choose)
        counted.append(trace)
        return trace

    def produce(state):
        for n in range(2):
            state["buf"].put(n)

    def consume(state):
        for _ in range(2):
            state["got"].append(state["buf"].get())

    best = None
    engine._Run.execute = counting
    try:
        for _ in range(rounds):
            counted.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            result = explore(lambda: {"buf": OneSlot(), "got": []}, [produce, produce, consume, consume],
                             lambda s: sorted(s["got"]) == [0, 0, 1, 1], granularity="sync",
                             strategy="random", seed=7, max_schedules=100, timeout=60)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert not result.failed and result.tried == 100, result
            steps = sum(len(t.schedule) for t in counted)
            switches = sum(a != b for t in counted for a, b in zip(t.schedule, t.schedule[1:]))
            if best is None or wall < best[2]:
                best = (steps, switches, wall, cpu)
    finally:
        engine._Run.execute = execute
    return best


def main() -> None:
    # 1. schedules per second (exhaustive search of the locked counter)
    runs = []
    for _ in range(3):
        result = explore(LockedCounter, once, lambda c: c.value == 2, count=2)
        assert not result.failed and result.exhausted
        runs.append(result)
    best = min(runs, key=lambda r: r.elapsed)
    print(f"locked counter, 2 threads: all {best.tried} schedules (<=2 preemptions) in "
          f"{best.elapsed * 1000:.0f} ms = {best.tried / best.elapsed:.0f} schedules/s (best of 3)")

    # 1b. the cost of a step, lesson 04's kind of search
    steps, switches, wall, cpu = buffer_search()
    print(f"1-slot buffer, 2 producers x 2 consumers, sync grain, 100 random schedules: {steps} steps "
          f"({switches} switching threads) in {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU = "
          f"{wall / steps * 1e6:.1f} us wall, {cpu / steps * 1e6:.1f} us CPU a step (best of 3)")

    # 2. time to first failure, racy counter
    dfs = [explore(Counter, once, lambda c: c.value == 2, count=2) for _ in range(5)]
    dfs_ms = statistics.median(r.elapsed for r in dfs) * 1000
    print(f"racy counter, DFS: failing schedule #{dfs[0].tried} found in {dfs_ms:.1f} ms "
          f"(median of 5), same schedule every time: {len({r.schedule for r in dfs}) == 1}")
    rnd = [explore(Counter, once, lambda c: c.value == 2, count=2, strategy="random", seed=s)
           for s in range(20)]
    found = sum(r.failed for r in rnd)
    rnd_ms = statistics.median(r.elapsed for r in rnd) * 1000
    print(f"racy counter, random: {found}/20 seeds found it, median "
          f"{statistics.median(r.tried for r in rnd):.0f} schedules, {rnd_ms:.1f} ms")

    # 3. plain stress, same process
    result = stress(StressCounter, many, lambda c: c.value == 2 * c.rounds, count=2, runs=20,
                    switch_interval=1e-6, timeout=120)
    print(f"plain stress, 2 threads x {StressCounter.rounds} increments, switch interval 1 us: "
          f"{result.failures}/{result.runs} runs lost an update, {result.elapsed:.2f} s "
          f"({result.elapsed / max(result.runs, 1) * 1000:.0f} ms a run)")
    ratio = (result.elapsed / max(result.runs, 1)) / (dfs_ms / 1000)
    print(f"one stress run costs {ratio:.0f}x the scheduler's time to a certain failure")

    if "--audit" in sys.argv:
        _under_audit_hook(wall / steps, cpu / steps)
    if "--frontrun" in sys.argv:
        _frontrun()


def _under_audit_hook(wall_before: float, cpu_before: float) -> None:
    from course_lib.judge import audit

    class Unchanged:
        def changed(self) -> str:
            return ""

    audit.install(lambda message: None, processes_allowed=True, guarded_types=frozenset(),
                  snapshot=Unchanged())()
    steps, _, wall, cpu = buffer_search()
    print(f"the same under the judge's audit hook: {wall / steps * 1e6:.1f} us wall, {cpu / steps * 1e6:.1f} us "
          f"CPU a step ({cpu / steps / cpu_before:.2f}x the CPU without it)")


def _frontrun() -> None:
    import os

    os.environ["FRONTRUN_ACTIVE"] = "1"  # its entry gate; explore() patches per run itself
    import frontrun

    t = time.monotonic()
    r = frontrun.explore(setup=Counter, workers=once, count=2,
                         invariant=lambda c: c.value == 2, total_timeout=20)
    print(f"frontrun racy counter: found={not r.property_holds} in {time.monotonic() - t:.3f} s")
    t = time.monotonic()
    r = frontrun.explore(setup=LockedCounter, workers=once, count=2,
                         invariant=lambda c: c.value == 2, total_timeout=20,
                         stop_on_first=False)
    print(f"frontrun locked counter: holds={r.property_holds} in {time.monotonic() - t:.3f} s")


if __name__ == "__main__":
    main()
