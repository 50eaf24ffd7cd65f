"""Grade one submission in a throw-away nbgrader course directory.

The pipeline for one submission, in order:

1. read the submitted notebook as data (never through a link, bounded in size);
2. build the normalized notebook (:mod:`autograder.normalize`): the lesson's
   own cells, demos left out, the student's solution cells put in after the
   policy check (:mod:`autograder.policy`);
3. nbgrader ``autograde`` runs it in a fresh judge kernel (sandboxed, safe
   path, audit hook: :mod:`autograder.audit`), then ``generate_feedback``;
4. the verdict: points per test from the gradebook, exercises whose solution
   was not taken set to 0, a tampered submission's points withheld, every
   message checked for quotes of hidden tests (:mod:`autograder.leaks`).

Each submission gets its own copy of the lesson's source and gradebook, so
workers never share a SQLite file and grading in parallel gives the same
result as grading one at a time. The worker writes nothing of the batch's
outputs: it answers with the :class:`~autograder.results.Result` and the
files to publish (the graded notebook, the feedback), and the parent
``course grade`` process is their only writer.

One piece (about 530 lines) on purpose: one submission's whole path — read,
normalize, grade, retry a kernel that never started, settle, serve — is
read together when a row looks wrong; its next split is the serving loop.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import COURSE_ID, Limits, nbgrader_config
from .discover import shown_name
from .results import STATUS_ORDER, Result, graded_cell_error

__all__ = ["Job", "Submitted", "BOOKKEEPING", "run", "serve", "main", "read_submitted"]


@dataclass
class Job:
    """What one worker grades."""

    student: str
    lesson: str
    submission: str          # SUBMISSIONS/<student>/<lesson> (read only)
    template: str            # course dir with source/, release/ and gradebook.db
    limits: dict = field(default_factory=lambda: asdict(Limits()))
    sandbox: bool = True
    prestart: bool = True    # start the next submission's kernel while this one is graded


class SubmissionError(Exception):
    """The submission cannot be graded as handed in; the message says why."""


def run(job: Job) -> dict:
    """Grade ``job``: ``{"result": Result dict, "files": {relative path: text}}``."""
    mark = _log_mark()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        result, files = _grade_in(Path(tmp), job)
    if result.status == "error" and _kernel_never_started(result.reason):
        # No cell ran: the kernel died while starting (measured under heavy load, now and then). That is
        # never the student's doing, so the submission is graded once more, with a kernel started cold.
        print(f"[{job.student}/{job.lesson}] the kernel died while starting; grading it once more",
              file=sys.stderr, flush=True)
        from . import warm

        warm.close()  # a kernel waiting for this lesson may be the one that died: none is taken now
        mark = _log_mark()
        with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
            result, files = _grade_in(Path(tmp), Job(**{**asdict(job), "prestart": False}))
    if result.status == "error" and result.reason.startswith("nbgrader could not grade it"):
        cause = _log_cause(mark, known=result.reason)
        if cause:  # the kernel's own words, which nbgrader's traceback does not hold
            result.reason = (f"the grading kernel could not start or run: {cause} "
                             f"(nbgrader: {result.reason.removeprefix('nbgrader could not grade it: ')})")
    return {"result": result.to_dict(), "files": files}


def _kernel_never_started(reason: str) -> bool:
    """Did nbgrader fail because the kernel died before it answered its first request?"""
    return reason.startswith("nbgrader could not grade it") and "before replying to kernel_info" in reason


NBGRADER_DUMP = "] nbgrader failed:\n"  # how _grade_in starts its copy of nbgrader's log in the worker's log
LOG_TAIL_LINES = 3  # lines of the worker's log a kernel-start failure's reason quotes


def _log_mark() -> int | None:
    """Where this job's part of the worker's log (its stderr, where kernels write too) begins."""
    try:
        info = os.fstat(2)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _log_cause(mark: int | None, known: str = "") -> str:
    """The last error lines the kernel (or nbgrader) wrote to the log since ``mark`` and not
    already in ``known`` (the reason), escaped, bounded."""
    if mark is None:
        return ""
    try:
        sys.stderr.flush()
        with open("/proc/self/fd/2", "rb") as log:  # fd 2 itself is open for appending only
            size = os.fstat(log.fileno()).st_size
            log.seek(max(mark, size - 64 * 1024))
            text = log.read(64 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""
    text = text.split(NBGRADER_DUMP, 1)[0]  # what the kernel wrote, before _grade_in copies nbgrader's log
    return shown_name(" | ".join(c for c in exception_lines(text) if c not in known))[:500]


_NAMED_ERROR = re.compile(r"\b[A-Z]\w*(Error|Exception|Exit|Interrupt)\b:?")


def log_causes(text: str) -> list[str]:
    """The last few causes in a log (:func:`exception_lines`), else its last lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return exception_lines(text) or lines[-LOG_TAIL_LINES:]


