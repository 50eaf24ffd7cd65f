"""Does lesson 08 autograde its fixture submissions with the expected scores, in bounded time?

One batch, graded once per module: a correct submission; a room whose
broadcast deadlocks (it takes its non-reentrant lock twice, so the first
join notice freezes the room with the lock held); a client whose receive
thread never reads; and the untouched student version (stubs raising
NotImplementedError). Points: ChatRoom join_and_broadcast 3, leave 3,
many_clients 2, stop 2; RoomClient receives_lines 2, send 1, close 2 — 15.
"""

import pytest

from submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "08-two-way-chat"
MAX_SCORE = 15.0

DEADLOCKING_ROOM = '''
class ChatRoom:
    """Broadcast holds the members lock and calls _send, which takes it again: deadlock."""

    def __init__(self, host="127.0.0.1", port=0):
        self._listener = socket.socket()
        self._listener.bind((host, port))
        self._listener.listen()
        self._lock = threading.Lock()
        self._members = {}
        self._threads = []

    @property
    def address(self):
        return self._listener.getsockname()

    def start(self):
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()
        return self

    def stop(self, timeout=2.0):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for conn in list(self._members):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in [self._accepter] + self._threads:
            t.join(timeout)

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn):
        lines = conn.makefile("rb")
        nickname = lines.readline().decode().strip()
        with self._lock:
            self._members[conn] = nickname
        conn.sendall(f"* welcome {nickname}\\n".encode())
        self._broadcast(f"* {nickname} joined", conn)
        for raw in lines:
            text = raw.decode().strip()
            if text.lower() in ("/quit", "bye"):
                break
            self._broadcast(f"{nickname}: {text}", conn)
        with self._lock:
            del self._members[conn]
        self._broadcast(f"* {nickname} left", conn)
        conn.close()

    def _broadcast(self, text, exclude):
        with self._lock:
            for conn in self._members:
                if conn is not exclude:
                    self._send(conn, text)

    def _send(self, conn, text):
        with self._lock:          # the bug: this thread holds it already
            conn.sendall((text + "\\n").encode())
'''

NEVER_READS_CLIENT = '''
class RoomClient:
    """Sends fine, but its receive thread never calls recv."""

    def __init__(self, address, nickname, timeout=5.0):
        self.lines = queue.Queue()
        self.sock = socket.create_connection(address, timeout=timeout)
        self._lock = threading.Lock()
        self.sock.sendall((nickname + "\\n").encode())
        self._never = threading.Event()
        self._receiver = threading.Thread(target=self._never.wait, daemon=True)
        self._receiver.start()

    def send(self, text):
        with self._lock:
            self.sock.sendall((text + "\\n").encode())

    def close(self, timeout=2.0):
        try:
            self.sock.sendall(b"/quit\\n")
        except OSError:
            pass
        self._receiver.join(timeout)
        self.sock.close()
'''

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # every ChatRoom cell fails in bounded time; the client's 5 points stay
    "deadlocks_on_broadcast": ({"ChatRoom_solution": DEADLOCKING_ROOM}, 5.0),
    # the room's 10, and RoomClient_send (1): nothing is ever received or joined
    "never_reads": ({"RoomClient_solution": NEVER_READS_CLIENT}, 11.0),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=180, timeout=400)
