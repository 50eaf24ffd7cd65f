"""What a class host needs, and getting it: Python, PostgreSQL, the proxy, the users' venv."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from ..lessons import REPO
from .processes import HubError, run_bounded

__all__ = ["HUB_VENV_CACHE", "PROXY_PREFIX", "PROXY_VERSION", "SYSTEM_PYTHON", "PG_BIN_DIRS", "missing_requirements",
           "pg_tool", "find_proxy", "ensure_proxy", "readable_by_all", "hub_venv"]


HUB_VENV_CACHE = REPO / "build" / "hub-venv"
PROXY_PREFIX = REPO / "build" / "hub-node"
PROXY_VERSION = "5.3.0"
SYSTEM_PYTHON = "/usr/bin/python3"
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)




# --------------------------------------------------------------------------- what is needed

def missing_requirements() -> list[str]:
    """What this machine lacks to run the class; empty when everything is there."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (it creates Unix users and runs servers as them)")
    for tool in ("useradd", "userdel", "chpasswd", "runuser"):
        if shutil.which(tool) is None:
            missing.append(f"the `{tool}` command")
    if pg_tool("initdb") is None or pg_tool("pg_ctl") is None:
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


def pg_tool(name: str) -> str | None:
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


def readable_by_all(path: Path) -> bool:
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
    base = HUB_VENV_CACHE if readable_by_all(REPO) else Path("/opt/threads-sockets-course/hub-venv")
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
        run_bounded(["chmod", "-R", "a+rX", str(venv)], 300)  # readable by the users whatever the umask
    elif not code_stamp.exists() or code_stamp.read_text() != code_key:
        log("the course's code changed: reinstalling it into the users' venv")
        _run_quiet(pip + ["--no-deps", "--force-reinstall", str(REPO)], timeout)
        code_stamp.write_text(code_key)
        run_bounded(["chmod", "-R", "a+rX", str(venv)], 300)  # readable by the users whatever the umask
    for folder in (base, base.parent):  # the folders above were checked by readable_by_all
        folder.chmod(folder.stat().st_mode | 0o005)
    return venv


def _run_quiet(cmd: list[str], timeout: float, check: bool = True) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/tmp")
    if check and done.returncode != 0:
        errors = [l for l in done.stderr.splitlines() if not l.startswith("WARNING: Location")]
        raise HubError(f"{' '.join(cmd[:4])} ... failed: " + "\n".join(errors[-10:]))
