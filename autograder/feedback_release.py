"""``course feedback release``: hand ``course grade``'s feedback to a class through nbgrader's exchange.

nbgrader releases feedback from the course folder's ``feedback/<student>/<lesson>/``,
naming each file in the exchange by a hash of the submission's secret (that
is why a student can fetch only their own). So each feedback page of
``course grade`` is staged there beside the collected submission's
``timestamp.txt`` and ``submission_secret.txt``, then nbgrader's own
``ExchangeReleaseFeedback`` copies it into the exchange. A submission that
did not come through the exchange (no secret) has nowhere to go: it is listed,
not guessed.

Run by root on a class hub (the operator grades), the files it writes are
given to the course folder's owner, so the instructor's formgrader can
release again over them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .config import COURSE_ID
from .lessons import CourseError

__all__ = ["Released", "stage_feedback", "release_to_exchange", "released_students", "awaiting_feedback",
           "feedback_release"]

SECRET_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass
class Released:
    """What one lesson's release did: who got feedback, and who could not."""

    lesson: str
    released: list[str] = field(default_factory=list)
    not_collected: list[str] = field(default_factory=list)   # graded, but not handed in through the exchange

    def summary(self) -> str:
        line = f"{self.lesson}: feedback released to {len(self.released)} student(s)"
        if self.not_collected:
            line += (f"; not released to {', '.join(self.not_collected)} (not collected through the exchange: "
                     "no submission_secret.txt)")
        return line


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


def _give(paths, owner: tuple[int, int]) -> None:
    """As root, hand what was written to the course folder's owner (elsewhere nothing to do)."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.chown(path, *owner, follow_symlinks=False)


def stage_feedback(graded: Path, course: Path, lesson: str) -> Released:
    """Copy ``graded/feedback/<student>/<lesson>/*.html`` into ``course/feedback/`` with the secrets."""
    graded, course = Path(graded), Path(course)
    result = Released(lesson)
    owner = _owner(course)
    for html_dir in sorted((graded / "feedback").glob(f"*/{lesson}")):
        student = html_dir.parent.name
        submitted = course / "submitted" / student / lesson
        if not all((submitted / name).is_file() and not (submitted / name).is_symlink() for name in SECRET_FILES):
            result.not_collected.append(student)
            continue
        target = course / "feedback" / student / lesson
        if target.is_symlink() or target.exists():
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        target.mkdir(parents=True)
        for html in sorted(html_dir.glob("*.html")):
            shutil.copyfile(html, target / html.name, follow_symlinks=False)
            os.chmod(target / html.name, 0o644)  # nbgrader copies the mode into the exchange: students read it
        for name in SECRET_FILES:
            shutil.copyfile(submitted / name, target / name, follow_symlinks=False)
        _give([target.parent.parent, target.parent, target, *target.iterdir()], owner)
        result.released.append(student)
    return result


def _exchange_config(course: Path, exchange: Path, lesson: str, course_id: str):
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = course_id
    config.CourseDirectory.assignment_id = lesson
    config.Exchange.root = str(exchange)
    config.Exchange.path_includes_course = False
    return config


def release_to_exchange(course: Path, exchange: Path, lesson: str, course_id: str = COURSE_ID) -> None:
    """nbgrader's ``release_feedback`` for one lesson, from ``course`` into ``exchange``."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback

    config = _exchange_config(Path(course), Path(exchange), lesson, course_id)
    try:
        ExchangeReleaseFeedback(coursedir=CourseDirectory(config=config), config=config).start()
    except ExchangeError as exc:
        raise CourseError(f"nbgrader could not release {lesson}'s feedback: {exc}")
    outbound = Path(exchange) / course_id / "feedback"
    _give([outbound, *outbound.iterdir()], _owner(Path(course)))


def released_students(course: Path, exchange: Path, lesson: str, course_id: str = COURSE_ID) -> list[str]:
    """The students whose staged feedback for ``lesson`` is in the exchange now (as nbgrader names it)."""
    from nbgrader.utils import notebook_hash

    outbound = Path(exchange) / course_id / "feedback"
    found = []
    for staged in sorted(Path(course).glob(f"feedback/*/{lesson}")):
        try:
            secret = (staged / "submission_secret.txt").read_text()
        except OSError:
            continue
        pages = [html.stem for html in staged.glob("*.html")]
        if pages and all((outbound / f"{notebook_hash(secret=secret, notebook_id=p)}.html").is_file() for p in pages):
            found.append(staged.parent.name)
    return found


def awaiting_feedback(course: Path, exchange: Path, lesson: str, course_id: str = COURSE_ID) -> list[str]:
    """The students who handed ``lesson`` in through the exchange and whose feedback is not there yet.

    A hand-in from elsewhere (a ZIP, no ``submission_secret.txt``) never gets its feedback through
    the exchange, so it is not waited for.
    """
    released = set(released_students(course, exchange, lesson, course_id))
    return sorted(folder.parent.name for folder in Path(course).glob(f"submitted/*/{lesson}")
                  if (folder / "submission_secret.txt").is_file() and folder.parent.name not in released)


def feedback_release(graded: Path, *, course: Path, exchange: Path, lessons: list[str] | None = None,
                     course_id: str = COURSE_ID) -> list[Released]:
    """Stage and release the feedback of ``lessons`` (default: every lesson ``graded`` holds)."""
    graded, course, exchange = Path(graded), Path(course), Path(exchange)
    if not (graded / "feedback").is_dir():
        raise CourseError(f"{graded} has no feedback/ folder: pass the --out folder of `course grade`")
    if not (course / "submitted").is_dir():
        raise CourseError(f"{course} has no submitted/ folder: pass the course folder the lessons were "
                          "collected into (nbgrader's `collect` writes submitted/)")
    if not (exchange / course_id).is_dir():
        raise CourseError(f"{exchange} holds no course {course_id!r}: pass nbgrader's exchange folder "
                          "(Exchange.root) the lessons were released into")
    found = sorted({p.name for p in (graded / "feedback").glob("*/*") if p.is_dir()})
    chosen = found if not lessons else [l for l in found if l in lessons or l.split("-", 1)[0] in lessons]
    if not chosen:
        raise CourseError(f"no feedback to release in {graded / 'feedback'}" +
                          (f" for {', '.join(lessons)}" if lessons else ""))
    results = []
    for lesson in chosen:
        staged = stage_feedback(graded, course, lesson)
        if staged.released:
            release_to_exchange(course, exchange, lesson, course_id)
            missing = set(staged.released) - set(released_students(course, exchange, lesson, course_id))
            if missing:
                raise CourseError(f"{lesson}: nbgrader did not release the feedback of {', '.join(sorted(missing))}")
        results.append(staged)
    return results