def exception_lines(text: str) -> list[str]:
    """The last few causes in a log: each traceback's final line (the exception and its message)
    and any other line naming an exception (``python -m``'s "Error while finding module
    specification ... (ModuleNotFoundError: ...)"), or none."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    causes, in_traceback = [], False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and not line[:1].isspace():
            in_traceback = False
            causes.append(line.strip())
        elif not in_traceback and _NAMED_ERROR.search(line):
            causes.append(line.strip())
    return list(dict.fromkeys(causes))[-LOG_TAIL_LINES:]


def _grade_in(work: Path, job: Job) -> tuple[Result, dict]:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from . import normalize as norm

    started = time.perf_counter()
    result = Result(student_id=job.student, lesson=job.lesson,
                    mode="sandbox" if job.sandbox else "no-sandbox")
    template = Path(job.template)
    shutil.copytree(template / "source" / job.lesson, work / "source" / job.lesson)
    shutil.copy2(template / "gradebook.db", work / "gradebook.db")
    result.max_score = _max_score(work, job.lesson)
    release_path = next((template / "release" / job.lesson).glob("*.ipynb"))
    try:
        submitted = read_submitted(Path(job.submission), release_path.name,
                                   max_bytes=Limits(**job.limits).max_notebook_mb << 20)
    except SubmissionError as problem:
        result.reason = str(problem)
        return result, {}
    import nbformat

    normalized = norm.normalize(nbformat.read(release_path, as_version=4), submitted, job.lesson)
    result.decisions = [asdict(d) for d in normalized.decisions]
    target = work / "submitted" / job.student / job.lesson
    target.mkdir(parents=True)
    nbformat.write(normalized.notebook, target / release_path.name)
    empty_cwd = work / "cwd" / job.lesson
    empty_cwd.mkdir(parents=True)

    limits = Limits(**job.limits)
    config = nbgrader_config(work, limits)
    incidents_file = work / "incidents.jsonl"
    config.BoundedExecute.incident_file = str(incidents_file)
    config.BoundedExecute.prestart_lesson = job.lesson if job.prestart and job.limits.get("prestart", True) else ""
    from .policy import allows_processes

    config.JudgeKernelManager.allow_processes = allows_processes(job.lesson)
    from .peer import asks_peer

    config.JudgeKernelManager.peer = any(
        cell.metadata.get("nbgrader", {}).get("grade") and asks_peer(cell.source)
        for cell in normalized.notebook.cells)
    if job.sandbox:
        from . import sandbox

        sandbox.configure(config, submission_dir=empty_cwd, runtime_dir=work / "runtime", limits=limits)
    else:
        # jupyter_client picks free TCP ports and releases them before the kernel binds them, so a
        # kernel starting at the same moment can take one (measured under load: "Address already in
        # use", and the submission lost every point). Unix sockets in this job's folder cannot clash.
        (work / "ipc").mkdir()
        config.JudgeKernelManager.transport = "ipc"
        config.JudgeKernelManager.ip = str(work / "ipc" / "k")
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    timing = {"prepare": time.perf_counter() - started}
    mark = time.perf_counter()
    outcome = api.autograde(job.lesson, job.student, force=True, create=True)
    timing["autograde"] = time.perf_counter() - mark
    result.incidents = _read_incidents(incidents_file)
    if not outcome["success"]:
        result.reason = "nbgrader could not grade it: " + _last_error(outcome)
        # The whole traceback goes to this worker's log: the reason holds one line of it.
        print(f"[{job.student}/{job.lesson}] nbgrader failed:\n{outcome.get('log') or ''}\n"
              f"{outcome.get('error') or ''}", file=sys.stderr, flush=True)
        return result, {}

    mark = time.perf_counter()
    graded_dir = work / "autograded" / job.student / job.lesson
    lost = normalized.lost()
    tampered = [i for i in result.incidents if i["kind"] == "tampered"]
    _settle_scores(work, job, lost, withhold_all=bool(tampered))
    _note_decisions(graded_dir / release_path.name, normalized.rejected(), tampered)
    timing["bookkeeping"] = time.perf_counter() - mark
    mark = time.perf_counter()
    feedback = api.generate_feedback(job.lesson, job.student, force=True)
    timing["feedback"] = time.perf_counter() - mark

    scores = _scores(work, job, lost)
    result.score, result.max_score, result.tests = scores["score"], scores["max_score"], scores["tests"]
    if tampered:
        result.withheld_score = scores["withheld"]
    result.status, result.reason = _status(result.incidents, normalized.rejected(), submitted.notes)
    if not feedback["success"]:
        result.reason = (result.reason + "; " if result.reason else "") + "no feedback: " + _last_error(feedback)
    result.timing = {k: round(v, 3) for k, v in timing.items()}
    return result, _published_files(work, job)


# ---------------------------------------------------------------- the submission


BOOKKEEPING = (".ipynb_checkpoints", "timestamp.txt", "LATE.txt")  # written by nbgrader or `course collect`


class Submitted(dict):
    """The submitted notebook as a dict, and ``notes``: what else the folder held and which was graded."""

    notes: list[str]


def read_submitted(folder: Path, expected: str, *, max_bytes: int = 20 << 20) -> Submitted:
    """The submitted notebook of ``folder`` as a dict, read as data: never through a link,
    and not at all when it is over ``max_bytes``.

    The notebook graded is the one named ``expected`` (nbgrader's name for it), else the newest
    ``.ipynb`` (by modification time; on a tie, the last name). The other notebooks and any stray
    file are never read, only listed in ``notes`` (and in the error's message): they cost nothing.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
    except OSError as error:
        raise SubmissionError(f"cannot list the submission folder: {error.strerror}")
    entries = [e for e in entries if e.name not in BOOKKEEPING]
    notebooks = [e for e in entries if e.name.endswith(".ipynb") and _plain_name(e.name)]
    strays = [e for e in entries if e not in notebooks]
    notes = []
    if strays:
        notes.append("not graded, not read: " + ", ".join(
            shown_name(e.name) + ("/" if e.is_dir(follow_symlinks=False) else "") for e in strays))
    if not notebooks:
        raise SubmissionError("; ".join([f"no notebook in the submission (expected {expected})"] + notes))
    by_name = [e for e in notebooks if e.name == expected]
    if by_name:
        entry = by_name[0]
        why = "the name the lesson expects"
    else:
        entry = max(notebooks, key=lambda e: (e.stat(follow_symlinks=False).st_mtime_ns, os.fsencode(e.name)))
        why = f"the newest of {len(notebooks)}, as {expected} is missing" if len(notebooks) > 1 else \
            f"the only notebook, under another name than {expected}"
    others = [shown_name(e.name) for e in notebooks if e is not entry]
    if others or not by_name:
        notes.insert(0, f"graded {shown_name(entry.name)} ({why})"
                     + (f"; other notebooks not graded: {', '.join(others)}" if others else ""))
    data = Submitted(_read_notebook(entry, max_bytes, notes))
    data.notes = notes
    return data


def _plain_name(name: str) -> bool:
    """A name that is valid UTF-8 without control characters (others are listed, never graded)."""
    try:
        os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return name.isprintable()


def _read_notebook(entry: os.DirEntry, max_bytes: int, notes: list[str]) -> dict:
    def refuse(message: str):
        return SubmissionError("; ".join([message] + notes))

    info = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        raise refuse(f"{shown_name(entry.name)} is a symbolic link, not a notebook: not graded")
    if not stat.S_ISREG(info.st_mode):
        raise refuse(f"{shown_name(entry.name)} is not a regular file: not graded")
    if info.st_size > max_bytes:
        raise refuse(f"{shown_name(entry.name)} is {info.st_size / 2**20:.0f} MB, over the "
                     f"{max_bytes // 2**20} MB limit: not graded (clear its outputs and hand it in again)")
    try:
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as error:
        raise refuse(f"cannot read {shown_name(entry.name)}: {error.strerror}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise refuse(f"{shown_name(entry.name)} is not a readable notebook: {str(error).splitlines()[0][:200]}")
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise refuse(f"{shown_name(entry.name)} is not a readable notebook: it has no list of cells")
    data["cells"] = [c for c in data["cells"] if isinstance(c, dict)]
    return data


# ------------------------------------------------------------------- the verdict


def _max_score(work: Path, lesson: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", COURSE_ID) as gb:
        return float(gb.find_assignment(lesson).max_score)


def _settle_scores(work: Path, job: Job, lost: dict[str, str], *, withhold_all: bool) -> None:
    """Set to 0 in the gradebook what must earn nothing, so feedback and grades agree."""
    if not lost and not withhold_all:
        return
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", COURSE_ID) as gb:
        for nb in gb.find_submission(job.lesson, job.student).notebooks:
            for grade in nb.grades:
                if withhold_all or grade.name in lost:
                    grade.manual_score = 0.0
        gb.db.commit()


def _scores(work: Path, job: Job, lost: dict[str, str]) -> dict:
    """Score, max and per-test points and messages; messages that quote hidden tests withheld."""
    import nbformat
    from nbgrader.api import Gradebook

    from .leaks import WITHHELD, hidden_lines, quotes_hidden

    source_nb = next((work / "source" / job.lesson).glob("*.ipynb"))
    secret = hidden_lines(nbformat.read(source_nb, as_version=4).cells)
    messages = {}
    for nb_path in (work / "autograded" / job.student / job.lesson).glob("*.ipynb"):
        for cell in nbformat.read(nb_path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                error = graded_cell_error(cell)
                message = error[1] if error else None
                if message:
                    messages[meta["grade_id"]] = WITHHELD if quotes_hidden(message, secret) else message[:500]
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", COURSE_ID) as gb:
        sub = gb.find_submission(job.lesson, job.student)
        tests, withheld = [], 0.0
        for nb in sub.notebooks:
            for grade in nb.grades:
                message = messages.get(grade.name, "")
                if grade.name in lost:
                    message = f"not graded: {lost[grade.name]}"[:500]
                if grade.name not in lost:
                    withheld += float(grade.auto_score or 0.0)
                tests.append({"name": grade.name, "notebook": nb.name, "score": float(grade.score),
                              "max_score": float(grade.max_score), "message": message})
        return {"score": float(sub.score), "max_score": float(sub.max_score), "tests": tests,
                "withheld": withheld}


def _status(incidents: list[dict], rejected: list, notes: list[str] = ()) -> tuple[str, str]:
    """The row's status (the first in STATUS_ORDER that applies) and its reason; ``notes`` (what else
    the submission folder held, which notebook was graded) close the reason."""
    kinds = {i["kind"] for i in incidents}
    found = set()
    if "tampered" in kinds:
        found.add("tampered")
    if kinds & {"audit_missing", "grading_error"}:
        found.add("error")
    if "kernel_died" in kinds:
        found.add("kernel_died")
    if kinds & {"timeout", "notebook_timeout"}:
        found.add("timeout")
    if rejected:
        found.add("rejected")
    status = next((s for s in STATUS_ORDER if s in found), "graded")
    reasons = [f"{i['cell']}: {i['message']}" if i.get("cell") else i["message"]
               for i in incidents if i["kind"] != "output_capped"]
    reasons += [f"{d.grade_id} {d.status}: {d.message}" for d in rejected]
    reasons += [i["message"] for i in incidents if i["kind"] == "output_capped"][:1]
    return status, "; ".join(reasons + list(notes))


def _note_decisions(graded_nb: Path, rejected: list, tampered: list[dict]) -> None:
    """Open the graded notebook (and so the feedback) with what grading refused, and why."""
    if not (rejected or tampered) or not graded_nb.exists():
        return
    import nbformat

    lines = ["**Grading notes**", ""]
    for incident in tampered:
        lines.append(f"- Grading found code that alters the grader, in `{incident['cell']}`: "
                     f"{incident['message']}. The points of this notebook are withheld.")
    for decision in rejected:
        lines.append(f"- `{decision.grade_id}` was not graded ({decision.status}): {decision.message}")
    nb = nbformat.read(graded_nb, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
    nbformat.write(nb, graded_nb)


def _published_files(work: Path, job: Job) -> dict[str, str]:
    """The graded notebook and the feedback (sanitised: nothing live), as text keyed by their path
    under the batch's output."""
    from .sanitize import sanitize_page

    files = {}
    for kind in ("autograded", "feedback"):
        folder = work / kind / job.student / job.lesson
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink() and path.name != "timestamp.txt" \
                    and path.suffix in (".ipynb", ".html"):
                text = path.read_text(encoding="utf-8", errors="replace")
                files[str(path.relative_to(work))] = sanitize_page(text) if path.suffix == ".html" else text
    return files


def _read_incidents(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _last_error(outcome: dict) -> str:
    text = (outcome.get("error") or "") + "\n" + (outcome.get("log") or "")
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    # A traceback's own last line ("KeyError: 'x'") says more than nbgrader's "[ERROR] see above".
    raised = [l for l in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Interrupt): ", l)]
    errors = raised or [l for l in lines if "ERROR" in l or "Error" in l]
    return (errors or lines or ["unknown error"])[-1][:300]


# --------------------------------------------------------------------- serving


def _limit_memory(memory_mb: int) -> None:
    """Cap this worker and the kernels it starts (inherited by children)."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """Grade jobs read as JSON lines; answer each with one JSON line (see :func:`run`).

    One long-lived worker pays for Python and nbgrader's imports once, not
    once per submission. Anything nbgrader or a kernel prints goes to stderr,
    so stdout carries only the answers. After each job, every process the
    job left behind (a student's server or child process) is killed.
    """
    from .proctree import kill_children

    _die_with_parent()
    answers = os.fdopen(os.dup(stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), stdout.fileno())
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    from .slowimports import skip_format_checkers

    skip_format_checkers()  # as `course grade` and `course check` do
    import nbgrader.apps  # noqa: F401  (imported before the first job: the parent is still busy)
    from . import execute, preprocessors  # noqa: F401

    from . import warm

    for line in stdin:
        if not line.strip():
            continue
        job = Job(**json.loads(line))
        try:
            answer = run(job)
        except Exception as exc:  # a bug or a broken course dir: report, keep serving
            failed = Result(student_id=job.student, lesson=job.lesson, status="error",
                            reason=f"grading failed: {type(exc).__name__}: {exc}"[:300],
                            mode="sandbox" if job.sandbox else "no-sandbox")
            answer = {"result": failed.to_dict(), "files": {}}
        pids, groups = warm.spared()  # the kernel started ahead for the next job stays up
        kill_children(spare=pids)
        if job.sandbox:
            from . import sandbox

            sandbox.kill_leftovers(spare=groups)
        answers.write(json.dumps(answer) + "\n")
    warm.close()


def _die_with_parent() -> None:
    """If the grading command is killed (kill -9), stop at once with everything started."""
    import threading

    from .proctree import kill_children

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        kill_children()
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autograder.worker")
    parser.add_argument("--batch", help="the output folder of the batch (shown in ps)")
    parser.add_argument("--memory-mb", type=int, help="address-space limit for the worker and its kernels")
    args = parser.parse_args(argv)
    if args.memory_mb:
        _limit_memory(args.memory_mb)
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
