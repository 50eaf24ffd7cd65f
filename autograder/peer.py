"""The grader's end of the checks a peer judges (:mod:`course_lib.peer`).

A test cell of lessons 07 and 08 asks for such a check over a Unix socket
the grader opened before the kernel started; :class:`PeerService` answers
with a :class:`course_lib.peer.Referee` that runs *here*, in the grading
worker, and reaches the sandbox's loopback through the relay process the
judge kernel started first (:mod:`course_lib.judge.relay`). Each verdict is
recorded with the test cell that was running when it was asked for
(``service.cell``, set by :class:`autograder.execute.BoundedExecute`).

A test cell that asks the peer (its source says ``peer.``) keeps its
points only if the grader agrees: at least one of its checks reached the
grader and none failed. The kernel's own report of the cell is not enough,
because the kernel runs the student's code.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from course_lib.peer import Referee

__all__ = ["PeerService", "RelayDialer", "Verdict", "asks_peer", "CHECKS"]

#: Requests that judge something; connect, send, close and stop only prepare or tidy up.
CHECKS = frozenset({"expect_closed", "expect_line", "expect_no_line", "refused", "probe_room", "result"})
MARK = "peer."
MAX_REQUEST = 1 << 20
MAX_OPEN_REQUESTS = 128
_HOST = re.compile(r"[A-Za-z0-9.:-]{1,100}")


def asks_peer(source: str) -> bool:
    """Does this test cell's code ask the peer for checks?"""
    return MARK in source


@dataclass
class Verdict:
    cell: str | None
    op: str
    ok: bool
    message: str


class RelayDialer:
    """Connections into the sandbox through its relay (see :mod:`course_lib.judge.relay` for the protocol)."""

    def __init__(self, folder: Path, relay_path: str, wait: float = 10.0):
        self.folder = Path(folder)
        self.relay_path = relay_path
        self.wait = wait  # the relay starts with the kernel: allow it this long to be listening
        self._numbers = itertools.count(1)

    def _open(self, header: str, timeout: float) -> tuple[socket.socket, str]:
        deadline = time.monotonic() + self.wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.relay_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise OSError("the sandbox's relay is not running") from None
                time.sleep(0.02)
        try:
            sock.settimeout(timeout + 2)
            sock.sendall(header.encode("ascii") + b"\n")
            reply = b""
            while not reply.endswith(b"\n") and len(reply) < 1024:
                chunk = sock.recv(1)
                if not chunk:
                    raise OSError("the relay closed the connection")
                reply += chunk
        except BaseException:
            sock.close()
            raise
        return sock, reply.decode("ascii", "replace").strip()

    def connect(self, host: str, port: int, abrupt: bool, timeout: float) -> socket.socket:
        if not _HOST.fullmatch(host):
            raise OSError(f"not a host name: {host[:40]!r}")
        sock, reply = self._open(f"CONNECT {host} {int(port)} {int(bool(abrupt))}", timeout)
        if reply != "OK":
            sock.close()
            text = reply[4:] if reply.startswith("ERR ") else reply
            if "ConnectionRefused" in text:
                raise ConnectionRefusedError(text)
            raise OSError(text)
        sock.settimeout(None)
        return sock

    def listen(self, host: str):
        if not _HOST.fullmatch(host):
            raise OSError(f"not a host name: {host[:40]!r}")
        path = str(self.folder / f"l{next(self._numbers)}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        try:
            control, reply = self._open(f"LISTEN {host} {path}", 5.0)
        except BaseException:
            listener.close()
            os.unlink(path)
            raise
        if not reply.startswith("PORT "):
            control.close()
            listener.close()
            os.unlink(path)
            raise OSError(reply[4:] if reply.startswith("ERR ") else reply)

        def stop_listening() -> None:
            control.close()
            listener.close()
            try:
                os.unlink(path)
            except OSError:
                pass

        return listener, int(reply.split()[1]), stop_listening


class PeerService:
    """A Unix socket the judge kernel asks for checks on; the referee here answers.

    One request per connection: a JSON line in, a JSON line out. ``close()``
    stops the listener, joins its thread and closes what the referee holds.
    """

    def __init__(self, folder: Path, relay_path: str):
        self.path = str(Path(folder) / "peer.sock")
        self.referee = Referee(RelayDialer(Path(folder), relay_path))
        self.cell: str | None = None          # the test cell running now (set by the executor)
        self.verdicts: list[Verdict] = []
        self._lock = threading.Lock()         # guards verdicts and _open_requests
        self._open_requests = 0
        self._closing = threading.Event()     # set by close(): the accept loop ends
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._thread = threading.Thread(target=self._accept_loop, name="peer-service", daemon=True)
        self._thread.start()

    def verdicts_for(self, cell: str) -> list[Verdict]:
        with self._lock:
            return [v for v in self.verdicts if v.cell == cell]

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                busy = self._open_requests >= MAX_OPEN_REQUESTS
                if not busy:
                    self._open_requests += 1
            if busy:
                conn.close()
                continue
            threading.Thread(target=self._answer, args=(conn, self.cell), name="peer-request",
                             daemon=True).start()

    def _answer(self, conn: socket.socket, cell: str | None) -> None:
        try:
            with conn:
                conn.settimeout(10)
                data = b""
                while not data.endswith(b"\n") and len(data) <= MAX_REQUEST:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                try:
                    request = json.loads(data)
                    op = str(request.pop("op"))
                except (ValueError, KeyError, AttributeError, TypeError):
                    conn.sendall(b'{"ok": false, "message": "not a check request"}\n')
                    return
                answer = self.referee.handle(op, request)
                with self._lock:
                    self.verdicts.append(Verdict(cell, op, bool(answer.get("ok")), str(answer.get("message", ""))))
                conn.settimeout(5)
                conn.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass
        finally:
            with self._lock:
                self._open_requests -= 1

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)
        self._listener.close()
        self.referee.close()
