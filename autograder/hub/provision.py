"""What a class host needs, and getting it: Python, PostgreSQL, the proxy, the users' runtime.

The users' runtime lives OUTSIDE the checkout, under ``HUB_HOME``
(/opt/threads-sockets-course): a venv of the course's dependencies only
(built from the system python3, cached by what it depends on) and, per
class, the course's own packages installed from a wheel built from
``course_lib/`` and ``autograder/`` alone (:func:`course_wheel`): no lesson,
no test, no solution ever reaches a place a student's account can read.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..lessons import REPO
from .processes import HubError, run_bounded

__all__ = ["HUB_HOME", "HUB_VENV_CACHE", "PROXY_PREFIX", "PROXY_VERSION", "SYSTEM_PYTHON", "PG_BIN_DIRS",
           "WHEEL_PACKAGES", "missing_requirements", "pg_tool", "find_proxy", "ensure_proxy", "readable_by_all",
           "open_to_others", "hub_venv", "venv_dependencies", "course_wheel", "install_course_code"]


HUB_HOME = Path(os.environ.get("COURSE_HUB_HOME", "/opt/threads-sockets-course"))
HUB_VENV_CACHE = HUB_HOME / "hub-venv"
PROXY_PREFIX = HUB_HOME / "hub-node"
PROXY_VERSION = "5.3.0"
SYSTEM_PYTHON = "/usr/bin/python3"
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
# What the users' wheel may hold: the course's two packages and the wheel's own metadata.
WHEEL_PACKAGES = ("course_lib/", "autograder/")


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
    """The proxy's path, installing it from npm under HUB_HOME/hub-node if needed (root runs it)."""
    found = find_proxy()
    if found:
        return found
    if shutil.which("npm") is None:
        raise HubError("configurable-http-proxy is missing and npm is not installed")
    PROXY_PREFIX.mkdir(parents=True, exist_ok=True)
    with open(HUB_HOME / ".hub-node.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two classes starting at once install it once
        if find_proxy() is None:
            subprocess.run(["npm", "install", "--prefix", str(PROXY_PREFIX), "--no-audit", "--no-fund",
                            f"configurable-http-proxy@{PROXY_VERSION}"], check=True, timeout=timeout,
                           capture_output=True, cwd="/")
    found = find_proxy()
    if not found:
        raise HubError("npm installed configurable-http-proxy but its command is not there")
    return found


# --------------------------------------------------------------------------- who can read what

def readable_by_all(path: Path) -> bool:
    """Can any user reach ``path`` (every parent folder searchable by others)?"""
    for folder in [path, *path.parents]:
        if folder.exists() and not folder.stat().st_mode & 0o001:
            return False
    return True


def open_to_others(path: Path) -> bool:
    """Could a user who is neither the owner nor in the group list ``path`` and read what is in it?

    True when every folder above is searchable by others and ``path`` itself
    is readable and searchable by others: what a student's account could do
    with a checkout left at the usual mode 755. (The class also asks the
    kernel, as each student, after the accounts exist: ACLs and groups count
    there.)
    """
    path = Path(path)
    if not path.exists():
        return False
    return readable_by_all(path.parent) and path.stat().st_mode & 0o005 == 0o005


# --------------------------------------------------------------------------- the users' venv

def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def venv_dependencies() -> list[str]:
    """What the users' venv installs: pyproject.toml's dependencies, JupyterHub's version, psycopg2.

    The course's own packages are not among them: each class installs its
    wheel beside the venv (:func:`install_course_code`).
    """
    import tomllib

    import jupyterhub

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [*project["dependencies"], f"jupyterhub=={jupyterhub.__version__}", "psycopg2-binary"]


def hub_venv(timeout: float = 900, log=print) -> Path:
    """A venv of the course's dependencies for the users' servers, under HUB_HOME (not the checkout).

    The users' servers cannot run the project's own venv (its interpreter may
    sit in a folder they cannot enter, pyenv under /root, and it lives in the
    checkout, which students must not read), so this venv is built from
    ``/usr/bin/python3``. It holds third-party packages only and is cached,
    keyed by the dependency list (~45 s to build cold).
    """
    deps = venv_dependencies()
    key = _digest([d.encode() for d in deps] + [SYSTEM_PYTHON.encode()])
    HUB_VENV_CACHE.mkdir(parents=True, exist_ok=True)
    for folder in (HUB_HOME, HUB_VENV_CACHE):
        folder.chmod(0o755)
    venv = HUB_VENV_CACHE / key
    with open(HUB_HOME / ".hub-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once (a test and `make hub`) build it once
        if not (venv / ".deps-installed").exists():
            _build_venv(venv, deps, timeout, log)
    return venv


def _build_venv(venv: Path, deps: list[str], timeout: float, log) -> None:
    for old in HUB_VENV_CACHE.glob("*"):
        shutil.rmtree(old, ignore_errors=True)  # a half-built one, or stale venvs of older dependencies
    log(f"building the users' venv in {venv} (once per dependency list; about a minute)")
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
    # pip compiles .pyc in one process; compileall afterwards uses every core (users cannot
    # write .pyc into this root-owned venv, so it must be compiled here).
    _run_quiet(_pip(venv) + ["--no-compile", *deps], timeout)
    _run_quiet([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
               timeout, check=False)
    run_bounded(["chmod", "-R", "a+rX,go-w", str(venv)], 300)  # readable by the users whatever the umask
    (venv / ".deps-installed").write_text("\n".join(deps) + "\n")


def _pip(venv: Path) -> list[str]:
    return [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]


# --------------------------------------------------------------------------- the course's code, as released

def course_wheel(out: Path, timeout: float = 300) -> Path:
    """Build the course's wheel from ``course_lib/``, ``autograder/`` and pyproject.toml alone.

    They are copied into a private folder first (caches left out), so the
    build neither writes into the checkout nor can pick up anything else in
    it (notebooks/, tests/, build/). The wheel is then read back: a file
    outside the two packages, or any notebook, stops the class.
    """
    from ..release import COPY_IGNORE

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="course-wheel-") as tmp:
        staging = Path(tmp) / "src"
        staging.mkdir()
        for package in ("course_lib", "autograder"):
            shutil.copytree(REPO / package, staging / package, ignore=COPY_IGNORE, symlinks=True)
        shutil.copy2(REPO / "pyproject.toml", staging / "pyproject.toml")
        (staging / "README.md").write_text("Threads & Sockets: the course's packages.\n")
        _run_quiet([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(out), str(staging)], timeout)
    wheels = sorted(out.glob("threads_sockets_course-*.whl"))
    if len(wheels) != 1:
        raise HubError(f"building the course's wheel left {len(wheels)} wheels in {out}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        stray = [n for n in wheel.namelist() if not n.startswith(WHEEL_PACKAGES) and ".dist-info/" not in n
                 or n.endswith(".ipynb")]
    if stray:
        raise HubError(f"the course's wheel holds files outside {WHEEL_PACKAGES}: {stray[:5]}; not installed")
    return wheels[0]


def install_course_code(venv: Path, target: Path, timeout: float = 300) -> Path:
    """Install the course's wheel into ``target`` (a class's own folder), for the users' servers.

    The users' servers find it through PYTHONPATH (and ``target/bin`` for
    the ``course`` command); the shared venv is never changed, so two classes
    with different course code can run from it at once. pip's record of where
    the wheel came from (``direct_url.json``) is removed.
    """
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix="course-wheel-out-") as tmp:
        wheel = course_wheel(Path(tmp), timeout)
        _run_quiet(_pip(venv) + ["--no-deps", "--no-compile", "--target", str(target), str(wheel)], timeout)
    for record in target.glob("*.dist-info/direct_url.json"):
        record.unlink()
    _run_quiet([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(target)], timeout,
               check=False)
    run_bounded(["chmod", "-R", "a+rX,go-w", str(target)], 120)
    return target


def _run_quiet(cmd: list[str], timeout: float, check: bool = True) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
    if check and done.returncode != 0:
        errors = [l for l in done.stderr.splitlines() if not l.startswith("WARNING: Location")]
        raise HubError(f"{' '.join(cmd[:4])} ... failed: " + "\n".join(errors[-10:]))
