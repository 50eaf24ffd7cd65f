"""Tests of course_lib.loadtest: many clients at once from one thread, errors counted, bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from course_lib import daytime_styles as styles
from course_lib import loadtest, servers
from tests.waiting import nothing_left_behind, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_leaks():
    """Every test leaves no thread, fd or socket behind."""
    with nothing_left_behind(kind="inet"):
        yield


def _closed_port() -> tuple:
    """An address nobody listens on (bound, then closed: the kernel refuses connections)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()


def test_measure_counts_every_reply_and_reports_latencies():
    """Against a day/time server, are all clients x rounds served, with p50 <= p99 and a rate?"""
    with styles.SelectorsDaytime() as server:
        result = loadtest.measure(server.address, 50, rounds=3, timeout=10)
    assert result.served == 150 and result.errors == {}
    assert result.clients == 50 and result.rounds == 3
    assert 0 < result.p50_ms <= result.p99_ms < 10_000
    assert result.connections_per_s > 0 and result.elapsed_s > 0
    assert len(result.latencies_ms) == 150 and result.latencies_ms == sorted(result.latencies_ms)
    assert "150 served" in str(result)


def test_measure_has_300_clients_in_flight_at_once():
    """Does a server that replies only once 300 clients are connected serve all 300 of one round?"""
    release = threading.Event()  # set by the watcher once 300 connections were accepted
    reached = []

    class Gate(servers.BackgroundServer):  # every handler waits until all clients are connected
        max_clients = 400

        def handle_client(self, conn, addr):
            release.wait(10)
            conn.sendall(b"ok\r\n")

    def watch(server):
        reached.append(wait_until(lambda: server.clients_accepted >= 300, timeout=10))
        release.set()

    with Gate(backlog=512) as server:
        watcher = threading.Thread(target=watch, args=(server,), daemon=True)
        watcher.start()
        result = loadtest.measure(server.address, 300, timeout=15)
        watcher.join(5)
    assert reached == [True], "the 300 connections were never open at the same time"
    assert result.served == 300 and result.errors == {}


def test_measure_counts_refused_connections_as_errors():
    """With no server listening, is every client counted as ECONNREFUSED (and nothing served)?"""
    result = loadtest.measure(_closed_port(), 20, rounds=2, timeout=5)
    assert result.served == 0 and result.errors == {"ECONNREFUSED": 40}
    assert result.p50_ms is None and result.p99_ms is None and result.connections_per_s == 0


def test_measure_counts_a_server_that_never_replies_as_timeouts_within_the_bound():
    """A server that accepts but never replies: is every client a "timeout", after ~timeout s?"""
    with servers.ScriptedServer([], hold=True) as server:
        began = time.monotonic()
        result = loadtest.measure(server.address, 10, timeout=0.5)
        elapsed = time.monotonic() - began
    assert result.errors == {"timeout": 10} and result.served == 0
    assert 0.5 <= elapsed < 2.5


def test_measure_counts_a_close_without_reply_as_no_reply():
    """A server that closes at once without a byte: is every client counted as "no reply"?"""
    with servers.ScriptedServer([]) as server:
        result = loadtest.measure(server.address, 10, timeout=5)
    assert result.errors == {"no reply": 10}


def test_measure_rejects_nonsense_arguments():
    """Are clients < 1, rounds < 1 and timeout <= 0 refused with ValueError?"""
    for kwargs in ({"clients": 0}, {"clients": 1, "rounds": 0}, {"clients": 1, "timeout": 0}):
        with pytest.raises(ValueError):
            loadtest.measure(("127.0.0.1", 9), **kwargs)


def test_measure_raises_the_soft_fd_limit_and_says_so():
    """In a process whose soft RLIMIT_NOFILE is 256, does measure(400) raise it, say so, succeed?"""
    script = textwrap.dedent("""
        import resource, sys
        sys.path.insert(0, sys.argv[1])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        from course_lib import daytime_styles, loadtest
        with daytime_styles.SelectorsDaytime() as server:
            result = loadtest.measure(server.address, 400, timeout=10)
        print(result.served, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        print(result.notes[0])
    """)
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    first, note = done.stdout.splitlines()[:2]
    served, soft = map(int, first.split())
    assert served == 400 and soft >= 800
    assert "raised the soft RLIMIT_NOFILE from 256" in note


def test_footprint_reports_a_child_process_threads_and_memory():
    """Does footprint(pid) see a child's 5 extra threads and its resident memory?"""
    script = ("import threading, sys; e = threading.Event()\n"
              "[threading.Thread(target=e.wait, daemon=True).start() for _ in range(5)]\n"
              "print('ready', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        seen = loadtest.footprint(child.pid)
        assert seen.pid == child.pid and seen.threads == 6
        assert 1 < seen.rss_mb < 500
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert loadtest.footprint().pid == os.getpid()
