"""Does a whole class work on one host, with no answer where a student's account can read it?

The round trip of issues 11, 26 and 29, through the hub's HTTP interfaces and
its printed commands: the class refuses to start while the checkout is
readable by other users; every lesson is released through ``course
release``'s own code (hints off for two lessons); three students (separate
Unix users) log in, start their servers and fetch lesson 06. Before anyone
works, each student's account reads everything it can (the leak test, by
content: :mod:`tests.hub.leakscan`). Chromium logs in as a student (no
formgrader, no create-assignment) and as the instructor (both), and a
student's hint panel gives a hint. The students work lesson 06 (a correct,
a wrong and a hanging submission) and submit; the instructor collects
through the formgrader's API; the printed commands grade (sandboxed when
bubblewrap works, two workers), load PostgreSQL and release feedback through
the exchange (``course feedback release``), which each student fetches;
worked solutions are refused before that and released after. Stopping the
hub keeps the instructor's course folder in ``RUN_DIR/kept/``.

Runs only as root with PostgreSQL, the proxy and the system python3; where
any is missing every test here is *skipped with the reason* (never passed).
Two runs on one machine take turns (a flock on a file under /tmp); the
checkout is made private (``chmod go-rwx``) for the run and given its mode
back after. Everything it started is stopped by PID and its users deleted;
the last test checks that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.hub, pytest.mark.browser, pytest.mark.timeout(2400)]

LESSON = "06-networks"
NOTEBOOK = f"{LESSON}/{LESSON}.ipynb"
HINTS_OFF = {"03-race-conditions-and-locks", "09-semaphores-barriers-and-pools"}
HIDDEN_CHECKS = {"02-creating-and-sleeping-threads"}   # its hidden tests released for `course check --hidden`
LOCK_FILE = Path("/tmp/threads-sockets-hub-test.lock")
LOCK_WAIT_S = 1500   # another run's class on this machine: wait for it, this long at most
SCRATCH = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
# What the leak walk reads in full, and where it reads only what changed since the class started.
READ_ALL = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/home"), Path("/root"), Path("/run"),
            Path("/srv")]
READ_NEW = [Path(p) for p in ("/bin", "/boot", "/etc", "/lib", "/lib64", "/media", "/mnt", "/opt", "/sbin",
                              "/usr", "/var")]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the hub round trip needs root (it creates Unix users); run `make test` as root or in CI"
    try:
        from autograder import hub
    except ImportError as exc:
        return f"cannot import autograder.hub: {exc}"
    missing = hub.missing_requirements()
    if missing:
        return "the hub round trip cannot run here: missing " + "; ".join(missing)
    return None


@contextlib.contextmanager
def machine_lock():
    """One class test at a time on this machine (they create real accounts and share /opt's venv)."""
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another class test held {LOCK_FILE} for {LOCK_WAIT_S} s")
                time.sleep(1)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def private(path: Path):
    """``chmod go-rwx path`` for the block, then its mode back (root still reads it)."""
    mode = path.stat().st_mode & 0o7777
    path.chmod(mode & ~0o077)
    try:
        yield
    finally:
        path.chmod(mode)


class _Timings(dict):
    """Step timings, each printed as it is taken (a slow step shows where, even if a later one fails)."""

    def __setitem__(self, key, value):
        print(f"hub round trip: {key} took {value} s", flush=True)
        super().__setitem__(key, value)


def _work(source_cells: dict[str, str], replace: dict[str, str]):
    """An edit for a fetched notebook: solution cells get the source's solution or ``replace``."""
    def edit(nb: dict) -> dict:
        for cell in nb["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id in replace:
                cell["source"] = replace[grade_id]
            elif cell["metadata"].get("nbgrader", {}).get("solution") and grade_id in source_cells:
                cell["source"] = source_cells[grade_id]
        return nb
    return edit


def _server_env(user: str) -> dict[str, str]:
    """The environment of ``user``'s running Jupyter server (what their terminal and kernels get)."""
    import psutil

    uid = pwd.getpwnam(user).pw_uid
    for proc in psutil.process_iter(["uids", "cmdline"]):
        if proc.info["uids"] and proc.info["uids"].real == uid and \
                any("jupyterhub-singleuser" in part for part in proc.info["cmdline"] or []):
            raw = Path(f"/proc/{proc.pid}/environ").read_bytes()
            return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    raise AssertionError(f"{user} has no running server")


def as_student(user: str, *args: str) -> subprocess.CompletedProcess:
    """``args`` run as ``user``, in their home, with their server's environment (as in its terminal)."""
    env = _server_env(user)
    home = pwd.getpwnam(user).pw_dir
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                           *args], capture_output=True, text=True, timeout=300, cwd=home)


