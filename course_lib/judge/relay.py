"""A byte relay between the grader and the sandbox's loopback.

The judge kernel runs in a network namespace of its own, so the grader
cannot reach a student's server on the sandbox's ``127.0.0.1``, nor can a
student's client reach a server in the grader. This small process, started
by :mod:`course_lib.judge` before any cell runs and never importing student
code, carries bytes between the two over a Unix socket in the folder both
sides share. It holds no verdict: it only moves bytes, so the checks that
observe a server's replies or a client's requests run in the grader's
process (:mod:`autograder.peer`), where student code cannot reach them.

Each connection to the relay starts with one line:

``CONNECT host port abrupt``
    open a TCP connection inside the sandbox; the answer is ``OK`` or
    ``ERR text``, then bytes flow both ways. An end of input from the
    grader becomes a FIN (``abrupt`` 0) or a reset (``abrupt`` 1).
``LISTEN host unix-path``
    listen on ``host`` port 0 inside the sandbox; the answer is
    ``PORT n``. Each TCP client that connects is carried to a new
    connection to ``unix-path`` (the grader's own server). Closing this
    control connection closes the listener.

Run as ``python -P -m course_lib.judge.relay PATH [PARENT-PID]``; it ends with its parent.
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import sys
import threading
import time

__all__ = ["main", "pump"]

HEADER_BYTES = 512
CHUNK = 65536


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _read_header(conn: socket.socket) -> str:
    conn.settimeout(10)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk or len(data) > HEADER_BYTES:
            raise ConnectionError("no header")
        data += chunk
    conn.settimeout(None)
    return data.decode("ascii", "replace").strip()


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def pump(inside: socket.socket, outside: socket.socket, abrupt: bool = False) -> None:
    """Carry bytes both ways, in a thread of its own, until both directions end; then close both.

    An end of input is passed on as a half close, so "read until the server
    closes" works through the relay; with ``abrupt`` an end from ``outside``
    resets ``inside`` instead (a client that vanishes). One thread selects
    on both sockets, so no socket is closed under another thread's recv.
    """
    threading.Thread(target=_carry, args=(inside, outside, abrupt), daemon=True).start()


def _carry(inside: socket.socket, outside: socket.socket, abrupt: bool) -> None:
    peer_of = {inside: outside, outside: inside}
    open_ends = {inside, outside}
    try:
        with selectors.DefaultSelector() as selector:
            for sock in open_ends:
                selector.register(sock, selectors.EVENT_READ)
            while open_ends:
                for key, _ in selector.select():
                    src = key.fileobj
                    data = src.recv(CHUNK)
                    if data:
                        peer_of[src].sendall(data)
                        continue
                    selector.unregister(src)
                    open_ends.discard(src)
                    if src is outside and abrupt:
                        return  # the reset is below
                    peer_of[src].shutdown(socket.SHUT_WR)
    except OSError:
        pass  # a reset or a failure on either side: both end
    finally:
        if abrupt:
            _reset(inside)  # an abrupt client ends with a reset, however the pump ended
        for sock in (inside, outside):
            try:
                sock.close()
            except OSError:
                pass


def _connect(conn: socket.socket, host: str, port: int, abrupt: bool) -> None:
    try:
        inside = socket.create_connection((host, port), timeout=5)
        inside.settimeout(None)
    except OSError as error:
        conn.sendall(f"ERR {type(error).__name__}: {error}\n".encode("ascii", "replace"))
        conn.close()
        return
    conn.sendall(b"OK\n")
    pump(inside, conn, abrupt)


def _listen(conn: socket.socket, host: str, path: str) -> None:
    try:
        listener = socket.socket(_family(host), socket.SOCK_STREAM)
        listener.bind((host, 0))
        listener.listen(128)
    except OSError as error:
        conn.sendall(f"ERR {type(error).__name__}: {error}\n".encode("ascii", "replace"))
        conn.close()
        return
    conn.sendall(f"PORT {listener.getsockname()[1]}\n".encode())

    def accept_loop() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: the grader hung up the control connection
            try:
                outside = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                outside.connect(path)
            except OSError:
                _reset(client)
                continue
            pump(client, outside)

    threading.Thread(target=accept_loop, daemon=True).start()
    try:
        while conn.recv(1024):
            pass
    except OSError:
        pass
    listener.close()
    conn.close()


def _serve_one(conn: socket.socket) -> None:
    try:
        words = _read_header(conn).split()
        if len(words) == 4 and words[0] == "CONNECT":
            _connect(conn, words[1], int(words[2]), words[3] == "1")
        elif len(words) == 3 and words[0] == "LISTEN":
            _listen(conn, words[1], words[2])
        else:
            conn.sendall(b"ERR bad request\n")
            conn.close()
    except (OSError, ValueError):
        conn.close()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0]
    parent = int(argv[1]) if len(argv) > 1 else os.getppid()  # given: the parent may be gone already
    try:
        os.unlink(path)  # left by the relay of a kernel that died
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)

    def accept_loop() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    while os.getppid() == parent:  # the kernel that started us is gone: so are we
        time.sleep(0.2)


if __name__ == "__main__":
    main()
