"""Does lesson 10 autograde its fixture submissions with the expected scores, in bounded time?

Points: the prediction predict_blocked_loop_correct (how many clients an event
loop serves while one handler blocks it) 1; SelectorDaytimeServer reply 1,
many_clients 2, silent_client 2, one_thread 1, stop 2; AsyncChatRoom
join_and_broadcast 3, leave 3, many_clients 2, never_reads 2, one_loop 1,
stop 2 — 22 in all.

Fixtures: a correct submission; correct ones in other styles (a selector
polled with a timeout and callbacks in its keys' data; a room with a bounded
queue and a writer task per member); lesson 07's and 08's thread-per-client
servers under the new names; a selector loop that sends with a blocking
``sendall`` with a room that awaits every member's ``drain()`` in the sender's
task; a selector loop that ``stop()`` never wakes; servers whose ``start()``
runs the loop in the caller's thread and never returns (every check bounded);
an unattempted one; a wrong prediction and right ones written otherwise. The
tests talk to real peers (the grader's own sockets), so the batch runs with
``--no-sandbox`` as lessons 07 and 08 do.
"""

import pytest

from tests.submissions import lesson_grading_tests, source_notebook

pytestmark = pytest.mark.slow

LESSON = "10-one-thread-many-clients"
MAX_SCORE = 22.0


def _reference(grade_id: str) -> str:
    """A solution cell of the lesson, as its author wrote it (without the solution markers)."""
    _, nb = source_notebook(LESSON)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in cell.source.splitlines() if "### " not in line)


def _lesson(path_in_notebooks: str, grade_id: str) -> str:
    """A solution cell of another lesson (07, 08), without its markers."""
    _, nb = source_notebook(path_in_notebooks)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in cell.source.splitlines() if "### " not in line)


# Lesson 07's reference, renamed: a thread per client. Everything passes but one_thread.
THREADED_DAYTIME = _lesson("07-daytime-client-server", "ThreadedDaytimeServer").replace(
    "class ThreadedDaytimeServer:", "class SelectorDaytimeServer:")

# Lesson 08's reference, renamed: a thread per client; its sender's thread blocks in sendall
# to a member that never reads. Loses one_loop (1) and never_reads (2).
THREADED_ROOM = _lesson("08-two-way-chat", "ChatRoom_solution").replace("class ChatRoom:", "class AsyncChatRoom:")

# One thread and a selector, but each reply goes out with a blocking sendall: a client that
# never reads holds the only thread. Loses silent_client (2).
BLOCKING_SENDALL = '''
class SelectorDaytimeServer:
    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self._stopping = threading.Event()

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(1024)
        self._address = self._listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                conn, _ = self._listener.accept()
                with conn:
                    try:
                        conn.sendall((self.now() + "\\r\\n").encode("ascii"))   # blocks on a slow reader
                    except OSError:
                        pass
        self._selector.close()
        self._listener.close()

    @property
    def address(self):
        return self._address

    def stop(self, timeout=2.0):
        self._stopping.set()
        self._thread.join(timeout)
'''

# Right loop, but stop() only sets a flag: select() without a timeout never sees it, so stop()
# waits its whole timeout and leaves the thread behind. Loses stop (2).
NO_WAKEUP = _reference("SelectorDaytimeServer").replace(
    '''        try:
            self._wake_w.send(b"x")  # select() returns at once, and the loop sees _stopping
        except OSError:
            pass
''', "")

# start() serves in the caller's thread: it never returns (every check is bounded).
SERVES_IN_START = '''
class SelectorDaytimeServer:
    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now

    def start(self):
        self._listener = socket.socket()
        self._listener.bind((self.host, self.port))
        self._listener.listen()
        self._address = self._listener.getsockname()[:2]
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while True:                       # the syllabus's loop, in the caller's thread
                for key, _ in selector.select():
                    conn, _ = self._listener.accept()
                    with conn:
                        conn.sendall((self.now() + "\\r\\n").encode("ascii"))
        return self

    @property
    def address(self):
        return self._address

    def stop(self, timeout=2.0):
        self._listener.close()
'''