def run_printed(command: list[str], *extra: str) -> subprocess.CompletedProcess:
    """One of the hub's printed commands, as the operator would paste it (plus ``extra`` options)."""
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=900, cwd="/")
    assert done.returncode == 0, f"{command[:3]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def printed_commands(text: str) -> dict[str, list[str]]:
    """The commands the hub printed for the instructor, split as a shell would: {subcommand: argv}."""
    found = {}
    for line in text.splitlines():
        if line.strip().startswith("env TMPDIR="):
            argv = shlex.split(line)
            found[argv[3]] = argv
    return found


def _compare_releases(hub_outbound: Path, course_release: Path, lessons: list[str]) -> dict:
    """{lesson: differences} between the hub's released lessons and `course release`'s, cell by cell."""
    differences = {}
    for lesson in lessons:
        found = []
        a, b = hub_outbound / lesson, course_release / lesson
        names = sorted(p.name for p in a.iterdir()), sorted(p.name for p in b.iterdir())
        if names[0] != names[1]:
            found.append(f"files {names[0]} != {names[1]}")
        for name in names[1]:
            if name.endswith(".ipynb") and (a / name).exists():
                x, y = nbformat.read(a / name, as_version=4), nbformat.read(b / name, as_version=4)
                if len(x.cells) != len(y.cells):
                    found.append(f"{name}: {len(x.cells)} cells != {len(y.cells)}")
                found += [f"{name} cell {i}" for i, (c, d) in enumerate(zip(x.cells, y.cells)) if c != d]
                if x.metadata != y.metadata:
                    found.append(f"{name}: notebook metadata differs")
            elif (a / name).exists() and (a / name).read_bytes() != (b / name).read_bytes():
                found.append(f"{name} differs")
        differences[lesson] = found
    return differences


def _browse(settings, shots: Path) -> dict:
    """Chromium logs in as a student and as the instructor: what each sees of nbgrader; a hint panel."""
    from playwright.sync_api import sync_playwright

    from tests.browser import lab as lablib

    seen = {}
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(lablib.CHROMIUM), headless=True,
                                             args=lablib.CHROMIUM_FLAGS, timeout=60_000)
        try:
            for role, user in (("student", settings.students[0]), ("instructor", settings.instructor)):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{settings.url}/hub/login")
                page.fill("#username_input", user)
                page.fill("#password_input", settings.passwords[user])
                page.click("#login_submit")
                page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=120_000)
                # The student's fetched copy; the instructor's source in their course folder.
                path = NOTEBOOK if role == "student" else f"{settings.course_id}/source/{NOTEBOOK}"
                page.goto(f"{settings.url}/user/{user}/lab/tree/{path}")
                try:
                    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=180_000)
                    page.locator(".jp-Toolbar-kernelName").filter(has_text="Python 3").first.wait_for(timeout=180_000)
                    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(
                        timeout=180_000)
                except Exception as exc:
                    page.screenshot(path=str(shots / f"hub-{role}-failed.png"))
                    raise AssertionError(f"{role}: the lesson did not open at {page.url}: {exc}") from exc
                page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Nbgrader$")).click()
                items = page.locator(".lm-Menu-itemLabel").all_inner_texts()
                page.screenshot(path=str(shots / f"hub-{role}-nbgrader-menu.png"))
                page.keyboard.press("Escape")
                tabs = page.locator(".lm-TabBar-tab").all_inner_texts() + \
                    page.locator(".lm-TabBar-tab").evaluate_all("els => els.map(e => e.title || '')")
                seen[role] = {"menu": items, "tabs": tabs}
                if role == "student":  # the lesson's hint panel, from the released hints file
                    cell = page.locator(".jp-Cell").filter(has_text='hint_panel("06")').first
                    cell.locator(".jp-InputArea-editor").click()
                    page.keyboard.press("Shift+Enter")
                    panel = cell.locator(".course-hint-panel")
                    panel.wait_for(timeout=120_000)
                    panel.get_by_text("Show the next hint").click()
                    panel.get_by_text("Hint 1 of").wait_for(timeout=60_000)
                    seen["hint_panel"] = panel.inner_text()
                    cell.screenshot(path=str(shots / "hub-student-hint-panel.png"))
                context.close()
        finally:
            browser.close()
    return seen


