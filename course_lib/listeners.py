"""Listening sockets for the notebook's servers, with bind errors that say what to do.

"Address already in use" names who holds the port (a server of this kernel,
a background function, or another process via psutil); a port below 1024
explains privileges; an address the machine lacks asks about IPv6.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from .handles import PortInUseError, PortPermissionError, ServerError
from .registry import tracked

__all__ = ["family_for", "who_holds", "bind_listener"]


def family_for(host) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address ("::1"), AF_INET for the rest (names resolve to IPv4 here)."""
    return socket.AF_INET6 if ":" in str(host) else socket.AF_INET


def who_holds(port: int) -> str:
    """Say which registered server or which process listens on ``port``."""
    for handle in tracked():
        if handle.running and handle._listens_on(port):
            return f"{handle._described()} started in this kernel"
    try:
        import os

        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return "another process (its owner is not visible to you)"
                if conn.pid == os.getpid():
                    return (
                        f"this kernel itself (process {conn.pid}): a socket you created in an "
                        "earlier cell is still open; restart the kernel or close it"
                    )
                try:
                    proc = psutil.Process(conn.pid)
                    return f"process {conn.pid} ({proc.name()}: {' '.join(proc.cmdline())[:80]})"
                except psutil.Error:
                    return f"process {conn.pid}"
    except Exception:  # psutil missing, or not allowed to list connections
        pass
    return "another program (it could not be identified)"


def bind_listener(host: str = "127.0.0.1", port: int = 0, backlog: int = 128) -> socket.socket:
    """Create, bind and listen a TCP socket, turning bind errors into clear ones.

    ``SO_REUSEADDR`` lets a server restart on the port it just left (whose
    old connections wait in TIME_WAIT); on Linux it does *not* let two
    servers listen on the same port, so "port in use" is still detected.
    """
    family = family_for(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port))
        except PermissionError as exc:
            raise PortPermissionError(
                f"permission denied binding {host}:{port}: ports below 1024 are reserved "
                "for the system administrator. Use port=0 (the system picks a free "
                "port) or a port above 1023."
            ) from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use by {who_holds(port)}. "
                    "Use port=0 to get a free port, or stop the other server first "
                    "(servers.running() lists what this kernel runs)."
                ) from exc
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise ServerError(
                    f"cannot bind {host}:{port}: this machine has no such address "
                    f"({exc.strerror}). Is IPv6 disabled?"
                ) from exc
            raise
        sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise
