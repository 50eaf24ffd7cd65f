"""Grade one submission in a throw-away nbgrader course directory.

Each submission gets its own copy of the lesson's source and gradebook, so
workers never share a SQLite file, a half-graded submission never touches
the instructor's files, and grading in parallel gives the same result as
grading one at a time. Run as ``python -m autograder.worker`` by ``autograder.grade``: the
caller bounds each job in time and kills the worker's whole process tree
when a job overruns, so even a worker that nbgrader itself cannot stop is
ended. A worker serves many jobs in turn (``serve``).

The result (one JSON file) holds the score, the status (graded, timeout,
kernel_died, error), why, and each test cell's points and message.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import COURSE_ID, Limits, nbgrader_config

STATUS_ORDER = ["graded", "timeout", "kernel_died", "error"]


@dataclass
class Job:
    """What one worker grades and where its results go."""

    student: str
    lesson: str
    submission: str          # SUBMISSIONS/<student>/<lesson> (read only)
    template: str            # course dir with source/<lesson> and gradebook.db
    out: str                 # the batch's output folder
    limits: dict = field(default_factory=lambda: asdict(Limits()))
    sandbox: bool = False

    @property
    def result_path(self) -> Path:
        return Path(self.out) / "results" / self.student / f"{self.lesson}.json"


def run(job: Job) -> dict:
    """Grade ``job`` and return (and write) its result."""
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        result = _grade_in(Path(tmp), job)
    _write_json(job.result_path, result)
    return result


def _grade_in(work: Path, job: Job) -> dict:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    started = time.perf_counter()
    base = {"student_id": job.student, "lesson": job.lesson, "score": 0.0,
            "max_score": 0.0, "status": "error", "reason": "", "tests": [],
            "mode": "sandbox" if job.sandbox else "no-sandbox"}
    template = Path(job.template)
    shutil.copytree(template / "source" / job.lesson, work / "source" / job.lesson)
    shutil.copy2(template / "gradebook.db", work / "gradebook.db")
    base["max_score"] = _max_score(work, job.lesson)
    problem = _copy_submission(Path(job.submission), work / "submitted" / job.student / job.lesson,
                               work / "source" / job.lesson)
    if problem:
        return {**base, "reason": problem}

    limits = Limits(**job.limits)
    config = nbgrader_config(work, limits)
    incidents_file = work / "incidents.jsonl"
    config.BoundedExecute.incident_file = str(incidents_file)
    if job.sandbox:
        from . import sandbox

        sandbox.configure(config, submission_dir=work / "submitted" / job.student / job.lesson,
                          runtime_dir=work / "runtime", memory_mb=limits.memory_mb)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    timing = {"prepare": time.perf_counter() - started}
    mark = time.perf_counter()
    outcome = api.autograde(job.lesson, job.student, force=True, create=True)
    timing["autograde"] = time.perf_counter() - mark
    incidents = _read_incidents(incidents_file)
    if not outcome["success"]:
        return {**base, "reason": "nbgrader could not grade it: " + _last_error(outcome), "incidents": incidents}
    mark = time.perf_counter()
    feedback = api.generate_feedback(job.lesson, job.student, force=True)
    timing["feedback"] = time.perf_counter() - mark

    mark = time.perf_counter()
    result = {**base, **_scores(work, job), "incidents": incidents}
    result["status"], result["reason"] = _status(incidents)
    if not feedback["success"]:
        result["reason"] = (result["reason"] + "; " if result["reason"] else "") + "no feedback: " + _last_error(feedback)
    _publish(work, job)
    timing["bookkeeping"] = time.perf_counter() - mark
    result["timing"] = {k: round(v, 3) for k, v in timing.items()}
    return result


def _copy_submission(src: Path, dest: Path, source: Path) -> str | None:
    """Copy the student's folder for grading; say what is wrong with it, if anything."""
    import nbformat

    expected = sorted(p.name for p in source.glob("*.ipynb"))
    notebooks = sorted(p for p in src.glob("*.ipynb"))
    if not notebooks:
        return f"no notebook in {src} (expected {', '.join(expected)})"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for nb_path in notebooks:
        try:
            nbformat.read(nb_path, as_version=4)
        except Exception as exc:
            return f"{nb_path.name} is not a readable notebook: {str(exc).splitlines()[0][:200]}"
    names = [p.name for p in notebooks]
    if len(expected) == 1 and names != expected:
        if len(names) == 1:
            # A renamed download ("lesson (1).ipynb"): grade it under the expected name.
            (dest / names[0]).rename(dest / expected[0])
        else:
            return f"expected {expected[0]}, found {', '.join(names)}"
    return None


def _max_score(work: Path, lesson: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", COURSE_ID) as gb:
        return float(gb.find_assignment(lesson).max_score)


def _scores(work: Path, job: Job) -> dict:
    """Score, max and per-test points and messages from the worker's gradebook."""
    import nbformat
    from nbgrader.api import Gradebook

    messages = {}
    for nb_path in (work / "autograded" / job.student / job.lesson).glob("*.ipynb"):
        for cell in nbformat.read(nb_path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if errors:
                    messages[meta["grade_id"]] = f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}"[:500]
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", COURSE_ID) as gb:
        sub = gb.find_submission(job.lesson, job.student)
        tests = []
        for nb in sub.notebooks:
            for grade in nb.grades:
                tests.append({"name": grade.name, "notebook": nb.name, "score": float(grade.score),
                              "max_score": float(grade.max_score),
                              "message": messages.get(grade.name, "")})
        return {"score": float(sub.score), "max_score": float(sub.max_score), "tests": tests}


def _status(incidents: list[dict]) -> tuple[str, str]:
    kinds = {i["kind"] for i in incidents}
    reasons = "; ".join(f"{i['cell']}: {i['message']}" for i in incidents if i["kind"] != "output_capped")
    if "kernel_died" in kinds:
        return "kernel_died", reasons
    if kinds & {"timeout", "notebook_timeout"}:
        return "timeout", reasons
    return "graded", "; ".join(i["message"] for i in incidents)


def _publish(work: Path, job: Job) -> None:
    """Copy the graded notebook and the feedback into the batch's output folder."""
    out = Path(job.out)
    for kind in ("autograded", "feedback"):
        src = work / kind / job.student / job.lesson
        dest = out / kind / job.student / job.lesson
        if dest.exists():
            shutil.rmtree(dest)
        if src.exists():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("timestamp.txt"))


def _read_incidents(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _last_error(outcome: dict) -> str:
    text = (outcome.get("error") or "") + "\n" + (outcome.get("log") or "")
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if "ERROR" in l or "Error" in l]
    return (errors or lines or ["unknown error"])[-1][:300]


def _write_json(path: Path, data: dict) -> None:
    """Write atomically, so an interrupted batch never leaves half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _limit_memory(memory_mb: int) -> None:
    """Cap this worker and the kernels it starts (inherited by children)."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """Grade jobs read as JSON lines; answer each with one line naming its result.

    One long-lived worker pays for Python and nbgrader's imports once, not
    once per submission. Anything nbgrader or a kernel prints goes to stderr,
    so stdout carries only the answers. After each job, every process the
    job left behind (a student's server or child process) is killed.
    """
    _die_with_parent()
    answers = os.fdopen(os.dup(stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), stdout.fileno())
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    import nbgrader.apps  # noqa: F401  (imported before the first job: the parent is still busy)
    from . import execute, preprocessors  # noqa: F401

    for line in stdin:
        if not line.strip():
            continue
        job = Job(**json.loads(line))
        try:
            run(job)
        except Exception as exc:  # a bug or a broken course dir: report, keep serving
            _write_json(job.result_path, {"student_id": job.student, "lesson": job.lesson,
                                          "score": 0.0, "max_score": 0.0, "status": "error",
                                          "reason": f"grading failed: {type(exc).__name__}: {exc}"[:300],
                                          "tests": []})
        _kill_leftovers()
        if job.sandbox:
            from . import sandbox

            sandbox.kill_leftovers()
        answers.write(json.dumps({"done": str(job.result_path)}) + "\n")


def _die_with_parent() -> None:
    """If the grading command is killed (kill -9), stop at once with everything started.

    Otherwise a worker would finish its job and write a result after a newer
    batch had started grading the same submission.
    """
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        _kill_leftovers()
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _kill_leftovers() -> None:
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=5)


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
