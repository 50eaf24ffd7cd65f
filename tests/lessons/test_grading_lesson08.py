"""Does lesson 08 autograde its fixture submissions with the expected scores, in bounded time?

One batch, graded once per module: a correct submission; a room whose
broadcast deadlocks (it takes its non-reentrant lock twice, so the first
join notice freezes the room with the lock held); a client whose receive
thread never reads; a room that echoes with a client that takes a recv for
a line; correct solutions in other styles; a wrong prediction and a right
one written another way. Points: the prediction 1
(predict_line_framing_correct: the lines LineSplitter's second feed
returns); ChatRoom join_and_broadcast 3, leave 3, many_clients 2, stop 2;
RoomClient receives_lines 2, send 1, close 2 — 16.
"""

import pytest

from tests.submissions import lesson_grading_tests, source_notebook

pytestmark = pytest.mark.slow

LESSON = "08-two-way-chat"
MAX_SCORE = 16.0

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

# Correct in other styles: a room on socketserver.ThreadingTCPServer (it registers each
# connection before its thread starts, so stop() can reach them all), and a client that reads
# lines through a buffered file.
SOCKETSERVER_ROOM = '''
import socketserver


class ChatRoom:
    def __init__(self, host="127.0.0.1", port=0):
        room = self
        self._lock = threading.Lock()   # guards _members and _connections
        self._members = {}              # conn -> (nickname, its send lock)
        self._connections = set()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                room.serve(self.request, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            request_queue_size = 64

            def process_request(self, request, client_address):
                with room._lock:        # before the thread starts: stop() sees every connection
                    room._connections.add(request)
                super().process_request(request, client_address)

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def address(self):
        return self._server.server_address[:2]

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=2.0):
        self._server.shutdown()         # serve_forever has returned: nobody new gets in
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()     # joins the client threads
        self._thread.join(timeout)

    def serve(self, conn, rfile):
        nickname = None
        try:
            first = rfile.readline(1025)
            if not first.endswith(b"\\n"):
                return
            nickname = first.decode("utf-8", "replace").strip() or "anonymous"
            lock = threading.Lock()
            with self._lock:
                others = list(self._members.items())
                self._members[conn] = (nickname, lock)
            self.send(conn, lock, f"* welcome {nickname}")
            for other, (_, other_lock) in others:
                self.send(other, other_lock, f"* {nickname} joined")
            while True:
                raw = rfile.readline(1025)
                if not raw.endswith(b"\\n"):
                    return
                text = raw.rstrip(b"\\r\\n").decode("utf-8", "replace")
                if text.strip().lower() in ("/quit", "bye"):
                    return
                self.broadcast(f"{nickname}: {text}", conn)
        except OSError:
            pass
        finally:
            with self._lock:
                self._members.pop(conn, None)
                self._connections.discard(conn)
            if nickname is not None:
                self.broadcast(f"* {nickname} left", conn)

    def broadcast(self, text, exclude=None):
        with self._lock:
            targets = [(c, lock) for c, (_, lock) in self._members.items() if c is not exclude]
        for conn, lock in targets:
            self.send(conn, lock, text)

    @staticmethod
    def send(conn, lock, text):
        with lock:
            try:
                conn.sendall((text + "\\n").encode("utf-8"))
            except OSError:
                pass
'''

FILE_READING_CLIENT = '''
class RoomClient:
    def __init__(self, address, nickname, timeout=5.0):
        self.lines = queue.Queue()
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.settimeout(None)
        self._send_lock = threading.Lock()
        self.send(nickname)
        self._receiver = threading.Thread(target=self.receive_loop, daemon=True)
        self._receiver.start()

    def send(self, text):
        with self._send_lock:
            self.sock.sendall(f"{text}\\n".encode("utf-8"))

    def close(self, timeout=2.0):
        try:
            self.send("/quit")
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._receiver.join(timeout)
        self.sock.close()

    def receive_loop(self):
        try:
            with self.sock.makefile("rb") as stream:
                for raw in stream:
                    if not raw.endswith(b"\\n"):
                        break  # the connection ended in the middle of a line
                    self.lines.put(raw.rstrip(b"\\r\\n").decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
        finally:
            self.lines.put(None)
'''

def _reference(grade_id: str) -> str:
    """A solution cell of the lesson, as its author wrote it (without the solution markers)."""
    _, nb = source_notebook(LESSON)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in cell.source.splitlines() if "### " not in line)


# Wrong but plausible: a broadcast that forgets to leave out the sender (everyone hears an echo).
ECHOING_ROOM = _reference("ChatRoom_solution").replace(
    "targets = [(c, lock) for c, (_, lock) in self._members.items() if c is not exclude]",
    "targets = [(c, lock) for c, (_, lock) in self._members.items()]")

# Wrong but plausible: every recv() taken as one whole line.
ONE_RECV_PER_LINE_CLIENT = _reference("RoomClient_solution").replace(
    """                pending += chunk
                while b"\\n" in pending:
                    line, pending = pending.split(b"\\n", 1)
                    self.lines.put(line.rstrip(b"\\r").decode("utf-8", "replace"))""",
    """                self.lines.put(chunk.rstrip(b"\\r\\n").decode("utf-8", "replace"))""")

# The prediction (the lines the second LineSplitter.feed returns): the chunk taken for a line is
# wrong; the same lines in a tuple, one of them built from the two chunks, count; the right lines
# as str do not (the splitter gives bytes, and the visible check says so).
WRONG_PREDICTION = 'SECOND_FEED_LINES = [b"you?", b"hello", b"bye"]'
PREDICTION_AS_TUPLE = 'SECOND_FEED_LINES = (b"how are " + b"you?", b"hello", b"bye")'
PREDICTION_AS_STR = 'SECOND_FEED_LINES = ["how are you?", "hello", "bye"]'

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # echoes to the sender: join_and_broadcast (3) and many_clients (2); a client that takes a
    # recv for a line: receives_lines (2) (its tests use the course's room, not this one)
    "echoing_room_one_recv": ({"ChatRoom_solution": ECHOING_ROOM, "RoomClient_solution": ONE_RECV_PER_LINE_CLIENT},
                              MAX_SCORE - 7),
    # correct in other styles (socketserver; a buffered file): full marks
    "unusual": ({"ChatRoom_solution": SOCKETSERVER_ROOM, "RoomClient_solution": FILE_READING_CLIENT}, MAX_SCORE),
    # every ChatRoom cell fails in bounded time; the client's 5 points stay, and the prediction,
    # right but written as str, is refused
    "deadlocks_on_broadcast": ({"ChatRoom_solution": DEADLOCKING_ROOM, "predict_line_framing": PREDICTION_AS_STR},
                               5.0),
    # the prediction (1), the room's 10, and RoomClient_send (1): nothing is ever received or joined
    "never_reads": ({"RoomClient_solution": NEVER_READS_CLIENT}, 12.0),
    # everything right but the prediction: only its point is lost
    "wrong_prediction": ({"predict_line_framing": WRONG_PREDICTION}, MAX_SCORE - 1),
    # the right lines in a tuple, one of them computed: full marks
    "prediction_as_tuple": ({"predict_line_framing": PREDICTION_AS_TUPLE}, MAX_SCORE),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=180, timeout=400)
