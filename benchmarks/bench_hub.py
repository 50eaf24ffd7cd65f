"""How long a class waits on the single-host hub, and what the hub adds to grading.

Two measurements in one run, on this machine (as root; see docs/hub.md):

1. *Start to a working student*: from ``ClassHub.start()`` (what ``make hub``
   runs) to a student logged in with a running server, split by step. The
   users' venv is cached per pyproject.toml; ``--cold`` deletes the cache
   first, so the number includes building it (what CI pays once).
2. *Grading N submitted students*: every student fetches lesson 06 through
   the hub and submits the correct solution; then the hub path (formgrader
   collect -> ``course grade`` into a folder -> load into PostgreSQL ->
   ``course feedback release`` through the exchange) against plain ``course grade``
   on a copy of the same collected submissions, same workers, same sandbox.

    .venv/bin/python benchmarks/bench_hub.py [--students 4] [--jobs 2] [--cold] [--no-sandbox]

Prints a table and the ratio hub path / plain ``course grade``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LESSON = "06-networks"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="rebuild the users' venv first")
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args()

    import nbformat

    from autograder import hub as hub_mod

    from tests.hub_client import HubUser
    from tests.hub.test_hub import machine_lock
    from autograder.gradebook import scores
    from autograder.sandbox import available

    missing = hub_mod.missing_requirements()
    if missing:
        print("bench_hub: cannot run here: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    if args.cold and hub_mod.HUB_VENV_CACHE.exists():
        shutil.rmtree(hub_mod.HUB_VENV_CACHE)
    repo_mode = hub_mod.lessons_mod.REPO.stat().st_mode & 0o7777
    sandbox = available()[0] and not args.no_sandbox
    prefix = "tb-"
    students = [f"{prefix}s{n}" for n in range(1, args.students + 1)]
    run_dir = Path(tempfile.mkdtemp(prefix="course-hub-bench-"))
    settings = hub_mod.ClassSettings(run_dir=run_dir, instructor=f"{prefix}teach", students=students,
                                     lessons=[LESSON])
    source = nbformat.read(next((hub_mod.lessons_mod.NOTEBOOKS / LESSON).glob("*.ipynb")), as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    hub = hub_mod.ClassHub(settings, log=lambda *a: None)
    with machine_lock():  # one class at a time on this machine (the tests take the same lock)
        return _measure(args, hub, hub_mod, settings, students, solutions, sandbox, run_dir, repo_mode,
                        HubUser, scores)


def _measure(args, hub, hub_mod, settings, students, solutions, sandbox, run_dir, repo_mode, HubUser,
             scores) -> int:
    t: dict[str, float] = {}
    hub_mod.lessons_mod.REPO.chmod(repo_mode & ~0o077)  # the class refuses a checkout others can read
    try:
        began = time.monotonic()
        hub.start()
        t["start: class up (make hub)"] = time.monotonic() - began
        first = HubUser(settings.url, students[0], settings.passwords[students[0]])
        first.login()
        first.start_server()
        t["start: first student logged in, server running"] = time.monotonic() - began
        for step, seconds in hub.timings.items():
            t[f"  of which {step}"] = seconds

        users = [first] + [HubUser(settings.url, u, settings.passwords[u]) for u in students[1:]]
        teacher = HubUser(settings.url, settings.instructor, settings.passwords[settings.instructor])
        mark = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda u: (u.login(), u.start_server()), users[1:] + [teacher]))
        t[f"the other {len(users) - 1} students and the instructor log in (4 at once)"] = time.monotonic() - mark

        mark = time.monotonic()
        for me in users:
            me.assignment("fetch", settings.course_id, LESSON)
            nb = me.read_notebook(f"{LESSON}/{LESSON}.ipynb")
            for cell in nb["cells"]:
                grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
                if cell["metadata"].get("nbgrader", {}).get("solution") and grade_id in solutions:
                    cell["source"] = solutions[grade_id]
            me.write_notebook(f"{LESSON}/{LESSON}.ipynb", nb)
            me.assignment("submit", settings.course_id, LESSON)
        t[f"{len(users)} students fetch, work and submit"] = time.monotonic() - mark

        # Collect once (formgrader API); plain `course grade` runs first on a copy, so the hub
        # path does not profit from caches the first run warmed.
        mark = time.monotonic()
        teacher.post(f"formgrader/api/assignment/{LESSON}/collect")
        t_collect = time.monotonic() - mark
        plain_in = run_dir / "plain-submitted"
        shutil.copytree(settings.course_root() / "submitted", plain_in)
        mark = time.monotonic()
        cmd = [sys.executable, "-m", "autograder.cli", "grade", str(plain_in), "--out", str(run_dir / "plain"),
               "--lesson", LESSON, "--jobs", str(args.jobs), "--quiet"] + ([] if sandbox else ["--no-sandbox"])
        subprocess.run(cmd, check=True, capture_output=True, cwd=REPO, timeout=900)
        t["plain course grade, total"] = time.monotonic() - mark

        # The hub path, as the instructor does it after collecting.
        mark = time.monotonic()
        hub.grade_collected(LESSON, run_dir / "graded", jobs=args.jobs, sandbox=sandbox)
        t_grade = time.monotonic() - mark
        hub.load_gradebook(run_dir / "graded")
        got = scores(settings.db_url, LESSON, course_id=settings.course_id)
        t_load = time.monotonic() - mark - t_grade
        hub.release_feedback(run_dir / "graded", LESSON)   # what `course feedback release` runs
        hub_total = time.monotonic() - mark + t_collect
        t["hub: collect (formgrader API)"] = t_collect
        t["hub: course grade"] = t_grade
        t["hub: load into PostgreSQL"] = t_load
        t["hub: course feedback release"] = hub_total - t_collect - t_grade - t_load
        t["hub path, total"] = hub_total
    finally:
        mark = time.monotonic()
        hub.stop()
        t["stop everything"] = time.monotonic() - mark
        shutil.rmtree(run_dir, ignore_errors=True)
        hub_mod.lessons_mod.REPO.chmod(repo_mode)

    print(f"bench_hub: {len(students)} students, lesson {LESSON}, --jobs {args.jobs}, "
          f"{'sandbox' if sandbox else 'no sandbox'}, users' venv {'cold' if args.cold else 'cached'}")
    for name, seconds in t.items():
        print(f"  {name:<62} {seconds:7.1f} s")
    ratio = t["hub path, total"] / t["plain course grade, total"]
    print(f"  hub path / plain course grade: {ratio:.2f}x   (scores in PostgreSQL: {sorted(got.values())})")
    print(json.dumps({k.strip(): round(v, 2) for k, v in t.items()} | {"ratio": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
