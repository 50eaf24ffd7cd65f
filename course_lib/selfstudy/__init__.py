"""A learner working alone: the exercises of a lesson, their staged hints, and a progress file.

    exercises   a lesson's exercises read from its source notebook: tests, hints, walkthroughs
    progress    the learner's progress file (checks, hints seen), rebuilt when missing or corrupt
    hints       the next hint of an exercise, recorded as seen
    workfiles   files in the work folder written so that a planted link cannot redirect them
    released    the same material as released to a class (a lesson's hints file), where no source is

The CLI (``course hint``, ``course progress``, ``course solutions``) and the
hint panel of the notebooks (:mod:`course_lib.widgets.hints`) share these,
so a hint seen in JupyterLab counts in the terminal too.
"""

from importlib import import_module

__all__ = ["exercises", "progress", "hints", "workfiles", "released"]


def __getattr__(name):
    if name in __all__:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
