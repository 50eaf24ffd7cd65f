"""The learner's progress file: which exercises were checked, how they did, which hints were seen.

It lives in the learner's *work folder* (the folder holding their lesson
folders, e.g. ``build/student`` after ``make lab``), never in the course's
own files, as ``.course-progress.json``. ``course check`` and ``course hint``
(and the hint panel in JupyterLab) update it; ``course progress`` reads it.

Two writers may meet (a check in a terminal, a hint clicked in the lab), so
every update is read-modify-write under an advisory lock and lands by an
atomic rename: a reader sees the old file or the new one, never half. A
file that is missing starts empty; one that is not valid JSON is kept aside
(``.course-progress.json.corrupt``) and rebuilt, and an entry of the wrong
shape is dropped — a note says so, never a traceback.

Every file here is written through :mod:`course_lib.selfstudy.workfiles`:
no link is followed, a work folder with a link in its path is refused.

The file is a convenience the learner can edit, so nothing it says is taken
on trust where it matters: a check recorded by ``course check`` carries a
*seal*, an HMAC of the entry under a key kept in the learner's own
configuration folder (``~/.config/threads-sockets-course/progress.key``,
mode 0600, or ``$COURSE_PROGRESS_KEY_FILE``). Worked solutions unlock only
for a sealed check (:func:`sealed_check`); a hand-typed ``checked_at``, or a
progress file copied from someone else, unlocks nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from .exercises import LESSON_ID, notebooks_folder
from .workfiles import Folder, UnsafePath, link_in

__all__ = ["FILE_NAME", "work_folder", "load", "record_check", "record_hint", "hints_seen", "sealed_check",
           "key_file"]

FILE_NAME = ".course-progress.json"
VERSION = 1


def work_folder(start: Path | str | None = None) -> Path:
    """Where the progress file goes, from a notebook, a lesson folder or a folder (default: cwd).

    Inside a lesson folder it is the folder above it. Run from the course's
    own folder, it is ``build/student`` (where ``make lab`` puts the student
    version), so the file is never written among the course's sources.
    """
    here = Path(os.path.abspath(start or os.getcwd()))  # not resolved: a link in it is refused, not followed
    link = link_in(here)
    if link is not None:
        raise UnsafePath(f"{link} is a symbolic link (to {os.path.realpath(link)}): the course keeps your "
                         "progress only in a folder reached without links, so a link planted in a shared "
                         f"folder cannot send it elsewhere. Use the real folder {os.path.realpath(here)}")
    if here.is_file() or here.suffix == ".ipynb":
        here = here.parent
    if LESSON_ID.match(here.name):
        here = here.parent
    repo = notebooks_folder().parent
    if here == repo:
        return repo / "build" / "student"
    if here == notebooks_folder() or notebooks_folder() in here.parents:
        raise ValueError(f"{here} holds the course's source lessons; work on the student version "
                         "(make lab writes it to build/student) or pass --work")
    return here


def _empty() -> dict:
    return {"version": VERSION, "lessons": {}}


def _clean(data, notes: list[str]) -> dict:
    """Keep what has the right shape; say what was dropped."""
    if not isinstance(data, dict) or not isinstance(data.get("lessons"), dict):
        notes.append("the progress file had an unknown layout: started again")
        return _empty()
    clean = _empty()
    for lesson, exercises in data["lessons"].items():
        if not (isinstance(lesson, str) and LESSON_ID.match(lesson) and isinstance(exercises, dict)):
            notes.append(f"dropped a malformed entry for {lesson!r}")
            continue
        for name, entry in exercises.items():
            if isinstance(name, str) and isinstance(entry, dict) and _valid_entry(entry):
                clean["lessons"].setdefault(lesson, {})[name] = entry
            else:
                notes.append(f"dropped a malformed entry for {lesson} {name!r}")
    return clean


def _valid_entry(entry: dict) -> bool:
    for key in ("visible", "hidden"):
        value = entry.get(key)
        if value is not None and not (isinstance(value, list) and len(value) == 2 and
                                      all(type(v) is int and v >= 0 for v in value) and value[0] <= value[1]):
            return False
    if type(entry.get("hints_seen", 0)) is not int or entry.get("hints_seen", 0) < 0:
        return False
    return isinstance(entry.get("checked_at", ""), str) and isinstance(entry.get("seal", ""), str)


def _read(folder: Folder, notes: list[str]) -> dict:
    try:
        text = folder.read(FILE_NAME)
    except UnsafePath as exc:
        notes.append(f"{exc}; started again")
        return _empty()
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"could not read {FILE_NAME} ({type(exc).__name__}): started again")
        return _empty()
    if text is None:
        return _empty()
    try:
        data = json.loads(text)
    except ValueError:
        aside = FILE_NAME + ".corrupt"
        with contextlib.suppress(OSError):
            folder.rename(FILE_NAME, aside)
        notes.append(f"{FILE_NAME} was not valid JSON: kept aside as {aside} and rebuilt")
        return _empty()
    return _clean(data, notes)


def load(work: Path, notes: list[str] | None = None) -> dict:
    """The progress in ``work`` (never raises for a bad file: ``notes`` says what was repaired).

    A work folder that does not exist yet has no progress; one reached
    through a link raises :class:`UnsafePath`.
    """
    notes = notes if notes is not None else []
    try:
        folder = Folder(work)
    except FileNotFoundError:
        return _empty()
    with folder:
        return _read(folder, notes)


@contextlib.contextmanager
def _updating(work: Path, notes: list[str]):
    with Folder(work, create=True) as folder, folder.lock(FILE_NAME + ".lock"):
        data = _read(folder, notes)
        yield data
        folder.replace(FILE_NAME, json.dumps(data, indent=1, sort_keys=True))


def _entry(data: dict, lesson: str, exercise: str) -> dict:
    return data["lessons"].setdefault(lesson, {}).setdefault(exercise, {})


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def key_file() -> Path:
    """Where the learner's sealing key lives (outside every work folder)."""
    if os.environ.get("COURSE_PROGRESS_KEY_FILE"):
        return Path(os.environ["COURSE_PROGRESS_KEY_FILE"])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "threads-sockets-course" / "progress.key"


