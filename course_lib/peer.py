"""Checks that a peer judges: what a server sends, what a client returns.

A test cell that checks a student's *server* needs only what a client on
the network sees: the bytes, their order, and when the connection ends. A
test of a student's *client* needs only a server that plays a script and
the value the client returns. Such checks are asked for here and judged by
a :class:`Referee`:

* in a judge kernel (``course grade``), the referee lives in the grader's
  process (:mod:`autograder.peer`) and reaches the sandbox's loopback
  through :mod:`course_lib.judge.relay`; the grader records every verdict itself
  and a test cell earns its points only if the grader's verdicts agree,
  so nothing the student's code does inside the kernel can turn them;
* anywhere else (a learner's own notebook, ``course check``), the same
  referee runs in this process, so the messages are the same.

Each call below either returns or raises :class:`course_lib.grading.CheckFailed`
with the referee's message. Bytes on the wire are the referee's: a
connection opened with :func:`connect` is held by the referee and only
referred to here by number.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import socket
import struct
import threading
import time

__all__ = ["use_grader", "connect", "chat_member", "expect_refused", "probe_room", "serve_daytime", "daytime_line",
           "Connection", "Served", "Referee", "DirectDialer", "daytime_expected"]

#: Set by the judge's start-up (:func:`use_grader`) before any cell runs: the grader's peer socket.
_grader_socket: str | None = None
_local: "Referee | None" = None
_local_lock = threading.Lock()  # guards creating the in-process referee once
MAX_REPLY = 1 << 20
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def use_grader(path: str) -> None:
    """Send every check to the grader's peer service at ``path`` (once per process: the judge's call)."""
    global _grader_socket
    if _grader_socket is not None:
        raise RuntimeError("checks already go to a grader")
    _grader_socket = path


def _failed(message: str):
    from .grading import CheckFailed

    return CheckFailed(message)


def _ask(op: str, **args) -> dict:
    """One request to the referee; its answer, or CheckFailed with its message."""
    if _grader_socket is None:
        global _local
        with _local_lock:
            if _local is None:
                _local = Referee(DirectDialer())
        answer = _local.handle(op, args)
    else:
        answer = _ask_grader(op, args)
    if not answer.get("ok"):
        raise _failed(answer.get("message") or f"the check {op} failed")
    return answer


def _ask_grader(op: str, args: dict) -> dict:
    wait = float(args.get("timeout") or 0) + 15
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
            channel.settimeout(wait)
            channel.connect(_grader_socket)
            channel.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n") and len(data) < MAX_REPLY:
                chunk = channel.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)
    except (OSError, ValueError) as error:
        return {"ok": False, "message": f"the grader did not answer the check {op}: {error}"}


# ---------------------------------------------------------------- the cell's side


class Connection:
    """A TCP connection the referee holds to a server under test."""

    def __init__(self, number: int, address):
        self.number = number
        self.address = address

    def send(self, data: bytes) -> None:
        _ask("send", id=self.number, data=base64.b64encode(data).decode())

    def send_line(self, text: str) -> None:
        self.send(text.encode("utf-8") + b"\n")

    def expect_closed(self, expected: bytes | None = None, *, pattern: bytes | None = None,
                      timeout: float = 3.0, what: str = "the bytes the server sent") -> None:
        """Everything until the server closes must be ``expected`` (None: the referee's
        :func:`daytime_line` and CRLF), or match the regular expression ``pattern``."""
        _ask("expect_closed", id=self.number, timeout=timeout, what=what,
             expected=None if expected is None else base64.b64encode(expected).decode(),
             pattern=None if pattern is None else base64.b64encode(pattern).decode())

    def expect_line(self, expected: str, *, timeout: float = 3.0, what: str = "the next line",
                    skipping: bool = False) -> None:
        """The next line is ``expected``; with ``skipping``, some line up to ``timeout`` is."""
        _ask("expect_line", id=self.number, expected=expected, timeout=timeout, what=what,
             skipping=skipping)

    def expect_no_line(self, *, timeout: float = 0.3, what: str = "a line") -> None:
        """No line arrives within ``timeout``."""
        _ask("expect_no_line", id=self.number, timeout=timeout, what=what)

    def close(self) -> None:
        """Close (a reset when connected with ``abrupt=True``); never raises."""
        try:
            _ask("close", id=self.number)
        except Exception:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(address, *, abrupt: bool = False, what: str | None = None) -> Connection:
    """A connection from the referee to ``address``; ``abrupt``: its close is a reset."""
    host, port = address[0], int(address[1])
    answer = _ask("connect", host=str(host), port=port, abrupt=abrupt,
                  what=what or f"connecting to {host}:{port}")
    return Connection(answer["id"], (host, port))


def chat_member(address, nickname: str, *, timeout: float = 3.0) -> Connection:
    """A referee connection that has sent ``nickname`` and received its ``* welcome`` line."""
    member = connect(address, what=f"{nickname} connecting")
    try:
        member.send_line(nickname)
        member.expect_line(f"* welcome {nickname}", timeout=timeout, what=f"the first line {nickname} received")
    except BaseException:
        member.close()
        raise
    return member


def expect_refused(address, *, what: str) -> None:
    """Nothing accepts connections at ``address`` any more; ``what`` says what it means if it does."""
    _ask("refused", host=str(address[0]), port=int(address[1]), what=what)


def probe_room(address, *, clients: int, messages_each: int, timeout: float, prefix: str = "u") -> None:
    """:func:`course_lib.chat.probe_room`, run by the referee."""
    _ask("probe_room", host=str(address[0]), port=int(address[1]), clients=clients,
         messages_each=messages_each, timeout=timeout, prefix=prefix)


def daytime_line() -> str:
    """A day/time line the referee chose; ``expect_closed()`` expects it and CRLF."""
    return _ask("daytime_line")["line"]


class Served:
    """A server the referee runs for a client under test; a context manager."""

    def __init__(self, number: int, host: str, port: int):
        self.number = number
        self.address = (host, port)
        self.port = port

    def expect_result(self, value, what: str) -> None:
        """``value`` (what the client returned) is the referee's expected text."""
        _ask("result", id=self.number, what=what, value=value if isinstance(value, str) else None,
             type=type(value).__name__, shown=repr(value)[:300])

    def stop(self) -> None:
        try:
            _ask("stop", id=self.number)
        except Exception:
            pass

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_daytime(script=None, *, host: str = "127.0.0.1", split: int | None = None, gap: float = 0.0,
                  hold: bool = False) -> Served:
    """The referee serves ``script`` (bytes and pauses, as :class:`~course_lib.servers.ScriptedServer`)
    to each client; None: one day/time line of its choosing and CRLF."""
    steps = None if script is None else [
        {"bytes": base64.b64encode(bytes(step)).decode()} if isinstance(step, (bytes, bytearray))
        else {"pause": float(step)} for step in script]
    answer = _ask("serve", host=host, script=steps, split=split, gap=gap, hold=hold)
    return Served(answer["id"], host, answer["port"])


