"""ClassHub: accounts, PostgreSQL, the proxy and JupyterHub, the exchange; grading through grade()."""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import lessons as lessons_mod
from .configs import (USER_TMP, ClassSettings, instructor_nbgrader_config_text, jupyterhub_config_text,
                      role_config_files, shared_nbgrader_config_text)
from .processes import HubError, port_open, run_bounded, as_user, stop_pid, wait_for
from .provision import (ensure_proxy, hub_venv, install_course_code, missing_requirements, open_to_others, pg_tool,
                        readable_by_all)

__all__ = ["RELEASE_SCRIPT", "ClassHub"]


# Run as the instructor in their course folder, after build_course generated release/ there:
# nbgrader's own release_assignment puts each lesson into the exchange, owned by the instructor.
RELEASE_SCRIPT = """
import sys
from nbgrader.apps import NbGraderAPI
from nbgrader.apps.baseapp import NbGrader
app = NbGrader()
app.initialize([])
api = NbGraderAPI(app.coursedir, config=app.config)
for lesson in sys.argv[1:]:
    result = api.release_assignment(lesson)
    if not result["success"]:
        sys.exit(f"{lesson}: " + (result.get("error") or "") + (result.get("log") or "")[-1500:])
"""


def _private_log(path: Path):
    """A log file only root reads (a hub's log names users and tokens' notes), opened to append."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def _not_files(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: everything but folders, regular files and symbolic links."""
    import stat

    skipped = set()
    for name in names:
        try:
            mode = os.lstat(os.path.join(folder, name)).st_mode
        except OSError:
            skipped.add(name)
            continue
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            skipped.add(name)
    return skipped


