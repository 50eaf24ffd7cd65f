"""``sys.stdout`` and ``sys.stderr`` as a judge kernel's cells see them: writes, and no way back.

ipykernel's ``OutStream`` knows its session, whose parent is the kernel
application, whose traits hold the shell. Any library object that keeps
``sys.stderr`` (``threading.Thread.__init__`` stores it in ``_stderr``) would
hand that chain to whoever can read the object. A :func:`cover` stream
forwards what is written, but its only state is a closure: no attribute of
it, public or private, leads to the stream behind it (IPython's own
``write`` wrapper, set on it while a cell runs, is a function whose only
ways out are dunders).
"""

from __future__ import annotations

import io

__all__ = ["cover"]


def cover(stream, name: str):
    """A write-only stand-in for ``stream`` (``name`` is ``"<stdout>"`` or ``"<stderr>"``)."""
    write, flush = stream.write, stream.flush
    # ipykernel tells its streams which request their output belongs to (per cell, per thread).
    set_parent = getattr(stream, "set_parent", lambda parent: None)
    set_thread_parent = getattr(stream, "set_thread_parent", lambda parent: None)
    reset_thread_parent = getattr(stream, "reset_thread_parent", lambda token: None)

    class CoveredStream:
        """Text written here reaches the notebook; nothing else does."""

        # No __slots__: IPython sets write on the stream for the length of each cell (it records
        # output history), so instances keep a __dict__, which holds nothing else.
        encoding = "utf-8"
        errors = "strict"
        closed = False

        def write(self, text):
            return write(text)

        def writelines(self, lines):
            for line in lines:
                write(line)

        def flush(self):
            flush()

        def set_parent(self, parent):
            set_parent(parent)

        def set_thread_parent(self, parent):
            return set_thread_parent(parent)

        def reset_thread_parent(self, token):
            reset_thread_parent(token)

        def isatty(self):
            return False

        def writable(self):
            return True

        def readable(self):
            return False

        def fileno(self):
            raise io.UnsupportedOperation("a grading kernel's output has no file descriptor")

        def __repr__(self):
            return f"<{name}>"

    CoveredStream.name = name
    return CoveredStream()
