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

Run it with ``python -m autograder.hub`` (``make hub``) as root. The package: ``provision``
(what a host needs), ``configs`` (settings, generated files), ``processes`` (run, wait,
stop), ``classhub`` (the class itself), ``__main__`` (the command).
"""


from __future__ import annotations

from .. import lessons as lessons_mod  # noqa: F401  (tests reach the lessons through it)
from .classhub import RELEASE_SCRIPT, ClassHub
from .configs import (ClassSettings, free_port, instructor_nbgrader_config_text, jupyterhub_config_text,
                      shared_nbgrader_config_text)
from .processes import HubError, HubTimeout, as_user, stop_pid, wait_for
from .provision import (HUB_VENV_CACHE, PG_BIN_DIRS, PROXY_PREFIX, PROXY_VERSION, SYSTEM_PYTHON, ensure_proxy,
                        find_proxy, hub_venv, missing_requirements)

__all__ = [
    "HUB_VENV_CACHE", "PROXY_PREFIX", "PROXY_VERSION", "SYSTEM_PYTHON", "PG_BIN_DIRS", "HubError",
    "HubTimeout", "missing_requirements", "find_proxy", "ensure_proxy", "hub_venv", "free_port",
    "ClassSettings", "jupyterhub_config_text", "shared_nbgrader_config_text",
    "instructor_nbgrader_config_text", "as_user", "wait_for", "stop_pid", "RELEASE_SCRIPT",
    "ClassHub"
]