class ClassHub:
    """The single-host class. Methods for the caller: ``start()``, ``stop()``, ``with``.

    ``start`` blocks until a user can log in (or raises and undoes what it
    did); it refuses to start while the checkout (or the instructor's course
    folder) is readable by the students. ``stop`` is safe to call twice and
    after a failed start, stops every process by its PID, archives the
    instructor's course folder into ``RUN_DIR/kept/`` and deletes only the
    accounts it created. ``commands()`` are the instructor's next steps, as
    printed by ``login_help()``.
    """

    def __init__(self, settings: ClassSettings, log=print):
        self.s = settings
        self.log = log
        self.created_users: list[str] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_data: Path | None = None
        self.venv: Path | None = None
        self.kept: Path | None = None
        self.timings: dict[str, float] = {}

    # -- lifecycle
    def __enter__(self) -> "ClassHub":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "ClassHub":
        missing = missing_requirements()
        if missing:
            raise HubError("cannot run the class here: missing " + "; ".join(missing))
        refused = self.exposed_sources()
        if refused:
            raise HubError(refused)
        try:
            for step in (self._prepare, self._create_users, self._start_postgres, self._write_configs,
                         self._release, self._check_private, self._start_proxy, self._start_hub):
                started = time.monotonic()
                step()
                self.timings[step.__name__.strip("_")] = round(time.monotonic() - started, 2)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in ("hub", "proxy"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop_pid(proc.pid, timeout=20)
                proc.wait(timeout=5)
        self._kill_user_processes()
        self._stop_postgres()
        self._keep_course_folder()
        for user in reversed(self.created_users):
            subprocess.run(["userdel", "-r", "-f", user], capture_output=True, timeout=60)
            try:
                grp.getgrnam(user)
                subprocess.run(["groupdel", user], capture_output=True, timeout=60)
            except KeyError:
                pass
        self.created_users.clear()

    # -- what students must never read
    def sources(self) -> list[Path]:
        """What holds the answers: the checkout and its lessons (source notebooks, tests, solutions)."""
        found = [lessons_mod.REPO]
        if lessons_mod.REPO not in lessons_mod.NOTEBOOKS.parents:
            found.append(lessons_mod.NOTEBOOKS)
        return found

    def exposed_sources(self) -> str:
        """Why the class must not start ("" when it may): a source folder other users can read."""
        exposed = [p for p in self.sources() if open_to_others(p)]
        if not exposed:
            return ""
        return ("refusing to start the class: " + ", ".join(f"{p} (mode {p.stat().st_mode & 0o777:o})"
                                                           for p in exposed) +
                " can be read by every user on this machine, so every student could read the lessons' hidden "
                "tests and solutions there. Make it private first (students never need it: their servers run "
                "from a copy of the released material), e.g.\n  chmod go-rwx " +
                " ".join(shlex.quote(str(p)) for p in exposed))

    def private_paths(self) -> list[Path]:
        """Everything a student's account must not open: sources, the course folder, grading, the hub's state."""
        s = self.s
        return [*self.sources(), s.course_root(), s.course_root() / "source", s.grading_dir, s.kept_dir,
                s.run_dir / "hub", s.run_dir / "jupyterhub_config.py", s.run_dir / "postgres", s.scratch_dir,
                s.run_dir / "jupyterhub.log", s.run_dir / "proxy.log",
                Path(pwd.getpwnam(s.instructor).pw_dir) / ".jupyter" / "nbgrader_config.py"]

    def _check_private(self) -> None:
        """Ask the kernel, as each student, whether any private path opens (groups and ACLs count)."""
        paths = [str(p) for p in self.private_paths()]
        probe = 'for p; do if [ -r "$p" ] || [ -x "$p" ]; then echo "$p"; fi; done'
        for student in self.s.students:
            done = subprocess.run(["runuser", "-u", student, "--", "/bin/sh", "-c", probe, "sh", *paths],
                                  capture_output=True, text=True, timeout=60, cwd="/")
            opened = done.stdout.split()
            if opened:
                raise HubError(f"refusing to start the class: {student} can open {', '.join(opened)} "
                               "(group or ACL permissions); make them private to root and the instructor")

    # -- steps
    def _prepare(self) -> None:
        s = self.s
        run = s.run_dir
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o711)  # postgres and the users reach their folders in it, but cannot list it
        if not readable_by_all(run):
            raise HubError(f"{run} is inside a folder other users cannot enter; use a run folder "
                           f"such as one made by tempfile.mkdtemp() under /tmp")
        for private in (run / "hub", s.grading_dir, s.kept_dir, s.scratch_dir):  # root only
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)
        for name in ("jupyterhub.log", "proxy.log"):  # created private before anyone can look
            _private_log(run / name).close()
        s.exchange.mkdir(exist_ok=True)
        s.exchange.chmod(0o1777)
        for public in (s.shared_config_dir, s.course_code):
            public.mkdir(exist_ok=True)
            public.chmod(0o755)
        self.venv = hub_venv(log=self.log)
        self.proxy = ensure_proxy()
        install_course_code(self.venv, s.course_code)

    def _create_users(self) -> None:
        for user in [self.s.instructor, *self.s.students]:
            try:
                pwd.getpwnam(user)
                raise HubError(f"user {user} already exists; it was not created here, so it is not "
                               f"reused (choose other names)")
            except KeyError:
                pass
            run_bounded(["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", user], 60)
            self.created_users.append(user)
            home = Path(pwd.getpwnam(user).pw_dir)
            home.chmod(0o700)  # students cannot read each other's homes
            # Their TMPDIR (configs.USER_TMP): made now, while nothing of theirs has run in the home.
            scratch = home / USER_TMP
            scratch.mkdir(mode=0o700)
            entry = pwd.getpwnam(user)
            os.chown(scratch, entry.pw_uid, entry.pw_gid)
        run_bounded(["chpasswd"], 60, input="".join(f"{u}:{p}\n" for u, p in self.s.passwords.items()))

    def _start_postgres(self) -> None:
        data = self.s.run_dir / "postgres"
        sock = self.s.run_dir / "postgres-socket"
        for folder in (data, sock):
            folder.mkdir(mode=0o700, exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")
        self.pg_data = data
        env = {"LC_ALL": "C.UTF-8"}
        as_user("postgres", [pg_tool("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=peer",
                             "--auth-host=scram-sha-256", "-E", "UTF8"], env=env, timeout=self.s.timeout)
        options = f"-k {sock} -p {self.s.pg_port} -c listen_addresses=127.0.0.1"
        as_user("postgres", [pg_tool("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
                             "-o", options, "-w", "-t", str(int(self.s.timeout)), "start"],
                env=env, timeout=self.s.timeout + 10)
        db = self.s.course_id.replace("-", "_")
        psql = [pg_tool("psql") or "psql", "-h", str(sock), "-p", str(self.s.pg_port), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q"]
        # The SQL goes in on stdin: a command line is readable by every user (/proc/PID/cmdline).
        as_user("postgres", psql, timeout=60,
                input=f"CREATE ROLE gradebook LOGIN PASSWORD '{self.s.db_password}';\n"
                      f"CREATE DATABASE {db} OWNER gradebook;\n")

    def pg_pid(self) -> int | None:
        pid_file = self.pg_data / "postmaster.pid" if self.pg_data else None
        if pid_file and pid_file.exists():
            return int(pid_file.read_text().split()[0])
        return None

    def _stop_postgres(self) -> None:
        if self.pg_data is None:
            return
        pid = self.pg_pid()
        if pid is not None:
            subprocess.run(["runuser", "-u", "postgres", "--", pg_tool("pg_ctl"), "-D", str(self.pg_data),
                            "-m", "fast", "-w", "-t", "30", "stop"], capture_output=True, timeout=60, cwd="/")
            stop_pid(pid, timeout=10)  # only if pg_ctl could not stop it
        self.pg_data = None

    def _write_configs(self) -> None:
        s = self.s
        hub_config = s.run_dir / "jupyterhub_config.py"
        hub_config.touch(mode=0o600)  # it holds the proxy's token: root only
        hub_config.chmod(0o600)
        hub_config.write_text(jupyterhub_config_text(s, self.venv))
        for path, text in role_config_files(s).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o755)
            path.write_text(text)
            path.chmod(0o644)
        (s.run_dir / "nbgrader_config.py").write_text(shared_nbgrader_config_text(s))  # next to the hub's, to read
        instructor = pwd.getpwnam(s.instructor)
        jupyter_dir = Path(instructor.pw_dir) / ".jupyter"
        jupyter_dir.mkdir(exist_ok=True)
        private = jupyter_dir / "nbgrader_config.py"
        private.write_text(instructor_nbgrader_config_text(s))
        private.chmod(0o600)
        for path in (jupyter_dir, private):
            os.chown(path, instructor.pw_uid, instructor.pw_gid)

    def instructor_env(self) -> dict:
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
                "JUPYTER_CONFIG_PATH": str(self.s.role_config_dir(self.s.instructor))}

    def _release(self) -> None:
        """The lessons through ``course release``'s own code, into the instructor's course folder.

        :func:`autograder.release.build_course` (self-study cells stripped, the
        hints files of the lessons whose hints are on, the hidden-checks files
        of the lessons the instructor chose) runs here, with the
        class's PostgreSQL as the gradebook; the folder is then the
        instructor's, and nbgrader's ``release_assignment``, run as the
        instructor, puts each lesson into the exchange.
        """
        from ..release import build_course, check_release

        s = self.s
        root = s.course_root()
        build_course(root, s.lessons, db_url=s.db_url, hints=s.hint_lessons, hidden_checks=s.hidden_checks)
        run_bounded(["chown", "-R", f"{s.instructor}:{s.instructor}", str(root)], 60)
        root.chmod(0o700)
        for lesson in s.lessons:
            check_release(root / "release" / lesson)
        # One nbgrader process for every lesson (its start-up costs ~2 s a command).
        as_user(s.instructor, [str(self.venv / "bin" / "python"), "-c", RELEASE_SCRIPT, *s.lessons],
                env=self.instructor_env(), cwd=str(root), timeout=s.timeout * max(1, len(s.lessons)))
        for lesson in s.lessons:
            if not (s.exchange / s.course_id / "outbound" / lesson).is_dir():
                raise HubError(f"{lesson} was not released into the exchange")

    def _start_proxy(self) -> None:
        log = _private_log(self.s.run_dir / "proxy.log")
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.s.proxy_token, "TMPDIR": str(self.s.scratch_dir)}
        self.procs["proxy"] = subprocess.Popen(
            [self.proxy, "--ip", "127.0.0.1", "--port", str(self.s.public_port),
             "--api-ip", "127.0.0.1", "--api-port", str(self.s.proxy_api_port),
             "--default-target", f"http://127.0.0.1:{self.s.hub_port}",
             "--error-target", f"http://127.0.0.1:{self.s.hub_port}/hub/error", "--log-level", "warn"],
            stdout=log, stderr=log, env=env, start_new_session=True, cwd=self.s.run_dir)
        log.close()
        wait_for(lambda: port_open(self.s.proxy_api_port), self.s.timeout, "the proxy's API port to open")

    def _start_hub(self) -> None:
        import urllib.request

        log = _private_log(self.s.run_dir / "jupyterhub.log")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               "TMPDIR": str(self.s.scratch_dir)}
        self.procs["hub"] = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(self.s.run_dir / "jupyterhub_config.py")],
            stdout=log, stderr=log, env=env, start_new_session=True, cwd=self.s.run_dir / "hub")
        log.close()

        def hub_answers():
            if self.procs["hub"].poll() is not None:
                raise HubError(f"the hub exited; see {self.s.run_dir / 'jupyterhub.log'}")
            with urllib.request.urlopen(f"{self.s.url}/hub/api", timeout=2) as r:
                return r.status == 200

        wait_for(hub_answers, self.s.timeout, "the hub to answer through the proxy")

    def _kill_user_processes(self) -> None:
        """Stop what still runs as the class's users (servers, kernels), by PID."""
        import psutil

        uids = set()
        for user in self.created_users:
            try:
                uids.add(pwd.getpwnam(user).pw_uid)
            except KeyError:
                pass
        for p in psutil.process_iter(["uids"]):
            if p.info["uids"] and p.info["uids"].real in uids:
                stop_pid(p.pid, timeout=5)

    # -- the instructor's grading, between `collect` and `release_feedback`
    def grade_collected(self, lesson: str, out: Path, *, jobs: int = 2, sandbox: bool = True,
                        cell_timeout: int | None = None, timeout: float = 600) -> list[dict]:
        """``course grade`` the instructor's collected ``submitted/`` into ``out``; the CSV rows.

        Calls :func:`autograder.grade.grade` (what the command runs): the
        workers run here (root, in the bubblewrap sandbox when ``sandbox``),
        each submission bounded by the course's limits; the submissions are
        only read. ``timeout`` is kept for callers; the per-notebook limits
        bound the batch.
        """
        from ..config import Limits
        from ..grade import grade

        limits = Limits(cell_timeout=cell_timeout) if cell_timeout else Limits()
        rows = grade(self.s.course_root() / "submitted", out=Path(out), lessons=[lesson], jobs=jobs,
                     limits=limits, sandbox=sandbox, progress=False)
        return [{k: str(v) for k, v in r.items()} for r in rows]  # as grades.csv has them

    def load_gradebook(self, out: Path):
        """Load ``course grade`` results into the class's PostgreSQL gradebook."""
        from ..gradebook import load_results

        return load_results(out, self.s.db_url, course_id=self.s.course_id)

    def release_feedback(self, graded: Path, lesson: str) -> list[str]:
        """``course feedback release`` for one lesson (what the printed command runs); the students released."""
        from ..feedback_release import feedback_release

        s = self.s
        done = feedback_release(graded, course=s.course_root(), exchange=s.exchange, lessons=[lesson],
                                course_id=s.course_id)
        return [student for result in done for student in result.released]

    def _keep_course_folder(self) -> None:
        """Copy the instructor's course folder (submissions, grading, feedback) into RUN_DIR/kept/."""
        if self.s.instructor not in self.created_users:
            return
        root = self.s.course_root()
        if not root.is_dir():
            return
        target = self.s.kept_dir / f"{root.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.s.kept_dir.mkdir(mode=0o700, exist_ok=True)
        # A link stays a link (nothing outside is copied); a FIFO or device the account left is
        # not opened (reading a FIFO would block the stop).
        shutil.copytree(root, target, symlinks=True, ignore=_not_files)
        self.kept = target

    def commands(self) -> dict[str, list[str]]:
        """The instructor's next steps as complete command lines (run as root, where the hub runs)."""
        s = self.s
        course = Path(sys.executable).with_name("course")
        # Root's scratch files (graded copies, kernels' IPython folders) stay in the run folder,
        # never in the /tmp every student can read.
        cli = ["env", f"TMPDIR={s.scratch_dir}",
               *([str(course)] if course.exists() else [sys.executable, "-m", "autograder.cli"])]
        root = s.course_root()
        return {
            "grade": [*cli, "grade", str(root / "submitted"), "--out", str(s.grading_dir), "--jobs", str(s.jobs)],
            "gradebook": [*cli, "gradebook", str(s.grading_dir), s.db_url],
            "feedback": [*cli, "feedback", "release", str(s.grading_dir), "--course", str(root),
                         "--exchange", str(s.exchange)],
            "solutions": [*cli, "solutions", s.lessons[0], "--exchange", str(s.exchange), "--course", str(root)],
        }

    def login_help(self) -> str:
        s = self.s
        rows = [f"  {u:<16} {s.passwords[u]}   ({'instructor' if u == s.instructor else 'student'})"
                for u in [s.instructor, *s.students]]
        steps = {k: shlex.join(v) for k, v in self.commands().items()}
        return "\n".join([
            f"The class is running: open {s.url}/hub/login and log in as one of",
            *rows,
            f"Lessons released to the exchange: {', '.join(s.lessons)}"
            + (f" (hints off for {', '.join(sorted(s.hints_off))})" if s.hints_off else "")
            + (f" (hidden checks on for {', '.join(sorted(s.hidden_checks))}: those lessons' hidden tests "
               "are readable by students)" if s.hidden_checks else ""),
            f"Gradebook: {s.db_url}",
            f"Configuration: {s.run_dir / 'jupyterhub_config.py'}, {s.run_dir / 'nbgrader_config.py'},",
            f"  and the instructor's {s.course_root().parent / '.jupyter' / 'nbgrader_config.py'}",
            "After the instructor collected (formgrader > Collect), as root here:",
            "  # grade every collected submission, sandboxed",
            f"  {steps['grade']}",
            "  # load the scores into the class's gradebook (formgrader, nbgrader export)",
            f"  {steps['gradebook']}",
            "  # hand each student their feedback through the exchange (they Fetch Feedback)",
            f"  {steps['feedback']}",
            "  # then, lesson by lesson, the worked solutions (refused before that lesson's feedback)",
            f"  {steps['solutions']}",
            f"Press Ctrl-C to stop everything: the demo accounts are deleted, the instructor's course folder "
            f"is kept in {s.kept_dir}.",
        ])
