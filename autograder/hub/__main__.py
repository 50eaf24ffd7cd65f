"""``python -m autograder.hub`` (``make hub``): run a class on this host until Ctrl-C."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from ..lessons import CourseError
from .. import lessons as lessons_mod
from ..release import hint_lessons
from .classhub import ClassHub
from .configs import ClassSettings, instructor_nbgrader_config_text, jupyterhub_config_text, shared_nbgrader_config_text
from .processes import HubError
from .provision import HUB_VENV_CACHE, ensure_proxy, hub_venv

__all__ = ["main"]


# --------------------------------------------------------------------------- `make hub`

def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m autograder.hub",
        description="Run the course for a class on this host: JupyterHub, nbgrader's exchange, a "
                    "PostgreSQL gradebook and demo accounts, until Ctrl-C. Needs root.",
        epilog="example:\n  python -m autograder.hub --students 3 --port 8000\n"
               "  python -m autograder.hub --no-hints 03 --no-hints 09   # those lessons' hints stay closed\n"
               "  python -m autograder.hub --hidden-checks 02   # `course check --hidden` for lesson 02 (self-study)\n"
               "  python -m autograder.hub --build-venv            # CI: build the users' venv before the tests\n"
               "  python -m autograder.hub --lesson 06 --print-config   # only show the generated files",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lesson", action="append", dest="lessons", metavar="LESSON",
                        help="release only this lesson (repeatable; default: all)")
    parser.add_argument("--students", type=int, default=3, help="demo student accounts (default: 3)")
    parser.add_argument("--prefix", default="ts-", help="prefix of the demo accounts' names (default: ts-)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free; default 8000)")
    parser.add_argument("--run-dir", type=Path, default=None, help="folder for state and logs (default: a new temp dir)")
    parser.add_argument("--no-hints", action="append", default=[], metavar="LESSON",
                        help="release this lesson without its hints (repeatable; `all`: every lesson)")
    parser.add_argument("--hidden-checks", action="append", default=[], metavar="LESSON",
                        help="release this lesson's hidden tests so `course check --hidden` works for students "
                             "(repeatable; they can then read those tests: for self-study, not a graded lesson)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="workers in the printed grading command (default: this machine's cores)")
    parser.add_argument("--print-config", action="store_true", help="print the generated configuration and exit")
    parser.add_argument("--build-venv", action="store_true",
                        help="only build (or refresh) the users' cached venv and the proxy, then exit")
    args = parser.parse_args(argv)
    if args.build_venv:
        started = time.monotonic()
        venv, proxy = hub_venv(), ensure_proxy()
        print(f"users' venv: {venv}\nproxy: {proxy}\n({time.monotonic() - started:.1f} s)")
        return 0
    try:
        lessons = lessons_mod.resolve(args.lessons)
        hints_off = set(lessons) - set(hint_lessons(lessons, args.no_hints))
        hidden_checks = set(lessons_mod.resolve(args.hidden_checks)) if args.hidden_checks else set()
        if hidden_checks - set(lessons):
            raise CourseError(f"--hidden-checks {', '.join(sorted(hidden_checks - set(lessons)))}: not among "
                              f"the lessons this class releases ({', '.join(lessons)})")
    except CourseError as exc:
        print(f"course hub: {exc}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path(tempfile.gettempdir()) / "course-hub-NEW"
    if not args.print_config and args.run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="course-hub-"))
    settings = ClassSettings(run_dir=run_dir, instructor=f"{args.prefix}instructor",
                             students=[f"{args.prefix}student{n}" for n in range(1, args.students + 1)],
                             lessons=lessons, public_port=args.port, hints_off=hints_off,
                             hidden_checks=hidden_checks,
                             **({"jobs": args.jobs} if args.jobs else {}))
    if args.print_config:
        print(jupyterhub_config_text(settings, HUB_VENV_CACHE / "KEY"))
        print(shared_nbgrader_config_text(settings))
        print(instructor_nbgrader_config_text(settings))
        return 0
    hub = ClassHub(settings)
    stop = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the class like Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)   # even when started in the background
    try:
        started = time.monotonic()
        hub.start()
        print(hub.login_help())
        print(f"(started in {time.monotonic() - started:.1f} s: {json.dumps(hub.timings)})")
        while all(p.poll() is None for p in hub.procs.values()):
            time.sleep(1)
        print("course hub: a server exited unexpectedly; see the logs in", run_dir, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the class ...")
        return 0
    except HubError as exc:
        print(f"course hub: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        hub.stop()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("stopped: hub, proxy, PostgreSQL, the users' servers; demo accounts deleted.")
        # Grading work is never deleted: the run folder keeps the grading, the gradebook's data,
        # the exchange and (in kept/) the instructor's course folder.
        print(f"kept in {run_dir}: " + (f"the instructor's course folder ({hub.kept}), " if hub.kept else "")
              + "grading/, postgres/ (the gradebook), exchange/, the logs")


if __name__ == "__main__":
    raise SystemExit(main())
