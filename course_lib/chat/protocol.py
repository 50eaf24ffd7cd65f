"""The chat protocol's framing: lines to bytes and back, limits, errors (see the package docstring)."""

from __future__ import annotations

import select
import socket
import time
from collections import deque



MAX_LINE_BYTES = 1024
"""Longest line (in bytes, without its newline) the server accepts."""

MAX_NICKNAME_CHARS = 32
QUIT_WORDS = ("/quit", "bye")


class ChatError(Exception):
    """Something went wrong in a chat conversation."""


class ChatTimeout(ChatError, TimeoutError):
    """A chat operation did not finish within its ``timeout``."""


class ChatClosed(ChatError, ConnectionError):
    """The connection is closed; nothing more can be sent or received."""


class NotUTF8(ChatError, ValueError):
    """A line's bytes are not valid UTF-8."""


class _TooLong:
    """The marker :class:`LineSplitter` yields in place of an over-long line."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TOO_LONG"


TOO_LONG = _TooLong()




# --- framing -------------------------------------------------------------------


def encode_line(text: str, max_line_bytes: int = MAX_LINE_BYTES) -> bytes:
    """``text`` as one protocol line: UTF-8 bytes ending in ``\\n``.

    Raises ``ValueError`` if ``text`` holds a newline (it would become two
    lines) or is longer than ``max_line_bytes`` once encoded — better to fail
    here than to have the server answer ``! line too long``.
    """
    if not isinstance(text, str):
        raise TypeError(f"a chat line is a str, not {type(text).__name__}")
    if "\n" in text or "\r" in text:
        raise ValueError("a chat line cannot contain a newline: send two lines instead")
    data = text.encode("utf-8")
    if len(data) > max_line_bytes:
        raise ValueError(f"line is {len(data)} bytes long; the limit is {max_line_bytes}")
    return data + b"\n"


def decode_line(raw: bytes) -> str:
    """The text of one received line (without its newline); :class:`NotUTF8` if it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUTF8(f"line is not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None


def is_quit(text: str) -> bool:
    """Does this line end the session (``/quit`` or the syllabus's ``bye``)?"""
    return text.strip().lower() in QUIT_WORDS


class LineSplitter:
    """Turn a stream of byte chunks into lines, whatever sizes the chunks come in.

    ``recv`` returns whatever bytes have arrived: half a line, or three lines
    glued together. ``feed(chunk)`` keeps the unfinished tail for the next
    call and returns the complete lines (``bytes`` without ``\\n`` or
    ``\\r\\n``). A line longer than ``max_line_bytes`` comes out once as
    :data:`TOO_LONG`, and its bytes are dropped up to the next newline, so
    memory stays bounded however long a peer talks without a newline.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES):
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()
        self._discarding = False  # inside an over-long line already reported

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished line (dropped if the connection ends now)."""
        return bytes(self._pending)

    def feed(self, data: bytes) -> list:
        lines: list = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                self._keep(data[start:], lines)
                return lines
            piece = data[start:newline]
            start = newline + 1
            if self._discarding:
                self._discarding = False
                continue
            line = bytes(self._pending) + piece
            self._pending.clear()
            if line.endswith(b"\r"):
                line = line[:-1]
            lines.append(TOO_LONG if len(line) > self.max_line_bytes else line)

    def _keep(self, tail: bytes, lines: list) -> None:
        if self._discarding or not tail:
            return
        self._pending += tail
        # One extra byte is allowed: it may be the \r of a \r\n.
        if len(self._pending) > self.max_line_bytes + 1:
            self._pending.clear()
            self._discarding = True
            lines.append(TOO_LONG)


class LineReader:
    """Read protocol lines from a socket, one at a time, bounded in time.

    ``read_line(timeout)`` returns the next line as ``bytes``, :data:`TOO_LONG`,
    or ``None`` once the peer has closed (a half line left at that moment is
    kept in :attr:`partial_at_close`). It raises :class:`ChatTimeout` when no
    complete line arrives in time; what arrived so far is kept for the next
    call. Only one thread may read from a given reader.
    """

    def __init__(self, sock: socket.socket, max_line_bytes: int = MAX_LINE_BYTES,
                 chunk_size: int = 4096):
        self.sock = sock
        self.chunk_size = chunk_size
        self._splitter = LineSplitter(max_line_bytes)
        self._ready: deque = deque()
        self.closed = False
        self.partial_at_close = b""

    def read_line(self, timeout: float | None = None):
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            if self.closed:
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ChatTimeout(f"no complete line within {timeout:g} s")
            try:
                # poll, not settimeout: another thread may be sending on this
                # socket, and its timeout must not change under that thread.
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                if not poller.poll(None if remaining is None else max(1, int(remaining * 1000))):
                    continue
                chunk = self.sock.recv(self.chunk_size)
            except (socket.timeout, BlockingIOError, InterruptedError):
                continue
            except (ConnectionResetError, ConnectionAbortedError, OSError, ValueError):
                chunk = b""  # reset or closed under us: the same as the peer leaving
            if not chunk:
                self.closed = True
                self.partial_at_close = self._splitter.pending
                return None
            self._ready.extend(self._splitter.feed(chunk))
        return self._ready.popleft()




# --- sockets, quietly ------------------------------------------------------------


def send_now(conn: socket.socket, text: str) -> bool:
    try:
        conn.sendall(text.encode("utf-8") + b"\n")
        return True
    except OSError:
        return False


def shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
