"""Submissions per minute: `course grade --jobs N` against nbgrader's own sequential autograde.

Both grade the same synthetic class in this one run (half correct, half
wrong submissions of one lesson) on this machine. nbgrader's side is
``nbgrader autograde LESSON`` over the whole ``submitted/`` folder in one
process (its fastest use: start-up paid once). The course's side also
writes feedback for every student, which nbgrader's autograde does not.

    .venv/bin/python benchmarks/bench_grading.py [--students 16] [--jobs 2] [--lesson 01-mini]

Prints a table and the ratio quoted in the README. With ``--cluster local:2`` it instead grades
the class with ``--jobs N`` and on that Dask cluster, alternately (each twice), and reports the
cluster path's overhead per submission.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.submissions import MINI_COURSE, NOTEBOOKS, grade, make_submission  # noqa: E402


def make_class(root: Path, lesson: str, notebooks: Path, students: int, wrong: dict) -> None:
    for n in range(students):
        make_submission(root, f"s{n:03d}", lesson, wrong if n % 2 else None, notebooks=notebooks)


def nbgrader_sequential(root: Path, lesson: str, notebooks: Path, work: Path) -> float:
    """Seconds for `nbgrader autograde` over the class, start-up included (not the release)."""
    from autograder.config import write_config_file
    from autograder.release import build_course

    course = build_course(work / "nbgrader-course", [lesson], notebooks)
    write_config_file(course)
    # nbgrader's own Execute, as an instructor would run it.
    cfg = course / "nbgrader_config.py"
    cfg.write_text(cfg.read_text().replace("'autograder.execute.BoundedExecute'",
                                           "'nbgrader.preprocessors.Execute'"))
    shutil.copytree(root, course / "submitted")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", lesson],
                   cwd=course, env=env, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - started


def course_grade(root: Path, out: Path, notebooks: Path, jobs: int, sandbox: bool,
                 cluster: str | None = None) -> float:
    args = (["--cluster", cluster] if cluster else ["--jobs", str(jobs)]) + ([] if sandbox else ["--no-sandbox"])
    started = time.perf_counter()
    rows = grade(root, out, *args, notebooks=notebooks, timeout=1800)
    elapsed = time.perf_counter() - started
    bad = [r for r in rows.values() if r["status"] != "graded"]
    assert not bad, bad
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--lesson", default="01-mini")
    parser.add_argument("--sandbox", action="store_true", help="grade the course's side sandboxed")
    parser.add_argument("--cluster", help="compare --jobs N with this Dask cluster (e.g. local:2)")
    args = parser.parse_args()
    notebooks = MINI_COURSE if args.lesson == "01-mini" else NOTEBOOKS
    wrong = {"double": "def double(x):\n    return x + 2"} if args.lesson == "01-mini" else {}
    os.environ["COURSE_NOTEBOOKS"] = str(notebooks)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        make_class(tmp / "submitted", args.lesson, notebooks, args.students, wrong)
        if args.cluster:
            return compare_cluster(tmp, args, notebooks)
        nb_s = nbgrader_sequential(tmp / "submitted", args.lesson, notebooks, tmp)
        ours_1 = course_grade(tmp / "submitted", tmp / "out1", notebooks, 1, args.sandbox)
        ours_n = course_grade(tmp / "submitted", tmp / "outn", notebooks, args.jobs, args.sandbox)
    n = args.students
    print(f"class: {n} submissions of {args.lesson} on {os.cpu_count()} cores"
          f"{' (course side sandboxed)' if args.sandbox else ''}")
    print("| grader | seconds | submissions/min |")
    print("| --- | --- | --- |")
    for name, secs in [("nbgrader autograde (sequential)", nb_s), ("course grade --jobs 1", ours_1),
                       (f"course grade --jobs {args.jobs}", ours_n)]:
        print(f"| {name} | {secs:.1f} | {60 * n / secs:.1f} |")
    print(f"ratio course --jobs {args.jobs} / nbgrader: {nb_s / ours_n:.2f}x "
          f"(--jobs 1: {nb_s / ours_1:.2f}x; the course also writes feedback)")


def compare_cluster(tmp: Path, args, notebooks: Path) -> None:
    """--jobs N against --cluster ADDRESS on the same class, alternately, each twice (best kept)."""
    local, dask = [], []
    for round_ in range(2):
        local.append(course_grade(tmp / "submitted", tmp / f"local{round_}", notebooks, args.jobs, args.sandbox))
        dask.append(course_grade(tmp / "submitted", tmp / f"dask{round_}", notebooks, args.jobs, args.sandbox,
                                 cluster=args.cluster))
    import time as time_mod

    from autograder.cluster import connect

    started = time_mod.perf_counter()
    client, cluster = connect(args.cluster)  # what starting (and closing) the cluster alone costs
    client.close()
    if cluster is not None:
        cluster.close()
    startup = time_mod.perf_counter() - started
    n, best_local, best_dask = args.students, min(local), min(dask)
    print(f"class: {n} submissions of {args.lesson} on {os.cpu_count()} cores"
          f"{' (sandboxed)' if args.sandbox else ''}; best of 2 runs each, alternating")
    print("| grader | seconds | submissions/min |")
    print("| --- | --- | --- |")
    for name, secs in [(f"course grade --jobs {args.jobs}", best_local),
                       (f"course grade --cluster {args.cluster}", best_dask)]:
        print(f"| {name} | {secs:.1f} | {60 * n / secs:.1f} |")
    print(f"cluster overhead: {(best_dask - best_local) / n:+.2f} s per submission "
          f"({100 * (best_dask / best_local - 1):+.1f} %, cluster start-up included); "
          f"starting and closing the cluster alone: {startup:.1f} s, so per submission beyond it "
          f"{(best_dask - startup - best_local) / n:+.2f} s "
          f"({100 * ((best_dask - startup) / best_local - 1):+.1f} %)")


if __name__ == "__main__":
    main()
