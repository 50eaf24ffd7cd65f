"""Make the student version of the lessons with nbgrader's generate_assignment.

A course directory is laid out as nbgrader expects (``source/<lesson>/``);
nbgrader replaces solutions with ``raise NotImplementedError()`` stubs and
removes hidden tests, and records every graded cell in ``gradebook.db`` —
the grading workers copy that gradebook, so release and grading always agree
on what each cell is worth.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from . import lessons as lessons_mod
from .config import nbgrader_config
from .lessons import CourseError

__all__ = ["MARKERS", "COPY_IGNORE", "HIDDEN_CHECKS_FILE", "alembic_on_path", "build_course", "strip_self_study",
           "write_hidden_checks", "template_key", "cached_course", "hint_lessons", "check_release", "release"]

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
COPY_IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
# The lesson's tests, hidden ones included, for `course check --hidden` where the instructor turned it on.
HIDDEN_CHECKS_FILE = "hidden-checks.json"
SOLUTION_STUB = "raise NotImplementedError('this solution cell is missing from your notebook')"


def build_course(course_root: Path, lesson_ids: list[str], notebooks: Path = lessons_mod.NOTEBOOKS, *,
                 db_url: str | None = None, hints: bool | Iterable[str] = True,
                 hidden_checks: Iterable[str] = ()) -> Path:
    """Create ``course_root`` with source/, release/ and the gradebook for the lessons.

    The one release path: ``course release``, the grading template and the
    class hub all call it. ``db_url`` is the gradebook (default
    ``course_root/gradebook.db``; the hub gives its PostgreSQL). ``hints``:
    the lessons whose hints go into ``release/<lesson>/hints.json`` (True:
    all, False: none); the file is written for every lesson, so the
    exercises are known where the source is not. ``hidden_checks``: the
    lessons that also get ``release/<lesson>/hidden-checks.json``
    (:func:`write_hidden_checks`), so `course check --hidden` runs without
    the source: the instructor's choice, since it hands students the
    hidden tests.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from course_lib.selfstudy.released import write_hints

    alembic_on_path()
    course_root.mkdir(parents=True, exist_ok=True)
    for lesson in lesson_ids:
        target = course_root / "source" / lesson
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(notebooks / lesson, target, ignore=COPY_IGNORE)
        strip_self_study(target)
    config = nbgrader_config(course_root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    for lesson in lesson_ids:
        result = api.generate_assignment(lesson, force=True)
        if not result["success"]:
            details = [l for l in (result.get("log") or "").splitlines() if "ERROR" in l]
            raise CourseError(f"nbgrader could not generate {lesson}: " + " | ".join(details[-3:]))
        on = hints if isinstance(hints, bool) else lesson in set(hints)
        write_hints(course_root / "release" / lesson, lesson, hints=on, notebooks=notebooks)
        if lesson in set(hidden_checks):
            write_hidden_checks(course_root, lesson)
    return course_root


def write_hidden_checks(course_root: Path, lesson: str) -> Path:
    """``release/<lesson>/hidden-checks.json``: the lesson's notebook as `course check --hidden` needs it.

    Made from ``source/<lesson>/`` after :func:`strip_self_study` (no hint,
    no walkthrough): every solution cell replaced by a stub, the tests kept
    with their hidden parts. Not a ``.ipynb``: nobody opens it as a lesson,
    and :func:`check_release` still refuses hidden tests in a notebook.
    """
    import nbformat

    source = sorted((course_root / "source" / lesson).glob("*.ipynb"))[0]
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = SOLUTION_STUB if cell.cell_type == "code" else ""
        if "BEGIN SOLUTION" in cell.source:
            raise CourseError(f"{source}: a solution block outside a solution cell; hidden checks not released")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    target = course_root / "release" / lesson / HIDDEN_CHECKS_FILE
    target.write_text(nbformat.writes(nb), encoding="utf-8")
    target.chmod(0o644)
    return target


def strip_self_study(lesson_dir: Path) -> None:
    """Remove the hint and walkthrough cells: they reach a learner only when asked for."""
    import nbformat

    from course_lib.selfstudy.exercises import is_self_study_cell

    for path in lesson_dir.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        kept = [c for c in nb.cells if not is_self_study_cell(c)]
        if len(kept) != len(nb.cells):
            nb.cells = kept
            nbformat.write(nb, path)


def template_key(lesson_ids: list[str], notebooks: Path = lessons_mod.NOTEBOOKS) -> str:
    """What a built course template depends on: the lessons' files, nbgrader, and this code."""
    import hashlib

    import nbgrader

    digest = hashlib.sha256(f"{nbgrader.__version__}\n{sorted(lesson_ids)}\n".encode())
    from course_lib.selfstudy import exercises, released

    for module in (__file__, Path(__file__).with_name("config.py"), exercises.__file__, released.__file__):
        digest.update(Path(module).read_bytes())
    import os

    for lesson in sorted(lesson_ids):
        folder = notebooks / lesson
        for here, dirs, files in os.walk(folder):  # what build_course copies: COPY_IGNORE left out
            ignored = COPY_IGNORE(here, dirs + files)
            dirs[:] = sorted(d for d in dirs if d not in ignored)
            for name in sorted(f for f in files if f not in ignored):
                path = Path(here) / name
                digest.update(f"{lesson}/{path.relative_to(folder).as_posix()}\n".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def cached_course(lesson_ids: list[str], notebooks: Path = lessons_mod.NOTEBOOKS) -> Path:
    """A built course template for ``lesson_ids``, reused while nothing it depends on changed.

    Building one runs nbgrader's generate_assignment (about 5 s); a re-run, a resumed batch or
    the next class of the same lessons takes it from ``$COURSE_CACHE_DIR`` (default
    ``~/.cache/threads-sockets-course``). Templates are only read: workers copy what they use.
    A template appears whole or not at all (built aside, then renamed into place).
    """
    import os
    import tempfile

    root = Path(os.environ.get("COURSE_CACHE_DIR") or Path.home() / ".cache" / "threads-sockets-course")
    target = root / "templates" / template_key(lesson_ids, notebooks)
    if (target / "gradebook.db").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="building-", dir=target.parent))
    try:
        build_course(building, lesson_ids, notebooks)
        try:
            building.rename(target)
        except OSError:  # another grader built the same template meanwhile: use theirs
            pass
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return target


