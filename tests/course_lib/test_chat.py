"""Tests for course_lib.chat: framing, the room server, the client and the partner bot."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from course_lib import chat
from course_lib.chat import TOO_LONG, ChatClient, ChatRoomServer, LineSplitter
from tests.waiting import assert_no_new_threads, threads_now


# --- helpers -------------------------------------------------------------------


class RawPeer:
    """A raw socket talking to a server, reading lines with a deadline."""

    def __init__(self, address, nickname: str | None = None, timeout: float = 5.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.reader = chat.LineReader(self.sock, max_line_bytes=1 << 16)
        if nickname is not None:
            self.sock.sendall(nickname.encode() + b"\n")

    def line(self, timeout: float = 5.0) -> str | None:
        raw = self.reader.read_line(timeout=timeout)
        return None if raw is None else raw.decode("utf-8")

    def until(self, wanted: str, timeout: float = 5.0) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"connection closed before {wanted!r}; saw {seen!r}"
            seen.append(line)
            if line == wanted:
                return seen

    def close(self) -> None:
        self.sock.close()


def ann_and_bob(room) -> tuple[RawPeer, RawPeer]:
    """Two peers in the room, each having seen every line about the other's arrival."""
    ann = RawPeer(room.address, "ann")
    ann.until("* welcome ann")
    bob = RawPeer(room.address, "bob")
    ann.until("* bob joined")
    bob.until("* welcome bob")
    return ann, bob


@pytest.fixture
def room():
    before = threads_now()
    server = ChatRoomServer().start()
    yield server
    server.stop(timeout=5.0)
    assert_no_new_threads(before)


# --- framing ----------------------------------------------------------------------


def test_splitter_joins_a_line_split_across_chunks():
    """Does a line that arrives in three pieces come out as one line?"""
    splitter = LineSplitter()
    assert splitter.feed(b"hel") == []
    assert splitter.feed(b"lo wo") == []
    assert splitter.feed(b"rld\n") == [b"hello world"]
    assert splitter.pending == b""


def test_splitter_splits_glued_lines_and_keeps_the_tail():
    """Do two lines glued in one chunk come out as two, with the unfinished third kept?"""
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntwo\r\nthr") == [b"one", b"two"]
    assert splitter.pending == b"thr"
    assert splitter.feed(b"ee\n") == [b"three"]


def test_splitter_reports_an_over_long_line_once_and_recovers():
    """Is an over-long line reported once, its bytes dropped, and the next line intact?"""
    splitter = LineSplitter(max_line_bytes=10)
    out = []
    for _ in range(100):  # 1000 bytes without a newline
        out += splitter.feed(b"x" * 10)
    assert out == [TOO_LONG]
    assert len(splitter.pending) <= 11
    assert splitter.feed(b"xx\nok\n") == [b"ok"]


def test_splitter_limit_is_inclusive_and_counts_crlf_fairly():
    """Is a line of exactly max bytes accepted, with or without \\r, and max+1 refused?"""
    splitter = LineSplitter(max_line_bytes=5)
    assert splitter.feed(b"12345\n") == [b"12345"]
    assert splitter.feed(b"123") + splitter.feed(b"45\r\n") == [b"12345"]
    assert splitter.feed(b"123456\n") == [TOO_LONG]


def test_encode_and_decode_lines():
    """Does encode_line refuse newlines and over-long text, and decode_line refuse bad UTF-8?"""
    assert chat.encode_line("héllo") == "héllo\n".encode()
    with pytest.raises(ValueError):
        chat.encode_line("two\nlines")
    with pytest.raises(ValueError):
        chat.encode_line("x" * (chat.MAX_LINE_BYTES + 1))
    with pytest.raises(chat.NotUTF8):
        chat.decode_line(b"\xff\xfe")
    assert chat.decode_line("ü".encode()) == "ü"
    assert chat.is_quit(" BYE ") and chat.is_quit("/quit") and not chat.is_quit("bye now")


def test_line_reader_times_out_and_keeps_partial_data():
    """Does read_line raise ChatTimeout on half a line, then return it whole once finished?"""
    client, server = chat.tcp_pair()
    with client, server:
        reader = chat.LineReader(server)
        client.sendall(b"half")
        with pytest.raises(chat.ChatTimeout):
            reader.read_line(timeout=0.1)
        client.sendall(b" a line\n")
        assert reader.read_line(timeout=5) == b"half a line"
        client.sendall(b"tail without newline")
        client.close()
        assert reader.read_line(timeout=5) is None
        assert reader.partial_at_close == b"tail without newline"


def test_recv_glues_two_sends_deterministically():
    """Once two sends have both arrived, does one recv(1024) return them glued together?"""
    client, server = chat.tcp_pair()
    with client, server:
        client.sendall(b"hello")
        client.sendall(b"bye")
        chat.wait_for_bytes(server, 8)
        assert server.recv(1024) == b"hellobye"


# --- the room server ----------------------------------------------------------------


def test_room_welcomes_announces_and_broadcasts_to_others_only(room):
    """Are joins and leaves announced, and does a message reach others but not its sender?"""
    ann = RawPeer(room.address, "ann")
    assert ann.line() == "* welcome ann"
    bob = RawPeer(room.address, "bob")
    assert bob.line() == "* welcome bob"
    assert ann.line() == "* bob joined"
    ann.sock.sendall(b"hi bob\n")
    assert bob.line() == "ann: hi bob"
    bob.sock.sendall(b"/quit\n")
    assert bob.line() == "* bye bob"
    assert bob.line() is None  # the server closed bob's connection
    assert ann.line() == "* bob left"
    with pytest.raises(chat.ChatTimeout):
        ann.line(timeout=0.1)  # ann never got her own message back
    assert room.members() == ["ann"]
    ann.close()
    bob.close()


def test_room_gives_a_taken_nickname_a_suffix(room):
    """Does a second 'ann' become 'ann-2', so messages stay attributable?"""
    first = RawPeer(room.address, "ann")
    assert first.line() == "* welcome ann"
    second = RawPeer(room.address, "ann")
    assert second.line() == "* welcome ann-2"
    first.close()
    second.close()


def test_room_rejects_bad_nicknames_and_accepts_a_retry(room):
    """Is an empty or ':'-containing nickname answered with an error, and a good one then accepted?"""
    peer = RawPeer(room.address)
    peer.sock.sendall(b"\n")
    assert peer.line().startswith("! ")
    peer.sock.sendall(b"a:b\n")
    assert peer.line().startswith("! nickname")
    peer.sock.sendall(b"carol\n")
    assert peer.line() == "* welcome carol"
    peer.close()


def test_room_answers_non_utf8_with_an_error_and_stays_usable(room):
    """Is a non-UTF-8 line answered with an error line, and the next line still delivered?"""
    ann, bob = ann_and_bob(room)
    ann.sock.sendall(b"\xff\xfe not utf-8\nstill here\n")
    assert ann.line() == "! not UTF-8: line ignored"
    assert bob.line() == "ann: still here"
    ann.close()
    bob.close()


def test_room_answers_an_over_long_line_and_stays_usable(room):
    """Is a line over MAX_LINE_BYTES refused with an error, without disturbing the next line?"""
    ann, bob = ann_and_bob(room)
    ann.sock.sendall(b"y" * (10 * chat.MAX_LINE_BYTES) + b"\nshort\n")
    assert ann.line() == f"! line too long (max {chat.MAX_LINE_BYTES} bytes)"
    assert bob.line() == "ann: short"
    ann.close()
    bob.close()


def test_room_joins_a_message_split_across_segments_with_a_pause(room):
    """Does a message sent as two TCP segments, with the first one delivered alone, arrive as one?"""
    ann, bob = ann_and_bob(room)
    ann.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ann.sock.sendall(b"hello, ")
    # The first segment has been read by the server (nothing is waiting on
    # bob's side, and the server's reader is idle) before the rest is sent:
    with pytest.raises(chat.ChatTimeout):
        bob.line(timeout=0.2)
    ann.sock.sendall(b"world\n")
    assert bob.line() == "ann: hello, world"
    ann.close()
    bob.close()


def test_room_survives_a_client_that_disconnects_mid_line(room):
    """Does a client vanishing mid-line (even with a reset) leave the others chatting?"""
    ann, bob = ann_and_bob(room)
    eve = RawPeer(room.address, "eve")
    ann.until("* eve joined")
    bob.until("* eve joined")
    eve.until("* welcome eve")
    eve.sock.sendall(b"half a mess")
    eve.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    eve.sock.close()  # linger 0: a reset, not a clean close
    assert ann.until("* eve left")[-1] == "* eve left"
    bob.until("* eve left")
    ann.sock.sendall(b"still fine?\n")
    assert bob.line() == "ann: still fine?"
    assert room.members() == ["ann", "bob"]
    ann.close()
    bob.close()


