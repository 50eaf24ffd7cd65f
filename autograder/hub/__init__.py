"""A whole class on one host: JupyterHub, nbgrader's exchange and a PostgreSQL gradebook.

What it models: the multi-user setup a course runs on for real, shrunk onto
127.0.0.1. :class:`ClassHub` starts, in order, and stops in reverse:

* the users' runtime, outside the checkout: a venv of the course's
  dependencies under ``/opt/threads-sockets-course`` and the course's own
  packages from a wheel built from ``course_lib/`` and ``autograder/`` only;
* demo Unix accounts (one instructor, a few students) with their own homes
  (mode 700) and random passwords -- students are separate users, so the
  operating system, not the notebook server, keeps their work apart;
* PostgreSQL (``initdb`` + ``pg_ctl`` as the ``postgres`` user, no systemd),
  with one database for the gradebook and one password-protected role;
* the lessons, through ``course release``'s own code, into the instructor's
  course folder and nbgrader's exchange (a world-writable, sticky folder);
* configurable-http-proxy and JupyterHub (``LocalProcessSpawner``: each
  user's server runs as that user; students get nbgrader's student tools,
  the instructor the formgrader too).

Nothing a student's account can read holds an answer: the class refuses to
start while the checkout is readable by other users, and checks as each
student that the private paths stay closed. The configuration it writes
(``jupyterhub_config.py``, ``nbgrader_config.py``) is generated from the
course's settings (:mod:`autograder.config`), commented, and meant to be
carried to a real server; ``docs/hub.md`` says what changes for a larger
class. Every process is started here and stopped here by its PID; the
accounts it created (and only those) are deleted at the end, after the
instructor's course folder is archived into ``RUN_DIR/kept/``.

Trade-offs: single host, demo passwords printed on the terminal, PAM login
(real Unix passwords) -- a class on a shared server would use LTI or OAuth
instead. Grading is not done by the hub: the instructor's collected
``submitted/`` is graded by ``course grade`` (sandboxed, in parallel), loaded
by ``course gradebook`` and handed back by ``course feedback release``; the
hub prints those commands.

Run it with ``python -m autograder.hub`` (``make hub``) as root. The package: ``provision``
(what a host needs, the users' runtime), ``configs`` (settings, generated files), ``processes``
(run, wait, stop), ``classhub`` (the class itself), ``__main__`` (the command).
"""


from __future__ import annotations

from .. import lessons as lessons_mod  # noqa: F401  (tests reach the lessons through it)
from .classhub import RELEASE_SCRIPT, ClassHub
from .configs import (ClassSettings, free_port, instructor_nbgrader_config_text, jupyterhub_config_text,
                      role_config_files, shared_nbgrader_config_text)
from .processes import HubError, HubTimeout, as_user, stop_pid, wait_for
from .provision import (HUB_HOME, HUB_VENV_CACHE, PG_BIN_DIRS, PROXY_PREFIX, PROXY_VERSION, SYSTEM_PYTHON,
                        course_wheel, ensure_proxy, find_proxy, hub_venv, install_course_code, missing_requirements,
                        open_to_others)

__all__ = [
    "HUB_HOME", "HUB_VENV_CACHE", "PROXY_PREFIX", "PROXY_VERSION", "SYSTEM_PYTHON", "PG_BIN_DIRS", "HubError",
    "HubTimeout", "missing_requirements", "find_proxy", "ensure_proxy", "hub_venv", "course_wheel",
    "install_course_code", "open_to_others", "free_port", "ClassSettings", "jupyterhub_config_text",
    "shared_nbgrader_config_text", "instructor_nbgrader_config_text", "role_config_files", "as_user",
    "wait_for", "stop_pid", "RELEASE_SCRIPT", "ClassHub"
]
