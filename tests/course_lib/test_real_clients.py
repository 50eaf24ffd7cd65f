"""Real, non-Python clients (OpenBSD netcat, socat) against the in-kernel servers.

The binaries come from Debian (`netcat-openbsd`, `socat`), installed by
`.ci/run`; each test is skipped with a message naming the missing package.
Replies are checked against what RFC 867 allows: one line of printable
ASCII (here ended by CRLF), then the server closes the connection.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess

import pytest

from course_lib import servers

NC = shutil.which("nc")
SOCAT = shutil.which("socat")

needs_nc = pytest.mark.skipif(NC is None, reason="nc not found: install Debian's netcat-openbsd")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat not found: install Debian's socat")


def _ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _run(cmd, timeout=5.0) -> bytes:
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd[0]} exited {result.returncode}: {result.stderr!r}"
    return result.stdout


def assert_rfc867(reply: bytes) -> None:
    """One CRLF-terminated line of printable ASCII, close to the current time."""
    assert reply.endswith(b"\r\n"), f"reply must end the line with CRLF: {reply!r}"
    line = reply[:-2]
    assert b"\n" not in line and b"\r" not in line, f"more than one line: {reply!r}"
    text = line.decode("ascii")  # raises if not ASCII
    assert text.isprintable() and text, f"not printable: {reply!r}"
    # Our format is the RFC's example layout: "Weekday, Month DD, YYYY HH:MM:SS-ZONE".
    stamp, _, zone = text.rpartition("-")
    when = dt.datetime.strptime(stamp, "%A, %B %d, %Y %H:%M:%S")
    assert zone, "the time zone is missing"
    assert abs((dt.datetime.now() - when).total_seconds()) < 60


@pytest.fixture
def daytime():
    with servers.DaytimeServer() as server:
        yield server


@needs_nc
def test_nc_reads_the_daytime_line(daytime):
    """Does netcat (not reading stdin, -d) receive an RFC 867 reply and see the close?"""
    host, port = daytime.address
    assert_rfc867(_run([NC, "-d", host, str(port)]))
    assert daytime.clients_served == 1


@needs_nc
def test_nc_with_shutdown_on_eof(daytime):
    """Does `nc -N` (closes its sending side at end of input) get the same reply?"""
    host, port = daytime.address
    assert_rfc867(_run([NC, "-N", host, str(port)]))


@needs_socat
def test_socat_unidirectional(daytime):
    """Does `socat -u TCP:host:port STDOUT` (which waits for the reply) receive it?"""
    host, port = daytime.address
    assert_rfc867(_run([SOCAT, "-u", f"TCP:{host}:{port}", "STDOUT"]))


@needs_nc
def test_nc_over_ipv6():
    """Does netcat reach a day/time server on the IPv6 loopback?"""
    if not _ipv6_available():
        pytest.skip("IPv6 loopback (::1) is not available")
    with servers.DaytimeServer(host="::1") as server:
        assert_rfc867(_run([NC, "-6", "-d", "::1", str(server.port)]))


@needs_socat
def test_socat_over_ipv6():
    """Does socat reach a day/time server on the IPv6 loopback?"""
    if not _ipv6_available():
        pytest.skip("IPv6 loopback (::1) is not available")
    with servers.DaytimeServer(host="::1") as server:
        assert_rfc867(_run([SOCAT, "-u", f"TCP6:[::1]:{server.port}", "STDOUT"]))


@needs_socat
def test_socat_echo_round_trip():
    """Does the echo server return what socat sends, and close when socat's input ends?"""
    with servers.EchoServer() as server:
        host, port = server.address
        result = subprocess.run([SOCAT, "-t", "2", "-", f"TCP:{host}:{port}"],
                                input=b"hello\r\n", capture_output=True, timeout=5)
        assert result.stdout == b"hello\r\n"


@needs_nc
def test_nc_against_a_student_server_run_in_background():
    """Does netcat get a reply from the syllabus server run through background()?"""
    def day_time_server(port=0):
        from datetime import datetime

        server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server_socket.bind(("127.0.0.1", port))
            server_socket.listen(5)
            while True:
                client_socket, _ = server_socket.accept()
                client_socket.send(datetime.now().strftime("%Y-%m-%d %H:%M:%S").encode())
                client_socket.close()
        finally:
            server_socket.close()

    job = servers.background(day_time_server, port=0)
    try:
        reply = _run([NC, "-d", "127.0.0.1", str(job.port)])
        # The syllabus's reply has no line end: RFC 867 asks for a line.
        assert len(reply) == 19 and not reply.endswith(b"\n")
    finally:
        job.stop(timeout=2)