def _belongs_to_the_class(finding: dict, *, class_uids: set[int], ours: set[int], class_entries: set[Path]) -> bool:
    """Is a finding the class's doing (it fails the test) or other work's on this machine (it is printed)?

    A process: the class's if it runs as a class account or was started by this test. A file in
    a shared scratch folder (/tmp, /var/tmp, /dev/shm): the class's if a class account owns it or
    the top folder it is in, or that folder is the run folder or the control; root's own work for
    the class writes its scratch files into the run folder (TMPDIR), so another root-owned entry
    there is other work on this host. Anywhere else: always the class's.
    """
    import psutil

    path = Path(finding["path"])
    if path.parts[1:2] == ("proc",):
        pid = int(path.parts[2])
        return finding["uid"] in class_uids or pid in ours or (
            psutil.pid_exists(pid) and any(parent.pid in ours for parent in psutil.Process(pid).parents()))
    scratch = next((folder for folder in SCRATCH if folder in path.parents), None)
    if scratch is None:
        return True
    entry = scratch / path.relative_to(scratch).parts[0]
    try:
        entry_uid = entry.lstat().st_uid
    except OSError:
        entry_uid = None
    return finding["uid"] in class_uids or entry_uid in class_uids or entry in class_entries


def _leak_walks(hub, users: list[str], *, since: float, exclude_own_home: bool, control: Path | None,
                known: list | None = None) -> dict:
    """The leak test as each of ``users``: their reports, findings split into the class's and the machine's.

    The first walk reads everything; the next ones only open again what it read clean (same
    inode, size and change time) and read the files it found changed, instead of listing
    /usr and the like again.
    """
    import psutil

    from autograder import lessons as lessons_mod
    from tests.hub import leakscan

    s = hub.s
    public = leakscan.public_lines([s.exchange / s.course_id / "outbound", s.course_code / "course_lib",
                                    s.course_code / "autograder"])
    secret = leakscan.secret_lines(lessons_mod.NOTEBOOKS, s.lessons, s.hints_off, public)
    tokens = [s.db_password, s.proxy_token, *s.passwords.values(),
              (s.run_dir / "hub" / "jupyterhub_cookie_secret").read_text().strip()]
    ours = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    class_uids = {pwd.getpwnam(u).pw_uid for u in [s.instructor, *s.students]} | {pwd.getpwnam("postgres").pw_uid}
    class_entries = {s.run_dir, *([control] if control else [])}
    full = [lessons_mod.REPO, hub.venv.parent.parent, s.run_dir, *READ_ALL]
    known = list(known or [])   # (dev, inode, size, ctime) of files read clean before
    changed: list | None = None
    reports = {}
    for user in users:
        home = Path(pwd.getpwnam(user).pw_dir)
        report = leakscan.walk_as(user, secrets=secret, tokens=tokens, full=full, since=since,
                                  new_only=READ_NEW if changed is None else [], also=changed or [],
                                  prune=[home] if exclude_own_home else [], known=known)
        known += report.pop("clean")
        changed = changed if changed is not None else report.pop("changed")
        report["class_findings"], report["machine_findings"] = [], []
        for finding in report["findings"]:
            mine = _belongs_to_the_class(finding, class_uids=class_uids, ours=ours, class_entries=class_entries)
            report["class_findings" if mine else "machine_findings"].append(finding)
        report["control"] = [f for f in report["class_findings"] if control and Path(f["path"]).is_relative_to(control)]
        reports[user] = report
    reports["secrets"] = {kind: sum(1 for _, k in secret.values() if k == kind)
                          for kind in ("hidden", "solution", "walkthrough", "hint")}
    reports["hidden_lessons"] = sorted({lesson for lesson, kind in secret.values() if kind == "hidden"})
    reports["known"] = known
    return reports


@pytest.fixture(scope="module")
def round_trip():
    """Run the whole class once; return what each step observed (the hub is stopped at the end)."""
    why = _why_not()
    if why:
        pytest.skip(why)
    with machine_lock():
        return _round_trip()


