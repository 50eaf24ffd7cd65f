"""Checks judged by a peer: the relay, the referee, and the grader overruling a kernel.

Lessons 07 and 08 check servers and clients from the grader's process
(:mod:`autograder.peer`) through a relay in the sandbox (:mod:`course_lib.judge.relay`).
Here: the relay carries bytes, half closes and resets faithfully; the
referee's messages say what was expected and what came; and when a
kernel reports a test as passed that the grader saw fail, or whose checks
never reached the grader, the test earns nothing and the row is tampered.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import worker
from autograder.peer import PeerService, RelayDialer
from autograder.release import build_course
from course_lib import grading, peer, servers
from tests.submissions import NOTEBOOKS, make_submission
from tests.waiting import assert_no_new_threads


@pytest.fixture
def relay(tmp_path):
    """A relay process and a dialer that reaches this host's loopback through it."""
    folder = Path(tempfile_short())
    path = str(folder / "relay.sock")
    process = subprocess.Popen([sys.executable, "-P", "-m", "course_lib.judge.relay", path])
    try:
        yield RelayDialer(folder, path)
    finally:
        process.kill()
        process.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def tempfile_short() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="peer-", dir="/tmp")  # Unix socket paths must stay short


def read_all(sock, timeout=3.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


class Recorder(servers.BackgroundServer):
    """Reads what a client sends until it ends; records how it ended; may echo."""

    def __init__(self, echo=False):
        super().__init__(client_timeout=5)
        self.echo = echo
        self.ends: list[str] = []
        self.received = b""
        self.done = threading.Event()

    def handle_client(self, conn, addr):
        try:
            while chunk := conn.recv(4096):
                self.received += chunk
                if self.echo:
                    conn.sendall(chunk)
            self.ends.append("eof")
            if self.echo:
                conn.sendall(b"bye")
        except ConnectionResetError:
            self.ends.append("reset")
        finally:
            self.done.set()


# ---------------------------------------------------------------- the relay


def test_relay_carries_a_reply_and_the_servers_close(relay):
    with servers.DaytimeServer(clock=lambda: "Monday") as server:
        sock = relay.connect(*server.address, False, 3.0)
        with sock:
            assert read_all(sock) == b"Monday\r\n"


def test_relay_passes_a_half_close_both_ways(relay):
    """The client's end of input reaches the server as EOF, and the server's later reply still comes."""
    with Recorder(echo=True) as server:
        with relay.connect(*server.address, False, 3.0) as sock:
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock) == b"pingbye"
        assert server.done.wait(3) and server.ends == ["eof"]


def test_relay_turns_an_abrupt_close_into_a_reset(relay):
    with Recorder() as server:
        sock = relay.connect(*server.address, True, 3.0)
        sock.sendall(b"half a li")
        time.sleep(0)  # nothing to wait for: the relay forwards, then resets
        sock.close()
        assert server.done.wait(3)
        assert server.ends == ["reset"], server.ends


def test_relay_reports_a_refused_connection(relay):
    with servers.DaytimeServer() as gone:
        pass
    with pytest.raises(ConnectionRefusedError):
        relay.connect(*gone.address, False, 3.0)


def test_relay_listens_for_the_grader_and_carries_each_client(relay):
    listener, port, stop_listening = relay.listen("127.0.0.1")
    try:
        for text in (b"one", b"two"):
            with socket.create_connection(("127.0.0.1", port), timeout=3) as client:
                listener.settimeout(3)
                inside, _ = listener.accept()
                with inside:
                    inside.sendall(text)
                assert read_all(client) == text
    finally:
        stop_listening()
    deadline = time.monotonic() + 5  # the relay closes its listener once it sees the grader hang up
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):
            break  # refused, or reset while the relay closed a listener it had queued us on
        time.sleep(0.02)
    else:
        pytest.fail("the relay kept listening after the grader hung up")


def test_relay_refuses_a_bad_request_and_a_host_with_spaces(relay):
    sock, reply = relay._open("HELLO there", 3)
    sock.close()
    assert reply.startswith("ERR")
    with pytest.raises(OSError, match="not a host name"):
        relay.connect("127.0.0.1 LISTEN", 1, False, 1.0)


