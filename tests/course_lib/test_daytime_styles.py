"""Tests of course_lib.daytime_styles: three TCP styles and UDP, real clients on loopback, bounded."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time

import pytest

from course_lib import daytime_styles as styles
from course_lib import servers
from course_lib.grading import read_until_closed
from course_lib.handles import PortInUseError
from tests.waiting import nothing_left_behind, wait_until

TCP_STYLES = [styles.ThreadPerClientDaytime, styles.SelectorsDaytime, styles.AsyncioDaytime]
ONE_THREAD = [styles.SelectorsDaytime, styles.AsyncioDaytime]
RFC867 = re.compile(rb"^[A-Z][a-z]+day, [A-Z][a-z]+ \d\d, \d{4} \d\d:\d\d:\d\d-\S+\r\n$")


@pytest.fixture(autouse=True)
def _no_leaks():
    """Every test leaves no thread, fd or socket behind."""
    with nothing_left_behind(kind="all"):
        yield


def _read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read until the peer closes (no size limit), bounded in time."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


@pytest.mark.parametrize("style", TCP_STYLES)
def test_each_style_sends_one_rfc867_line_and_closes(style):
    """Does each TCP style send one RFC 867 line with CRLF, close, and count the client?"""
    with style() as server:
        assert server.start is not None and server.address[1] != 0
        with socket.create_connection(server.address, timeout=3) as sock:
            assert RFC867.match(read_until_closed(sock, timeout=3))
        assert wait_until(lambda: server.clients_served == 1, timeout=3)
    assert not server.running and server.threads == []


@pytest.mark.parametrize("style", TCP_STYLES)
@pytest.mark.parametrize("tool", ["nc", "socat"])
def test_each_style_serves_nc_and_socat(style, tool):
    """Do nc and socat get the line from each style and exit when it closes?"""
    with style() as server:
        host, port = server.address
        command = (["nc", "-w", "5", host, str(port)] if tool == "nc"
                   else ["socat", "-T", "5", "-", f"TCP:{host}:{port}"])
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert RFC867.match(done.stdout), done


def test_start_returns_self_and_threads_is_a_list_that_can_be_called():
    """Is start() chainable, and .threads both a list and callable (as on every handle)?"""
    server = styles.SelectorsDaytime().start()
    try:
        assert isinstance(server.threads, list) and len(server.threads) == 1
        assert server.threads() == server.threads
    finally:
        server.stop()


@pytest.mark.parametrize("style", ONE_THREAD)
def test_200_clients_at_once_are_served_by_one_thread(style):
    """Are 200 clients connected at the same time all served, by exactly one server thread?"""
    before = threading.active_count()
    with style() as server:
        socks = [socket.create_connection(server.address, timeout=5) for _ in range(200)]
        try:
            assert len(server.threads) == 1 and threading.active_count() == before + 1
            replies = [read_until_closed(sock, timeout=5) for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        assert all(RFC867.match(reply) for reply in replies)
        assert wait_until(lambda: server.clients_served == 200, timeout=3)
        assert len(server.threads) == 1


def test_thread_per_client_uses_a_thread_per_connected_client():
    """Does ThreadPerClientDaytime hold one thread per client still being served?"""
    line = "x" * 4_000_000  # too long to fit in the socket buffers: senders wait for readers
    with styles.ThreadPerClientDaytime(clock=lambda: line) as server:
        socks = []
        for _ in range(5):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.address)
            socks.append(sock)
        try:
            assert wait_until(lambda: len(server.threads) == 6, timeout=3), server.threads
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("style", TCP_STYLES)
def test_a_client_that_never_reads_does_not_delay_the_others(style):
    """While one client never reads an 8 MB reply, do 5 others get theirs in full (bounded)?"""
    line = "x" * 8_000_000
    with style(clock=lambda: line) as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(server.address)
        try:
            time.sleep(0.05)  # let the server start sending to it (not needed for correctness)
            began = time.monotonic()
            for _ in range(5):
                with socket.create_connection(server.address, timeout=5) as sock:
                    assert len(_read_all(sock, timeout=10)) == len(line) + 2
            elapsed = time.monotonic() - began
            # Ordering fact: the others are done while the stalled client still waits for its reply.
            assert server.clients_served == 5
            if isinstance(server, styles.SelectorsDaytime):
                assert len(server.pending) == 1 and len(next(iter(server.pending.values()))) > 0
            assert elapsed < 10
        finally:
            stalled.close()


@pytest.mark.parametrize("style", TCP_STYLES)
def test_stop_is_prompt_with_a_stalled_client_and_frees_the_port(style):
    """Does stop() return within a second with a client stuck mid-reply, and free the port?"""
    line = "x" * 8_000_000
    server = style(clock=lambda: line).start()
    port = server.address[1]
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(server.address)
    time.sleep(0.05)
    began = time.monotonic()
    server.stop(timeout=3)
    assert time.monotonic() - began < 1.0
    assert server.threads == []
    stalled.close()
    again = style(port=port).start()  # the same port can be had again
    again.stop()


@pytest.mark.parametrize("style", TCP_STYLES + [styles.UdpDaytimeServer])
def test_a_taken_port_raises_a_clear_error(style):
    """Does starting a style on a port already in use fail at start(), leaving no thread?"""
    with style() as first:
        second = style(port=first.address[1])
        with pytest.raises(OSError) as info:
            second.start()
        if style is not styles.UdpDaytimeServer:
            assert isinstance(info.value, PortInUseError)
        assert second.threads == []


def _udp_ask(address, timeout: float) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(b"what time is it?", address)
        try:
            return sock.recv(2048)
        except TimeoutError:
            return None


def test_udp_replies_with_one_datagram():
    """Does the UDP server answer one datagram with one datagram holding the RFC 867 line?"""
    with styles.UdpDaytimeServer() as server:
        assert RFC867.match(_udp_ask(server.address, timeout=3))
        assert server.requests == 1 and server.clients_served == 1 and len(server.threads) == 1
    assert server.threads == []


@pytest.mark.parametrize("tool", ["nc", "socat"])
def test_udp_serves_nc_and_socat(tool):
    """Do `nc -u` and socat's UDP client get the line?"""
    with styles.UdpDaytimeServer() as server:
        host, port = server.address
        command = (["nc", "-u", "-w", "1", host, str(port)] if tool == "nc"
                   else ["socat", "-T", "1", "-", f"UDP:{host}:{port}"])
        done = subprocess.run(command, input=b"\n", capture_output=True, timeout=10)
    assert RFC867.match(done.stdout), done


