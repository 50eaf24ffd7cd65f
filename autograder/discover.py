"""What is under SUBMISSIONS: gradable ``<student>/<lesson>/`` folders, and rows for the rest.

Submissions are data, never links: the walk uses ``os.scandir`` without
following symbolic links, so a link planted in the submissions folder is
reported, never read through. A name that is not valid UTF-8 or holds
control characters is reported by its escaped form and its submission gets
an ``error`` row; the rest of the batch goes on. The fingerprint (when to
grade again) hashes names as bytes and file contents, links as their
target text, and never opens anything but regular files.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import lessons as lessons_mod
from .lessons import CourseError

__all__ = ["Found", "Unusable", "discover", "fingerprint", "shown_name", "row"]


MAX_SUBMISSION_BYTES = 200 * 1024 * 1024


class Unusable(Exception):
    """A submission holds an entry that is not plain data; the message names it and says why."""


@dataclass
class Found:
    """What was found under SUBMISSIONS: gradable jobs and rows to report as they are."""

    jobs: list[tuple[str, str, Path]] = field(default_factory=list)   # (student, lesson, folder)
    rows: list[dict] = field(default_factory=list)                    # missing / error rows


def shown_name(name: str) -> str:
    """``name`` safe to print and to put in a CSV: undecodable bytes and control characters escaped."""
    raw = os.fsencode(name)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _bad_name(name: str) -> str | None:
    try:
        os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8"
    if not name.isprintable():
        return "holds control characters"
    return None


def row(student, lesson, status, reason, score=0.0, max_score=0.0, mode=""):
    return {"student_id": student, "lesson": lesson, "score": score, "max_score": max_score,
            "status": status, "reason": reason, "mode": mode}


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: os.fsencode(e.name))


def discover(submissions: Path, lesson_ids: list[str] | None = None) -> tuple[Found, list[str]]:
    """Find ``<student>/<lesson>/`` folders; unusable entries become error rows."""
    if not submissions.is_dir():
        raise CourseError(f"no such folder: {submissions}")
    known = lessons_mod.all_lessons()
    found = Found()
    seen_lessons: set[str] = set()
    students = []
    for entry in _entries(submissions):
        if entry.name.startswith("."):
            continue
        student = shown_name(entry.name)
        if (why := _bad_name(entry.name)):
            found.rows.append(row(student, "", "error", f"the student folder name {why}: rename it"))
            continue
        if entry.is_symlink():
            found.rows.append(row(student, "", "error", f"{student} is a symbolic link, not a student folder"))
            continue
        if not entry.is_dir(follow_symlinks=False):
            found.rows.append(row(student, "", "error", f"{student} is a file, not a student folder"))
            continue
        students.append(student)
        for lesson_dir in _entries(Path(entry.path)):
            if lesson_dir.name.startswith("."):
                continue
            name = shown_name(lesson_dir.name)
            if not lesson_dir.is_dir(follow_symlinks=False) or lesson_dir.name not in known:
                found.rows.append(row(student, name, "error",
                                      f"{student}/{name} is not a lesson folder (lessons: {', '.join(known)})"))
                continue
            if lesson_ids and lesson_dir.name not in lesson_ids:
                continue
            seen_lessons.add(lesson_dir.name)
            found.jobs.append((student, lesson_dir.name, Path(lesson_dir.path)))
    lessons = lesson_ids or sorted(seen_lessons)
    submitted = {(s, l) for s, l, _ in found.jobs}
    for student in students:
        for lesson in lessons:
            if (student, lesson) not in submitted:
                found.rows.append(row(student, lesson, "missing", "nothing submitted"))
    return found, lessons


def fingerprint(folder: Path) -> str:
    """A hash of a submission's entries (names, bytes), to know when to regrade.

    Raises :class:`Unusable` for a symbolic link, device, FIFO or socket
    anywhere in the folder: such a submission is reported, and nothing is read
    through it. A regular file whose name is not valid UTF-8 or holds control
    characters is hashed like any other (the worker lists it, escaped, and
    never grades it): a stray file never costs a lesson.
    """
    digest = hashlib.sha256()
    seen = [0]

    def walk(path: Path, relative: bytes) -> None:
        for entry in _entries(path):
            if entry.name == ".ipynb_checkpoints":
                continue
            name = relative + os.fsencode(entry.name)
            shown = shown_name(os.fsdecode(name))
            info = entry.stat(follow_symlinks=False)
            digest.update(name + b"\0" + str(stat.S_IFMT(info.st_mode)).encode())
            if stat.S_ISLNK(info.st_mode):
                raise Unusable(f"{shown} is a symbolic link: submissions must be plain files")
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                raise Unusable(f"{shown} is not a regular file (a device, FIFO or socket): not graded")
            if stat.S_ISDIR(info.st_mode):
                walk(Path(entry.path), name + b"/")
            elif stat.S_ISREG(info.st_mode):
                seen[0] += info.st_size
                if seen[0] > MAX_SUBMISSION_BYTES:
                    raise Unusable(f"the submission holds more than {MAX_SUBMISSION_BYTES >> 20} MB of files: "
                                   "not graded (a lesson needs only its notebook)")
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)

    walk(Path(folder), b"")
    return digest.hexdigest()