def _round_trip() -> dict:
    import csv

    from autograder import hub as hub_mod
    from autograder import lessons as lessons_mod
    from autograder.gradebook import scores
    from autograder.release import release
    from autograder.sandbox import available
    from tests.browser import lab as lablib
    from tests.hub_client import HubUser
    from tests.lessons.test_grading_lesson06 import FIXTURES, LOOPING_PORT_CHECK, PRIVATE_FIRST, RSPLIT_PARSER

    prefix = f"t{secrets.token_hex(2)}-"
    cases = {  # student: (replacements, expected score)
        f"{prefix}alice": ({}, FIXTURES["correct"][1]),
        f"{prefix}bob": ({"classify_address": PRIVATE_FIRST, "parse_host_port": RSPLIT_PARSER},
                         FIXTURES["private_first_and_rsplit"][1]),
        f"{prefix}carol": ({"port_accepts": LOOPING_PORT_CHECK}, FIXTURES["looping_port_check"][1]),
    }
    source = nbformat.read(next((lessons_mod.NOTEBOOKS / LESSON).glob("*.ipynb")), as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    since = time.time()
    # Not under pytest's tmp folder: postgres and the users must be able to enter it.
    run_dir = Path(tempfile.mkdtemp(prefix="course-hub-test-"))
    settings = hub_mod.ClassSettings(run_dir=run_dir, instructor=f"{prefix}teach", students=list(cases),
                                     lessons=lessons_mod.all_lessons(), timeout=180, hints_off=set(HINTS_OFF),
                                     hidden_checks=set(HIDDEN_CHECKS), jobs=2)
    seen: dict = {"cases": cases, "settings": settings, "timings": _Timings(), "sandbox": available()[0]}
    started = time.monotonic()
    hub = hub_mod.ClassHub(settings, log=lambda *a: None)
    repo = lessons_mod.REPO
    seen["refused"] = hub.exposed_sources() if hub_mod.open_to_others(repo) else "(the checkout was private already)"
    if hub_mod.open_to_others(repo):
        with pytest.raises(hub_mod.HubError) as refused:
            hub.start()
        seen["refused_start"] = str(refused.value)
        seen["users_after_refusal"] = [u for u in [settings.instructor, *cases]
                                       if u in {e.pw_name for e in pwd.getpwall()}]
    control = None
    with private(repo):
        try:
            hub.start()
            for step, took in hub.timings.items():
                seen["timings"][f"start: {step}"] = took
            seen["pids"] = {name: p.pid for name, p in hub.procs.items()} | {"postgres": hub.pg_pid()}
            seen["commands"] = hub.commands()
            # The check the class made as each student, shown to catch a folder opened by mistake.
            settings.grading_dir.chmod(0o755)
            try:
                hub._check_private()
                seen["probe"] = "a grading folder at mode 755 went unnoticed"
            except hub_mod.HubError as exc:
                seen["probe"] = str(exc)
            finally:
                settings.grading_dir.chmod(0o700)
            seen["help"] = hub.login_help()
            users = {u: HubUser(settings.url, u, settings.passwords[u]) for u in [settings.instructor, *cases]}

            def log_in(user):
                user.login()
                user.start_server()

            mark = time.monotonic()
            with ThreadPoolExecutor(len(users)) as pool:  # the class logs in at once
                list(pool.map(log_in, users.values()))
            seen["timings"]["log_in_and_start_servers"] = round(time.monotonic() - mark, 2)
            for student in cases:
                for lesson in (LESSON, *sorted(HINTS_OFF), *sorted(HIDDEN_CHECKS)):
                    fetched = users[student].assignment("fetch", settings.course_id, lesson)
                    assert fetched["success"], fetched

            # One release path: the hub's lessons against `course release`'s, every lesson.
            mark = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="course-release-") as out:
                release(out=Path(out), no_hints=sorted(HINTS_OFF), hidden_checks=sorted(HIDDEN_CHECKS))
                seen["release_differences"] = _compare_releases(settings.exchange / settings.course_id / "outbound",
                                                                Path(out), settings.lessons)
            seen["timings"]["compare_releases"] = round(time.monotonic() - mark, 2)

            # The leak test, before anyone works: as each student, with a planted copy as the control.
            control = Path(tempfile.mkdtemp(prefix="course-leak-control-"))
            control.chmod(0o755)
            planted = control / "notes.ipynb"
            shutil.copyfile(next((lessons_mod.NOTEBOOKS / sorted(HINTS_OFF)[0]).glob("*.ipynb")), planted)
            planted.chmod(0o644)
            mark = time.monotonic()
            seen["leaks"] = _leak_walks(hub, list(cases), since=since, exclude_own_home=False, control=control)
            seen["timings"]["leak_walks"] = round(time.monotonic() - mark, 2)
            shutil.rmtree(control)

            # Self-study in a student's server: hints from the released file, or refused.
            bob = list(cases)[1]
            seen["hint"] = as_student(bob, "course", "hint", "06", "1")
            seen["hint_off"] = as_student(bob, "course", "hint", "03", "1")
            seen["check_hidden"] = as_student(bob, "course", "check", "--hidden", NOTEBOOK)
            checked = sorted(HIDDEN_CHECKS)[0]
            seen["check_hidden_on"] = as_student(bob, "course", "check", "--hidden", f"{checked}/{checked}.ipynb")
            seen["progress"] = as_student(bob, "course", "progress")

            mark = time.monotonic()
            with ThreadPoolExecutor(1) as pool:  # Playwright's sync API in a thread of its own
                seen["browser"] = pool.submit(_browse, settings, lablib.SCREENSHOTS).result(timeout=900)
            seen["timings"]["browser"] = round(time.monotonic() - mark, 2)

            mark = time.monotonic()
            for student, (replace, _) in cases.items():
                me = users[student]
                nb = me.read_notebook(NOTEBOOK)
                me.write_notebook(NOTEBOOK, _work(solutions, replace)(nb))
                submitted = me.assignment("submit", settings.course_id, LESSON)
                assert submitted["success"], submitted
            seen["timings"]["work_submit"] = round(time.monotonic() - mark, 2)

            teacher = users[settings.instructor]
            mark = time.monotonic()
            seen["collect"] = teacher.post(f"formgrader/api/assignment/{LESSON}/collect")
            seen["timings"]["collect"] = round(time.monotonic() - mark, 2)
            mark = time.monotonic()
            commands = printed_commands(seen["help"])  # run as pasted from what the hub printed
            # The printed solutions command names the first lesson as its example: here, lesson 06.
            commands["solutions"] = [LESSON if a == settings.lessons[0] else a for a in commands["solutions"]]
            run_printed(commands["grade"], "--cell-timeout", "10", "--quiet",
                        *([] if seen["sandbox"] else ["--no-sandbox"]))
            with open(settings.grading_dir / "grades.csv", newline="", encoding="utf-8") as f:
                seen["rows"] = {r["student_id"]: r for r in csv.DictReader(f)}
            seen["timings"]["grade"] = round(time.monotonic() - mark, 2)
            seen["loaded"] = run_printed(commands["gradebook"]).stdout
            seen["db_scores"] = scores(settings.db_url, LESSON, course_id=settings.course_id)

            # Worked solutions wait for the feedback: refused for the instructor and the student.
            seen["solutions_early"] = subprocess.run(commands["solutions"], capture_output=True, text=True,
                                                     timeout=300, cwd="/")
            seen["student_solutions_early"] = as_student(bob, "course", "solutions", "06", "--out", "worked")
            seen["feedback_release"] = run_printed(commands["feedback"]).stdout

            seen["feedback"] = {}
            for student in cases:
                me = users[student]
                me.assignment("fetch_feedback", settings.course_id, LESSON)
                texts = []
                try:  # no feedback folder (nothing fetched) is a finding for the tests below, not a crash
                    stamps = me.list_dir(f"{LESSON}/feedback")
                except Exception as exc:
                    if "404" not in str(exc):
                        raise
                    stamps = []
                for stamp in stamps:
                    for f in me.list_dir(stamp["path"]):
                        if f["name"].endswith(".html"):
                            texts.append(me.get(f"api/contents/{f['path']}", params={"content": 1,
                                                                                    "format": "text"})["content"])
                seen["feedback"][student] = texts

            # After grading and feedback, before the solutions: what one student reads beyond their home.
            mark = time.monotonic()
            seen["leaks_after"] = _leak_walks(hub, [bob], since=since, exclude_own_home=True, control=None,
                                              known=seen["leaks"].pop("known"))
            seen["leaks_after"].pop("known")
            seen["timings"]["leak_walk_after"] = round(time.monotonic() - mark, 2)
            seen["solutions_released"] = run_printed(commands["solutions"]).stdout
            seen["student_solutions"] = as_student(bob, "course", "solutions", "06", "--out", "worked")
            worked = Path(pwd.getpwnam(bob).pw_dir) / "worked" / LESSON / f"{LESSON}-solutions.ipynb"
            seen["worked_text"] = worked.read_text() if worked.exists() else ""

            # What one student can reach of another's: through the hub, and as a Unix user.
            alice = list(cases)[0]
            other = users[bob].http.get(users[alice].server(f"api/contents/{NOTEBOOK}"), timeout=30)
            seen["http_other_status"] = other.status_code
            seen["os_reads"] = {
                "other's home copy": _can_read(bob, Path(pwd.getpwnam(alice).pw_dir) / NOTEBOOK),
                "exchange inbound listing": _can_list(bob, settings.exchange / settings.course_id / "inbound"),
                "collected submission": _can_read(bob, hub.s.course_root() / "submitted" / alice / LESSON
                                                  / f"{LESSON}.ipynb"),
                "released feedback listing": _can_list(bob, settings.exchange / settings.course_id / "feedback"),
                "lesson source with solutions": _can_read(bob, hub.s.course_root() / "source" / LESSON
                                                          / f"{LESSON}.ipynb"),
                "the checkout's source notebook": _can_read(bob, lessons_mod.NOTEBOOKS / NOTEBOOK),
                "graded notebooks (hidden tests)": _can_list(bob, settings.grading_dir),
                "hub settings (proxy token)": _can_read(bob, settings.run_dir / "jupyterhub_config.py"),
                "hub log": _can_read(bob, settings.run_dir / "jupyterhub.log"),
                "instructor's gradebook settings": _can_read(bob, Path(pwd.getpwnam(settings.instructor).pw_dir)
                                                             / ".jupyter" / "nbgrader_config.py"),
            }
            seen["own_read"] = _can_read(bob, Path(pwd.getpwnam(bob).pw_dir) / NOTEBOOK)
            # After servers, kernels, `course check` and the browser: what the accounts left in shared scratch.
            seen["scratch_by_class"] = _owned_in(SCRATCH, _uids([settings.instructor, *cases]), since=since,
                                                 skip=[run_dir])
            student_tmp = Path(_server_env(bob).get("TMPDIR", "/tmp"))
            seen["student_tmp"] = (str(student_tmp), student_tmp.lstat().st_mode & 0o777, student_tmp.lstat().st_uid,
                                   pwd.getpwnam(bob).pw_uid)
        finally:
            if control is not None:
                shutil.rmtree(control, ignore_errors=True)
            uids = _uids([settings.instructor, *cases])
            hub.stop()
            kept = hub.kept  # read, then the run folder goes (this test's; a class keeps it)
            seen["kept"] = sorted(str(p.relative_to(kept)) for p in kept.rglob("*")) if kept else []
            seen["kept_mode"] = kept.stat().st_mode & 0o777 if kept else None
            shutil.rmtree(run_dir, ignore_errors=True)
    seen["repo_mode_after"] = repo.stat().st_mode & 0o777
    seen["timings"]["total"] = round(time.monotonic() - started, 2)
    seen["after"] = _leftovers(seen.get("pids", {}), uids, [settings.instructor, *cases], settings)
    print("hub round trip timings (s):", seen["timings"])
    for user, report in [*seen.get("leaks", {}).items(), *seen.get("leaks_after", {}).items()]:
        if user not in ("secrets", "known", "hidden_lessons"):
            print(f"leak walk as {user}: {report['files_read']} files read ({report['bytes_read'] >> 20} MB; "
                  f"{report['verified']} of them third-party files checked against their wheel's RECORD), "
                  f"{report['proc_read']} /proc entries, {report['listed_only']} unchanged files listed only, "
                  f"{report['refused']} refused; machine findings outside the class: "
                  f"{[f['path'] for f in report['machine_findings']][:5]}")
    print("secret lines searched for:", seen.get("leaks", {}).get("secrets"))
    return seen


