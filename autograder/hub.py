"""A whole class on one host: JupyterHub, nbgrader's exchange and a PostgreSQL gradebook.

What it models: the multi-user setup a course runs on for real, shrunk onto
127.0.0.1. :class:`ClassHub` starts, in order, and stops in reverse:

* demo Unix accounts (one instructor, a few students) with their own homes
  (mode 700) and random passwords — students are separate users, so the
  operating system, not the notebook server, keeps their work apart;
* PostgreSQL (``initdb`` + ``pg_ctl`` as the ``postgres`` user, no systemd),
  with one database for the gradebook and one password-protected role;
* configurable-http-proxy and JupyterHub (``LocalProcessSpawner``: each
  user's server runs as that user, from a venv built from the system
  ``python3`` in a folder every user can read);
* nbgrader's exchange (a world-writable, sticky folder) with the lessons
  released into it by the instructor.

The configuration it writes (``jupyterhub_config.py``, ``nbgrader_config.py``)
is generated from the course's settings (:mod:`autograder.config`), commented,
and meant to be carried to a real server; ``docs/hub.md`` says what changes
for a larger class. Every process is started here and stopped here by its
PID; the accounts it created (and only those) are deleted at the end.

Trade-offs: single host, demo passwords printed on the terminal, PAM login
(real Unix passwords) — a class on a shared server would use LTI or OAuth
instead. Grading is not done by the hub: the instructor's collected
``submitted/`` is graded by ``course grade`` (sandboxed, in parallel) and the
results are loaded into PostgreSQL by :mod:`autograder.gradebook`.

Run it with ``python -m autograder.hub`` (``make hub``) as root.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import COURSE_ID, nbgrader_config
from .lessons import REPO, CourseError
from . import lessons as lessons_mod
from .proctree import kill_tree
from .release import COPY_IGNORE

__all__ = [
    "HUB_VENV_CACHE", "PROXY_PREFIX", "PROXY_VERSION", "SYSTEM_PYTHON", "PG_BIN_DIRS", "HubError",
    "HubTimeout", "missing_requirements", "find_proxy", "ensure_proxy", "hub_venv", "free_port",
    "ClassSettings", "jupyterhub_config_text", "shared_nbgrader_config_text",
    "instructor_nbgrader_config_text", "as_user", "wait_for", "stop_pid", "RELEASE_SCRIPT",
    "ClassHub", "main"
]

HUB_VENV_CACHE = REPO / "build" / "hub-venv"
PROXY_PREFIX = REPO / "build" / "hub-node"
PROXY_VERSION = "5.3.0"
SYSTEM_PYTHON = "/usr/bin/python3"
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class HubError(CourseError):
    """The class could not be started or stopped (a missing program, a port that never opened)."""


class HubTimeout(HubError):
    """Something the hub waited for did not happen within its time limit."""


# --------------------------------------------------------------------------- what is needed

def missing_requirements() -> list[str]:
    """What this machine lacks to run the class; empty when everything is there."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (it creates Unix users and runs servers as them)")
    for tool in ("useradd", "userdel", "chpasswd", "runuser"):
        if shutil.which(tool) is None:
            missing.append(f"the `{tool}` command")
    if _pg_tool("initdb") is None or _pg_tool("pg_ctl") is None:
        missing.append("PostgreSQL server (`apt-get install postgresql`)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        missing.append("the `postgres` user (`apt-get install postgresql`)")
    if find_proxy() is None and shutil.which("npm") is None:
        missing.append("configurable-http-proxy (`npm install -g configurable-http-proxy`) or npm")
    if not _python_ok(SYSTEM_PYTHON):
        missing.append(f"{SYSTEM_PYTHON} >= 3.11 with venv (for the users' servers)")
    try:
        import jupyterhub  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as exc:
        missing.append(f"Python package {exc.name} (`pip install jupyterhub psycopg2-binary`)")
    return missing


def _pg_tool(name: str) -> str | None:
    for bin_dir in PG_BIN_DIRS:
        if (bin_dir / name).exists():
            return str(bin_dir / name)
    return shutil.which(name)


def _python_ok(python: str) -> bool:
    try:
        out = subprocess.run([python, "-c", "import sys, venv, ensurepip; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "True"


def find_proxy() -> str | None:
    """configurable-http-proxy on PATH, or the copy ``ensure_proxy`` installed under build/."""
    local = PROXY_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    return shutil.which("configurable-http-proxy")


def ensure_proxy(timeout: float = 300) -> str:
    """The proxy's path, installing it from npm under build/hub-node if needed."""
    found = find_proxy()
    if found:
        return found
    if shutil.which("npm") is None:
        raise HubError("configurable-http-proxy is missing and npm is not installed")
    PROXY_PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--prefix", str(PROXY_PREFIX), "--no-audit", "--no-fund",
                    f"configurable-http-proxy@{PROXY_VERSION}"], check=True, timeout=timeout,
                   capture_output=True)
    found = find_proxy()
    if not found:
        raise HubError("npm installed configurable-http-proxy but its command is not there")
    return found


# --------------------------------------------------------------------------- the users' venv

def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _readable_by_all(path: Path) -> bool:
    """Can any user reach ``path`` (every parent folder searchable by others)?"""
    for folder in [path, *path.parents]:
        if folder.exists() and not folder.stat().st_mode & 0o001:
            return False
    return True


def hub_venv(timeout: float = 900, log=print) -> Path:
    """A venv for the users' servers, built from the system python3 where every user can read it.

    The users' servers cannot run the project's own venv when its
    interpreter sits in a folder they cannot enter (pyenv under /root), so
    this venv is built from ``/usr/bin/python3``. It is cached, keyed by
    pyproject.toml's hash (dependencies: ~45 s to build cold); when only the
    course's own code changed, the project is reinstalled into it (a few
    seconds) without touching the dependencies.
    """
    import jupyterhub

    deps_key = _digest([REPO / "pyproject.toml"]) + "-hub" + jupyterhub.__version__
    code_key = _digest(sorted(p for d in ("course_lib", "autograder") for p in (REPO / d).rglob("*.py")))
    base = HUB_VENV_CACHE if _readable_by_all(REPO) else Path("/opt/threads-sockets-course/hub-venv")
    venv = base / deps_key
    base.mkdir(parents=True, exist_ok=True)
    with open(base.parent / f".{base.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once (a test and `make hub`) build it once
        return _build_hub_venv(venv, base, deps_key, code_key, timeout, log)


def _build_hub_venv(venv: Path, base: Path, deps_key: str, code_key: str, timeout: float, log) -> Path:
    import jupyterhub

    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    deps_stamp, code_stamp = venv / ".deps-installed", venv / ".code-installed"
    if not deps_stamp.exists():
        if venv.exists():
            shutil.rmtree(venv)
        for old in base.glob("*"):
            shutil.rmtree(old, ignore_errors=True)  # stale venvs of older pyproject.toml files
        log(f"building the users' venv in {venv} (once per pyproject.toml; about a minute)")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
        # pip compiles .pyc in one process; compileall afterwards uses every core (users cannot
        # write .pyc into this root-owned venv, so it must be compiled here).
        _run_quiet(pip + ["--no-compile", str(REPO), f"jupyterhub=={jupyterhub.__version__}",
                          "psycopg2-binary"], timeout)
        _run_quiet([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
                   timeout, check=False)
        deps_stamp.write_text(deps_key)
        code_stamp.write_text(code_key)
        _run(["chmod", "-R", "a+rX", str(venv)], 300)  # readable by the users whatever the umask
    elif not code_stamp.exists() or code_stamp.read_text() != code_key:
        log("the course's code changed: reinstalling it into the users' venv")
        _run_quiet(pip + ["--no-deps", "--force-reinstall", str(REPO)], timeout)
        code_stamp.write_text(code_key)
        _run(["chmod", "-R", "a+rX", str(venv)], 300)  # readable by the users whatever the umask
    for folder in (base, base.parent):  # the folders above were checked by _readable_by_all
        folder.chmod(folder.stat().st_mode | 0o005)
    return venv


def _run_quiet(cmd: list[str], timeout: float, check: bool = True) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/tmp")
    if check and done.returncode != 0:
        errors = [l for l in done.stderr.splitlines() if not l.startswith("WARNING: Location")]
        raise HubError(f"{' '.join(cmd[:4])} ... failed: " + "\n".join(errors[-10:]))


# --------------------------------------------------------------------------- settings and config files

def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS picks it; a tiny race until the server binds)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ClassSettings:
    """Everything that differs between two runs of the class; the rest is the course's."""

    run_dir: Path
    instructor: str = "ts-instructor"
    students: list[str] = field(default_factory=lambda: ["ts-student1", "ts-student2", "ts-student3"])
    lessons: list[str] = field(default_factory=lambda: lessons_mod.all_lessons())
    course_id: str = COURSE_ID
    public_port: int = 0      # 0: any free port
    timeout: float = 120      # seconds any one start-up step may take

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        self.public_port = self.public_port or free_port()
        self.hub_port, self.proxy_api_port, self.pg_port = free_port(), free_port(), free_port()
        self.passwords = {u: secrets.token_urlsafe(12) for u in [self.instructor, *self.students]}
        self.db_password = secrets.token_urlsafe(18)
        self.proxy_token = secrets.token_hex(32)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def exchange(self) -> Path:
        return self.run_dir / "exchange"

    @property
    def shared_config_dir(self) -> Path:
        return self.run_dir / "etc-jupyter"

    @property
    def db_url(self) -> str:
        return (f"postgresql+psycopg2://gradebook:{self.db_password}"
                f"@127.0.0.1:{self.pg_port}/{self.course_id.replace('-', '_')}")

    def course_root(self) -> Path:
        """The course folder in the instructor's home (where the formgrader looks)."""
        try:
            home = Path(pwd.getpwnam(self.instructor).pw_dir)
        except KeyError:  # not created yet (--print-config): where useradd will put it
            home = Path("/home") / self.instructor
        return home / self.course_id


def jupyterhub_config_text(s: ClassSettings, venv: Path) -> str:
    """``jupyterhub_config.py`` for the class, with a comment on every choice."""
    users = sorted([s.instructor, *s.students])
    return f'''\
# jupyterhub_config.py -- written by `python -m autograder.hub` (autograder/hub.py).
# A single-host class: every user logs in with their Unix password and gets a
# Jupyter server running as their own Unix user. docs/hub.md says what changes
# for a larger class (Kubernetes, LTI login).
c = get_config()  # noqa

# Where the class is served. The proxy is started by autograder.hub itself
# (so it can stop it by its PID); the hub only talks to its REST API, with the
# token below -- keep this file private (mode 600).
c.JupyterHub.bind_url = "http://127.0.0.1:{s.public_port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {s.hub_port}
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{s.proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = {s.proxy_token!r}

# The hub's own state (users, tokens) stays in SQLite: it is small and only
# the hub writes it. The *gradebook* is PostgreSQL (see nbgrader_config.py).
c.JupyterHub.db_url = "sqlite:///{s.run_dir / 'hub' / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = "{s.run_dir / 'hub' / 'jupyterhub_cookie_secret'}"
c.JupyterHub.cleanup_servers = True   # stopping the hub stops every user's server

# Login: the users' Unix passwords (PAM). Only the class's accounts may log in.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False   # no systemd/logind session on this host
c.Authenticator.allowed_users = {set(users)!r}

# Each user's server runs as that Unix user (LocalProcessSpawner), from a venv
# built from the system python3 in a folder every user can read -- a venv
# under root's home cannot be run by them.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = ["{venv / 'bin' / 'jupyterhub-singleuser'}"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = {int(s.timeout)}
c.Spawner.http_timeout = {int(s.timeout)}
c.Spawner.environment = {{
    # nbgrader's shared settings (course id, exchange folder) for every user.
    "JUPYTER_CONFIG_PATH": "{s.shared_config_dir}",
    # nbgrader calls `alembic` from PATH; kernels run the same venv.
    "PATH": "{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
}}
'''


def shared_nbgrader_config_text(s: ClassSettings) -> str:
    """The ``nbgrader_config.py`` every user's server reads (via JUPYTER_CONFIG_PATH)."""
    return f'''\
# nbgrader_config.py shared by every user of the class -- written by autograder/hub.py.
# Students need only the course id and where the exchange is; the instructor's
# own settings (course folder, gradebook) are in ~/.jupyter/nbgrader_config.py.
c = get_config()  # noqa

c.CourseDirectory.course_id = {s.course_id!r}
# nbgrader's exchange: a folder every user can write into (mode 1777). nbgrader
# makes inbound/ write-only (733) and feedback/ unlistable (711), so a student
# can hand in and fetch their own feedback but cannot list or read others'.
c.Exchange.root = "{s.exchange}"
# One course per hub: a fetched lesson goes to ~/LESSON, not ~/COURSE/LESSON.
c.Exchange.path_includes_course = False
'''


def instructor_nbgrader_config_text(s: ClassSettings) -> str:
    """The instructor's ``nbgrader_config.py``: the course's settings plus the PostgreSQL gradebook."""
    root = s.course_root()
    lines = [
        "# The instructor's nbgrader settings -- written by autograder/hub.py from autograder/config.py.",
        "# The course folder is in the instructor's home (the formgrader looks there); the gradebook",
        "# is PostgreSQL, so several graders and the formgrader can use it at once. Keep this file",
        "# private (mode 600): it holds the gradebook's password.",
        "c = get_config()  # noqa",
        "",
    ]
    config = nbgrader_config(root)
    config.CourseDirectory.course_id = s.course_id
    config.CourseDirectory.db_url = s.db_url
    for section, values in config.items():
        for key, value in values.items():
            lines.append(f"c.{section}.{key} = {value!r}")
    lines += ["", "# The exchange, as for every user.", f'c.Exchange.root = "{s.exchange}"',
              "c.Exchange.path_includes_course = False"]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- processes

def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise HubError(f"`{' '.join(cmd)}` failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    return done


def as_user(user: str, cmd: list[str], *, env: dict | None = None, cwd: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``cmd`` as ``user`` (runuser; root only) and return it, failing loudly."""
    env_args = [f"{k}={v}" for k, v in (env or {}).items()]
    home = pwd.getpwnam(user).pw_dir
    return _run(["runuser", "-u", user, "--", "env", f"HOME={home}", f"USER={user}", *env_args, *cmd],
                timeout, cwd=cwd or "/")


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    """Call ``check`` until it returns a truthy value; HubTimeout after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 -- retried until the deadline, then reported
            last_error = exc
        time.sleep(interval)
    raise HubTimeout(f"{what} did not happen within {timeout:g} s" + (f" (last error: {last_error})"
                                                                    if last_error else ""))


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_pid(pid: int, timeout: float = 15) -> None:
    """SIGTERM ``pid`` and its children, then SIGKILL whatever is left after ``timeout``."""
    kill_tree(pid, grace=timeout)


# Run as the instructor in their course folder: nbgrader's own settings files are read
# (~/.jupyter and JUPYTER_CONFIG_PATH), exactly as `nbgrader generate_assignment` would.
RELEASE_SCRIPT = """
import sys
from nbgrader.apps import NbGraderAPI
from nbgrader.apps.baseapp import NbGrader
app = NbGrader()
app.initialize([])
api = NbGraderAPI(app.coursedir, config=app.config)
for lesson in sys.argv[1:]:
    for step in (lambda: api.generate_assignment(lesson, force=True), lambda: api.release_assignment(lesson)):
        result = step()
        if not result["success"]:
            sys.exit(f"{lesson}: " + (result.get("error") or "") + (result.get("log") or "")[-1500:])
"""


class ClassHub:
    """The single-host class. Methods for the caller: ``start()``, ``stop()``, ``with``.

    ``start`` blocks until a user can log in (or raises and undoes what it
    did); ``stop`` is safe to call twice and after a failed start, stops every
    process by its PID and deletes only the accounts it created.
    """

    def __init__(self, settings: ClassSettings, log=print):
        self.s = settings
        self.log = log
        self.created_users: list[str] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_data: Path | None = None
        self.venv: Path | None = None
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
        try:
            for step in (self._prepare, self._create_users, self._start_postgres, self._write_configs,
                         self._release, self._start_proxy, self._start_hub):
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
        for user in reversed(self.created_users):
            subprocess.run(["userdel", "-r", "-f", user], capture_output=True, timeout=60)
            try:
                grp.getgrnam(user)
                subprocess.run(["groupdel", user], capture_output=True, timeout=60)
            except KeyError:
                pass
        self.created_users.clear()

    # -- steps
    def _prepare(self) -> None:
        run = self.s.run_dir
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o755)  # postgres and the users must reach their folders in it
        if not _readable_by_all(run):
            raise HubError(f"{run} is inside a folder other users cannot enter; use a run folder "
                           f"such as one made by tempfile.mkdtemp() under /tmp")
        (run / "hub").mkdir(mode=0o700, exist_ok=True)
        self.s.exchange.mkdir(exist_ok=True)
        self.s.exchange.chmod(0o1777)
        self.s.shared_config_dir.mkdir(exist_ok=True)
        self.venv = hub_venv(log=self.log)
        self.proxy = ensure_proxy()

    def _create_users(self) -> None:
        for user in [self.s.instructor, *self.s.students]:
            try:
                pwd.getpwnam(user)
                raise HubError(f"user {user} already exists; it was not created here, so it is not "
                               f"reused (choose other names)")
            except KeyError:
                pass
            _run(["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", user], 60)
            self.created_users.append(user)
            home = Path(pwd.getpwnam(user).pw_dir)
            home.chmod(0o700)  # students cannot read each other's homes
        _run(["chpasswd"], 60, input="".join(f"{u}:{p}\n" for u, p in self.s.passwords.items()))

    def _start_postgres(self) -> None:
        data = self.s.run_dir / "postgres"
        sock = self.s.run_dir / "postgres-socket"
        for folder in (data, sock):
            folder.mkdir(mode=0o700, exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")
        self.pg_data = data
        env = {"LC_ALL": "C.UTF-8"}
        as_user("postgres", [_pg_tool("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=peer",
                             "--auth-host=scram-sha-256", "-E", "UTF8"], env=env, timeout=self.s.timeout)
        options = f"-k {sock} -p {self.s.pg_port} -c listen_addresses=127.0.0.1"
        as_user("postgres", [_pg_tool("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
                             "-o", options, "-w", "-t", str(int(self.s.timeout)), "start"],
                env=env, timeout=self.s.timeout + 10)
        db = self.s.course_id.replace("-", "_")
        psql = [_pg_tool("psql") or "psql", "-h", str(sock), "-p", str(self.s.pg_port), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q"]
        as_user("postgres", psql + ["-c", f"CREATE ROLE gradebook LOGIN PASSWORD '{self.s.db_password}'"],
                timeout=60)
        as_user("postgres", psql + ["-c", f"CREATE DATABASE {db} OWNER gradebook"], timeout=60)

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
            subprocess.run(["runuser", "-u", "postgres", "--", _pg_tool("pg_ctl"), "-D", str(self.pg_data),
                            "-m", "fast", "-w", "-t", "30", "stop"], capture_output=True, timeout=60, cwd="/")
            stop_pid(pid, timeout=10)  # only if pg_ctl could not stop it
        self.pg_data = None

    def _write_configs(self) -> None:
        s = self.s
        hub_config = s.run_dir / "jupyterhub_config.py"
        hub_config.touch(mode=0o600)  # it holds the proxy's token: root only
        hub_config.chmod(0o600)
        hub_config.write_text(jupyterhub_config_text(s, self.venv))
        shared = s.shared_config_dir / "nbgrader_config.py"
        shared.write_text(shared_nbgrader_config_text(s))
        shared.chmod(0o644)
        (s.run_dir / "nbgrader_config.py").write_text(shared.read_text())  # next to the hub's, to read
        instructor = pwd.getpwnam(s.instructor)
        jupyter_dir = Path(instructor.pw_dir) / ".jupyter"
        jupyter_dir.mkdir(exist_ok=True)
        private = jupyter_dir / "nbgrader_config.py"
        private.write_text(instructor_nbgrader_config_text(s))
        private.chmod(0o600)
        for path in (jupyter_dir, private):
            os.chown(path, instructor.pw_uid, instructor.pw_gid)

    def instructor_env(self) -> dict:
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "JUPYTER_CONFIG_PATH": str(self.s.shared_config_dir)}

    def _release(self) -> None:
        """As the instructor: copy the lessons into source/, generate the student version, release it."""
        from .release import check_release

        s = self.s
        root = s.course_root()
        as_user(s.instructor, ["mkdir", "-p", str(root / "source")])
        for lesson in s.lessons:
            target = root / "source" / lesson
            shutil.copytree(lessons_mod.NOTEBOOKS / lesson, target,
                            ignore=COPY_IGNORE)
            _run(["chown", "-R", f"{s.instructor}:{s.instructor}", str(target)], 60)
        # One nbgrader process for every lesson (its start-up costs ~2 s a command).
        as_user(s.instructor, [str(self.venv / "bin" / "python"), "-c", RELEASE_SCRIPT, *s.lessons],
                env=self.instructor_env(), cwd=str(root), timeout=s.timeout * max(1, len(s.lessons)))
        for lesson in s.lessons:
            check_release(root / "release" / lesson)
            if not (s.exchange / s.course_id / "outbound" / lesson).is_dir():
                raise HubError(f"{lesson} was not released into the exchange")

    def _start_proxy(self) -> None:
        log = open(self.s.run_dir / "proxy.log", "ab")
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.s.proxy_token}
        self.procs["proxy"] = subprocess.Popen(
            [self.proxy, "--ip", "127.0.0.1", "--port", str(self.s.public_port),
             "--api-ip", "127.0.0.1", "--api-port", str(self.s.proxy_api_port),
             "--default-target", f"http://127.0.0.1:{self.s.hub_port}",
             "--error-target", f"http://127.0.0.1:{self.s.hub_port}/hub/error", "--log-level", "warn"],
            stdout=log, stderr=log, env=env, start_new_session=True, cwd=self.s.run_dir)
        log.close()
        wait_for(lambda: _port_open(self.s.proxy_api_port), self.s.timeout, "the proxy's API port to open")

    def _start_hub(self) -> None:
        import urllib.request

        log = open(self.s.run_dir / "jupyterhub.log", "ab")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
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

        The grading workers run here (root, in the bubblewrap sandbox when
        ``sandbox``) with the course's venv; the submissions are only read.
        """
        import csv

        cmd = [sys.executable, "-m", "autograder.cli", "grade", str(self.s.course_root() / "submitted"),
               "--out", str(out), "--lesson", lesson, "--jobs", str(jobs), "--quiet"]
        if cell_timeout:
            cmd += ["--cell-timeout", str(cell_timeout)]
        if not sandbox:
            cmd.append("--no-sandbox")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        _run(cmd, timeout, env=env, cwd=str(REPO))
        with open(Path(out) / "grades.csv", newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def load_gradebook(self, out: Path):
        """Load ``course grade`` results into the class's PostgreSQL gradebook."""
        from .gradebook import load_results

        return load_results(out, self.s.db_url, course_id=self.s.course_id)

    def stage_feedback(self, out: Path, lesson: str) -> list[str]:
        """Put ``course grade``'s feedback where nbgrader's release_feedback looks for it.

        nbgrader names released feedback by a hash of the submission's secret,
        so it needs ``timestamp.txt`` and ``submission_secret.txt`` from the
        collected submission beside each HTML file. Returns the students staged.
        """
        root = self.s.course_root()
        staged = []
        for html_dir in sorted((Path(out) / "feedback").glob(f"*/{lesson}")):
            student = html_dir.parent.name
            submitted = root / "submitted" / student / lesson
            if not (submitted / "submission_secret.txt").exists():
                continue  # not collected through the exchange: nothing to release to
            target = root / "feedback" / student / lesson
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for html in html_dir.glob("*.html"):
                shutil.copy2(html, target / html.name)
            for name in ("timestamp.txt", "submission_secret.txt"):
                shutil.copy2(submitted / name, target / name)
            staged.append(student)
        if (root / "feedback").exists():
            _run(["chown", "-R", f"{self.s.instructor}:{self.s.instructor}", str(root / "feedback")], 60)
        return staged

    def login_help(self) -> str:
        s = self.s
        rows = [f"  {u:<16} {s.passwords[u]}   ({'instructor' if u == s.instructor else 'student'})"
                for u in [s.instructor, *s.students]]
        return "\n".join([
            f"The class is running: open {s.url}/hub/login and log in as one of",
            *rows,
            f"Lessons released to the exchange: {', '.join(s.lessons)}",
            f"Gradebook: {s.db_url}",
            f"Configuration: {s.run_dir / 'jupyterhub_config.py'}, {s.run_dir / 'nbgrader_config.py'},",
            f"  and the instructor's {s.course_root().parent / '.jupyter' / 'nbgrader_config.py'}",
            "Grade what the instructor collected, then load it into the gradebook:",
            f"  course grade {s.course_root() / 'submitted'} --out {s.run_dir / 'graded'}",
            f"  python -m autograder.gradebook {s.run_dir / 'graded'} '{s.db_url}'",
            "Press Ctrl-C to stop everything (the demo accounts are deleted).",
        ])


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
               "  python -m autograder.hub --build-venv            # CI: build the users' venv before the tests\n"
               "  python -m autograder.hub --lesson 06 --print-config   # only show the generated files",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lesson", action="append", dest="lessons", metavar="LESSON",
                        help="release only this lesson (repeatable; default: all)")
    parser.add_argument("--students", type=int, default=3, help="demo student accounts (default: 3)")
    parser.add_argument("--prefix", default="ts-", help="prefix of the demo accounts' names (default: ts-)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free; default 8000)")
    parser.add_argument("--run-dir", type=Path, default=None, help="folder for state and logs (default: a new temp dir)")
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
    except CourseError as exc:
        print(f"course hub: {exc}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path(tempfile.gettempdir()) / "course-hub-NEW"
    if not args.print_config and args.run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="course-hub-"))
    settings = ClassSettings(run_dir=run_dir, instructor=f"{args.prefix}instructor",
                             students=[f"{args.prefix}student{n}" for n in range(1, args.students + 1)],
                             lessons=lessons, public_port=args.port)
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
        if args.run_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        print("stopped: hub, proxy, PostgreSQL, the users' servers; demo accounts deleted.")


if __name__ == "__main__":
    raise SystemExit(main())
