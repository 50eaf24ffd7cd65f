"""What the lessons import: one module a concern, each imported on first use.

    grading     checks for test cells that explain failures and never hang
    servers     TCP servers in the background of the kernel (day/time, echo, chat)
    chat        the chat protocol, a chat room server, a client and a partner bot
    timeline    record what threads do and draw it as a Gantt chart
    interleave  run threads under a controlled scheduler: replay, explore, deadlocks
    processes   worker functions that child processes can import
    widgets     ipywidgets demos and panels

``from course_lib import servers`` works as usual; importing ``course_lib``
itself loads nothing heavy (no matplotlib, no ipywidgets). Imported in a
learner's notebook kernel, it makes an exercise not attempted yet show as
one line instead of a traceback (:mod:`course_lib.untouched`).
"""

import sys
from importlib import import_module

__all__ = ["grading", "servers", "chat", "timeline", "interleave", "processes", "widgets"]


def __getattr__(name):
    if name in __all__:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "IPython" in sys.modules:  # a notebook kernel (or IPython): untouched exercises in one line
    try:
        import_module(f"{__name__}.untouched").install()
    except Exception:  # noqa: BLE001 - never let a display nicety break an import
        pass