def test_relay_ends_with_its_parent(tmp_path):
    """A relay whose kernel died does not outlive it."""
    folder = Path(tempfile_short())
    try:
        starter = subprocess.run(
            [sys.executable, "-c",
             "import os, subprocess, sys; p = subprocess.Popen([sys.executable, '-P', '-m', 'course_lib.judge.relay', "
             f"{str(folder / 'relay.sock')!r}, str(os.getpid())], stdout=subprocess.DEVNULL); print(p.pid)"],
            capture_output=True, text=True, timeout=30)
        pid = int(starter.stdout.strip())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
            if state == "Z":
                break
            time.sleep(0.05)
        alive = Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        assert not alive, "the relay outlived its parent"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the referee's messages


def failure(call) -> str:
    with pytest.raises(grading.CheckFailed) as caught:
        call()
    return str(caught.value)


def test_the_referee_names_what_it_expected_and_what_came():
    with servers.DaytimeServer(clock=lambda: "Monday") as server:
        with peer.connect(server.address) as conn:
            message = failure(lambda: conn.expect_closed(b"Tuesday\r\n", what="the reply"))
    assert message == "the reply: expected b'Tuesday\\r\\n', got b'Monday\\r\\n'"


def test_the_referee_waits_only_its_timeout_for_a_server_that_never_closes():
    with servers.ScriptedServer([b"partial"], hold=True) as server:
        with peer.connect(server.address) as conn:
            started = time.monotonic()
            message = failure(lambda: conn.expect_closed(b"x", timeout=0.5, what="the reply"))
            assert time.monotonic() - started < 3
    assert "did not close the connection within 0.5 s (got b'partial')" in message


def test_the_referee_chooses_the_daytime_line_and_expects_it():
    line = peer.daytime_line()
    with servers.DaytimeServer(clock=lambda: line) as server:
        with peer.connect(server.address) as conn:
            conn.expect_closed(what="the reply")
    with servers.DaytimeServer(clock=lambda: "not the line") as server:
        with peer.connect(server.address) as conn:
            assert "expected" in failure(lambda: conn.expect_closed(what="the reply"))


def test_the_referee_checks_lines_and_silence():
    with servers.ScriptedServer([b"* welcome ann\nann: echo\n"], hold=True) as server:
        with peer.connect(server.address) as conn:
            conn.expect_line("* welcome ann", what="the welcome")
            message = failure(lambda: conn.expect_no_line(what="no echo for ann"))
    assert message == "no echo for ann: received 'ann: echo'"
    with servers.ScriptedServer([b"a\nb\nc\n"], hold=True) as server:
        with peer.connect(server.address) as conn:
            conn.expect_line("c", skipping=True, what="c at last")
            assert "nothing more came within 0.2 s" in failure(
                lambda: conn.expect_line("d", timeout=0.2, what="d"))


def test_the_referee_knows_a_listening_port_from_a_closed_one():
    with servers.DaytimeServer() as server:
        assert failure(lambda: peer.expect_refused(server.address, what="still listening")) == "still listening"
    peer.expect_refused(server.address, what="still listening")


def test_the_referee_serves_a_client_and_judges_its_result():
    with peer.serve_daytime([b"Mon", 0.05, b"day\r\n"], split=1, gap=0.001) as served:
        with socket.create_connection(served.address, timeout=3) as client:
            assert read_all(client) == b"Monday\r\n"
        served.expect_result("Monday", "the result")
        assert failure(lambda: served.expect_result("Monday\r\n", "the result")) == \
            "the result: expected 'Monday', got 'Monday\\r\\n'"
        assert failure(lambda: served.expect_result(b"Monday", "the result")) == \
            "the result: expected the str 'Monday', got a bytes: b'Monday'"


def test_referee_leaves_no_thread_or_socket_behind():
    before = set(threading.enumerate())
    with peer.serve_daytime() as served:
        with socket.create_connection(served.address, timeout=3) as client:
            read_all(client)
    assert_no_new_threads(before, grace=3)


# ---------------------------------------------------------------- the grader's service