def _owned_in(folders: list[Path], uids: set[int], *, since: float, skip: list[Path]) -> list[str]:
    """Every path under ``folders`` (links not followed, ``skip`` left out) that one of ``uids`` owns and
    that changed since ``since`` (an older one is an earlier run's account whose uid was reused)."""
    found = []
    for folder in folders:
        for here, dirs, files in os.walk(folder, onerror=lambda e: None):
            dirs[:] = [d for d in dirs if Path(here, d) not in skip]
            for name in dirs + files:
                try:
                    st = os.lstat(os.path.join(here, name))
                except OSError:
                    continue
                if st.st_uid in uids and st.st_ctime >= since:
                    found.append(os.path.join(here, name))
    return found


def _can_read(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "cat", str(path)], capture_output=True,
                          timeout=30).returncode == 0


def _can_list(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "ls", str(path)], capture_output=True,
                          timeout=30).returncode == 0


def _uids(users: list[str]) -> set[int]:
    found = set()
    for u in users:
        try:
            found.add(pwd.getpwnam(u).pw_uid)
        except KeyError:
            pass
    return found


def _leftovers(pids: dict, uids: set[int], users: list[str], settings) -> dict:
    import psutil

    return {
        "processes": sorted(n for n, pid in pids.items() if pid and psutil.pid_exists(pid)
                            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE),
        "user_processes": [p.pid for p in psutil.process_iter(["uids"])
                           if p.info["uids"] and p.info["uids"].real in uids],
        "users": [u for u in users if u in {e.pw_name for e in pwd.getpwall()}],
        "homes": [u for u in users if Path("/home", u).exists()],
        "ports": [p for p in (settings.public_port, settings.hub_port, settings.proxy_api_port,
                              settings.pg_port) if _listening(p)],
    }


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_class_refuses_to_start_while_the_checkout_is_readable(round_trip):
    """With the checkout at a mode every user can read, does the class refuse (saying how to fix it) and
    create nothing?"""
    if "refused_start" not in round_trip:
        pytest.skip(round_trip["refused"])
    assert "refusing to start the class" in round_trip["refused_start"] and "chmod go-rwx" in round_trip["refused_start"]
    assert round_trip["users_after_refusal"] == []
    assert round_trip["repo_mode_after"] & 0o005 == 0o005, "the checkout's mode was given back"


