"""Server styles compared fairly from a notebook: each in a process of its own, several runs, medians and spread.

Measured inside the kernel, a server shares one interpreter (and its GIL)
with the load tester and with whatever else the kernel runs, so two runs of
the same cell can disagree by a factor of ten and rank the styles in
opposite orders. Here each style of :mod:`course_lib.daytime_styles` runs as
``python -P -m course_lib.comparison STYLE DELAY`` in a child process (its own
interpreter: its threads are its own), the runs alternate between the styles
so that a burst of load elsewhere hits them all, and each level reports the
median over the runs with the smallest and largest value. :func:`ranking`
says, from those numbers, which styles a run can tell apart and which it
cannot (their ranges overlap) — so a lesson never claims an order the
measurement does not show.

    compare(["thread", "selectors", "asyncio"], levels=(10, 100), runs=5)   -> list[Row]
    ranking(rows, clients)       "selectors > thread" or "cannot rank thread and asyncio ..."
    thread_start_cost()          seconds to start and join one thread, here, now

Everything is bounded: a child that does not say its address within
``START_S`` is killed, every measurement has ``timeout``, and the children
are stopped (stdin closed, then killed) when the comparison ends.
"""

from __future__ import annotations

import os
import selectors
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from . import loadtest

__all__ = ["STYLES", "Row", "ChildServer", "compare", "ranking", "thread_start_cost"]

#: Short name -> the class of course_lib.daytime_styles.
STYLES = {"thread": "ThreadPerClientDaytime", "selectors": "SelectorsDaytime", "asyncio": "AsyncioDaytime"}
START_S = 30.0


@dataclass
class Row:
    """One style at one level, over every run: connections a second and p99 latency (ms)."""

    style: str
    clients: int
    conn_per_s: list[float]
    p99_ms: list[float]
    errors: int

    @property
    def median(self) -> float:
        return statistics.median(self.conn_per_s)

    @property
    def low(self) -> float:
        return min(self.conn_per_s)

    @property
    def high(self) -> float:
        return max(self.conn_per_s)

    def __str__(self) -> str:
        p99 = statistics.median(self.p99_ms) if self.p99_ms else float("nan")
        return (f"{self.style:<10} {self.clients:>5} clients  {self.median:8,.0f} conn/s "
                f"(runs {self.low:,.0f}–{self.high:,.0f})  p99 {p99:6.1f} ms  errors {self.errors}")


class ChildServer:
    """One style served by a process of its own; ``stop()`` closes its stdin, which ends it."""

    def __init__(self, style: str, delay: float = 0.0):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; the styles are {', '.join(STYLES)}")
        self.style = style
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "course_lib.comparison", STYLES[style], str(delay)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env)
        self.address = None

    def wait_ready(self, timeout: float = START_S) -> tuple[str, int]:
        """The (host, port) the child serves on, read from its first line within ``timeout``."""
        with selectors.DefaultSelector() as ready:
            ready.register(self.proc.stdout, selectors.EVENT_READ)
            if not ready.select(timeout):
                self.stop()
                raise TimeoutError(f"the {self.style} server did not start within {timeout:g} s")
        words = self.proc.stdout.readline().split()
        if len(words) != 2:
            self.stop()
            raise RuntimeError(f"the {self.style} server did not start (exit code {self.proc.poll()})")
        self.address = (words[0], int(words[1]))
        return self.address

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()


def compare(styles=tuple(STYLES), *, levels=(10, 100), runs: int = 5, rounds: int = 2, delay: float = 0.0,
            timeout: float = 10.0) -> list[Row]:
    """Serve each style from its own process; measure every level ``runs`` times, alternating styles."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    children = {style: ChildServer(style, delay) for style in styles}  # they start side by side
    try:
        for child in children.values():
            child.wait_ready()
            loadtest.measure(child.address, 10, rounds=1, timeout=timeout)  # warm up: first connections
        rows = {(s, n): Row(s, n, [], [], 0) for n in levels for s in styles}
        for _ in range(runs):
            for clients in levels:
                for style, child in children.items():
                    result = loadtest.measure(child.address, clients, rounds=rounds, timeout=timeout)
                    row = rows[style, clients]
                    row.conn_per_s.append(result.connections_per_s)
                    if result.p99_ms is not None:
                        row.p99_ms.append(result.p99_ms)
                    row.errors += sum(result.errors.values())
        return list(rows.values())
    finally:
        for child in children.values():
            child.stop()


def ranking(rows: list[Row], clients: int) -> str:
    """What the runs at ``clients`` show: an order where the ranges are apart, "cannot rank" where they overlap."""
    level = sorted((r for r in rows if r.clients == clients), key=lambda r: r.median, reverse=True)
    parts = []
    for faster, slower in zip(level, level[1:]):
        if faster.low > slower.high:
            parts.append(f"{faster.style} > {slower.style} (every run: {faster.low:,.0f} vs at most "
                         f"{slower.high:,.0f} conn/s)")
        else:
            parts.append(f"cannot rank {faster.style} and {slower.style}: their runs overlap "
                         f"({faster.low:,.0f}–{faster.high:,.0f} vs {slower.low:,.0f}–{slower.high:,.0f} conn/s)")
    return f"{clients} clients: " + "; ".join(parts)


def thread_start_cost(count: int = 500) -> float:
    """Seconds to start and join one thread that does nothing (the median of ``count``)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join(5)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _serve(style_class: str, delay: str) -> None:
    """The child: serve one style, print its address, stop when stdin closes."""
    import resource

    from . import daytime_styles

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096 if hard == resource.RLIM_INFINITY else min(4096, hard), hard))
    server = getattr(daytime_styles, style_class)(delay=float(delay)).start()
    print(server.address[0], server.address[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    server.stop(timeout=5)


if __name__ == "__main__":
    _serve(*sys.argv[1:3])