# asyncio.run in start(): the room runs in the caller's thread and start() never returns.
RUNS_IN_START = '''
class AsyncChatRoom:
    def __init__(self, host="127.0.0.1", port=0):
        self.host, self.port = host, port
        self._members = {}

    async def _main(self):
        server = await asyncio.start_server(self.serve_client, self.host, self.port)
        self._address = server.sockets[0].getsockname()[:2]
        async with server:
            await server.serve_forever()

    def start(self):
        asyncio.run(self._main())
        return self

    @property
    def address(self):
        return self._address

    def stop(self, timeout=2.0):
        pass

    async def serve_client(self, reader, writer):
        writer.close()
'''

# Follows "always await drain()" in the broadcast: the sender's task waits for every member,
# and one that never reads stalls it. Loses never_reads (2).
DRAINS_IN_SENDER = _reference("AsyncChatRoom_solution").replace(
    '''                self.broadcast(f"{nickname}: {text}", exclude=writer)''',
    '''                self.broadcast(f"{nickname}: {text}", exclude=writer)
                for other in list(self._members):
                    if other is not writer:
                        await other.drain()   # waits for the slowest member''').replace(
    '''        if writer.transport.get_write_buffer_size() > 1_000_000:
            writer.transport.abort()  # it stopped reading: drop it rather than buffer for ever''', "")

# Correct in another style: a selector polled every 0.05 s (no socket pair), the handler kept
# in each key's data, the first send tried at once.
POLLING_SELECTOR = '''
class SelectorDaytimeServer:
    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self._running = threading.Event()   # cleared by stop(); the loop looks at it every 0.05 s

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(1024)
        self._listener.setblocking(False)
        self._address = self._listener.getsockname()[:2]
        self._running.set()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="poller")
        self._thread.start()
        return self

    def _loop(self):
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ, self._on_accept)
            while self._running.is_set():
                for key, _ in sel.select(timeout=0.05):
                    key.data(sel, key.fileobj)
            for key in list(sel.get_map().values()):
                key.fileobj.close()

    def _on_accept(self, sel, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setblocking(False)
            state = {"data": (self.now() + "\\r\\n").encode("ascii"), "offset": 0}
            sel.register(conn, selectors.EVENT_WRITE, lambda s, c, st=state: self._on_write(s, c, st))
            self._on_write(sel, conn, state)

    def _on_write(self, sel, conn, state):
        try:
            state["offset"] += conn.send(state["data"][state["offset"]:state["offset"] + 262144])
        except BlockingIOError:
            return
        except OSError:
            state["offset"] = len(state["data"])
        if state["offset"] >= len(state["data"]):
            sel.unregister(conn)
            conn.close()

    @property
    def address(self):
        return self._address

    def stop(self, timeout=2.0):
        self._running.clear()
        self._thread.join(timeout)
'''