def hint_lessons(lesson_ids: list[str], no_hints: Iterable[str], notebooks: Path = lessons_mod.NOTEBOOKS
                 ) -> list[str]:
    """The lessons whose hints are released: all but ``no_hints`` (ids, numbers, or ``all``)."""
    off = list(no_hints)
    if "all" in off:
        return []
    dropped = set(lessons_mod.resolve(off, notebooks)) if off else set()
    return [lesson for lesson in lesson_ids if lesson not in dropped]


def alembic_on_path() -> None:
    """nbgrader runs ``alembic`` from PATH when it creates a gradebook."""
    import os
    import sys

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def check_release(lesson_dir: Path) -> None:
    """Refuse to hand out a release that still holds solutions or hidden tests."""
    for nb in lesson_dir.glob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        leaked = [m for m in MARKERS if m in text]
        if leaked:
            raise CourseError(f"{nb} still contains {leaked}: not released")


def release(lessons: list[str] | None = None, *, out: Path, force: bool = False,
            notebooks: Path = lessons_mod.NOTEBOOKS, no_hints: Iterable[str] = (),
            hidden_checks: Iterable[str] = ()) -> list[Path]:
    """Write the student version of ``lessons`` (all by default) into ``out/<lesson>/``.

    A lesson folder that already exists in ``out`` is kept as it is (it may
    hold a student's work) unless ``force`` is true. Each lesson gets its
    hints file (``hints.json``); for the lessons in ``no_hints`` (``"all"``:
    every one) it lists the exercises without their hints. The lessons in
    ``hidden_checks`` (ids or numbers) also get their hidden tests for
    `course check --hidden` (:func:`write_hidden_checks`).
    """
    import tempfile

    lesson_ids = lessons_mod.resolve(lessons, notebooks)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [l for l in lesson_ids if force or not (out / l).exists()]
    written = []
    if todo:
        with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
            checks = lessons_mod.resolve(list(hidden_checks), notebooks) if hidden_checks else []
            course = build_course(Path(tmp), todo, notebooks, hints=hint_lessons(todo, no_hints, notebooks),
                                  hidden_checks=checks)
            for lesson in todo:
                check_release(course / "release" / lesson)
                target = out / lesson
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(course / "release" / lesson, target, ignore=COPY_IGNORE)
                written.append(target)
    return written