def test_the_class_checks_as_each_student_that_private_folders_stay_closed(round_trip):
    """Does the check the class makes as each student (runuser, the kernel's own answer) catch a private
    folder opened to others?"""
    assert "can open" in round_trip["probe"] and str(round_trip["settings"].grading_dir) in round_trip["probe"]


def test_the_hub_releases_what_course_release_releases(round_trip):
    """Is every lesson the hub released equal, cell by cell (and hints file), to `course release`'s?"""
    differences = round_trip["release_differences"]
    assert set(differences) == set(round_trip["settings"].lessons) and len(differences) >= 10
    assert differences == {lesson: [] for lesson in differences}


def test_no_student_account_can_read_an_answer(round_trip):
    """Walking every file each student can open (and every command line and environment they can see),
    is there no line of a hidden test, solution, walkthrough or held-back hint, and no secret token,
    outside the planted control copy, which is found?"""
    leaks = round_trip["leaks"]
    counts = leaks["secrets"]
    assert counts["hidden"] > 300 and counts["solution"] > 100 and counts["walkthrough"] > 300 and counts["hint"] > 10
    for student in round_trip["cases"]:
        report = leaks[student]
        assert report["files_read"] > 20_000, "the walk read the users' venv and the scratch folders"
        assert report["proc_read"] > 10
        control = report["control"]
        assert len(control) == 1, f"the planted copy was not found as {student}: {control}"
        kinds = {kind for _, kind in control[0]["what"]}
        assert kinds == {"hidden", "solution", "walkthrough", "hint"}, kinds
        leaked = [(f["path"], f["what"][:3]) for f in report["class_findings"] if f not in control]
        assert leaked == [], f"{student} can read answers: {leaked}"


