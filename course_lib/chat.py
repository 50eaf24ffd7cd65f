"""Line-based chat: the protocol, its framing, a room server, a client and a partner bot.

What it models: the step from the syllabus's two-way chat (two programs taking
turns, each ``recv(1024)`` taken as one message) to a chat room where anyone
may talk at any time. What it trades off: lines are simple to read with
``nc`` and to type, at the cost of forbidding a newline inside a message (a
length prefix would allow any bytes, but no human can type one); a server
thread per client is easy to follow, at the cost of two threads a client (a
reader, and a writer so that one client that stops reading cannot stall the
room — it is disconnected once its outbox is full).

The protocol (version 1)
------------------------
* A connection carries UTF-8 text lines, each ending in ``\\n`` (a ``\\r``
  before it is ignored, so ``nc -C`` and telnet work too).
* The client's first line is its nickname (1 to 32 characters, no ``:``).
  The server answers ``* welcome NICK`` (a taken nickname gets a suffix:
  ``ann-2``) and tells everyone else ``* NICK joined``.
* Every later line ``TEXT`` from a client goes to every *other* client as
  ``NICK: TEXT`` — in the order that client sent them.
* ``/quit`` or ``bye`` (any case, as in the syllabus) ends the session: the
  server answers ``* bye NICK``, closes the connection and tells the others
  ``* NICK left``. Closing the connection, even in the middle of a line (the
  half line is dropped) or only its sending side (``shutdown(SHUT_WR)``,
  ``nc -N`` at end of input), is the same as quitting: a client that wants
  to keep listening keeps its sending side open (``socat ...,shut-none``).
* A line longer than :data:`MAX_LINE_BYTES` bytes is answered with
  ``! line too long (max N bytes)`` and dropped; a line that is not valid
  UTF-8 with ``! not UTF-8: line ignored``. The connection stays usable.
* A client that reads slowly slows the room down, not out: once
  :data:`OUTBOX_LINES` lines wait for it, a sender's next line waits too
  (the room stops reading that sender). A client that has taken no line at
  all for :data:`STALL_S` seconds while lines wait for it is disconnected;
  the others get ``* NICK left (too slow)``.
* Lines from the server start with ``* `` (a notice), ``! `` (an error about
  your last line) or ``NICK: `` (a message).

Methods for the caller:
    encode_line(text) / decode_line(raw)   one line to bytes and back
    LineSplitter().feed(data)              bytes in, complete lines out
    LineReader(sock).read_line(timeout=)   one line from a socket
    ChatRoomServer().start()               the room (a BackgroundServer)
    ChatClient(address, nickname)          a client with a receive thread
    ChatPartnerBot(replies)                plays either side of the syllabus's
                                           turn-taking chat, or joins a room
    tcp_pair() / wait_for_bytes(sock, n)   the lesson's deterministic demos
"""

from __future__ import annotations

import fcntl
import queue
import select
import socket
import struct
import termios
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from course_lib.servers import BackgroundServer

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_NICKNAME_CHARS",
    "QUIT_WORDS",
    "TOO_LONG",
    "ChatError",
    "ChatTimeout",
    "ChatClosed",
    "NotUTF8",
    "encode_line",
    "decode_line",
    "is_quit",
    "LineSplitter",
    "LineReader",
    "ChatRoomServer",
    "ChatClient",
    "ChatPartnerBot",
    "TurnTakingPartner",
    "RoomReport",
    "probe_room",
    "tcp_pair",
    "bytes_waiting",
    "wait_for_bytes",
]

MAX_LINE_BYTES = 1024
"""Longest line (in bytes, without its newline) the server accepts."""

MAX_NICKNAME_CHARS = 32
QUIT_WORDS = ("/quit", "bye")
OUTBOX_LINES = 1000
STALL_S = 5.0  # a member with a full outbox that takes no line for this long is cut off
"""Lines a client may fall behind before the server disconnects it."""


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


# --- the room server -------------------------------------------------------------


