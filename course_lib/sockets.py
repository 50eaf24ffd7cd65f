"""Deterministic socket demos for the lessons: a connected TCP pair, bytes waiting unread.

Not about chat: lesson 08 uses them to show, every time, that two ``send``
calls can come out of one ``recv`` (wait until both have arrived, then read).
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time

__all__ = ["tcp_pair", "bytes_waiting", "wait_for_bytes"]


def tcp_pair(timeout: float = 5.0) -> tuple[socket.socket, socket.socket]:
    """A connected ``(client, server)`` pair of real TCP sockets on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        try:
            server, _ = listener.accept()
        except BaseException:
            client.close()
            raise
    server.settimeout(timeout)
    return client, server


def bytes_waiting(sock: socket.socket) -> int:
    """How many received bytes wait in ``sock``'s buffer, unread (Linux ``FIONREAD``)."""
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def wait_for_bytes(sock: socket.socket, count: int, timeout: float = 5.0) -> int:
    """Wait until at least ``count`` bytes wait unread in ``sock``; return how many.

    This is how the lesson shows *deterministically* that two ``send`` calls
    can come out of one ``recv``: once both have arrived, ``recv(1024)``
    returns them glued together.
    """
    deadline = time.monotonic() + timeout
    while True:
        waiting = bytes_waiting(sock)
        if waiting >= count:
            return waiting
        if time.monotonic() >= deadline:
            raise TimeoutError(f"only {waiting} of {count} bytes arrived within {timeout:g} s")
        time.sleep(0.001)