# Correct in another style: a bounded queue and a writer task per member (the writer awaits
# drain() in its own task, so only that member waits); a member whose queue is full is dropped.
QUEUE_PER_MEMBER_ROOM = '''
class AsyncChatRoom:
    def __init__(self, host="127.0.0.1", port=0):
        self._outboxes = {}   # writer -> asyncio.Queue of lines (the loop's thread only)
        self._server = servers.AsyncioServer(self.serve_client, host=host, port=port)

    @property
    def address(self):
        return self._server.address

    def start(self):
        self._server.start()
        return self

    def stop(self, timeout=2.0):
        self._server.stop(timeout)

    async def _write_out(self, writer, outbox):
        while True:
            line = await outbox.get()
            writer.write(line)
            await writer.drain()

    def _post(self, text, exclude=None):
        for writer, outbox in list(self._outboxes.items()):
            if writer is exclude:
                continue
            try:
                outbox.put_nowait((text + "\\n").encode("utf-8"))
            except asyncio.QueueFull:
                writer.transport.abort()   # too far behind: its own task will see the end

    async def serve_client(self, reader, writer):
        name = None
        outbox = asyncio.Queue(maxsize=2000)
        sender = asyncio.create_task(self._write_out(writer, outbox))
        try:
            line = await reader.readline()
            if not line.endswith(b"\\n"):
                return
            name = line.decode("utf-8", "replace").strip()
            self._post(f"* {name} joined")
            self._outboxes[writer] = outbox
            outbox.put_nowait(f"* welcome {name}\\n".encode("utf-8"))
            async for raw in reader:
                if not raw.endswith(b"\\n"):
                    break
                text = raw.decode("utf-8", "replace").rstrip("\\r\\n")
                if text.strip().lower() in {"/quit", "bye"}:
                    break
                self._post(f"{name}: {text}", exclude=writer)
        except (ConnectionError, ValueError):
            pass
        finally:
            self._outboxes.pop(writer, None)
            if name is not None:
                self._post(f"* {name} left")
            sender.cancel()
'''

NO_DAYTIME = ("class SelectorDaytimeServer:\n    def __init__(self, host='127.0.0.1', port=0, now=None):\n"
              "        raise NotImplementedError()")
NO_ROOM = "class AsyncChatRoom:\n    def __init__(self, host='127.0.0.1', port=0):\n        raise NotImplementedError()"

# The prediction (0 of the five): five (as a thread per client would) is wrong; 0 written as an
# expression counts; False is refused (not an int, and the visible check says so).
WRONG_PREDICTION = "SERVED_WHILE_BLOCKED = 5"
PREDICTION_AS_EXPRESSION = "SERVED_WHILE_BLOCKED = 5 - 5"
PREDICTION_AS_BOOL = "SERVED_WHILE_BLOCKED = False"

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # correct in other styles: full marks
    "unusual": ({"SelectorDaytimeServer": POLLING_SELECTOR, "AsyncChatRoom_solution": QUEUE_PER_MEMBER_ROOM},
                MAX_SCORE),
    # lessons 07 and 08, renamed: one_thread (1), and many_clients (2): its accept loop ends at any
    # OSError, EMFILE too; one_loop (1) and never_reads (2)
    "thread_per_client": ({"SelectorDaytimeServer": THREADED_DAYTIME, "AsyncChatRoom_solution": THREADED_ROOM},
                          MAX_SCORE - 6),
    # a blocking sendall in the loop: silent_client (2); drain() awaited in the sender: never_reads (2)
    "blocking_sends": ({"SelectorDaytimeServer": BLOCKING_SENDALL, "AsyncChatRoom_solution": DRAINS_IN_SENDER},
                       MAX_SCORE - 4),
    # stop() that does not wake select(): stop (2); the prediction, right but as a bool, is refused (1)
    "no_wakeup": ({"SelectorDaytimeServer": NO_WAKEUP, "predict_blocked_loop": PREDICTION_AS_BOOL},
                  MAX_SCORE - 3),
    # start() never returns, in both exercises: only the prediction's point is left
    "serves_in_start": ({"SelectorDaytimeServer": SERVES_IN_START, "AsyncChatRoom_solution": RUNS_IN_START}, 1.0),
    "unattempted": ({"predict_blocked_loop": "raise NotImplementedError()", "SelectorDaytimeServer": NO_DAYTIME,
                     "AsyncChatRoom_solution": NO_ROOM}, 0.0),
    # everything right but the prediction: only its point is lost
    "wrong_prediction": ({"predict_blocked_loop": WRONG_PREDICTION}, MAX_SCORE - 1),
    "prediction_as_expression": ({"predict_blocked_loop": PREDICTION_AS_EXPRESSION}, MAX_SCORE),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=300, timeout=500)