@dataclass
class _Member:
    """One connected client as the room sees it."""

    nickname: str
    conn: socket.socket
    # Lines waiting for this member's writer thread; None tells it to finish. Senders keep it
    # to OUTBOX_LINES (they wait for room); notices and the end marker may go past it.
    outbox: queue.Queue = field(default_factory=queue.Queue)
    writer: threading.Thread | None = None
    too_slow: bool = False  # set when it stalled with a full outbox; it is being cut off
    # Notified by the writer each time it takes a line: a sender waiting for room looks again.
    space: threading.Condition = field(default_factory=threading.Condition)
    progress: float = field(default_factory=time.monotonic)  # when the writer last took a line


class ChatRoomServer(BackgroundServer):
    """A chat room speaking the protocol above: a thread per client, broadcast to the others.

    Methods for the caller (besides :class:`~course_lib.servers.BackgroundServer`'s
    ``start()``, ``address``, ``log`` and ``stop()``):
        members()         the nicknames in the room now
        say(text)         send a ``* text`` notice to everyone

    Methods that may be overridden:
        format_message(nickname, text)   what the others receive for a line

    How it stays responsive: a member's reader thread (the base class's
    ``handle_client``) never sends on a socket itself; it puts lines in each
    other member's *outbox*, and a writer thread per member sends them.
    When a member's outbox holds ``OUTBOX_LINES`` lines, a sender waits for
    room (and so stops reading its own socket: TCP slows the sender down), so
    a reader that keeps reading, however slowly, gets every line. Only a
    member that takes no line for ``STALL_S`` seconds while its outbox is
    full is disconnected (``* NICK left (too slow)``). Order per sender is
    kept: one reader puts a sender's lines in every outbox in order, and one
    writer drains each outbox in order. Notices sent under the members lock
    (joins, leaves) never wait.
    """

    def __init__(self, *args, max_line_bytes: int = MAX_LINE_BYTES, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_line_bytes = max_line_bytes
        # Guards self._members; held to read or change the dict and to queue
        # join/leave notices (put_nowait never blocks), never while sending
        # or waiting, so no client can stall another through it.
        self._members_lock = threading.Lock()
        self._members: dict[str, _Member] = {}

    # -- for the caller

    def members(self) -> list[str]:
        with self._members_lock:
            return sorted(self._members)

    def say(self, text: str) -> None:
        self._broadcast(f"* {text}", exclude=None)

    def format_message(self, nickname: str, text: str) -> str:
        return f"{nickname}: {text}"

    # -- the per-client thread

    def handle_client(self, conn: socket.socket, addr) -> None:
        reader = LineReader(conn, self.max_line_bytes)
        member = None
        try:
            nickname = self._read_nickname(conn, reader)
            if nickname is None:
                return
            member = self._join(nickname, conn)
            self._note(f"{member.nickname} joined from {addr[0]}:{addr[1]}")
            self._chat_loop(member, reader)
        finally:
            if member is not None:
                self._leave(member)
            else:
                _close_quietly(conn)

    def _read_nickname(self, conn, reader) -> str | None:
        while True:
            # A client that never names itself is dropped after client_timeout.
            raw = reader.read_line(timeout=self.client_timeout)
            if raw is None:
                return None
            problem = None
            if raw is TOO_LONG:
                problem = f"nickname too long (max {MAX_NICKNAME_CHARS} characters)"
            else:
                try:
                    nickname = decode_line(raw).strip()
                except NotUTF8:
                    problem = "not UTF-8: line ignored"
                else:
                    if not nickname:
                        problem = "send your nickname first (one line)"
                    elif ":" in nickname or len(nickname) > MAX_NICKNAME_CHARS:
                        problem = f"nickname must be 1-{MAX_NICKNAME_CHARS} characters without ':'"
                    elif is_quit(nickname):
                        _send_now(conn, "* bye")
                        return None
                    else:
                        return nickname
            if not _send_now(conn, f"! {problem}"):
                return None

    def _join(self, wanted: str, conn) -> _Member:
        with self._members_lock:
            nickname, n = wanted, 1
            while nickname in self._members:
                n += 1
                nickname = f"{wanted}-{n}"
            member = _Member(nickname, conn)
            # Welcome and join notice go out under the lock, so a client that
            # joins a moment later never hears "joined" about someone it saw
            # already in the room (put_nowait never blocks).
            member.outbox.put_nowait(f"* welcome {nickname}")
            for other in self._members.values():
                self._deliver(other, f"* {nickname} joined")
            self._members[nickname] = member
        member.writer = threading.Thread(
            target=self._write_loop, args=(member,), name=f"chat-writer:{nickname}", daemon=True)
        member.writer.start()
        return member

    def _chat_loop(self, member: _Member, reader: LineReader) -> None:
        while True:
            raw = reader.read_line(timeout=None)
            if raw is None:
                if reader.partial_at_close:
                    self._note(f"{member.nickname} left in the middle of a line "
                               f"({len(reader.partial_at_close)} bytes dropped)")
                return
            if raw is TOO_LONG:
                self._deliver(member, f"! line too long (max {self.max_line_bytes} bytes)")
                continue
            try:
                text = decode_line(raw)
            except NotUTF8:
                self._deliver(member, "! not UTF-8: line ignored")
                continue
            if is_quit(text):
                self._deliver(member, f"* bye {member.nickname}")
                return
            self._broadcast(self.format_message(member.nickname, text), exclude=member, wait=True)

    def _leave(self, member: _Member) -> None:
        reason = " (too slow)" if member.too_slow else ""
        with self._members_lock:
            present = self._members.get(member.nickname) is member
            if present:
                del self._members[member.nickname]
                for other in self._members.values():
                    self._deliver(other, f"* {member.nickname} left{reason}")
        if present:
            self._note(f"{member.nickname} left{reason}")
        member.outbox.put(None)  # the writer sends what is queued, then closes
        if member.writer is not None and member.writer is not threading.current_thread():
            member.writer.join(timeout=2.0)
            if member.writer.is_alive():  # its peer does not read: cut it off
                _shutdown_quietly(member.conn)
                member.writer.join(timeout=2.0)
        _close_quietly(member.conn)

    # -- sending

    def _broadcast(self, text: str, exclude: _Member | None, wait: bool = False) -> None:
        with self._members_lock:
            targets = [m for m in self._members.values() if m is not exclude]
        for target in targets:
            self._deliver(target, text, wait=wait)

    def _deliver(self, member: _Member, text: str, wait: bool = False) -> None:
        """Queue ``text`` for ``member``; with ``wait``, first wait while its outbox is full,
        and cut it off if it takes no line for ``STALL_S`` seconds."""
        if wait:
            with member.space:
                while member.outbox.qsize() >= OUTBOX_LINES and not member.too_slow:
                    if time.monotonic() - member.progress > STALL_S:
                        member.too_slow = True
                        self._note(f"{member.nickname} is not reading: disconnected")
                        _shutdown_quietly(member.conn)  # its reader sees the close and runs _leave
                        return
                    if self.stop_event.is_set():
                        return
                    member.space.wait(0.1)  # notified when its writer takes a line
            if member.too_slow:
                return
        member.outbox.put(text)

    def _write_loop(self, member: _Member) -> None:
        while True:
            text = member.outbox.get()
            with member.space:
                member.progress = time.monotonic()
                member.space.notify_all()
            if text is None:
                break
            try:
                member.conn.sendall(text.encode("utf-8") + b"\n")
            except OSError:
                _shutdown_quietly(member.conn)  # wakes the reader, which leaves the room
                break

    def _note(self, message: str) -> None:
        self.log.add("chat", message)

    def on_stop(self) -> None:
        """Tell every member the room is closing, and give the writers a moment to send it."""
        with self._members_lock:
            members = list(self._members.values())
        for member in members:
            self._deliver(member, "* the room is closing")
            member.outbox.put(None)
        deadline = time.monotonic() + 0.5
        for member in members:
            if member.writer is not None:
                member.writer.join(max(0.0, deadline - time.monotonic()))


def _send_now(conn: socket.socket, text: str) -> bool:
    try:
        conn.sendall(text.encode("utf-8") + b"\n")
        return True
    except OSError:
        return False


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# --- the client ----------------------------------------------------------------


class ChatClient:
    """A chat client whose receive thread lets you talk and listen at the same time.

    ``ChatClient(address, nickname)`` connects (within ``timeout``), sends the
    nickname and starts a daemon thread that reads lines. Each received line
    (a ``str`` without its newline) is passed to ``on_line`` if given, and
    put in :attr:`lines` (a ``queue.Queue``) otherwise; when the connection
    ends, ``None`` is put there (``on_close`` is called) — a sentinel, as in
    lesson 04. Lines that are not UTF-8 arrive with ``\\ufffd`` in place of
    bad bytes: a client shows what it got rather than hide it.

    ``send(text)`` may be called from any thread (a lock keeps two sends from
    interleaving). ``close()`` sends ``/quit``, waits up to ``timeout`` for the
    server to close, then closes anyway and joins the receive thread; it is
    safe to call twice and works as ``with ChatClient(...) as c:``.

    ``on_line`` runs in the receive thread: keep it short, and do not call
    ``close()`` from it (that would join the thread from itself; it is
    detected and the join is skipped).
    """

    def __init__(self, address, nickname: str, on_line: Callable[[str], None] | None = None,
                 on_close: Callable[[], None] | None = None, timeout: float = 5.0,
                 max_line_bytes: int = 64 * 1024, sock: socket.socket | None = None):
        self.address = tuple(address[:2])
        self.nickname = nickname
        self.timeout = timeout
        self.lines: queue.Queue = queue.Queue()
        self._on_line = on_line
        self._on_close = on_close
        # Serialises sendall from several threads so lines never interleave.
        self._send_lock = threading.Lock()
        # Set by the receive thread when the connection has ended.
        self._ended = threading.Event()
        self._closing = False
        family = socket.AF_INET6 if ":" in str(self.address[0]) else socket.AF_INET
        # ``sock``: a stream already connected to the room (the grader's, through its relay).
        self.sock = sock or socket.socket(family, socket.SOCK_STREAM)
        try:
            # One timeout for the socket's whole life, bounding connect and
            # every send; the receive thread waits with poll, not with it.
            self.sock.settimeout(timeout)
            if sock is None:
                self.sock.connect(self.address)
            self.sock.sendall(encode_line(nickname, MAX_NICKNAME_CHARS * 4))
        except socket.timeout:
            self.sock.close()
            raise ChatTimeout(f"could not connect to {self.address} within {timeout:g} s") from None
        except BaseException:
            self.sock.close()
            raise
        self._reader = LineReader(self.sock, max_line_bytes)
        self._thread = threading.Thread(
            target=self._receive_loop, name=f"chat-receive:{nickname}", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return not self._ended.is_set()

    def send(self, text: str) -> None:
        """Send one line (raises :class:`ChatClosed` once the connection has ended)."""
        data = encode_line(text)
        with self._send_lock:
            if self._ended.is_set() or self._closing:
                raise ChatClosed("the chat connection is closed")
            try:
                self.sock.sendall(data)
            except socket.timeout:
                raise ChatTimeout(f"the server did not take the line within {self.timeout:g} s") from None
            except OSError as exc:
                raise ChatClosed(f"could not send: {exc}") from None

    def receive(self, timeout: float = 5.0) -> str | None:
        """The next received line from :attr:`lines` (``None`` once closed); :class:`ChatTimeout` if none comes."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ChatTimeout(f"no line received within {timeout:g} s") from None

    def receive_until(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> list[str]:
        """Received lines up to and including the first one ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            line = self.receive(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise ChatClosed(f"connection closed before the expected line; got {seen!r}")
            seen.append(line)
            if predicate(line):
                return seen

    def close(self, timeout: float | None = None) -> None:
        timeout = self.timeout if timeout is None else timeout
        with self._send_lock:
            already = self._closing
            self._closing = True
            if not already and not self._ended.is_set():
                try:
                    self.sock.sendall(b"/quit\n")
                except OSError:
                    pass
        if not self._ended.wait(timeout):
            _shutdown_quietly(self.sock)  # the server did not close: wake our reader
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        _close_quietly(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _receive_loop(self) -> None:
        try:
            while True:
                raw = self._reader.read_line(timeout=None)
                if raw is None:
                    break
                text = ("! line too long" if raw is TOO_LONG
                        else raw.decode("utf-8", errors="replace"))
                if self._on_line is not None:
                    try:
                        self._on_line(text)
                    except Exception:  # a broken callback must not kill the receiver
                        pass
                else:
                    self.lines.put(text)
        finally:
            self._ended.set()
            self.lines.put(None)
            if self._on_close is not None:
                try:
                    self._on_close()
                except Exception:
                    pass


# --- the partner bot -------------------------------------------------------------


class ChatPartnerBot:
    """Someone to chat with, so no cell has to wait for ``input()``.

    ``reply(message)`` is what the bot says next: the scripted ``replies`` in
    order, then ``"bye"``. Pass ``bot.reply`` wherever the syllabus calls
    ``input("You: ")``. The bot can also *be* either side of the syllabus's
    turn-taking chat (:meth:`serve_turn_taking`, :meth:`talk_turn_taking`),
    or join a chat room (:meth:`join_room`).
    """

    def __init__(self, replies: Iterable[str] = ("hello!", "fine, thanks", "bye"),
                 name: str = "bot"):
        self.name = name
        self._script = list(replies)
        # Guards the position in the script (reply may be called from any thread).
        self._lock = threading.Lock()
        self._next = 0
        self.heard: list[str] = []

    def reply(self, message: str = "") -> str:
        with self._lock:
            self.heard.append(message)
            if self._next < len(self._script):
                answer = self._script[self._next]
                self._next += 1
                return answer
            return "bye"

    def serve_turn_taking(self, timeout: float = 5.0) -> "TurnTakingPartner":
        """Play the syllabus's *server*: listen on port 0, accept one client, then
        receive / reply in turns with ``recv(1024)`` until someone says ``bye``."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        partner = TurnTakingPartner(listener.getsockname(), role="server")

        def run():
            try:
                listener.settimeout(timeout)
                conn, _ = listener.accept()
            except OSError as exc:
                partner._fail(exc)
                return
            finally:
                listener.close()
            with conn:
                conn.settimeout(timeout)
                partner._converse(conn, self, first="receive")

        def stop_listening():
            _shutdown_quietly(listener)  # wakes a blocked accept() (close alone does not)
            _close_quietly(listener)

        partner._start(run, on_stop=stop_listening)
        return partner

    def talk_turn_taking(self, address, timeout: float = 5.0) -> "TurnTakingPartner":
        """Play the syllabus's *client*: connect, then send / receive in turns
        until someone says ``bye``."""
        partner = TurnTakingPartner(tuple(address[:2]), role="client")

        def run():
            try:
                conn = socket.create_connection(partner.address, timeout=timeout)
            except OSError as exc:
                partner._fail(exc)
                return
            partner._sock = conn
            with conn:
                partner._converse(conn, self, first="send")

        partner._start(run)
        return partner

    def join_room(self, address, timeout: float = 5.0) -> ChatClient:
        """Join a chat room under :attr:`name` and answer every message with :meth:`reply`.

        Returns once the room has welcomed the bot. Answers go to the room as
        ``@SPEAKER ANSWER``; notices (``* ...``) and errors are not answered;
        when the script is used up the bot echoes instead of saying ``bye``,
        so it never leaves a room on its own. Close it with ``.close()``.
        """
        holder: dict = {}
        # Set by the receive thread at the welcome line: the bot is in the room.
        welcomed = threading.Event()

        def on_line(line: str) -> None:
            if line.startswith("* welcome"):
                welcomed.set()
            if line.startswith(("* ", "! ")) or ": " not in line:
                return
            speaker, text = line.split(": ", 1)
            answer = self.reply(text)
            if is_quit(answer):
                answer = f"{speaker} said {text!r}"
            client = holder.get("client")
            if client is not None:
                try:
                    client.send(f"@{speaker} {answer}")
                except ChatError:
                    pass

        client = ChatClient(address, self.name, on_line=on_line, timeout=timeout)
        holder["client"] = client
        if not welcomed.wait(timeout):
            client.close(timeout=1.0)
            raise ChatTimeout(f"the room did not welcome {self.name!r} within {timeout:g} s")
        return client


class TurnTakingPartner:
    """The handle of a bot playing one side of the syllabus's turn-taking chat.

    ``transcript`` lists ``(who, text)`` pairs as they happen (``who`` is
    ``"bot"`` or ``"peer"``); ``wait(timeout)`` waits for the conversation to
    end and raises :class:`ChatTimeout` if it does not; ``stop()`` ends it
    early. ``error`` holds what went wrong, if anything.
    """

    def __init__(self, address, role: str):
        self.address = address
        self.role = role
        self.transcript: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        # Set by the bot's thread when the conversation is over, however it ended.
        self.done = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._on_stop: Callable[[], None] | None = None

    def _start(self, run, on_stop=None) -> None:
        self._on_stop = on_stop

        def body():
            try:
                run()
            except BaseException as exc:
                self.error = exc
            finally:
                self.done.set()

        self._thread = threading.Thread(target=body, name=f"chat-bot:{self.role}", daemon=True)
        self._thread.start()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc

    def _converse(self, conn: socket.socket, bot: ChatPartnerBot, first: str) -> None:
        self._sock = conn
        turn = first
        while True:
            if turn == "receive":
                data = conn.recv(1024)
                if not data:
                    self.transcript.append(("peer", "<closed the connection>"))
                    return
                message = data.decode("utf-8", errors="replace")
                self.transcript.append(("peer", message))
                if message.lower() == "bye":
                    return
                turn = "send"
            else:
                heard = self.transcript[-1][1] if self.transcript else ""
                answer = bot.reply(heard)
                conn.sendall(answer.encode("utf-8"))
                self.transcript.append(("bot", answer))
                if answer.lower() == "bye":
                    return
                turn = "receive"

    def wait(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        if not self.done.wait(timeout):
            raise ChatTimeout(f"the bot's conversation did not end within {timeout:g} s")
        if self._thread is not None:
            self._thread.join(timeout)
        return self.transcript

    def stop(self, timeout: float = 2.0) -> None:
        if self._on_stop is not None:
            self._on_stop()
        if self._sock is not None:
            _shutdown_quietly(self._sock)
        self.done.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)


# --- deterministic demos for the lesson --------------------------------------------


def tcp_pair(timeout: float = 5.0) -> tuple[socket.socket, socket.socket]:
    """A connected ``(client, server)`` pair of real TCP sockets on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        try:
            server, _ = listener.accept()
        except BaseException:
            client.close()
            raise
    server.settimeout(timeout)
    return client, server


def bytes_waiting(sock: socket.socket) -> int:
    """How many received bytes wait in ``sock``'s buffer, unread (Linux ``FIONREAD``)."""
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def wait_for_bytes(sock: socket.socket, count: int, timeout: float = 5.0) -> int:
    """Wait until at least ``count`` bytes wait unread in ``sock``; return how many.

    This is how the lesson shows *deterministically* that two ``send`` calls
    can come out of one ``recv``: once both have arrived, ``recv(1024)``
    returns them glued together.
    """
    deadline = time.monotonic() + timeout
    while True:
        waiting = bytes_waiting(sock)
        if waiting >= count:
            return waiting
        if time.monotonic() >= deadline:
            raise ChatTimeout(f"only {waiting} of {count} bytes arrived within {timeout:g} s")
        time.sleep(0.001)


# --- checking a room from the outside ------------------------------------------------


@dataclass
class RoomReport:
    """What :func:`probe_room` saw: ``problems`` is empty when the room behaved."""

    clients: int
    messages_each: int
    delivered: int = 0
    expected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        return ("room OK: " if self.ok else "room FAILED: ") + str(self)

    def __str__(self) -> str:
        head = (f"{self.clients} clients x {self.messages_each} messages: "
                f"{self.delivered} of {self.expected} deliveries")
        return head if self.ok else head + "\n  " + "\n  ".join(self.problems[:10])


def probe_room(address, clients: int = 20, messages_each: int = 5, timeout: float = 10.0,
               prefix: str = "u", connect=None) -> RoomReport:
    """Drive a chat room with ``clients`` simultaneous clients and check it.

    Each client joins and waits for its ``* welcome`` line (the server's
    word that it is in the room); the first one must then see every later
    join notice. Then all send ``messages_each`` lines at once (released by a barrier). Every
    message must reach every *other* client exactly once, in the order its
    sender sent it, and never come back to its sender. Works on any server
    that speaks the protocol; extra notice lines (``* ...``) are ignored.
    Bounded by ``timeout`` overall; the clients are always closed.
    ``connect(address, timeout)``, if given, opens each client's stream
    (the grader's relay into a sandbox).
    """
    report = RoomReport(clients, messages_each)
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    names = [f"{prefix}{i}" for i in range(clients)]
    members: list[ChatClient] = []
    try:
        for i, name in enumerate(names):
            wait = min(5.0, max(0.1, left()))
            members.append(ChatClient(address, name, timeout=wait,
                                      sock=connect(address, wait) if connect else None))
            try:
                members[-1].receive_until(lambda line: line.startswith("* welcome"), timeout=left())
            except ChatError:
                report.problems.append(f"{name} never received its '* welcome {name}' line")
                return report
            if i:
                try:
                    members[0].receive_until(lambda line, n=name: line == f"* {n} joined",
                                             timeout=left())
                except ChatError:
                    report.problems.append(
                        f"{names[0]} never received the line '* {name} joined' after {name} connected")
                    return report
        # Everyone must be in the room before the real test: one round trip proves it.
        if clients > 1:
            members[0].send("ready?")
            for member in members[1:]:
                try:
                    member.receive_until(lambda line: line == f"{names[0]}: ready?", timeout=left())
                except ChatError:
                    report.problems.append(f"{member.nickname} never received '{names[0]}: ready?'")
                    return report
        start = threading.Barrier(clients)
        send_errors: list[str] = []

        def talk(member: ChatClient) -> None:
            try:
                start.wait(timeout=left())
                for k in range(messages_each):
                    member.send(f"m{k} from {member.nickname}")
            except (ChatError, threading.BrokenBarrierError, OSError) as exc:
                send_errors.append(f"{member.nickname} could not send: {exc}")

        talkers = [threading.Thread(target=talk, args=(m,), name=f"probe:{m.nickname}", daemon=True)
                   for m in members]
        for t in talkers:
            t.start()
        for t in talkers:
            t.join(left())
        report.problems.extend(send_errors)
        report.expected = clients * (clients - 1) * messages_each
        for member in members:
            want = (clients - 1) * messages_each
            got: dict[str, list[int]] = {}
            count = 0
            while count < want:
                try:
                    line = member.receive(timeout=left())
                except ChatTimeout:
                    report.problems.append(
                        f"{member.nickname} received {count} of the {want} messages within {timeout:g} s")
                    break
                if line is None:
                    report.problems.append(f"the server closed {member.nickname}'s connection")
                    break
                speaker, sep, text = line.partition(": ")
                if not sep or not text.startswith("m") or " from " not in text:
                    continue  # a notice, or the ready? line
                if speaker == member.nickname:
                    if not any("own message back" in p for p in report.problems):
                        report.problems.append(f"{member.nickname} got its own message back: {line!r}")
                    continue
                count += 1
                got.setdefault(speaker, []).append(int(text[1:].split(" ", 1)[0]))
            report.delivered += count
            for speaker in names:
                if speaker == member.nickname:
                    continue
                seq = got.get(speaker, [])
                if seq != list(range(messages_each)):
                    report.problems.append(
                        f"{member.nickname} received {speaker}'s messages as {seq[:12]} "
                        f"(expected {list(range(messages_each))[:12]}: each once, in order)")
        return report
    finally:
        for member in members:
            member.close(timeout=min(1.0, max(0.1, left())))
