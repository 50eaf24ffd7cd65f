"""Turn a learning platform's ZIP download into nbgrader's ``submitted/`` layout.

An instructor downloads one ZIP per lesson (Canvas, Moodle, ...) whose files
are named by student. ``collect_zip`` hands it to nbgrader's own ZIP
collection (``nbgrader.apps.zipcollectapp.ZipCollectApp`` with a
``FileNameCollectorPlugin``) in a throw-away course directory, then moves the
result into ``SUBMITTED/<student_id>/<lesson>/<lesson>.ipynb``, where
``course grade SUBMITTED`` finds it.

The pattern (``--pattern``) is nbgrader's ``named_regexp``: a Python regular
expression with a ``(?P<student_id>...)`` group, matched with ``re.match``
(anchored at the start) against each file's path *inside the ZIP*, with ``/``
between folders. Groups ``file_id`` and ``timestamp`` are optional. The
default, :data:`DEFAULT_PATTERN`, reads Canvas-style names in any folder:

    alice_12345_01-processes-and-threads.ipynb          -> alice
    smithjane_LATE_12345_67890_lesson1-1.ipynb           -> smithjane
    class/bob_777_whatever.ipynb                         -> bob

For Moodle's folder per student ("Jane Smith_4242_assignsubmission_file_/
01-processes-and-threads.ipynb") use :data:`MOODLE_PATTERN` (or the name
``moodle``), which takes the participant number as the student id (names are
neither unique nor plain folder names).

Rules, and what they trade off:

- The ZIP is never written: nbgrader works on a copy.
- A notebook is saved under the lesson's own file name whatever the student
  called it (a lesson has one notebook); in a lesson with several notebooks
  ``file_id`` must name one of them.
- Nothing is dropped silently: files not collected are in ``unmatched``
  (no match, not a notebook, unsafe student id or path), older duplicates
  in ``superseded``, each with its reason in ``why``.
- Two notebooks from one student: the newer wins, by the time the ZIP
  records for each file (nbgrader's rule for duplicates; the pattern's
  ``timestamp`` group overrides it); on equal times, the later path in sort
  order wins. The time is written to ``timestamp.txt`` as nbgrader does
  (ZIP times carry no time zone; nbgrader reads them as UTC).
- Canvas names a late hand-in ``..._LATE_...``: the mark is kept as
  :data:`LATE_MARKER` beside the notebook, so ``course grade --due`` counts
  it late even when the ZIP's time does not say so.
- Archives inside the ZIP are not opened (listed as "not a notebook"): one
  broken or huge inner archive cannot stop the collection of the class.
- Entries are data (:mod:`autograder.unzip`): no mode bits are kept (files
  0644, folders 0755), links and special entries are listed, not extracted.
  An entry that unpacks to more than ``max_ratio`` times its size (a bomb)
  is skipped and listed by its name in the instructor's ZIP, the rest is
  collected; a ZIP over its total bounds (size, entries) is refused whole,
  nothing written. Of two entries with one path, the newer one is used and
  the other listed.
- A student whose ``<lesson>/`` folder already exists makes the whole call
  fail before anything is written, unless ``force`` replaces those folders.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Dict, List, Unicode

from . import lessons as lessons_mod
from .lessons import CourseError

__all__ = [
    "DEFAULT_PATTERN", "MOODLE_PATTERN", "PATTERNS", "SAFE_STUDENT_ID", "MAX_UNZIPPED_BYTES", "MAX_RATIO",
    "LATE_MARKER", "CollectResult", "LessonCollector", "SafeExtractor", "collect_zip"
]

DEFAULT_PATTERN = (
    r"(?:.*/)?"                                   # any folders inside the ZIP
    r"(?P<student_id>[A-Za-z0-9][A-Za-z0-9.-]*)"  # the student's name or login
    r"_(?P<late>LATE_)?\d+_(?:\d+_)?"             # Canvas's late mark, user id, submission id
    r"(?P<file_id>[^/]+)"                         # the file name the student uploaded
)
MOODLE_PATTERN = r"(?:.*/)?[^/]*_(?P<student_id>\d+)_assignsubmission_file_/(?P<file_id>[^/]+)"
PATTERNS = {"canvas": DEFAULT_PATTERN, "moodle": MOODLE_PATTERN}  # names --pattern accepts
SAFE_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MAX_UNZIPPED_BYTES = 2 * 1024**3  # a class of notebooks is far smaller; a ZIP bomb is not
MAX_RATIO = 200.0  # an entry unpacking to more than this many times its size is skipped (--max-ratio)
LATE_MARKER = "LATE.txt"  # beside a notebook the platform marked late (read by course grade --due)


@dataclass
class CollectResult:
    """What ``collect_zip`` did with each file of the ZIP."""

    lesson: str
    zip_name: str = ""  # the instructor's ZIP, as given: where each listed entry is
    collected: list[tuple[str, Path]] = field(default_factory=list)  # (student_id, notebook written)
    late: list[str] = field(default_factory=list)                    # students the platform marked late
    unmatched: list[str] = field(default_factory=list)               # paths in the ZIP not collected
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (student_id, older duplicate)
    why: dict[str, str] = field(default_factory=dict)                # path in the ZIP -> why not used

    def summary(self) -> str:
        """What happened, for the terminal: names from the ZIP escaped (no control characters)."""
        from .discover import shown_name

        lines = [f"{self.lesson}: collected {len(self.collected)} submission(s)"
                 + (f", {len(self.late)} marked late by the platform" if self.late else "")]
        if self.superseded:
            lines.append(f"{len(self.superseded)} older duplicate(s) not used:")
            lines += [f"  {shown_name(student)}: {shown_name(name)}" for student, name in self.superseded]
        if self.unmatched:
            where = f" of {shown_name(self.zip_name)}" if self.zip_name else ""
            lines.append(f"{len(self.unmatched)} file(s){where} not collected:")
            lines += [f"  {shown_name(name)}: {shown_name(self.why.get(name, 'no match'))}"
                      for name in self.unmatched]
        return "\n".join(lines)


class LessonCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector, applied to paths inside the ZIP.

    It records why each file was skipped (nbgrader only logs it), refuses
    student ids that are not plain folder names, saves the notebook under the
    lesson's name, and supplies the ZIP's time of each file for duplicates.
    """

    extracted_root = Unicode(help="folder the ZIP was extracted into").tag(config=True)
    lesson_notebooks = List(Unicode(), help="file names of the lesson's notebooks").tag(config=True)
    zip_times = Dict(help="path in the ZIP -> datetime recorded for it").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.skipped: dict[str, str] = {}     # path in the ZIP -> why
        self.matched: dict[str, str] = {}     # path in the ZIP -> student_id
        self.late: set[str] = set()           # paths in the ZIP the platform marked late

    def collect(self, submitted_file: str):
        name = Path(os.path.relpath(submitted_file, self.extracted_root)).as_posix()
        if os.path.splitext(name)[1] not in self.valid_ext:
            self.skipped[name] = "not a notebook"
            return None
        info = self._match(name)
        if not info or not info.get("student_id"):
            self.skipped[name] = "no match for the file-name pattern"
            return None
        student = info["student_id"]
        if not SAFE_STUDENT_ID.match(student):
            self.skipped[name] = f"student id {student!r} is not a plain folder name"
            return None
        uploaded = os.path.basename(info.get("file_id") or name)
        if len(self.lesson_notebooks) == 1:
            info["file_id"] = self.lesson_notebooks[0]
        elif uploaded in self.lesson_notebooks:
            info["file_id"] = uploaded
        else:
            self.skipped[name] = f"{uploaded} is none of {', '.join(self.lesson_notebooks)}"
            return None
        if not info.get("timestamp"):
            info["timestamp"] = self.zip_times.get(name)
        if info.pop("late", None):
            self.late.add(name)
        self.matched[name] = student
        return info