# ---------------------------------------------------------------- the referee's side


def _random_daytime_line(rng: random.Random) -> str:
    return (f"{rng.choice(_DAYS)}, {rng.choice(_MONTHS)} {rng.randint(10, 28)}, {rng.randint(1971, 2037)} "
            f"{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}-{rng.choice(('UTC', 'PST', 'CET'))}")


def daytime_expected(payload: bytes) -> str | None:
    """What a day/time client should return for ``payload``: its text without the line end."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        return None
    for end in ("\r\n", "\n"):
        if text.endswith(end):
            return text[: -len(end)]
    return text


class DirectDialer:
    """Plain sockets on this host's network: the referee in the same process as the test."""

    def connect(self, host: str, port: int, abrupt: bool, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout=timeout)
        if abrupt:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return sock

    def listen(self, host: str):
        """A listening socket, its port, and what to call to stop listening."""
        from .servers import family_for

        listener = socket.socket(family_for(host), socket.SOCK_STREAM)
        listener.bind(("127.0.0.1" if host == "localhost" else host, 0))
        listener.listen(64)
        return listener, listener.getsockname()[1], listener.close

    def close(self) -> None:
        pass


class _Held:
    """A referee-held connection and what it has read but not yet judged."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pending = b""
        self.ended = False

    def read(self, deadline: float) -> bool:
        """Read once before ``deadline``; False when nothing came in time or the peer ended."""
        if self.ended:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            data = b""
        if not data:
            self.ended = True
            return False
        self.pending += data
        return True

    def line(self, deadline: float) -> str | None:
        while b"\n" not in self.pending:
            if not self.read(deadline):
                return None
        raw, self.pending = self.pending.split(b"\n", 1)
        return raw.rstrip(b"\r").decode("utf-8", "replace")


class Referee:
    """Runs the checks and keeps the connections and servers they use; ``handle`` is its one door.

    ``dial`` makes the connections (:class:`DirectDialer` here, the relay in
    the grader). Every answer is ``{"ok": bool, "message": str, ...}``; a
    failed check names what was expected and what came.
    """

    def __init__(self, dial, seed: int | None = None):
        self.dial = dial
        self.rng = random.Random(seed)
        self.line = _random_daytime_line(self.rng)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()  # guards the two tables below (checks may run in parallel)
        self._held: dict[int, _Held] = {}
        self._served: dict[int, tuple] = {}

    def handle(self, op: str, args: dict) -> dict:
        method = getattr(self, f"op_{op}", None)
        if method is None:
            return {"ok": False, "message": f"unknown check {op!r}"}
        try:
            return method(**args)
        except TypeError as error:
            return {"ok": False, "message": f"bad request for {op}: {error}"}

    def close(self) -> None:
        with self._lock:
            held, served = list(self._held.values()), list(self._served.values())
            self._held.clear()
            self._served.clear()
        for conn in held:
            conn.sock.close()
        for server, *_ in served:
            server.stop(timeout=2)

    # -- connections to a server under test
    def _get(self, id) -> _Held:
        with self._lock:
            return self._held[int(id)]

    def op_connect(self, host, port, abrupt=False, what=""):
        try:
            sock = self.dial.connect(host, int(port), bool(abrupt), 3.0)
        except OSError as error:
            return {"ok": False, "message": f"{what}: could not connect to {host}:{port} ({error})"}
        number = next(self._numbers)
        with self._lock:
            self._held[number] = _Held(sock)
        return {"ok": True, "id": number}

    def op_send(self, id, data):
        conn = self._get(id)
        try:
            conn.sock.settimeout(3)
            conn.sock.sendall(base64.b64decode(data))
        except OSError as error:
            return {"ok": False, "message": f"could not send to the server: {error}"}
        return {"ok": True}

    def op_expect_closed(self, id, timeout, what, expected=None, pattern=None):
        conn = self._get(id)
        deadline = time.monotonic() + float(timeout)
        while conn.read(deadline):
            if len(conn.pending) > 100_000:
                break
        got = conn.pending
        if not conn.ended:
            return {"ok": False, "message": f"{what}: the server did not close the connection within "
                                            f"{float(timeout):g} s (got {got[:200]!r})"}
        if pattern is not None:
            if re.fullmatch(base64.b64decode(pattern), got) is None:
                return {"ok": False, "message": f"{what}: got {got[:200]!r}, which is not the expected form"}
            return {"ok": True}
        want = (self.line.encode() + b"\r\n") if expected is None else base64.b64decode(expected)
        if got != want:
            return {"ok": False, "message": f"{what}: expected {want!r}, got {got[:200]!r}"}
        return {"ok": True}

    def op_expect_line(self, id, expected, timeout, what, skipping=False):
        conn = self._get(id)
        deadline = time.monotonic() + float(timeout)
        seen = []
        while True:
            line = conn.line(deadline)
            if line is None:
                how = "the connection ended" if conn.ended else f"nothing more came within {float(timeout):g} s"
                shown = f" (got {seen[-5:]!r})" if seen else ""
                return {"ok": False, "message": f"{what}: expected {expected!r}, but {how}{shown}"}
            if line == expected:
                return {"ok": True}
            if not skipping:
                return {"ok": False, "message": f"{what}: expected {expected!r}, got {line!r}"}
            seen.append(line)

    def op_expect_no_line(self, id, timeout, what):
        conn = self._get(id)
        line = conn.line(time.monotonic() + float(timeout))
        if line is not None:
            return {"ok": False, "message": f"{what}: received {line!r}"}
        return {"ok": True}

    def op_close(self, id):
        with self._lock:
            conn = self._held.pop(int(id), None)
        if conn is not None:
            conn.sock.close()
        return {"ok": True}

    def op_refused(self, host, port, what):
        try:
            sock = self.dial.connect(host, int(port), False, 1.0)
        except OSError:
            return {"ok": True}
        sock.close()
        return {"ok": False, "message": what}

    def op_probe_room(self, host, port, clients, messages_each, timeout, prefix="u"):
        from . import chat

        try:
            report = chat.probe_room((host, int(port)), clients=int(clients), messages_each=int(messages_each),
                                     timeout=float(timeout), prefix=str(prefix),
                                     connect=lambda address, t: self.dial.connect(address[0], int(address[1]),
                                                                                  False, t))
        except (OSError, chat.ChatError) as error:
            return {"ok": False, "message": f"with {clients} clients talking at once: a client could not "
                                            f"connect ({error})"}
        return {"ok": bool(report.ok), "message": f"with {clients} clients talking at once: {report}"}

    # -- servers for a client under test
    def op_daytime_line(self):
        self.line = _random_daytime_line(self.rng)
        return {"ok": True, "line": self.line}

    def op_serve(self, host, script=None, split=None, gap=0.0, hold=False):
        from .servers import ScriptedServer

        if script is None:
            steps = [(_random_daytime_line(self.rng) + "\r\n").encode()]
        else:
            steps = [base64.b64decode(s["bytes"]) if "bytes" in s else float(s["pause"]) for s in script]
        payload = b"".join(s for s in steps if isinstance(s, bytes))
        try:
            listener, port, stop_listening = self.dial.listen(host)
        except OSError as error:
            return {"ok": False, "message": f"the test could not listen on {host}: {error}"}
        server = ScriptedServer(steps, split=split, gap=float(gap), hold=bool(hold), listener=listener,
                                client_timeout=10)
        server.start()
        number = next(self._numbers)
        with self._lock:
            self._served[number] = (server, stop_listening, daytime_expected(payload))
        return {"ok": True, "id": number, "port": port}

    def op_result(self, id, what, value, type, shown):
        with self._lock:
            _, _, expected = self._served[int(id)]
        if value is None:
            return {"ok": False, "message": f"{what}: expected the str {expected!r}, got a {type}: {shown}"}
        if value != expected:
            return {"ok": False, "message": f"{what}: expected {expected!r}, got {shown}"}
        return {"ok": True}

    def op_stop(self, id):
        with self._lock:
            entry = self._served.pop(int(id), None)
        if entry is not None:
            server, stop_listening, _ = entry
            stop_listening()
            server.stop(timeout=2)
        return {"ok": True}