def test_udp_drop_every_makes_the_client_time_out_exactly_on_the_dropped_requests():
    """With drop_every=3, do requests 3 and 6 (and only they) time out, and a retry then succeed?"""
    with styles.UdpDaytimeServer(drop_every=3) as server:
        outcomes = [_udp_ask(server.address, timeout=0.3) is not None for _ in range(7)]
        assert outcomes == [True, True, False, True, True, False, True]
        assert server.requests == 7 and server.dropped == 2 and server.clients_served == 5
        assert server.log.messages("dropped")[0].startswith("request 3 ")


def test_udp_drop_every_must_be_positive():
    """Is drop_every=0 refused with a ValueError?"""
    with pytest.raises(ValueError):
        styles.UdpDaytimeServer(drop_every=0)


def test_styles_are_registrable_and_stopped_by_stop_all():
    """Does servers.start list a style, and servers.stop_all stop every style, registered or not?"""
    registered = servers.start(styles.SelectorsDaytime(), name="sel")
    loose = [style().start() for style in (styles.ThreadPerClientDaytime, styles.AsyncioDaytime,
                                           styles.UdpDaytimeServer)]
    assert registered in servers.running()
    servers.stop_all(timeout=3)
    assert not any(s.running for s in [registered, *loose])
    assert all(s.threads == [] for s in [registered, *loose])


@pytest.mark.parametrize("style", TCP_STYLES)
def test_a_delayed_reply_does_not_make_clients_wait_for_each_other(style):
    """With delay=0.2 s, are 20 clients at once all served in well under 20 x 0.2 s?"""
    with style(delay=0.2) as server:
        socks = [socket.create_connection(server.address, timeout=5) for _ in range(20)]
        began = time.monotonic()
        try:
            replies = [read_until_closed(sock, timeout=5) for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        elapsed = time.monotonic() - began
        assert all(RFC867.match(reply) for reply in replies)
        assert 0.15 <= elapsed < 2.0  # one after the other would take 4 s
        if style is not styles.ThreadPerClientDaytime:
            assert len(server.threads) == 1


def test_stop_is_prompt_while_replies_are_delayed():
    """Does stop() return at once while the selector holds replies due in 10 s?"""
    for style in TCP_STYLES:
        server = style(delay=10).start()
        sock = socket.create_connection(server.address, timeout=3)
        assert wait_until(lambda: len(getattr(server, "due", [None])) == 1, timeout=3)
        began = time.monotonic()
        server.stop(timeout=3)
        assert time.monotonic() - began < 1.0, style
        sock.close()