class SafeExtractor(ExtractorPlugin):
    """Extraction for nbgrader's ZIP collection that treats entries as data (:mod:`autograder.unzip`).

    No mode bits, links or special files from the archive, bounded sizes, and
    archives found inside the ZIP are not opened. ``skipped`` collects why
    entries were left out, for the caller's list.
    """

    bounds = Dict(help="autograder.unzip.Bounds fields").tag(config=True)
    shown_zip = Unicode(help="the instructor's ZIP, as messages name it").tag(config=True)

    def extract(self, archive_path: str, extracted_path: str) -> None:
        from .unzip import Bounds, Refused, safe_extract

        os.makedirs(extracted_path, exist_ok=True)
        self.skipped: dict[str, str] = {}
        for zfile in sorted(os.listdir(archive_path)):
            try:
                done = safe_extract(Path(archive_path, zfile), Path(extracted_path, Path(zfile).stem),
                                    Bounds(**self.bounds))
            except Refused as refused:
                raise CourseError(f"{self.shown_zip or zfile}: {refused}; nothing was collected")
            self.skipped.update(done.skipped)


def collect_zip(zip_path: Path, submitted: Path, *, lesson: str, pattern: str = DEFAULT_PATTERN,
                force: bool = False, notebooks: Path = lessons_mod.NOTEBOOKS,
                max_ratio: float = MAX_RATIO) -> CollectResult:
    """Collect ``zip_path`` into ``submitted/<student_id>/<lesson>/``; return what went where.

    ``lesson`` is a lesson id or number ('01'); ``pattern`` a regular
    expression or a name in :data:`PATTERNS` ('canvas', 'moodle'); ``max_ratio`` the compression
    ratio above which an entry is skipped as a bomb. Raises CourseError for a
    missing or broken ZIP, a pattern without ``student_id``, or folders that
    already exist (without ``force``); nothing is written in those cases.
    """
    given = Path(zip_path).name
    zip_path, submitted = Path(zip_path).resolve(), Path(submitted).resolve()
    lesson = lessons_mod.resolve([lesson], notebooks)[0]
    expected = [p.name for p in lessons_mod.source_notebooks(lesson, notebooks)]
    pattern = PATTERNS.get(pattern, pattern)
    _check_pattern(pattern)
    members, times = _read_zip(zip_path)
    # The newer of two entries with one path is the one extracted: its time is the one that counts.

    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        staged, collector = _run_nbgrader(Path(tmp), zip_path, lesson, pattern, expected, times, max_ratio)
        result = CollectResult(lesson=lesson, zip_name=given)
        for name in members:
            if name in collector.matched:
                continue
            if name in collector.skipped:
                result.why[name] = collector.skipped[name]
            elif not Path(collector.extracted_root, *name.split("/")).is_file():
                result.why[name] = "unsafe path in the ZIP (not extracted)"
            else:
                result.why[name] = "skipped by nbgrader"
            result.unmatched.append(name)
        for name, why in collector.skipped.items():  # older duplicates of one path in the ZIP
            if name not in members and name not in result.why:
                result.why[name] = why
                result.unmatched.append(name)
        result.superseded = _superseded(staged, collector, lesson)
        for student, name in result.superseded:
            result.why[name] = f"an older submission by {student}"
        older = {name for _, name in result.superseded}
        result.late = sorted({student for name, student in collector.matched.items()
                              if name in collector.late and name not in older})
        for student in result.late:  # written into the staged folder, so it moves with the notebook
            (staged / student / lesson / LATE_MARKER).write_text(
                "The learning platform marked this hand-in LATE.\n", encoding="utf-8")
        result.collected = _move_into(staged, submitted, lesson, force)
    return result


