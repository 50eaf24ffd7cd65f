"""``sys.stdout`` and ``sys.stderr`` as a judge kernel's cells see them: writes, and no way back.

ipykernel's ``OutStream`` knows its session, whose parent is the kernel
application, whose traits hold the shell. Any library object that keeps
``sys.stderr`` (``threading.Thread.__init__`` stores it in ``_stderr``) would
hand that chain to whoever can read the object. A :func:`cover` stream
forwards what is written, but its only state is a closure: no attribute of
it, public or private, leads to the stream behind it.
"""

from __future__ import annotations

import io

__all__ = ["cover"]


def cover(stream, name: str):
    """A write-only stand-in for ``stream`` (``name`` is ``"<stdout>"`` or ``"<stderr>"``)."""
    write, flush = stream.write, stream.flush

    class CoveredStream:
        """Text written here reaches the notebook; nothing else does."""

        __slots__ = ()
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