def test_grading_and_feedback_leave_nothing_readable_outside_a_students_home(round_trip):
    """After collecting, grading and releasing feedback, can a student read anything secret outside
    their own home (which holds their own work)?"""
    report = next(r for user, r in round_trip["leaks_after"].items()
                  if user not in ("secrets", "hidden_lessons"))
    assert report["proc_read"] > 10
    assert report["files_read"] > 20_000
    assert [(f["path"], f["what"][:3]) for f in report["class_findings"]] == []


def test_students_get_student_tools_and_the_instructor_gets_the_formgrader(round_trip):
    """In JupyterLab through the hub, does a student's Nbgrader menu lack the formgrader and
    create-assignment, and the instructor's have them?"""
    browser = round_trip["browser"]
    student, instructor = browser["student"], browser["instructor"]
    assert "Assignment List" in student["menu"]
    assert not [i for i in student["menu"] if "Formgrader" in i or "Create assignment" in i or "Course List" in i]
    assert not [t for t in student["tabs"] if "Create Assignment" in t]
    for wanted in ("Formgrader", "Assignment List", "Create assignment"):
        assert wanted in instructor["menu"], instructor["menu"]
    assert [t for t in instructor["tabs"] if "Create Assignment" in t]


def test_course_hint_works_in_a_students_server_unless_turned_off(round_trip):
    """Does `course hint` give lesson 06's first hint in a student's server, refuse for a lesson released
    without hints, and does the notebook's hint panel show a hint?"""
    hint, off = round_trip["hint"], round_trip["hint_off"]
    assert hint.returncode == 0 and "hint 1 of" in hint.stdout, hint.stderr
    assert off.returncode == 2 and "turned off" in off.stderr and "Traceback" not in off.stderr
    assert "Hint 1 of" in round_trip["browser"]["hint_panel"]
    progress = round_trip["progress"]
    assert progress.returncode == 0 and LESSON in progress.stdout, progress.stderr
    hidden = round_trip["check_hidden"]
    assert hidden.returncode == 2 and "turned off" in hidden.stderr and "Traceback" not in hidden.stderr


def test_course_check_hidden_works_only_for_the_lessons_the_instructor_chose(round_trip):
    """In a student's server, does `course check --hidden` run the hidden tests of the lesson released
    with --hidden-checks (the fetched, unsolved notebook: not attempted), while lesson 06 refuses?"""
    on = round_trip["check_hidden_on"]
    assert on.returncode == 1 and "All tests (hidden ones included)" in on.stdout, on.stdout + on.stderr
    assert "TODO" in on.stdout and "Traceback" not in on.stderr
    assert "turned off for 06-networks" in round_trip["check_hidden"].stderr
    # Those hidden tests are released, so the leak walk does not count them as secrets; the others are.
    hidden_lessons = round_trip["leaks"]["hidden_lessons"]
    assert not HIDDEN_CHECKS & set(hidden_lessons) and LESSON in hidden_lessons