def _key(create: bool) -> bytes | None:
    """The sealing key; made (0600, never through a link) on first use when ``create``."""
    path = key_file()
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            return None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:  # made meanwhile by another check
            fd = os.open(path, flags)
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            fd = os.open(path, flags)
    except OSError as exc:
        raise OSError(f"the progress key {path} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "r") as f:
        key = f.read().strip()
    return bytes.fromhex(key) if len(key) == 64 and all(c in "0123456789abcdef" for c in key) else None


def _seal(key: bytes, lesson: str, exercise: str, entry: dict) -> str:
    fields = [lesson, exercise, entry.get("checked_at"), entry.get("visible"), entry.get("hidden")]
    return hmac.new(key, json.dumps(fields, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def sealed_check(data: dict, lesson: str, exercise: str) -> bool:
    """Did ``course check`` itself record a check of this exercise (its seal verifies)?"""
    entry = data.get("lessons", {}).get(lesson, {}).get(exercise, {})
    key = _key(create=False)
    return (key is not None and bool(entry.get("checked_at")) and isinstance(entry.get("seal"), str)
            and hmac.compare_digest(entry["seal"], _seal(key, lesson, exercise, entry)))


def record_check(work: Path, lesson: str, outcomes: dict[str, tuple[int, int]], *, hidden: bool,
                 notes: list[str] | None = None) -> None:
    """After ``course check``: per exercise *attempted*, (tests passed, tests run); ``hidden`` for --hidden.

    Only exercises whose own tests ran against the learner's code belong in
    ``outcomes`` (the caller leaves stubs out); each entry is sealed.
    """
    key = _key(create=True)
    with _updating(work, notes if notes is not None else []) as data:
        for exercise, (passed, total) in outcomes.items():
            entry = _entry(data, lesson, exercise)
            entry["checked_at"] = _now()
            entry["hidden" if hidden else "visible"] = [int(passed), int(total)]
            entry["seal"] = _seal(key, lesson, exercise, entry)


def record_hint(work: Path, lesson: str, exercise: str, seen: int, notes: list[str] | None = None) -> int:
    """Record that ``seen`` hints of an exercise have been shown (never fewer than before)."""
    with _updating(work, notes if notes is not None else []) as data:
        entry = _entry(data, lesson, exercise)
        entry["hints_seen"] = max(int(entry.get("hints_seen", 0)), seen)
        return entry["hints_seen"]


def hints_seen(work: Path, lesson: str, exercise: str) -> int:
    return int(load(work).get("lessons", {}).get(lesson, {}).get(exercise, {}).get("hints_seen", 0))