def test_room_disconnects_a_client_that_never_reads_without_stalling_others():
    """Is a client that never reads cut off when its outbox fills, while the others keep chatting?"""
    before = threads_now()
    room = ChatRoomServer().start()
    try:
        sleeper = RawPeer(room.address, "sleeper")
        sleeper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sleeper.until("* welcome sleeper")
        ann, bob = ann_and_bob(room)
        payload = b"z" * 900 + b"\n"
        deadline = time.monotonic() + 20
        got = 0
        sleeper_gone = False
        while not sleeper_gone and time.monotonic() < deadline:
            ann.sock.sendall(payload * 50)
            for _ in range(50):
                line = bob.line(timeout=chat.STALL_S + 10)  # ann is held back while sleeper stalls
                if line.startswith("ann: "):
                    got += 1
                elif line == "* sleeper left (too slow)":
                    sleeper_gone = True
        assert sleeper_gone, "the server never disconnected the client that does not read"
        assert "sleeper" not in room.members()
        ann.sock.sendall(b"after\n")
        bob.until("ann: after")
        for peer in (sleeper, ann, bob):
            peer.close()
    finally:
        room.stop(timeout=5)
    assert_no_new_threads(before)


def test_room_stop_closes_every_client_and_leaves_nothing():
    """Does stop() tell members the room closes, close them, and end every thread in time?"""
    before = threads_now()
    room = ChatRoomServer().start()
    peers = []
    for i in range(5):
        peers.append(RawPeer(room.address, f"p{i}"))
        peers[-1].until(f"* welcome p{i}")
    silent = socket.create_connection(room.address)  # never names itself
    t0 = time.monotonic()
    room.stop(timeout=30)  # prompt means woken, not timed out: far under 30 s even when busy
    assert time.monotonic() - t0 < 10
    for peer in peers:
        lines = []
        while (line := peer.line()) is not None:
            lines.append(line)
        assert lines[-1] == "* the room is closing"
        peer.close()
    silent.close()
    assert_no_new_threads(before)
    with pytest.raises(OSError):
        socket.create_connection(room.address, timeout=1).close()


@pytest.mark.slow
def test_room_delivers_every_message_once_in_order_to_20_clients(room):
    """With 20 clients talking at once, does every message reach every other client once, in order?"""
    report = chat.probe_room(room.address, clients=20, messages_each=20, timeout=30)
    assert report.ok, str(report)
    assert report.delivered == 20 * 19 * 20


def test_probe_room_catches_a_room_that_echoes_and_drops():
    """Does probe_room report a server that echoes to the sender and loses messages?"""

    class SloppyRoom(ChatRoomServer):
        def _broadcast(self, text, exclude, wait=False):  # to everyone, including the sender,
            if text.endswith("m3 from u1"):  # and one message lost
                return
            super()._broadcast(text, exclude=None, wait=wait)

    room = SloppyRoom().start()
    try:
        report = chat.probe_room(room.address, clients=3, messages_each=5, timeout=1.5)
    finally:
        room.stop()
    assert not report.ok
    text = str(report)
    assert "its own message back" in text
    assert "u1's messages as [0, 1, 2, 4]" in text
    assert "of the 10 messages within" in text


# --- the client ----------------------------------------------------------------------