def test_students_scratch_files_stay_in_their_own_home(round_trip):
    """After the students' servers, kernels, `course check --hidden` and the browser ran, is their
    TMPDIR a folder of their own (mode 700, in their home), and is nothing of any class account in
    /tmp, /var/tmp or /dev/shm, where a classmate could read it?"""
    path, mode, owner, uid = round_trip["student_tmp"]
    assert path.endswith("/.tmp") and mode == 0o700 and owner == uid
    assert round_trip["scratch_by_class"] == []


def test_worked_solutions_follow_the_feedback(round_trip):
    """Are worked solutions refused (instructor and student) before feedback release and there after?"""
    early, student_early = round_trip["solutions_early"], round_trip["student_solutions_early"]
    assert early.returncode == 2 and "not released yet" in early.stderr
    assert student_early.returncode == 2 and "not released yet" in student_early.stderr
    assert "released" in round_trip["solutions_released"]
    later = round_trip["student_solutions"]
    assert later.returncode == 0, later.stderr
    assert "Worked solutions" in round_trip["worked_text"] and "BEGIN HIDDEN" not in round_trip["worked_text"]


def test_the_printed_commands_are_complete(round_trip):
    """Are the printed commands absolute, with the venv's `course`, --jobs, and every folder they need?"""
    commands = round_trip["commands"]
    course = str(Path(sys.executable).with_name("course"))
    scratch = f"TMPDIR={round_trip['settings'].scratch_dir}"
    assert printed_commands(round_trip["help"]) == {argv[3]: argv for argv in commands.values()}
    for name, argv in commands.items():
        assert argv[:3] == ["env", scratch, course], name
    assert commands["grade"][-2:] == ["--jobs", "2"]
    assert commands["feedback"][3:5] == ["feedback", "release"]


def test_stopping_keeps_the_instructors_course_folder(round_trip):
    """After stop, is the instructor's course folder (collected, feedback) kept in RUN_DIR/kept, root only?"""
    kept, students = round_trip["kept"], list(round_trip["cases"])
    assert round_trip["kept_mode"] == 0o700
    for student in students:
        assert f"submitted/{student}/{LESSON}/{LESSON}.ipynb" in kept
        assert f"feedback/{student}/{LESSON}/{LESSON}.html" in kept
    assert f"source/{LESSON}/{LESSON}.ipynb" in kept and f"release/{LESSON}/hints.json" in kept


def test_each_students_grade_is_in_postgres(round_trip):
    """Does the PostgreSQL gradebook hold each student's expected score (correct, wrong, hanging)?"""
    expected = {student: score for student, (_, score) in round_trip["cases"].items()}
    assert round_trip["db_scores"] == expected
    assert round_trip["settings"].db_url.startswith("postgresql+psycopg2://")


def test_grading_ran_sandboxed_and_bounded_the_hanging_submission(round_trip):
    """Were submissions graded in the sandbox (where it works) and the hanging one marked, not stuck?"""
    rows = round_trip["rows"]
    students = list(round_trip["cases"])
    assert set(rows) == set(students)
    assert {r["mode"] for r in rows.values()} == {"sandbox" if round_trip["sandbox"] else "no-sandbox"}
    assert rows[students[0]]["status"] == "graded"
    # The hanging port check is abandoned by the tests' time limits (see test_grading_lesson06).
    assert rows[students[2]]["status"] in ("graded", "timeout")
    assert float(rows[students[2]]["score"]) == round_trip["cases"][students[2]][1]


def test_each_student_sees_only_their_own_feedback(round_trip):
    """Does each student fetch exactly one feedback file, showing their own total and no other's?"""
    cases = round_trip["cases"]
    assert "released to 3 student(s)" in round_trip["feedback_release"]
    from tests.lessons.test_grading_lesson06 import MAX_SCORE

    totals = {student: f"(Score: {score:.1f} / {MAX_SCORE:.1f})" for student, (_, score) in cases.items()}
    assert len(set(totals.values())) == len(totals)  # the three totals differ, so they identify
    for student, own in totals.items():
        texts = round_trip["feedback"][student]
        assert len(texts) == 1, f"{student} fetched {len(texts)} feedback files (grades: {round_trip['rows']})"
        assert own in texts[0]
        assert not [other for other in totals.values() if other != own and other in texts[0]]


def test_a_student_cannot_read_another_students_work(round_trip):
    """Can a student reach another's notebook, the sources or the grading through the hub or the file
    system? (They must not.)"""
    assert round_trip["http_other_status"] in (403, 404)
    assert round_trip["own_read"] is True  # the check itself works
    assert round_trip["os_reads"] == {k: False for k in round_trip["os_reads"]}


def test_nothing_is_left_behind(round_trip):
    """After stop(): are the hub, proxy, PostgreSQL, users' servers, accounts and ports all gone?"""
    assert round_trip["after"] == {"processes": [], "user_processes": [], "users": [], "homes": [],
                                   "ports": []}
