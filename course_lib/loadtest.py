"""A small load tester: many clients at once from ONE thread, and a process's footprint.

``measure(address, clients)`` opens ``clients`` TCP connections *at the same
time* — non-blocking ``connect`` on each, then a selector that waits for all
of them — reads each reply until the server closes, and reports how many
connections a second were served and how long each took (connect to reply
complete). One thread is enough for 1,000 clients, so the tester itself
costs no thread per client and does not distort a comparison of servers.

``footprint(pid)`` reads a process's threads and resident memory (psutil).

What it trades off:

* One thread in Python: on a 2-core machine the tester competes with the
  server for the CPU, and it may itself be what limits connections a second
  for a very fast server. Quote ratios between servers measured in the same
  run, not absolute numbers.
* Every socket is a file descriptor: ``measure`` raises the *soft*
  RLIMIT_NOFILE (never the hard one) when it needs more, and says so in
  :attr:`LoadResult.notes`.
* Everything is bounded: each round ends ``timeout`` seconds after it began;
  connections still open then are counted as errors of kind ``"timeout"``.
"""

from __future__ import annotations

import collections
import errno
import math
import os
import selectors
import socket
import time
from dataclasses import dataclass, field

from .listeners import family_for

__all__ = ["measure", "LoadResult", "footprint", "Footprint"]


@dataclass
class LoadResult:
    """What one :func:`measure` saw. Times are milliseconds, from connect to the reply's end."""

    clients: int  # connections opened at once, each round
    rounds: int
    served: int  # connections that got a reply and a clean close
    elapsed_s: float  # total time of the rounds
    connections_per_s: float  # served / elapsed_s
    p50_ms: float | None  # median latency (None if nothing was served)
    p99_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)  # kind ("ECONNREFUSED", "timeout", ...) -> count
    notes: list[str] = field(default_factory=list)  # e.g. "raised the soft RLIMIT_NOFILE ..."
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        def ms(value):
            return "-" if value is None else f"{value:.1f} ms"

        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "none"
        text = (f"{self.clients} clients x {self.rounds} round(s): {self.served} served, "
                f"{self.connections_per_s:.0f} conn/s, p50 {ms(self.p50_ms)}, p99 {ms(self.p99_ms)}, "
                f"errors: {errors}")
        return "\n".join([text, *self.notes])


@dataclass
class Footprint:
    """A process's threads and resident memory, at one moment."""

    pid: int
    threads: int
    rss_bytes: int

    @property
    def rss_mb(self) -> float:
        return self.rss_bytes / 1e6


def footprint(pid: int | None = None) -> Footprint:
    """Threads and resident memory (RSS) of process ``pid`` (default: this one), via psutil."""
    import psutil

    proc = psutil.Process(pid if pid is not None else os.getpid())
    with proc.oneshot():
        return Footprint(proc.pid, proc.num_threads(), proc.memory_info().rss)


def _ensure_fds(needed: int, notes: list[str]) -> None:
    """Raise the soft RLIMIT_NOFILE to ``needed`` if it is lower (the hard limit permitting)."""
    try:
        import resource
    except ImportError:  # not Unix: nothing to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ValueError(f"{needed} file descriptors are needed but the hard RLIMIT_NOFILE is {hard}: "
                         "use fewer clients (or ask the administrator for a higher limit)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    notes.append(f"raised the soft RLIMIT_NOFILE from {soft} to {needed} (hard limit {hard}) "
                 "for this process")


def _kind(code: int) -> str:
    return errno.errorcode.get(code, f"errno {code}")


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _one_round(address, clients: int, timeout: float, errors: collections.Counter) -> tuple[list, float]:
    """Open ``clients`` connections at once, read each until closed; return latencies (s), elapsed."""
    family = family_for(address[0])
    began: dict[socket.socket, float] = {}  # open socket -> when its connect started
    received: dict[socket.socket, int] = {}
    latencies: list[float] = []
    start = time.monotonic()
    deadline = start + timeout
    with selectors.DefaultSelector() as selector:

        def finish(sock, kind=None):
            selector.unregister(sock)
            sock.close()
            t0 = began.pop(sock)
            if received.pop(sock, 0) == 0 and kind is None:
                kind = "no reply"  # closed without sending a byte
            if kind is None:
                latencies.append(time.monotonic() - t0)
            else:
                errors[kind] += 1

        try:
            for _ in range(clients):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                t0 = time.monotonic()
                code = sock.connect_ex(tuple(address[:2]))
                if code not in (0, errno.EINPROGRESS):
                    sock.close()
                    errors[_kind(code)] += 1
                    continue
                began[sock] = t0
                selector.register(sock, selectors.EVENT_WRITE, "connecting")
            while began:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for key, _ in selector.select(left):
                    sock = key.fileobj
                    if key.data == "connecting":
                        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if code:
                            finish(sock, _kind(code))
                        else:
                            selector.modify(sock, selectors.EVENT_READ, "reading")
                        continue
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        finish(sock, _kind(exc.errno) if exc.errno else type(exc).__name__)
                        continue
                    if data:
                        received[sock] = received.get(sock, 0) + len(data)
                    else:
                        finish(sock)
        finally:
            for sock in list(began):  # still open at the deadline (or after an exception)
                errors["timeout"] += 1
                sock.close()
            began.clear()
    return latencies, max(time.monotonic() - start, 1e-9)  # the round ends when its last reply does


def measure(address, clients: int, *, rounds: int = 1, timeout: float = 10.0) -> LoadResult:
    """Open ``clients`` connections to ``address`` at once, ``rounds`` times; time each reply.

    Every connection is opened before any reply is read (non-blocking
    ``connect`` + a selector, one thread), then each is read until the server
    closes. ``connections_per_s`` is replies served over the rounds' total
    time; ``p50_ms``/``p99_ms`` are from ``connect`` to the reply's end;
    ``errors`` counts failures by kind: an errno name (``"ECONNREFUSED"``,
    ``"ECONNRESET"``), ``"no reply"`` (closed without a byte) or
    ``"timeout"`` (still open ``timeout`` s after the round began).
    """
    if clients < 1 or rounds < 1:
        raise ValueError("clients and rounds must be at least 1")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    notes: list[str] = []
    # This process's sockets, plus the server's if it runs in this process (a notebook's kernel).
    _ensure_fds(2 * clients + 256, notes)
    errors: collections.Counter = collections.Counter()
    latencies: list[float] = []
    elapsed = 0.0
    for _ in range(rounds):
        round_latencies, round_elapsed = _one_round(address, clients, timeout, errors)
        latencies += round_latencies
        elapsed += round_elapsed
    ordered = sorted(t * 1000 for t in latencies)
    return LoadResult(
        clients=clients, rounds=rounds, served=len(latencies), elapsed_s=elapsed,
        connections_per_s=len(latencies) / elapsed,
        p50_ms=_percentile(ordered, 0.50), p99_ms=_percentile(ordered, 0.99),
        errors=dict(errors), notes=notes, latencies_ms=ordered,
    )
