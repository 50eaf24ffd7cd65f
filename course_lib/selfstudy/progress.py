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
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

from .exercises import LESSON_ID, notebooks_folder

__all__ = ["FILE_NAME", "work_folder", "load", "record_check", "record_hint", "hints_seen"]

FILE_NAME = ".course-progress.json"
VERSION = 1


def work_folder(start: Path | str | None = None) -> Path:
    """Where the progress file goes, from a notebook, a lesson folder or a folder (default: cwd).

    Inside a lesson folder it is the folder above it. Run from the course's
    own folder, it is ``build/student`` (where ``make lab`` puts the student
    version), so the file is never written among the course's sources.
    """
    here = Path(start or os.getcwd()).resolve()
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
    return isinstance(entry.get("checked_at", ""), str)


def _read(path: Path, notes: list[str]) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"could not read {path.name} ({type(exc).__name__}): started again")
        return _empty()
    try:
        data = json.loads(text)
    except ValueError:
        aside = path.with_name(path.name + ".corrupt")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        notes.append(f"{path.name} was not valid JSON: kept aside as {aside.name} and rebuilt")
        return _empty()
    return _clean(data, notes)


def load(work: Path, notes: list[str] | None = None) -> dict:
    """The progress in ``work`` (never raises for a bad file: ``notes`` says what was repaired)."""
    return _read(Path(work) / FILE_NAME, notes if notes is not None else [])


@contextlib.contextmanager
def _updating(work: Path, notes: list[str]):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / (FILE_NAME + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = _read(work / FILE_NAME, notes)
            yield data
            fd, tmp = tempfile.mkstemp(prefix=".course-progress-", dir=work)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, work / FILE_NAME)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _entry(data: dict, lesson: str, exercise: str) -> dict:
    return data["lessons"].setdefault(lesson, {}).setdefault(exercise, {})


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def record_check(work: Path, lesson: str, outcomes: dict[str, tuple[int, int]], *, hidden: bool,
                 notes: list[str] | None = None) -> None:
    """After ``course check``: per exercise, (tests passed, tests run); ``hidden`` for --hidden."""
    with _updating(work, notes if notes is not None else []) as data:
        for exercise, (passed, total) in outcomes.items():
            entry = _entry(data, lesson, exercise)
            entry["checked_at"] = _now()
            entry["hidden" if hidden else "visible"] = [int(passed), int(total)]


def record_hint(work: Path, lesson: str, exercise: str, seen: int, notes: list[str] | None = None) -> int:
    """Record that ``seen`` hints of an exercise have been shown (never fewer than before)."""
    with _updating(work, notes if notes is not None else []) as data:
        entry = _entry(data, lesson, exercise)
        entry["hints_seen"] = max(int(entry.get("hints_seen", 0)), seen)
        return entry["hints_seen"]


def hints_seen(work: Path, lesson: str, exercise: str) -> int:
    return int(load(work).get("lessons", {}).get(lesson, {}).get(exercise, {}).get("hints_seen", 0))