def _check_pattern(pattern: str) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise CourseError(f"the file-name pattern is not a regular expression: {exc}")
    if "student_id" not in compiled.groupindex:
        raise CourseError("the file-name pattern needs a (?P<student_id>...) group")


def _read_zip(zip_path: Path) -> tuple[list[str], dict[str, datetime]]:
    """The ZIP's file names and recorded times, after checking it is a sane ZIP."""
    if not zip_path.is_file():
        raise CourseError(f"no such file: {zip_path}")
    if not zipfile.is_zipfile(zip_path):
        raise CourseError(f"{zip_path} is not a ZIP file")
    with zipfile.ZipFile(zip_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise CourseError(f"{zip_path} would unpack to {total / 1024**3:.1f} GB; refusing "
                          f"(limit {MAX_UNZIPPED_BYTES / 1024**3:.0f} GB)")
    names = sorted({i.filename for i in infos})
    times: dict[str, datetime] = {}
    for i in infos:
        times[i.filename] = max(times.get(i.filename, datetime(*i.date_time)), datetime(*i.date_time))
    return names, times


def _run_nbgrader(root: Path, zip_path: Path, lesson: str, pattern: str, expected: list[str],
                  times: dict[str, datetime], max_ratio: float = MAX_RATIO) -> tuple[Path, LessonCollector]:
    """Run ZipCollectApp in a throw-away course dir; return its submitted/ folder."""
    from nbgrader.apps.zipcollectapp import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    archive = root / "downloaded" / lesson / "archive"
    archive.mkdir(parents=True)
    # A copy, so nothing nbgrader does can touch the instructor's download.
    shutil.copyfile(zip_path, archive / "download.zip")
    release = root / "release" / lesson
    release.mkdir(parents=True)
    for name in expected:  # ZipCollectApp checks notebook names against the release
        (release / name).write_text("{}", encoding="utf-8")

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.assignment_id = lesson
    config.ZipCollectApp.strict = True
    config.ZipCollectApp.extractor_plugin = SafeExtractor
    config.SafeExtractor.bounds = {"total_bytes": MAX_UNZIPPED_BYTES, "ratio": float(max_ratio)}
    config.SafeExtractor.shown_zip = zip_path.name
    config.ZipCollectApp.collector_plugin = LessonCollector
    config.ExtractorPlugin.zip_ext = [".zip"]
    config.FileNameCollectorPlugin.named_regexp = pattern
    config.LessonCollector.extracted_root = str(root / "downloaded" / lesson / "extracted" / "download")
    config.LessonCollector.lesson_notebooks = expected
    config.LessonCollector.zip_times = times

    log, buffer = _private_log()
    app = ZipCollectApp(config=config, log=log)
    # Not app.initialize(): it would read nbgrader_config.py from the working
    # folder and the user's config paths, which could point the collection elsewhere.
    app.coursedir = CourseDirectory(parent=app)
    try:
        app.start()
    except SystemExit:  # ZipCollectApp.fail() logs an error and exits
        errors = [l for l in buffer.getvalue().splitlines() if l.startswith("ERROR")]
        raise CourseError("nbgrader could not collect the ZIP: "
                          + (errors[-1][6:] if errors else buffer.getvalue()[-300:]))
    except OSError as exc:  # e.g. a member nbgrader cannot read back
        raise CourseError(f"nbgrader could not collect the ZIP: {exc}")
    app.collector_plugin_inst.skipped.update(getattr(app.extractor_plugin_inst, "skipped", {}))
    return root / "submitted", app.collector_plugin_inst


def _private_log() -> tuple[logging.Logger, io.StringIO]:
    """A logger for nbgrader's messages that keeps them out of the terminal."""
    buffer = io.StringIO()
    log = logging.getLogger(f"autograder.collect.{id(buffer)}")
    log.handlers[:] = [logging.StreamHandler(buffer)]
    log.handlers[0].setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.setLevel(logging.INFO)
    log.propagate = False
    return log, buffer


def _superseded(staged: Path, collector: LessonCollector, lesson: str) -> list[tuple[str, str]]:
    """Matched notebooks nbgrader did not keep (older duplicates), found by content."""
    by_student: dict[str, list[str]] = {}
    for name, student in sorted(collector.matched.items()):
        by_student.setdefault(student, []).append(name)
    older = []
    for student, names in sorted(by_student.items()):
        if len(names) < 2:
            continue
        kept = {p.read_bytes() for p in (staged / student / lesson).glob("*.ipynb")}
        winners = [n for n in names if Path(collector.extracted_root, *n.split("/")).read_bytes() in kept]
        keep = set(winners[-1:])  # identical copies: report the last one as used
        older += [(student, n) for n in names if n not in keep]
    return older


def _plain_modes(folder: Path) -> None:
    """Files 0644, folders 0755: nothing collected is executable, setuid or setgid."""
    os.chmod(folder, 0o755)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def _move_into(staged: Path, submitted: Path, lesson: str, force: bool) -> list[tuple[str, Path]]:
    """Move staged ``<student>/<lesson>/`` folders into ``submitted``; all or nothing on conflicts."""
    students = sorted(p.name for p in staged.iterdir() if p.is_dir()) if staged.is_dir() else []
    blocked = [s for s in students if (submitted / s).exists() and not (submitted / s).is_dir()]
    if blocked:
        raise CourseError(f"not a folder: {', '.join(str(submitted / s) for s in blocked)}")
    taken = [s for s in students if (submitted / s / lesson).exists()]
    if taken and not force:
        raise CourseError(f"already collected for {lesson}: {', '.join(taken)} "
                          f"(in {submitted}; use --force to replace them)")
    collected = []
    for student in students:
        dest = submitted / student / lesson
        dest.parent.mkdir(parents=True, exist_ok=True)
        incoming = dest.parent / f".collect-{lesson}"
        if incoming.exists():
            shutil.rmtree(incoming)
        shutil.copytree(staged / student / lesson, incoming)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(incoming, dest)
        _plain_modes(dest)
        collected += [(student, nb) for nb in sorted(dest.glob("*.ipynb"))]
    return collected
