"""One graded submission, as one type, written by one writer.

A grading worker returns a :class:`Result` (as a dict over its pipe); the
parent ``course grade`` process alone writes it to
``OUT/results/<student>/<lesson>.json`` and, from all of them,
``grades.csv`` — each file atomically, so an interrupted batch never leaves
half a result and two workers can never race on one file.

Statuses, in the order a row shows them when several apply:

    tampered     code in the kernel reached into the interpreter or the grader:
                 score 0, the points it would have had kept as ``withheld_score``
    error        the submission could not be graded (reason says why)
    kernel_died  a cell killed its kernel; the rest was graded
    timeout      a cell or the notebook ran out of time, and nothing scored
    timeout-partial  a cell or the notebook ran out of time; the points earned
                 before and beside it stand (a time-out with every test passed
                 is ``graded``, its reason opening with a note)
    rejected     a solution cell broke the policy: that exercise scored 0
    graded       nothing of the above
    missing      nothing was submitted
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Result", "STATUS_ORDER", "TIMED_OUT_BUT_PASSED", "write_atomic", "write_result", "read_result",
           "read_results", "result_path", "graded_cell_error", "settle_timeout"]

STATUS_ORDER = ["tampered", "error", "kernel_died", "timeout", "timeout-partial", "rejected", "graded", "missing"]
TIMED_OUT_BUT_PASSED = "note: a cell ran out of time, yet every test passed"



@dataclass
class Result:
    student_id: str
    lesson: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "error"
    reason: str = ""
    mode: str = ""
    tests: list[dict] = field(default_factory=list)       # name, notebook, score, max_score, message
    incidents: list[dict] = field(default_factory=list)   # kind, cell, message
    decisions: list[dict] = field(default_factory=list)   # per solution cell: grade_id, status, message
    withheld_score: float | None = None
    timing: dict = field(default_factory=dict)
    fingerprint: str = ""
    seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def result_path(out: Path, student: str, lesson: str) -> Path:
    """Where a row's result lives; a row of a student folder's own (no lesson) has ``_folder.json``."""
    return Path(out) / "results" / student / f"{lesson or '_folder'}.json"


def write_result(out: Path, result: dict) -> Path:
    path = result_path(out, result["student_id"], result["lesson"])
    write_atomic(path, json.dumps(result, indent=1))
    return path


def read_result(path: Path) -> dict | None:
    """The result stored at ``path``; None if there is none or it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_results(out: Path) -> list[dict]:
    """Every result under ``out/results`` (a file that is not a result is skipped)."""
    found = (read_result(path) for path in sorted((Path(out) / "results").glob("*/*.json")))
    return [result for result in found if result is not None]


def graded_cell_error(cell) -> tuple[str, str] | None:
    """``(error name, "Name: message")`` of a test cell's last error output; None if it passed."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return None
    name = str(errors[-1].get("ename"))
    return name, f"{name}: {errors[-1].get('evalue')}"


def settle_timeout(result: dict) -> dict:
    """A ``timeout`` row that still earned points says so: ``timeout-partial``, or ``graded`` with a
    note when every test passed, so a filter on status never shows full marks under ``timeout``."""
    if result.get("status") not in ("timeout", "timeout-partial"):
        return result
    score, top = float(result.get("raw_score", result.get("score")) or 0), float(result.get("max_score") or 0)
    if top and score >= top:
        reason = result.get("reason") or ""
        result = {**result, "status": "graded",
                  "reason": reason if reason.startswith(TIMED_OUT_BUT_PASSED) else
                  "; ".join(r for r in (TIMED_OUT_BUT_PASSED, reason) if r)}
    else:
        result = {**result, "status": "timeout-partial" if score > 0 else "timeout"}
    return result