def test_client_receives_while_idle_and_sends_from_threads(room):
    """Can two clients talk at any time, with lines from other threads never interleaved?"""
    with ChatClient(room.address, "ann") as ann:
        assert ann.receive() == "* welcome ann"
        bob = ChatClient(room.address, "bob")
        ann.receive_until(lambda line: line == "* bob joined")
        bob.receive_until(lambda line: line.startswith("* welcome"))
        senders = [threading.Thread(target=lambda k=k: [ann.send(f"t{k}-{i}") for i in range(50)])
                   for k in range(4)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(10)
        got = [bob.receive() for _ in range(200)]
        assert sorted(got) == sorted(f"ann: t{k}-{i}" for k in range(4) for i in range(50))
        for k in range(4):  # each thread's lines stay in its order
            mine = [g for g in got if g.startswith(f"ann: t{k}-")]
            assert mine == [f"ann: t{k}-{i}" for i in range(50)]
        bob.close()


def test_client_callback_and_close_sentinel(room):
    """Does on_line get each line, on_close run once, and close() end the thread quickly?"""
    before = threads_now()
    got, closed = [], threading.Event()
    client = ChatClient(room.address, "cb", on_line=got.append, on_close=closed.set)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    peer = RawPeer(room.address, "peer")
    peer.until("* welcome peer")
    peer.sock.sendall(b"ping\n")
    deadline = time.monotonic() + 5
    while "peer: ping" not in got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got[:3] == ["* welcome cb", "* peer joined", "peer: ping"]
    t0 = time.monotonic()
    client.close(timeout=30)  # the server answers the quit: far under 30 s even when busy
    assert time.monotonic() - t0 < 10
    assert closed.is_set()
    assert not client.connected
    with pytest.raises(chat.ChatClosed):
        client.send("too late")
    client.close()  # twice is harmless
    peer.close()
    assert_no_new_threads(before | {t for t in threading.enumerate() if "chatroomserver" in t.name})


def test_client_close_is_bounded_when_the_server_ignores_quit():
    """Does close() return within its timeout against a server that never closes?"""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = ChatClient(listener.getsockname(), "x", timeout=1.0)
        conn, _ = listener.accept()
        t0 = time.monotonic()
        client.close(timeout=0.5)
        assert time.monotonic() - t0 < 5  # its 0.5 s, not the server's forever
        assert client.receive(timeout=1) is None
        conn.close()


def test_client_connect_refused_is_an_oserror():
    """Is connecting to a closed port a ConnectionRefusedError, with no thread left?"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()
    before = threads_now()
    with pytest.raises(ConnectionRefusedError):
        ChatClient(address, "nobody", timeout=1)
    assert_no_new_threads(before)


# --- the partner bot ------------------------------------------------------------------


def syllabus_chat_client(address, say, out):
    """The syllabus's client loop, with input() replaced by ``say``."""
    client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client_socket.settimeout(5)
    client_socket.connect(address)
    while True:
        message = say()
        client_socket.send(message.encode())
        if message.lower() == "bye":
            out.append("Ending chat.")
            break
        reply = client_socket.recv(1024).decode()
        if reply.lower() == "bye":
            out.append("Server ended chat.")
            break
        out.append(f"Server: {reply}")
    client_socket.close()


def test_bot_plays_the_syllabus_server_side():
    """Does the bot, as the turn-taking server, answer the syllabus client until bye?"""
    bot = chat.ChatPartnerBot(["hello!", "bye"])
    partner = bot.serve_turn_taking()
    lines = iter(["hi", "how are you?"])
    out = []
    syllabus_chat_client(partner.address, lambda: next(lines), out)
    assert partner.wait(5) == [("peer", "hi"), ("bot", "hello!"),
                               ("peer", "how are you?"), ("bot", "bye")]
    assert out == ["Server: hello!", "Server ended chat."]
    assert partner.error is None


def test_bot_plays_the_syllabus_client_side():
    """Does the bot, as the turn-taking client, talk first and stop after saying bye?"""
    bot = chat.ChatPartnerBot(["hi server", "bye"])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        partner = bot.talk_turn_taking(listener.getsockname())
        listener.settimeout(5)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            assert conn.recv(1024) == b"hi server"
            conn.sendall(b"hello bot")
            assert conn.recv(1024) == b"bye"
            assert conn.recv(1024) == b""
    assert partner.wait(5)[-1] == ("bot", "bye")
    assert bot.heard == ["", "hello bot"]


def test_bot_stop_ends_a_conversation_nobody_joins():
    """Does stop() end a turn-taking server that no client ever connects to?"""
    before = threads_now()
    partner = chat.ChatPartnerBot().serve_turn_taking(timeout=30)
    partner.stop(timeout=2)
    assert partner.done.is_set()
    assert_no_new_threads(before)


def test_bot_in_a_room_answers_messages_but_not_notices(room):
    """Does a bot that joins a room answer a message addressed to the room, and ignore notices?"""
    bot = chat.ChatPartnerBot(["nice to meet you"], name="robot")
    bot_client = bot.join_room(room.address)
    bot_client_ready = time.monotonic() + 5
    while room.members() != ["robot"] and time.monotonic() < bot_client_ready:
        time.sleep(0.01)
    ann = RawPeer(room.address, "ann")
    ann.until("* welcome ann")
    ann.sock.sendall(b"hello robot\n")
    assert ann.line() == "robot: @ann nice to meet you"
    ann.sock.sendall(b"again\n")
    assert ann.line() == "robot: @ann ann said 'again'"
    bot_client.close()
    assert ann.line() == "* robot left"
    ann.close()


# --- the lesson's solutions, held to the same standard ----------------------------------

LESSON = Path(__file__).resolve().parents[2] / "notebooks" / "08-two-way-chat" / "08-two-way-chat.ipynb"


def lesson_solutions() -> dict:
    """The namespace after running the lesson's import cell and both solution cells."""
    nb = nbformat.read(LESSON, as_version=4)
    namespace: dict = {}
    wanted = {"imports", "ChatRoom_solution", "RoomClient_solution"}
    for cell in nb.cells:
        key = cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id"))
        if cell.cell_type == "code" and key in wanted:
            exec(compile(cell.source, f"<lesson 08: {key}>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def solutions():
    return lesson_solutions()


@pytest.fixture(params=["built-in", "lesson solution"])
def any_room(request, solutions):
    """The built-in ChatRoomServer, then the lesson's ChatRoom solution."""
    before = threads_now()
    fds = psutil.Process().num_fds()
    room = ChatRoomServer().start() if request.param == "built-in" else solutions["ChatRoom"]().start()
    yield room
    room.stop(timeout=5)
    assert_no_new_threads(before)
    deadline = time.monotonic() + 3
    while psutil.Process().num_fds() > fds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert psutil.Process().num_fds() <= fds, "file descriptors leaked"


@pytest.mark.slow
def test_any_room_with_20_simultaneous_clients(any_room):
    """With 20 clients talking at once, is every message delivered once to every other client, in order?"""
    report = chat.probe_room(any_room.address, clients=20, messages_each=10, timeout=30)
    assert report.ok, str(report)
    assert report.delivered == 20 * 19 * 10


def join_raw(room, nickname: str) -> RawPeer:
    peer = RawPeer(room.address, nickname)
    peer.until(f"* welcome {nickname}")
    return peer


def test_any_room_joins_a_message_split_by_a_pause(any_room):
    """Does a line sent as two segments, with the first one read alone, arrive as one message?"""
    ann = join_raw(any_room, "ann")
    bob = join_raw(any_room, "bob")
    ann.until("* bob joined")
    ann.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ann.sock.sendall("un message coupé ".encode())
    with pytest.raises(chat.ChatTimeout):
        bob.line(timeout=0.2)
    ann.sock.sendall("en deux\n".encode())
    assert bob.line() == "ann: un message coupé en deux"
    ann.close()
    bob.close()


def test_any_room_survives_a_mid_line_disconnect_among_many(any_room):
    """Does one of 8 clients vanishing mid-line leave the other 7 chatting normally?"""
    peers = [join_raw(any_room, f"p{i}") for i in range(8)]
    try:
        peers[0].until("* p7 joined")
        peers[3].sock.sendall(b"I was about to say")
        peers[3].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        peers[3].close()
        for i, peer in enumerate(peers):
            if i != 3:
                peer.until("* p3 left")
        peers[7].sock.sendall(b"everyone still here?\n")
        for i, peer in enumerate(peers[:7]):
            if i != 3:
                # The room orders lines per sender only: p7's join notice may reach a peer
                # after p3's leave notice, so notices are skipped, the message must come.
                line = peer.line()
                while line is not None and line.startswith("* "):
                    line = peer.line()
                assert line == "p7: everyone still here?"
    finally:
        for i, peer in enumerate(peers):
            if i != 3:
                peer.close()


def test_solution_room_handles_bad_bytes_as_its_exercise_documents(solutions):
    """Does the lesson's room pass non-UTF-8 on as U+FFFD and end the session on an over-long line?"""
    room = solutions["ChatRoom"]().start()
    try:
        ann = join_raw(room, "ann")
        bob = join_raw(room, "bob")
        ann.until("* bob joined")
        ann.sock.sendall(b"caf\xe9\n")
        assert bob.line() == "ann: caf\ufffd"
        ann.sock.sendall(b"a" * 5000 + b"\n")
        assert bob.line() == "* ann left"
        assert ann.line() is None  # closed cleanly, not left hanging
        ann.close()
        bob.close()
    finally:
        room.stop(timeout=5)


def test_solution_client_reassembles_lines_and_ends_with_none(solutions):
    """Does the lesson's RoomClient cut glued and split lines right, and end with the None sentinel?"""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = solutions["RoomClient"](listener.getsockname(), "me", timeout=5)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            assert conn.recv(1024) == b"me\n"
            conn.sendall(b"one\ntw")
            assert client.lines.get(timeout=5) == "one"
            conn.sendall(b"o\r\nthree\n")
            assert [client.lines.get(timeout=5), client.lines.get(timeout=5)] == ["two", "three"]
        assert client.lines.get(timeout=5) is None
        client.close(timeout=1)
