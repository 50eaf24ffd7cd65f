"""The judge's private channel to the grader: signed lines out, requests in.

One Unix-socket connection, opened by the judge before ipykernel starts and
before any cell runs. The grader's first message (read before any student
code exists) carries a fresh key and every test's source; after it the
grader sends only requests ("run test 3", "call parse_host_port with these
arguments"), never test code. Every line the judge sends is signed with
that key (HMAC-SHA256), so bytes written onto the socket by anything else
in the kernel — student code that found the descriptor — are refused by
the grader as tampering, not taken as verdicts.

What it trades off: the key lives only in the closures :func:`open_channel`
returns (no attribute names it), and the solution policy proves no chain of
attributes reaches those closures or a frame holding them. The channel cannot
stop student code from *reading* requests off the socket: that only loses the
student their tests, never reveals a test's code, which is not on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading

__all__ = ["open_channel", "sign", "MAX_REQUEST"]

MAX_REQUEST = 32 << 20  # the first message holds every test's source


def sign(key: bytes, text: str) -> str:
    """The signed form of one line: ``MAC SPACE TEXT`` (the grader checks the MAC)."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest() + " " + text


def open_channel(path: str, timeout: float = 30.0):
    """Connect to the grader at ``path``, say hello, read its set-up message.

    Returns ``(setup, send, requests)``: the grader's first message (a dict),
    a function that signs and sends one message (thread safe), and an
    iterator of the grader's later requests (ends when the grader closes).
    """
    import os

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    os.set_inheritable(sock.fileno(), False)
    sock.sendall((json.dumps({"hello": os.getpid()}) + "\n").encode())
    buffered = bytearray()

    def read_line(limit: int) -> bytes | None:
        while b"\n" not in buffered:
            if len(buffered) > limit:
                raise ConnectionError("the grader sent a line longer than allowed")
            chunk = sock.recv(1 << 16)
            if not chunk:
                return None
            buffered.extend(chunk)
        end = buffered.index(b"\n")
        line = bytes(buffered[:end])
        del buffered[:end + 1]
        return line

    first = read_line(MAX_REQUEST)
    if first is None:
        raise ConnectionError("the grader closed the channel before its set-up message")
    setup = json.loads(first)
    key = bytes.fromhex(setup.pop("key"))
    sock.settimeout(None)
    lock = threading.Lock()  # held by one thread while it writes one signed line

    def send(message: dict) -> None:
        line = sign(key, json.dumps(message, default=str)) + "\n"
        try:
            with lock:
                sock.sendall(line.encode("utf-8"))
        except OSError:
            pass  # the grader sees the channel end and says so

    def requests():
        while True:
            try:
                line = read_line(1 << 20)
            except OSError:
                return
            if line is None:
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                yield message

    return setup, send, requests()
