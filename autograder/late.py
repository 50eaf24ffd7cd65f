"""Due dates and late work: when a submission was handed in, and what lateness costs.

``course grade --due 2026-03-01T23:59 --late-penalty 10%/day`` (or ``25%``,
a fixed share once late; ``--extensions FILE.csv`` with ``student_id,due``
and optionally ``lesson``) sets a :class:`Policy` per lesson. It is kept in
``OUT/late.json``, so a resumed or partial run (``--lesson``, ``--student``)
keeps the due dates it was given, and changing them re-prices every row
without grading anything again.

When a submission was handed in, in this order:

- nbgrader's ``timestamp.txt`` in the submission folder (written by
  ``nbgrader collect`` from the exchange, and by ``course collect`` from the
  ZIP's time of the file);
- Canvas's ``LATE`` mark (``LATE.txt``, written by ``course collect``): late
  even when no time says by how much; it then counts as one started day.

Times without a zone are UTC, as nbgrader reads them, so ``nbgrader export``
agrees with ``grades.csv``. The penalty is a share of the lesson's points
(per started day late, or once), never more than the points earned; the
gradebook gets the due date, each student's extension, the submission time
and the penalty (:mod:`autograder.gradebook`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from .lessons import CourseError

__all__ = ["Policy", "POLICY_FILE", "parse_time", "parse_penalty", "read_extensions", "policies",
           "submission_time", "price", "LATE_FIELDS"]

POLICY_FILE = "late.json"
LATE_FIELDS = ("submitted_at", "due", "late_by", "penalty")  # what a result and grades.csv carry
_PENALTY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*(/\s*day)?\s*$")


@dataclass
class Policy:
    """One lesson's due date (ISO, UTC), penalty and per-student due dates."""

    due: str
    penalty: str = ""                                    # "10%/day", "25%" or "" (no penalty, late shown)
    extensions: dict[str, str] = field(default_factory=dict)  # student -> due (ISO, UTC)


def parse_time(text: str, what: str = "time") -> datetime:
    """``text`` as a naive UTC datetime (nbgrader's own parser: offsets converted, none means UTC)."""
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(str(text).strip())
    except (ValueError, OverflowError, TypeError) as error:
        raise CourseError(f"{what} {text!r} is not a date and time (e.g. 2026-03-01T23:59): {error}")


def parse_penalty(text: str) -> tuple[float, bool]:
    """``"10%/day"`` -> (0.10, True); ``"25%"`` -> (0.25, False)."""
    match = _PENALTY.match(text or "")
    if not match or float(match.group(1)) > 100:
        raise CourseError(f"--late-penalty {text!r}: expected a share of the points, per day (10%/day) "
                          "or once (25%)")
    return float(match.group(1)) / 100, bool(match.group(2))


def read_extensions(path: Path, lessons: list[str]) -> dict[str, dict[str, str]]:
    """``{lesson: {student: due}}`` from a CSV with columns student_id, due and optionally lesson."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as error:
        raise CourseError(f"--extensions {path}: {error.strerror}")
    except (csv.Error, UnicodeDecodeError) as error:
        raise CourseError(f"--extensions {path}: not a CSV file ({error})")
    found: dict[str, dict[str, str]] = {lesson: {} for lesson in lessons}
    for n, row in enumerate(rows, start=2):
        student, due = (row.get("student_id") or "").strip(), (row.get("due") or "").strip()
        if not student or not due:
            raise CourseError(f"--extensions {path}, line {n}: needs the columns student_id and due")
        when = parse_time(due, f"--extensions {path}, line {n}: due").isoformat()
        lesson = (row.get("lesson") or "").strip()
        for target in ([l for l in lessons if l == lesson or l.startswith(lesson + "-")] if lesson else lessons):
            found[target][student] = when
    return found


def policies(out: Path, lessons: list[str], *, due: str | None = None, penalty: str | None = None,
             extensions: Path | None = None) -> dict[str, Policy]:
    """The policy of every lesson, after applying this run's options to ``lessons``; saved to OUT/late.json."""
    path = Path(out) / POLICY_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    known = {lesson: Policy(**value) for lesson, value in stored.items() if isinstance(value, dict)}
    if penalty:
        parse_penalty(penalty)
    if (penalty or extensions) and not due and not all(lesson in known for lesson in lessons):
        raise CourseError("--late-penalty and --extensions need --due (the first time for each lesson)")
    given = read_extensions(extensions, lessons) if extensions else {}
    for lesson in lessons:
        if not (due or penalty or extensions):
            continue
        old = known.get(lesson)
        known[lesson] = Policy(due=parse_time(due, "--due").isoformat() if due else old.due,
                               penalty=penalty if penalty is not None else (old.penalty if old else ""),
                               extensions=given.get(lesson, {}) if extensions else (old.extensions if old else {}))
    if known != {lesson: Policy(**value) for lesson, value in stored.items() if isinstance(value, dict)}:
        from .results import write_atomic

        write_atomic(path, json.dumps({k: asdict(v) for k, v in sorted(known.items())}, indent=1))
    return known


def submission_time(folder: Path) -> tuple[datetime | None, bool, str]:
    """(time handed in or None, marked LATE by the platform, a note when timestamp.txt is unreadable)."""
    folder = Path(folder)
    marked = _is_file(folder / "LATE.txt")
    stamp = folder / "timestamp.txt"
    if not _is_file(stamp):
        return None, marked, ""
    try:
        fd = os.open(stamp, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            text = f.read(200).decode("utf-8").strip()
        return parse_time(text), marked, ""
    except (OSError, UnicodeDecodeError, CourseError):
        return None, marked, "timestamp.txt is unreadable: the submission time is unknown"


def _is_file(path: Path) -> bool:
    try:
        import stat

        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def price(result: dict, policy: Policy | None, folder: Path | None) -> dict:
    """``result`` with its late fields and score set from its raw score: submitted_at, due,
    late_by, penalty (points), lesson_due; the score less the penalty. Nothing changes for a row
    that earned nothing to lose or has no policy, except the fields shown."""
    result = dict(result)
    raw = float(result.setdefault("raw_score", result.get("score") or 0.0) or 0.0)
    for key in LATE_FIELDS + ("lesson_due",):
        result[key] = ""
    result["penalty"] = 0.0
    result["score"] = raw
    if folder is None or result.get("status") == "missing":
        return result
    when, marked, note = submission_time(folder)
    result["submitted_at"] = when.isoformat(" ", "seconds") + " UTC" if when else ""
    if note and note not in (result.get("reason") or ""):
        result["reason"] = "; ".join(r for r in (result.get("reason"), note) if r)
    if policy is None:
        return result
    due = parse_time(policy.extensions.get(result["student_id"], policy.due))
    result["lesson_due"] = parse_time(policy.due).isoformat(" ", "seconds") + " UTC"
    result["due"] = due.isoformat(" ", "seconds") + " UTC"
    late = (when - due) if when and when > due else None
    if late is None and not marked:
        return result
    days = max(1, math.ceil(late / timedelta(days=1))) if late else 1
    result["late_by"] = _duration(late) if late else "marked LATE"
    if policy.penalty and raw > 0:
        share, per_day = parse_penalty(policy.penalty)
        points = share * float(result.get("max_score") or 0.0) * (days if per_day else 1)
        result["penalty"] = round(min(points, raw), 4)
        result["score"] = round(raw - result["penalty"], 4)
    return result


def _duration(delta: timedelta) -> str:
    minutes = math.ceil(delta.total_seconds() / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{hours:02d}:{minutes:02d}"
