"""Processes of a class host: run as a user, wait for a condition, stop by PID; the hub's errors."""

from __future__ import annotations

import pwd
import socket
import subprocess
import time

from ..lessons import CourseError
from ..proctree import kill_tree

__all__ = ["HubError", "HubTimeout", "run_bounded", "as_user", "wait_for", "port_open", "stop_pid"]


class HubError(CourseError):
    """The class could not be started or stopped (a missing program, a port that never opened)."""


class HubTimeout(HubError):
    """Something the hub waited for did not happen within its time limit."""




# --------------------------------------------------------------------------- processes

def run_bounded(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise HubError(f"`{' '.join(cmd)}` failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    return done


def as_user(user: str, cmd: list[str], *, env: dict | None = None, cwd: str | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` as ``user`` (runuser; root only) and return it, failing loudly.

    Its command line is readable by every user (``/proc/PID/cmdline``): pass
    anything secret as ``input`` (stdin), never in ``cmd`` or ``env``.
    """
    env_args = [f"{k}={v}" for k, v in (env or {}).items()]
    home = pwd.getpwnam(user).pw_dir
    return run_bounded(["runuser", "-u", user, "--", "env", f"HOME={home}", f"USER={user}", *env_args, *cmd],
                       timeout, cwd=cwd or "/", input=input)


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


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_pid(pid: int, timeout: float = 15) -> None:
    """SIGTERM ``pid`` and its children, then SIGKILL whatever is left after ``timeout``."""
    kill_tree(pid, grace=timeout)

