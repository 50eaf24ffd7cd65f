"""The room server: a reader thread per member, a writer per member, throttled senders."""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass, field

from course_lib.servers import BackgroundServer
from .protocol import (LineReader,
                        MAX_LINE_BYTES,
                        MAX_NICKNAME_CHARS,
                        NotUTF8,
                        TOO_LONG,
                        close_quietly,
                        decode_line,
                        is_quit,
                        send_now,
                        shutdown_quietly)

OUTBOX_LINES = 1000
STALL_S = 5.0  # a member with a full outbox that takes no line for this long is cut off
"""Lines a client may fall behind before the server disconnects it."""




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
                close_quietly(conn)

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
                        send_now(conn, "* bye")
                        return None
                    else:
                        return nickname
            if not send_now(conn, f"! {problem}"):
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
                shutdown_quietly(member.conn)
                member.writer.join(timeout=2.0)
        close_quietly(member.conn)

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
                        shutdown_quietly(member.conn)  # its reader sees the close and runs _leave
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
                shutdown_quietly(member.conn)  # wakes the reader, which leaves the room
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
