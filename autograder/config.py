"""The course's nbgrader settings, in one place.

Every nbgrader run of the course (release, grading workers, the formgrader
in ``make lab``) is configured from :func:`nbgrader_config`, so limits and
preprocessors cannot differ between steps. ``write_config_file`` writes the
same settings as an ordinary ``nbgrader_config.py`` for instructors who run
nbgrader's own commands in a course directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

__all__ = ["COURSE_ID", "Limits", "nbgrader_config", "write_config_file"]

COURSE_ID = "threads-sockets"


@dataclass(frozen=True)
class Limits:
    """Time, memory and output bounds for one graded notebook.

    cell_timeout: a cell still running after this many seconds is
        interrupted (and its kernel replaced if the interrupt is ignored).
    notebook_timeout: after this many seconds no further cell is started;
        the rest are marked "not run" and earn nothing.
    memory_mb: address space of each kernel process; in the sandbox also
        the memory cgroup of everything a submission starts, plus its tmpfs sizes.
    worker_memory_mb: address space of a sandboxed grading worker (without
        the sandbox the worker's limit is memory_mb, which its kernels inherit).
    tmp_mb ... thread_stack_kb: the sandbox's folders, tasks and files; the
        one place their defaults are set (the kernel manager, ``configure``
        and ``bwrap_command`` read them from here).
    """

    cell_timeout: int = 20
    notebook_timeout: int = 240
    memory_mb: int = 2048         # each kernel process; sandboxed, also the whole sandbox's memory cgroup
    worker_memory_mb: int = 4096  # the grading worker itself (sandboxed kernels have their own limits)
    max_notebook_mb: int = 20     # a submitted notebook larger than this is refused unread
    max_output_lines: int = 1000
    max_output_chars: int = 100_000
    # The sandbox's own bounds (autograder.sandbox reads its defaults from here):
    tmp_mb: int = 256             # the private /tmp tmpfs
    shm_mb: int = 64              # the private /dev/shm tmpfs
    work_mb: int = 64             # the writable working folder (a tmpfs)
    max_tasks: int = 1024         # threads + processes the sandbox may hold
    file_mb: int = 256            # the largest file a kernel may write
    thread_stack_kb: int = 2048   # each thread's stack (RLIMIT_STACK)
    full_feedback: bool = False   # students see hidden checks' own messages (course grade --feedback full)


def nbgrader_config(course_root: Path, limits: Limits = Limits()) -> Config:
    """nbgrader settings for a course directory at ``course_root``."""
    c = Config()
    c.CourseDirectory.root = str(course_root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{course_root / 'gradebook.db'}"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
    # Grading: our Execute keeps going after a dead or stuck kernel.
    c.Execute.timeout = limits.cell_timeout
    c.Execute.startup_timeout = 60
    c.Execute.iopub_timeout = 4
    c.ExecutePreprocessor.shutdown_kernel = "immediate"
    c.Execute.shutdown_kernel = "immediate"
    c.Autograde.autograde_preprocessors = [
        "autograder.execute.BoundedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    c.BoundedExecute.notebook_timeout = limits.notebook_timeout
    c.VerdictFeedback.full = limits.full_feedback
    c.BoundedExecute.max_output_chars = limits.max_output_chars
    c.LimitOutput.max_lines = limits.max_output_lines
    # Feedback: hidden tests show their name and message, never their code. nbconvert's HTMLExporter
    # without its BeautifulSoup pass over its own page (autograder.exporter: a third of feedback's time).
    c.GenerateFeedback.exporter_class = "autograder.exporter.FeedbackExporter"
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        "autograder.preprocessors.VerdictFeedback",
    ]
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return c


def write_config_file(course_root: Path, limits: Limits = Limits()) -> Path:
    """Write the settings as ``course_root/nbgrader_config.py`` (for nbgrader's CLI)."""
    lines = ["# Written by `course`; see autograder/config.py.", "c = get_config()  # noqa"]
    for section, values in nbgrader_config(course_root, limits).items():
        for key, value in values.items():
            lines.append(f"c.{section}.{key} = {value!r}")
    path = course_root / "nbgrader_config.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