def test_the_service_records_each_verdict_with_the_running_cell(relay):
    service = PeerService(relay.folder, relay.relay_path)
    saved = peer._grader_socket
    peer._grader_socket = service.path
    try:
        with servers.DaytimeServer(clock=lambda: "Monday") as server:
            service.cell = "first"
            with peer.connect(server.address) as conn:
                conn.expect_closed(b"Monday\r\n", what="the reply")
            service.cell = "second"
            with peer.connect(server.address) as conn:
                failure(lambda: conn.expect_closed(b"Sunday\r\n", what="the reply"))
        assert [(v.op, v.ok) for v in service.verdicts_for("first")] == [
            ("connect", True), ("expect_closed", True), ("close", True)]
        assert ("expect_closed", False) in [(v.op, v.ok) for v in service.verdicts_for("second")]
        with socket.socket(socket.AF_UNIX) as raw:  # not a request at all
            raw.connect(service.path)
            raw.sendall(b"\xff\xfe not json\n")
            assert b"not a check request" in read_all(raw)
    finally:
        peer._grader_socket = saved
        service.close()
    assert not [t for t in threading.enumerate() if t.name == "peer-service"]


# ---------------------------------------------------------------- the grader overrules a lying kernel

LESSON = "07-daytime-client-server"
LYING = '''_line = grading.peer.daytime_line()
_server = ThreadedDaytimeServer(now=lambda: _line).start()
try:
    with grading.peer.connect(_server.address) as _client:
        _client.expect_closed(timeout=3, what="the bytes the server sent")
except grading.CheckFailed:
    pass  # a kernel that lies about its test, as tampered code inside it would
finally:
    _server.stop()'''
DIVERTED = '''# grading.peer.connect(...) is not reached: checks diverted inside the kernel reach no grader
pass'''
SILENT_SERVER = '''class ThreadedDaytimeServer:
    """Accepts clients and never answers them."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self._listener = socket.create_server((host, port))

    def start(self):
        return self

    @property
    def address(self):
        return self._listener.getsockname()[:2]

    def stop(self, timeout=2.0):
        self._listener.close()'''


@pytest.fixture(scope="module")
def lying_course(tmp_path_factory):
    """Lesson 07 whose two test cells trust the kernel: one swallows the grader's verdict,
    one never asks."""
    notebooks = tmp_path_factory.mktemp("notebooks")
    shutil.copytree(NOTEBOOKS / LESSON, notebooks / LESSON)
    root = tmp_path_factory.mktemp("lying")
    make_submission(root, "liar", LESSON, {"ThreadedDaytimeServer_reply": LYING,
                                           "ThreadedDaytimeServer_concurrent": DIVERTED},
                    notebooks=NOTEBOOKS)
    shutil.copy(next((root / "liar" / LESSON).glob("*.ipynb")), next((notebooks / LESSON).glob("*.ipynb")))
    return notebooks


@pytest.mark.slow
def test_the_grader_overrules_a_kernel_that_reports_a_pass_it_did_not_see(lying_course, tmp_path):
    """Sandboxed, as course grade does (the lesson 07/08 fixtures grade the same peer path without it)."""
    from autograder import sandbox as sandbox_mod

    ok, why = sandbox_mod.available()
    if not ok:
        pytest.skip(why)
    sandbox = True
    template = build_course(tmp_path / "template", [LESSON], notebooks=lying_course)
    folder = make_submission(tmp_path / "subs", "student", LESSON, {"ThreadedDaytimeServer": SILENT_SERVER},
                             notebooks=lying_course).parent
    job = worker.Job(student="student", lesson=LESSON, submission=str(folder), template=str(template),
                     sandbox=sandbox)
    result = worker.run(job)["result"]
    tests = {t["name"]: t for t in result["tests"]}
    assert result["status"] == "tampered", result
    assert result["score"] == 0.0
    assert tests["ThreadedDaytimeServer_reply"]["score"] == 0.0
    # The grader's own check's words, whether the runner reported them or the grader overruled a pass
    assert "the bytes the server sent: the server did not close" in tests["ThreadedDaytimeServer_reply"]["message"]
    assert "none of this test's checks reached the grader" in tests["ThreadedDaytimeServer_concurrent"]["message"]
    # get_daytime's tests were judged by the grader too, and agreed with the kernel
    assert tests["get_daytime_reply"]["message"] == ""
