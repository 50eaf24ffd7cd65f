"""A class's settings and the commented config files generated from them (JupyterHub, nbgrader)."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..config import COURSE_ID, nbgrader_config
from .. import lessons as lessons_mod

__all__ = ["STUDENT_LAB_OFF", "STUDENT_SERVER_OFF", "USER_TMP", "free_port", "ClassSettings", "jupyterhub_config_text",
           "shared_nbgrader_config_text", "instructor_nbgrader_config_text", "role_config_files"]

# nbgrader's instructor tools, off for students (nbgrader's "installation" page names them):
# the lab plugins and the server extensions behind them. Students keep the assignment
# list and validate.
STUDENT_LAB_OFF = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list")
STUDENT_SERVER_OFF = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
USER_TMP = ".tmp"   # each user's TMPDIR, in their home (mode 700), never the shared /tmp


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
    hints_off: set[str] = field(default_factory=set)   # lessons released without their hints file
    # Lessons whose hidden tests are released for `course check --hidden` (students can read them).
    hidden_checks: set[str] = field(default_factory=set)
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)   # in the printed grading command

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
        """Jupyter settings every user reads (JUPYTER_CONFIG_PATH): ``student/`` and ``instructor/``."""
        return self.run_dir / "etc-jupyter"

    def role_config_dir(self, user: str) -> Path:
        return self.shared_config_dir / ("instructor" if user == self.instructor else "student")

    @property
    def course_code(self) -> Path:
        """The course's packages for the users' servers (on their PYTHONPATH), from its wheel."""
        return self.run_dir / "course-code"

    @property
    def grading_dir(self) -> Path:
        """``course grade --out``: root only (the autograded notebooks hold the hidden tests)."""
        return self.run_dir / "grading"

    @property
    def scratch_dir(self) -> Path:
        """TMPDIR of root's work for the class (the hub, the proxy, the printed commands): root only."""
        return self.run_dir / "tmp"

    @property
    def kept_dir(self) -> Path:
        """Where the instructor's course folder is archived when the class stops (root only)."""
        return self.run_dir / "kept"

    @property
    def solutions_dir(self) -> Path:
        """Worked solutions released for the class (``course solutions --release``), one folder a lesson."""
        return self.exchange / self.course_id / "solutions"

    @property
    def hint_lessons(self) -> list[str]:
        return [lesson for lesson in self.lessons if lesson not in self.hints_off]

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
# jupyterhub_config.py -- written by `python -m autograder.hub` (autograder/hub/).
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

# Students get nbgrader's student tools (assignment list, validate); the instructor also gets
# the formgrader and create-assignment: each role reads its own settings folder.
def _role_settings(spawner):
    return "{s.role_config_dir(s.instructor)}" if spawner.user.name == {s.instructor!r} else "{s.role_config_dir('')}"

# Each user's scratch files (kernels' IPython folders, `course check`'s copies) go to a folder in
# their home only they can open, never into the /tmp every account shares (where a classmate
# could read them, or create the folder first under a name a program predicts).
def _private_tmp(spawner):
    import pwd
    return pwd.getpwnam(spawner.user.name).pw_dir + "/{USER_TMP}"

c.Spawner.environment = {{
    "TMPDIR": _private_tmp,
    # nbgrader's settings (course id, exchange folder) and which of its tools are on.
    "JUPYTER_CONFIG_PATH": _role_settings,
    # The course's own packages (course_lib, the `course` command), installed for this class
    # from its wheel -- never the checkout, which students cannot read.
    "PYTHONPATH": "{s.course_code}",
    # nbgrader calls `alembic` from PATH; kernels run the same venv.
    "PATH": "{s.course_code / 'bin'}:{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    # `course check --hidden` needs the hidden tests: off unless the instructor released some
    # lessons' (their hidden-checks file); the others still refuse, lesson by lesson.
    "COURSE_HIDDEN_CHECKS": "{'on' if s.hidden_checks else 'off'}",
    # Where `course solutions` finds worked solutions once the instructor released them.
    "COURSE_SOLUTIONS": "{s.solutions_dir}",
}}
'''


def shared_nbgrader_config_text(s: ClassSettings) -> str:
    """The ``nbgrader_config.py`` every user's server reads (via JUPYTER_CONFIG_PATH)."""
    return f'''\
# nbgrader_config.py shared by every user of the class -- written by autograder/hub/.
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
        "# The instructor's nbgrader settings -- written by autograder/hub/ from autograder/config.py.",
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


def role_config_files(s: ClassSettings) -> dict[Path, str]:
    """Each role's settings folder: nbgrader's shared settings, and which nbgrader tools are off.

    Students: the formgrader, create-assignment and course-list plugins are
    disabled in JupyterLab (``labconfig/page_config.json``) and the formgrader
    and course-list server extensions are not loaded (``jupyter_server_config.json``),
    as nbgrader's documentation does with ``jupyter labextension disable``.
    Hiding a menu is not what keeps answers from students (Unix permissions
    are); it keeps the instructor's tools out of a student's way.
    """
    student, instructor = s.role_config_dir(""), s.role_config_dir(s.instructor)
    shared = shared_nbgrader_config_text(s)
    return {
        student / "nbgrader_config.py": shared,
        student / "labconfig" / "page_config.json":
            json.dumps({"disabledExtensions": {name: True for name in STUDENT_LAB_OFF}}, indent=1) + "\n",
        student / "jupyter_server_config.json":
            json.dumps({"ServerApp": {"jpserver_extensions": {name: False for name in STUDENT_SERVER_OFF}}},
                       indent=1) + "\n",
        instructor / "nbgrader_config.py": shared,
    }
