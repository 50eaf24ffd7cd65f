"""How fast does `course check` answer? One exercise (`--exercise`) against the whole notebook.

For each lesson (03, 04, 07 by default) a correct submission is made from the
lesson's reference solutions, then ``course check NOTEBOOK --exercise NAME``
and ``course check NOTEBOOK`` are run as a learner runs them — a fresh
``course`` process each time, start-up, policy, judge kernel and all — and,
for comparison, the same ``--exercise`` check with its kernel started only
once the lesson is read (``COURSE_CHECK_HEADSTART=off``: no head start, see
``autograder/headstart.py``) and Run All of the same notebook (every cell,
demos included, in a plain kernel, as JupyterLab runs it; nbclient here),
alternately, ``--runs`` times each (same machine load for all four), and the
medians, their spread and the ratios are reported. The aim (issue 30) is an
answer in under 3 s for one exercise. The machine's load average is printed
before and after: on a 2-core machine shared with other work, every wall time
here grows with it, so each check's CPU seconds (the ``course`` process and its
judge kernel, which it waits for) are reported beside it: load does not
distort those.

    .venv/bin/python benchmarks/bench_check.py --runs 5
    .venv/bin/python benchmarks/bench_check.py --lesson 03 --exercise SafeCounter --runs 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.submissions import course_env, make_submission  # noqa: E402

#: The exercise timed in each lesson: its first graded class or function.
EXERCISES = {"03-race-conditions-and-locks": "SafeCounter", "04-producer-consumer": "bounded_buffer",
             "07-daytime-client-server": "get_daytime"}
AIM_S = 3.0


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed_check(notebook: Path, *args: str, env: dict, cpu: list | None = None) -> float:
    """Seconds of one ``course check`` process, start to exit; its CPU seconds (with its kernel's) go to ``cpu``."""
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "check", str(notebook), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append(_children_cpu() - cpu_before)
    if "passed" not in done.stdout:
        raise RuntimeError(f"course check did not report: {done.stdout[-500:]}\n{done.stderr[-500:]}")
    return elapsed


def timed_run_all(notebook: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3", shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} s (runs {min(values):.2f}–{max(values):.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lesson", action="append", help="a lesson id (repeatable; default: 03, 04, 07)")
    parser.add_argument("--exercise", help="with one --lesson: the exercise to time")
    args = parser.parse_args(argv)
    chosen = {lesson: args.exercise or EXERCISES.get(lesson) for lesson in (args.lesson or EXERCISES)}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.runs} runs each, alternating")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        env = {**course_env(), "COURSE_PROGRESS_KEY_FILE": str(Path(tmp) / "key")}
        for lesson, exercise in chosen.items():
            notebook = make_submission(Path(tmp), "learner", lesson)
            timed_check(notebook, "--exercise", exercise, env=env)  # warm the file caches, not timed
            one, cold, whole, run_all, one_cpu, whole_cpu = [], [], [], [], [], []
            for _ in range(args.runs):
                one.append(timed_check(notebook, "--exercise", exercise, env=env, cpu=one_cpu))
                cold.append(timed_check(notebook, "--exercise", exercise,
                                        env={**env, "COURSE_CHECK_HEADSTART": "off"}))
                whole.append(timed_check(notebook, env=env, cpu=whole_cpu))
                run_all.append(timed_run_all(notebook))
            ratio = statistics.median(whole) / statistics.median(one)
            met = "meets" if statistics.median(one) < AIM_S else "misses"
            rows.append((lesson, exercise, one, whole, run_all))
            print(f"{lesson}\n  --exercise {exercise:<15} {spread(one)}  ({met} the {AIM_S:g} s aim; "
                  f"CPU {statistics.median(one_cpu):.2f} s)\n"
                  f"  the same, no head start    {spread(cold)}  (the head start saves "
                  f"{statistics.median(cold) - statistics.median(one):.2f} s)\n"
                  f"  whole notebook            {spread(whole)}  ({ratio:.1f}x the exercise; "
                  f"CPU {statistics.median(whole_cpu):.2f} s)\n"
                  f"  Run All (every cell)      {spread(run_all)}  (the whole check is "
                  f"{statistics.median(whole) / statistics.median(run_all):.2f}x Run All)", flush=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
