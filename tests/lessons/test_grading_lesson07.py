"""Does lesson 07 autograde its fixture submissions with the expected scores, in bounded time?

Points: the prediction predict_first_recv_correct 1; get_daytime reply 1,
pieces 2, failures 2; ThreadedDaytimeServer reply 1, concurrent 2,
many_clients 2, rude_clients 1, stop 2 — 14 in all.

Fixtures: a correct submission; a server that serves one client at a time
(right replies, clean stop, but no concurrency); a server that accepts and
never replies (it stops cleanly, but no client ever gets a line); and the
syllabus's client (one ``recv``, no timeout, no DaytimeError). Every fixture
keeps the source's prediction unless it replaces ``predict_first_recv``: the
whole line (the wrong prediction) or bytes lose that point, the right text
built by an expression keeps it.
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "07-daytime-client-server"
MAX_SCORE = 14.0

ONE_AT_A_TIME_SERVER = '''
class ThreadedDaytimeServer:
    """Serves each client in the accept thread: the next one waits."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self._stopping = threading.Event()

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(5)
        self._listener.settimeout(0.1)
        self._address = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    conn.sendall(self.now().encode("ascii") + b"\\r\\n")
                except Exception:
                    pass

    @property
    def address(self):
        return self._address

    def stop(self, timeout=2.0):
        self._stopping.set()
        self._thread.join(timeout)
        self._listener.close()
'''

NEVER_REPLYING_SERVER = '''
class ThreadedDaytimeServer:
    """Accepts every client, keeps the connection, and never sends a thing."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self._stopping = threading.Event()
        self._kept = []

    def start(self):
        self._listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self._address = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._kept.append(conn)  # forgot to send and close

    @property
    def address(self):
        return self._address

    def stop(self, timeout=2.0):
        self._stopping.set()
        self._thread.join(timeout)
        self._listener.close()
'''

SYLLABUS_CLIENT = '''
def get_daytime(host, port, timeout=2.0):
    client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client_socket.connect((host, port))
        return client_socket.recv(1024).decode().strip()
    finally:
        client_socket.close()
'''

# Correct in another style: the standard library's socketserver does the
# accepting and the thread per client; get_daytime waits with selectors.
SOCKETSERVER_DAYTIME = '''
import socketserver


class ThreadedDaytimeServer:
    """socketserver.ThreadingTCPServer, run by serve_forever in a thread of its own."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now

    def start(self):
        now = self.now

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                try:
                    self.request.sendall(now().encode("ascii") + b"\\r\\n")
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            request_queue_size = 128
            address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        self._server = Server((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    @property
    def address(self):
        return self._server.server_address[:2]

    def stop(self, timeout=2.0):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
'''

SELECTORS_CLIENT = '''
import selectors


def get_daytime(host, port, timeout=2.0):
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DaytimeError(f"cannot connect to {host}:{port}: {exc}") from None
    with sock, selectors.DefaultSelector() as waiting:
        sock.setblocking(False)
        waiting.register(sock, selectors.EVENT_READ)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not waiting.select(left):
                raise DaytimeError(f"no whole reply within {timeout} s")
            try:
                chunk = sock.recv(512)
            except OSError as exc:
                raise DaytimeError(f"the connection failed: {exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            if sum(map(len, chunks)) > 1000:
                raise DaytimeError("a reply of more than 1000 bytes is not a day/time line")
    try:
        return b"".join(chunks).decode("ascii").removesuffix("\\n").removesuffix("\\r")
    except UnicodeDecodeError:
        raise DaytimeError("the reply is not ASCII") from None
'''

STATUS: dict[str, str] = {}  # every fixture ends "graded": no cell needs the per-cell limit

# A timeout on each recv, none for the whole reply: a trickling server keeps it waiting.
PER_RECV_TIMEOUT_CLIENT = '''
def get_daytime(host, port, timeout=2.0):
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DaytimeError(f"cannot connect: {exc}") from None
    with sock:
        reply = b""
        while True:
            try:
                chunk = sock.recv(1024)
            except OSError as exc:
                raise DaytimeError(f"no reply: {exc}") from None
            if not chunk:
                break
            reply += chunk
    try:
        return reply.decode("ascii").rstrip("\\r\\n")
    except UnicodeDecodeError:
        raise DaytimeError("not ASCII") from None
'''

# Predictions of what the syllabus client prints after "Server response: " for the `halves` server.
WRONG_PREDICTION = 'FIRST_RECV_TEXT = "Tuesday, February 22, 1982 17:37:43-PST"'
BYTES_PREDICTION = 'FIRST_RECV_TEXT = b"Tuesday, Febr"'
COMPUTED_PREDICTION = '''
first_piece = b"Tuesday, Febr"  # sent before the server waits for `rest`
FIRST_RECV_TEXT = first_piece.decode()
'''

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # Correct in another style (socketserver; selectors): full marks.
    "unusual": ({"get_daytime": SELECTORS_CLIENT}, MAX_SCORE),
    # socketserver as it comes: server_close() joins every client thread with no timeout, so
    # stop(timeout=0.4) with clients stuck in now() takes as long as they do: stop (2). The
    # same idiom keeping to the timeout earns full marks (tests/lessons/corpus/07/).
    "socketserver_unbounded_stop": ({"ThreadedDaytimeServer": SOCKETSERVER_DAYTIME}, MAX_SCORE - 2),
    # server: reply 1, rude_clients 1, stop 2 (no concurrency: loses 4)
    # and a client with no deadline for the whole reply: failures' trickle, 5000-byte, silence (2)
    # and the prediction (1)
    "one_at_a_time": ({"ThreadedDaytimeServer": ONE_AT_A_TIME_SERVER, "get_daytime": PER_RECV_TIMEOUT_CLIENT}, 8.0),
    # server: nothing (no client ever gets a reply); client 5, prediction 1
    "never_replies": ({"ThreadedDaytimeServer": NEVER_REPLYING_SERVER}, 6.0),
    # client: nothing — one recv (pieces), ConnectionRefusedError and a hang on a silent server
    # (failures), an AF_INET socket for an IPv6 server (reply's hidden test); the server's 8
    # and the prediction's 1 remain
    "syllabus_client": ({"get_daytime": SYLLABUS_CLIENT}, 9.0),
    # a str, but the whole line: one recv is taken for the whole reply (the prediction's point only)
    "wrong_prediction": ({"predict_first_recv": WRONG_PREDICTION}, MAX_SCORE - 1),
    # the right text as bytes: refused by the visible type check (the client prints decoded text)
    "prediction_as_bytes": ({"predict_first_recv": BYTES_PREDICTION}, MAX_SCORE - 1),
    # the right text, computed from the scripted pieces: full marks
    "prediction_computed": ({"predict_first_recv": COMPUTED_PREDICTION}, MAX_SCORE),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=240, statuses=STATUS, timeout=400)
