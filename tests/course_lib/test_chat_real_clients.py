"""Real chat clients, not Python ones: socat and nc chatting through the built-in room, and
through the reference solutions of lesson 08 (a thread per client) and lesson 10 (asyncio), which
must pass the same real-peer tests: both ways, a listen-only socat, a burst to a reader.

Each client is a separate process with pipes for stdin and stdout; a thread
per process moves stdout lines into a queue, so every read has a deadline.
FIELD-NOTES.md: a chat receiver must keep its sending side open (socat
``shut-none``), or the server may take its half-close for leaving.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time

import pytest

from course_lib import chat

SOCAT = shutil.which("socat")
NC = shutil.which("nc")

pytestmark = pytest.mark.skipif(not (SOCAT and NC), reason="needs socat and nc (netcat-openbsd)")


class Terminal:
    """A client process whose stdout lines are read with a deadline."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
        self.lines.put(None)

    def type(self, text: str) -> None:
        self.proc.stdin.write(text.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def until(self, wanted: str, timeout: float = 5.0) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{wanted!r} not seen within {timeout:g} s; saw {seen!r}") from None
            assert line is not None, f"the client exited before {wanted!r}; saw {seen!r}"
            seen.append(line)
            if line == wanted:
                return seen

    def finish(self, timeout: float = 5.0) -> int:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.proc.args[0]} did not exit within {timeout:g} s") from None
        finally:
            self._reader.join(5)
            self.proc.stdout.close()
            self.proc.stderr.close()


PRELUDE = "import asyncio, selectors, socket, threading, time\nfrom course_lib import chat, servers\n"
REFERENCE_ROOMS = {  # the lessons' reference solutions pass the same real-peer tests as the library's room
    "lesson08-ChatRoom": ("08-two-way-chat", "ChatRoom_solution", "ChatRoom"),
    "lesson10-AsyncChatRoom": ("10-one-thread-many-clients", "AsyncChatRoom_solution", "AsyncChatRoom"),
}


def reference_room(lesson: str, grade_id: str, name: str):
    """The class a lesson's solution cell defines, run from the source notebook's own text."""
    import nbformat

    from tests.submissions import source_notebook

    _, nb = source_notebook(lesson)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    namespace: dict = {}
    exec(compile(PRELUDE + source, f"<{lesson} {grade_id}>", "exec"), namespace)
    return namespace[name]


@pytest.fixture(params=["course_lib", *REFERENCE_ROOMS])
def room(request):
    if request.param == "course_lib":
        server = chat.ChatRoomServer().start()
    else:
        server = reference_room(*REFERENCE_ROOMS[request.param])().start()
    server.answers_quit = request.param == "course_lib"  # the lessons' rooms need not say "* bye"
    yield server
    server.stop(timeout=5)


@pytest.fixture
def library_room():
    """course_lib's own room, whose protocol has error lines the lessons' rooms need not send."""
    server = chat.ChatRoomServer().start()
    yield server
    server.stop(timeout=5)


def members(room) -> list[str] | None:
    """Who is in the room, for the rooms that say (the lessons' rooms need not)."""
    return room.members() if hasattr(room, "members") else None


def test_socat_and_nc_chat_both_ways_through_the_room(room):
    """Do a socat client and an nc client see each other join, talk, and leave?"""
    host, port = room.address
    alice = Terminal([SOCAT, "-", f"TCP:{host}:{port},shut-none"])
    bob = None
    try:
        alice.type("alice")
        alice.until("* welcome alice")
        bob = Terminal([NC, host, str(port)])
        bob.type("bob")
        bob.until("* welcome bob")
        alice.until("* bob joined")
        alice.type("hello bob, this is socat")
        bob.until("alice: hello bob, this is socat")
        bob.type("hi alice, nc here — ünïcödé")
        alice.until("bob: hi alice, nc here — ünïcödé")
        bob.type("/quit")
        if room.answers_quit:
            bob.until("* bye bob")
        alice.until("* bob left")
        assert bob.finish() == 0
        bob = None
        alice.type("bye")  # the syllabus's word works too
        if room.answers_quit:
            alice.until("* bye alice")
        assert alice.finish() == 0
        alice = None
        assert members(room) in ([], None)
    finally:
        for terminal in (alice, bob):
            if terminal is not None:
                terminal.proc.kill()
                terminal.finish()


def test_a_listen_only_socat_keeps_receiving(room):
    """Does a receiver that keeps its sending side open (shut-none) hear a sender that comes and goes?"""
    host, port = room.address
    listener = Terminal([SOCAT, "-", f"TCP:{host}:{port},shut-none"])
    try:
        listener.type("ear")
        listener.until("* welcome ear")
        # A one-shot sender: nc -N closes its sending side at end of input.
        sender = subprocess.run([NC, "-N", host, str(port)], input=b"mouth\nfirst\nsecond\n",
                                capture_output=True, timeout=10)
        assert sender.returncode == 0, sender.stderr
        seen = listener.until("* mouth left")
        assert [line for line in seen if line.startswith("mouth: ")] == ["mouth: first", "mouth: second"]
        assert members(room) in (["ear"], None)
    finally:
        listener.proc.kill()
        listener.finish()


def test_nc_gets_error_lines_for_bad_input(library_room):
    """Does a terminal client get readable error lines for bytes that are not UTF-8 and over-long lines?"""
    host, port = library_room.address
    client = Terminal([NC, host, str(port)])
    try:
        client.type("tester")
        client.until("* welcome tester")
        client.proc.stdin.write(b"\xff\xfe\n" + b"a" * (chat.MAX_LINE_BYTES + 10) + b"\n")
        client.proc.stdin.flush()
        client.until("! not UTF-8: line ignored")
        client.until(f"! line too long (max {chat.MAX_LINE_BYTES} bytes)")
        client.type("/quit")
        client.until("* bye tester")
    finally:
        client.proc.kill()
        client.finish()


def test_a_reader_that_keeps_reading_gets_every_line_of_a_burst(room):
    """One client sends 5,000 lines of 900 bytes at once; does a socat reader get all, in order?

    The room holds the sender back while the reader's outbox is full, rather
    than cut off a reader that is only slower than the sender.
    """
    import socket

    host, port = room.address
    reader = Terminal([SOCAT, "-", f"TCP:{host}:{port},shut-none"])
    sender = socket.create_connection((host, port), timeout=30)
    try:
        reader.type("reader")
        reader.until("* welcome reader")
        sender.sendall(b"burst\n")
        reader.until("* burst joined")
        lines = [f"{i:05d} " + "x" * 894 for i in range(5000)]
        blast = threading.Thread(target=sender.sendall, args=("".join(l + "\n" for l in lines).encode(),),
                                 daemon=True)
        blast.start()
        got = []
        deadline = time.monotonic() + 120
        while len(got) < len(lines) and time.monotonic() < deadline:
            try:
                line = reader.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            assert line is not None, f"the reader was disconnected after {len(got)} lines"
            if line.startswith("burst: "):
                got.append(line[len("burst: "):])
            else:
                assert "too slow" not in line, line
        assert got == lines, f"{len(got)} of {len(lines)} lines, in order: {got[:len(lines)] == lines[:len(got)]}"
        blast.join(30)
        assert not blast.is_alive()
        assert members(room) in (["burst", "reader"], None)
    finally:
        sender.close()
        reader.proc.kill()
        reader.finish()
