"""Tests of course_lib.servers: real sockets on loopback, bounded in time."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from course_lib import background as background_mod
from course_lib import servers
from course_lib.grading import read_until_closed


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    servers.stop_all(timeout=2.0)


def _daytime_reply(address, timeout=3.0) -> bytes:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        return read_until_closed(sock, timeout=timeout)


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def _resources():
    proc = psutil.Process()
    return threading.active_count(), proc.num_fds(), len(proc.net_connections(kind="inet"))


def _wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# ---------------------------------------------------------------- lifecycle


def test_daytime_replies_one_line_and_counts_the_client():
    """Does the day/time server send one CRLF-terminated ASCII line, close, and count it?"""
    with servers.DaytimeServer() as server:
        reply = _daytime_reply(server.address)
        assert reply.endswith(b"\r\n") and reply.count(b"\n") == 1
        assert reply[:-2].decode("ascii").isprintable()
        assert server.clients_served == 1
        assert server.address[1] != 0
    assert not server.running
    assert [e.kind for e in server.log][0] == "start"
    assert server.log.events()[-1].kind == "stop"


def test_200_start_stop_cycles_leak_no_threads_fds_or_sockets():
    """Do 200 start/serve/stop cycles leave thread, fd and socket counts where they were?"""
    # Warm up lazily created objects (selectors, psutil, the registry).
    for _ in range(3):
        with servers.DaytimeServer() as server:
            _daytime_reply(server.address)
    gc.collect()
    before = _resources()
    for i in range(200):
        server = servers.start(servers.DaytimeServer(), name=f"cycle-{i % 3}")
        assert _daytime_reply(server.address).endswith(b"\r\n")
        server.stop(timeout=2.0)
    gc.collect()
    assert _wait_for(lambda: _resources()[0] <= before[0])
    after = _resources()
    assert after[0] == before[0], f"threads: {before[0]} -> {after[0]}"
    assert after[1] <= before[1], f"file descriptors: {before[1]} -> {after[1]}"
    assert after[2] <= before[2], f"inet sockets: {before[2]} -> {after[2]}"
    assert servers.running() == []


def test_starting_under_a_running_name_replaces_the_old_server():
    """Does start() with a name that runs stop the old server and free its port?"""
    first = servers.start(servers.DaytimeServer(), name="clock")
    second = servers.start(servers.DaytimeServer(), name="clock")
    assert not first.running and second.running
    assert servers.running() == [second]
    assert servers.get("clock") is second
    assert _port_is_free(*first.address)


def test_replacement_can_reuse_the_same_fixed_port():
    """Can a re-run cell bind the very port its previous run held?"""
    first = servers.start(servers.EchoServer(), name="fixed")
    port = first.port
    # A client left connected: its socket must not keep the port busy.
    client = socket.create_connection(first.address, timeout=2)
    second = servers.start(servers.EchoServer(port=port), name="fixed")
    assert second.port == port and second.running
    client.close()


def test_running_renders_an_html_table():
    """Does running() list the servers as an HTML table with their addresses?"""
    server = servers.start(servers.DaytimeServer(), name="shown")
    table = servers.running()._repr_html_()
    assert "<table>" in table and "shown" in table and str(server.port) in table
    assert "no servers" in servers.ServerTable()._repr_html_()


def test_ipv6_loopback():
    """Does a server on ::1 answer an IPv6 client?"""
    if not socket.has_ipv6 or not _port_is_free("::1", 0):
        pytest.skip("IPv6 loopback (::1) is not available on this machine")
    with servers.DaytimeServer(host="::1") as server:
        assert server.address[0] == "::1"
        assert _daytime_reply(server.address).endswith(b"\r\n")


def test_stop_with_a_silent_client_connected_is_prompt():
    """Does stop() return quickly and close a client that is still connected?"""
    server = servers.EchoServer().start()
    client = socket.create_connection(server.address, timeout=3)
    assert _wait_for(lambda: len(server.connections()) == 1)
    started = time.monotonic()
    server.stop(timeout=30)  # prompt means woken, not timed out: far under its 30 s, even when busy
    assert time.monotonic() - started < 10
    assert read_until_closed(client, timeout=2.0) == b""
    assert server.threads() == []
    client.close()
    assert _port_is_free(*server.address)


def test_echo_server_echoes_until_the_client_closes():
    """Does the echo server send back every byte, across several sends?"""
    with servers.EchoServer() as server:
        with socket.create_connection(server.address, timeout=3) as client:
            client.sendall(b"hello ")
            client.sendall(b"world")
            client.shutdown(socket.SHUT_WR)
            assert read_until_closed(client) == b"hello world"


def test_fifty_clients_at_once_are_all_answered():
    """Are 50 clients served at the same time (each reply waits until all 50 are being served)?"""
    all_in_handlers = threading.Barrier(50, timeout=5)  # trips only if 50 handlers overlap

    def clock():
        all_in_handlers.wait()
        return "Monday, February 22, 1982 17:37:43-UTC"

    with servers.DaytimeServer(clock=clock) as server:
        clients = [socket.create_connection(server.address, timeout=3) for _ in range(50)]
        try:
            replies = [read_until_closed(c, timeout=8) for c in clients]
        finally:
            all_in_handlers.abort()
            for c in clients:
                c.close()
        assert not server.errors
    assert replies == [b"Monday, February 22, 1982 17:37:43-UTC\r\n"] * 50
    assert server.clients_served == 50


def test_a_handler_that_raises_is_logged_and_reraised_on_request():
    """Is a handler's exception logged, the client closed, and re-raised by stop(reraise=True)?"""
    class Broken(servers.BackgroundServer):
        def handle_client(self, conn, addr):
            raise ValueError("bad reply")

    server = Broken().start()
    assert _daytime_reply(server.address) == b""
    assert _wait_for(lambda: server.errors)
    assert "ValueError: bad reply" in server.log.messages("error")[0]
    with pytest.raises(servers.HandlerError) as info:
        server.stop(reraise=True)
    assert isinstance(info.value.__cause__, ValueError)
    assert not server.running
    server.stop()  # a second stop is harmless and does not raise


def test_a_stuck_handler_makes_stop_raise_stoptimeout():
    """Does stop() give up after its timeout, naming the stuck thread?"""
    release = threading.Event()  # set by the test to let the handler finish

    class Stuck(servers.BackgroundServer):
        def handle_client(self, conn, addr):
            release.wait(10)

    server = Stuck(name="stuck").start()
    client = socket.create_connection(server.address, timeout=3)
    assert _wait_for(lambda: len(server.threads()) == 2)
    started = time.monotonic()
    with pytest.raises(servers.StopTimeout, match="stuck-client-1"):
        server.stop(timeout=0.3)
    assert time.monotonic() - started < 5  # it gave up after its 0.3 s, not after the handler's 10 s
    release.set()
    assert _wait_for(lambda: server.threads() == [])
    client.close()


def test_stop_called_from_a_handler_does_not_deadlock():
    """Can a handler stop its own server (e.g. a 'shutdown' command)?"""
    class SelfStopping(servers.BackgroundServer):
        def handle_client(self, conn, addr):
            conn.sendall(b"bye\r\n")
            self.stop(timeout=1.0)

    server = SelfStopping().start()
    assert _daytime_reply(server.address) == b"bye\r\n"
    assert _wait_for(lambda: not server.threads())
    assert not server.running


def test_a_silent_client_times_out_and_does_not_block_others():
    """Is a silent client dropped after client_timeout while others are served?"""
    class LineEcho(servers.BackgroundServer):
        def handle_client(self, conn, addr):
            conn.sendall(conn.recv(100))

    with LineEcho(client_timeout=0.3) as server:
        silent = socket.create_connection(server.address, timeout=3)
        with socket.create_connection(server.address, timeout=3) as talker:
            talker.sendall(b"x")
            assert talker.recv(10) == b"x"
        assert read_until_closed(silent, timeout=2.0) == b""
        silent.close()
        assert any("silent" in m for m in server.log.messages("timeout"))


# ---------------------------------------------------------------- bind errors


def test_port_in_use_names_the_registered_server():
    """Does binding a port held by a registered server name that server?"""
    holder = servers.start(servers.DaytimeServer(), name="holder")
    with pytest.raises(servers.PortInUseError, match="'holder'") as info:
        servers.DaytimeServer(port=holder.port).start()
    assert isinstance(info.value, OSError)
    assert "port=0" in str(info.value)


def test_port_in_use_by_a_plain_socket_in_this_process():
    """Does the message say this kernel holds the port when a stray socket does?"""
    with socket.socket() as stray:
        stray.bind(("127.0.0.1", 0))
        stray.listen()
        with pytest.raises(servers.PortInUseError, match="this kernel"):
            servers.DaytimeServer(port=stray.getsockname()[1]).start()


def test_port_in_use_by_another_process_names_it():
    """Does the message give the pid of another process holding the port?"""
    code = (
        "import socket,sys;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();"
        "print(s.getsockname()[1],flush=True);sys.stdin.read()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        with pytest.raises(servers.PortInUseError) as info:
            servers.DaytimeServer(port=port).start()
        assert f"process {proc.pid}" in str(info.value)
    finally:
        proc.stdin.close()
        proc.wait(5)


def test_permission_denied_below_1024_is_explained(monkeypatch):
    """Is a PermissionError on bind turned into advice about ports below 1024?"""
    class Refusing(socket.socket):
        def bind(self, address):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(servers.socket, "socket", Refusing)
    with pytest.raises(servers.PortPermissionError, match="below 1024"):
        servers.DaytimeServer(port=13).start()


def test_a_server_starts_once():
    """Does starting a server twice raise a clear error instead of binding again?"""
    with servers.DaytimeServer() as server:
        with pytest.raises(servers.ServerError, match="already started"):
            server.start()


# ---------------------------------------------------------------- background()


def _syllabus_server(port=0):
    """The syllabus's day/time server, with the port made a parameter (12345 there)."""
    from datetime import datetime

    host = "127.0.0.1"
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server_socket.bind((host, port))
        print("Server started. Waiting for clients...")
        server_socket.listen(5)
        while True:
            client_socket, address = server_socket.accept()
            print(f"Connected to {address}")
            current_time = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            client_socket.send(current_time.encode())
            client_socket.close()
    except KeyboardInterrupt:
        print("\nServer shutting down.")
    finally:
        server_socket.close()


def test_background_stops_a_function_blocked_in_accept(capsys):
    """Does stop() end the syllabus server while it blocks in accept(), with no leak?"""
    before = _resources()
    job = servers.background(_syllabus_server, port=0)
    assert job.running and job.address[1] != 0
    assert len(_daytime_reply(job.address)) == 19
    started = time.monotonic()
    job.stop(timeout=30)  # woken out of accept(), not timed out: far under 30 s even when busy
    assert time.monotonic() - started < 10
    assert not job.running and job.error is None
    assert "Server started" in job.log.messages("output")[0]
    assert "Server started" not in capsys.readouterr().out
    gc.collect()
    assert _wait_for(lambda: _resources()[:2] <= before[:2])
    assert not isinstance(sys.stdout, background_mod._ThreadRoutedStdout)


def test_background_reports_an_error_raised_before_listening():
    """Does background() raise a clear HandlerError when the function fails at once?"""
    def broken(port):
        raise RuntimeError("forgot to bind")

    with pytest.raises(servers.HandlerError, match="forgot to bind.*before it started listening"):
        servers.background(broken, 0)


def test_background_error_after_listening_is_kept_and_reraised():
    """Is an exception raised while serving kept on the handle and re-raised on request?"""
    def crashes_on_first_client(ready_port=0):
        with socket.socket() as s:
            s.bind(("127.0.0.1", ready_port))
            s.listen()
            conn, _ = s.accept()
            conn.close()
            raise KeyError("client table")

    job = servers.background(crashes_on_first_client)
    _daytime_reply(job.address)
    assert job.finished.wait(2)
    assert isinstance(job.error, KeyError) and job.status() == "failed"
    assert "KeyError" in job.log.messages("error")[0]
    with pytest.raises(servers.HandlerError):
        job.stop(reraise=True)


def test_background_thread_per_client_server_stops_with_a_silent_client():
    """Does stop() end a student's thread-per-client server and its handler threads?"""
    def threaded_server(port=0):
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        listener.listen()
        def handle(conn):
            with conn:
                conn.recv(100)  # a silent client keeps this waiting
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), name="student-handler").start()

    job = servers.background(threaded_server)
    silent = socket.create_connection(job.address, timeout=3)
    assert _wait_for(lambda: len(job.threads()) == 2)
    job.stop(timeout=2.0)
    assert job.threads() == []
    assert not any(t.name == "student-handler" for t in threading.enumerate())
    silent.close()


def test_background_stops_a_loop_that_swallows_every_error():
    """Is a function that catches all exceptions from accept() still stopped?"""
    def stubborn(port=0):
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen()
        while True:
            try:
                conn, _ = s.accept()
                conn.close()
            except Exception:
                pass

    job = servers.background(stubborn)
    job.stop(timeout=2.0)
    assert job.threads() == []


def test_background_under_the_same_name_replaces_the_previous_run():
    """Does running background() again (a re-run cell) stop the first run, even on a fixed port?"""
    first = servers.background(_syllabus_server, port=0)
    port = first.port
    second = servers.background(_syllabus_server, port=port)
    assert not first.running and second.running and second.port == port
    assert servers.running() == [second]


def test_stop_all_stops_unregistered_servers_too():
    """Does stop_all() stop a server that was started without the registry?"""
    loose = servers.DaytimeServer().start()
    assert loose.name in servers.stop_all()
    assert not loose.running


def test_server_log_is_bounded():
    """Does the log keep only its most recent events and count the dropped ones?"""
    log = servers.ServerLog(maxlen=5)
    for i in range(12):
        log.add("accept", f"client {i}")
    assert len(log) == 5 and log.dropped == 7
    assert log.messages()[-1] == "client 11"
    assert "client 11" in log._repr_html_()


def test_rfc867_time_is_one_printable_ascii_line():
    """Is the default reply printable ASCII in the RFC's suggested layout?"""
    import datetime as dt

    text = servers.rfc867_time(dt.datetime(1982, 2, 22, 17, 37, 43, tzinfo=dt.timezone.utc))
    assert text == "Monday, February 22, 1982 17:37:43-UTC"
    assert servers.rfc867_time().isascii()


# ---------------------------------------------------------------- ScriptedServer


def test_scripted_server_trickles_one_byte_per_send():
    """Does split=1 make a single recv see only part of the line?"""
    with servers.ScriptedServer([b"Monday\r\n"], split=1, gap=0.05) as server:
        with socket.create_connection(server.address, timeout=3) as client:
            first = client.recv(1024)
            rest = read_until_closed(client)
    assert first == b"M"
    assert first + rest == b"Monday\r\n"


def test_scripted_server_pause_waits_for_an_event():
    """Does an Event step hold the rest of the reply until the event is set?"""
    go = threading.Event()  # set by the test after the first recv
    with servers.ScriptedServer([b"Mon", go, b"day\r\n"]) as server:
        with socket.create_connection(server.address, timeout=3) as client:
            assert client.recv(1024) == b"Mon"
            go.set()
            assert read_until_closed(client) == b"day\r\n"


def test_scripted_server_hold_never_replies_until_stopped():
    """Does hold=True keep a connection open and silent, and does stop() still end it?"""
    server = servers.ScriptedServer([], hold=True).start()
    client = socket.create_connection(server.address, timeout=0.2)
    with pytest.raises(socket.timeout):
        client.recv(10)
    server.stop(timeout=2)
    client.settimeout(2)
    assert client.recv(10) == b""
    client.close()


# ---------------------------------------------------------------- the control panel


def test_server_panel_lists_servers_and_its_stop_button_stops_one():
    """Does the panel show each registered server, and does its Stop button stop that one?"""
    from course_lib.widgets.server_panel import ServerPanel

    first = servers.start(servers.DaytimeServer(), name="panel-a")
    second = servers.start(servers.EchoServer(), name="panel-b")
    panel = ServerPanel(interval=0.0)
    try:
        rows = panel._rows.children
        assert len(rows) == 2
        assert "panel-a" in rows[0].children[1].value and str(first.port) in rows[0].children[1].value
        _daytime_reply(first.address)
        panel._choice.value = "panel-a"
        assert _wait_for(lambda: "served" in panel._log.value)
        rows[0].children[0].click()  # Stop panel-a
        assert not first.running and second.running
        assert panel._rows.children[0].children[0].disabled
        assert "stopped" in panel._rows.children[0].children[1].value
    finally:
        panel.close()
    assert not first.log._listeners and not second.log._listeners


def test_server_panel_redraws_one_at_a_time_and_not_after_close():
    """While one thread redraws the panel, does a redraw from another (a server's log event, the timer)
    wait for it instead of changing the rows it walks, and is a redraw that comes after close() a no-op?"""
    from course_lib.widgets.server_panel import ServerPanel

    first = servers.start(servers.DaytimeServer(), name="panel-c")
    panel = ServerPanel(interval=0.0)
    inside, resume, second_drew = threading.Event(), threading.Event(), threading.Event()
    row = panel._row
    errors = []

    def slow_row(server):  # the first redraw stops in the middle of its rows until told to go on
        if threading.current_thread().name == "first redraw" and not inside.is_set():
            inside.set()
            resume.wait(5)
        elif threading.current_thread().name == "second redraw":
            second_drew.set()
        return row(server)

    def redraw():
        try:
            panel.refresh()
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    panel._row = slow_row
    one = threading.Thread(target=redraw, name="first redraw", daemon=True)
    two = threading.Thread(target=redraw, name="second redraw", daemon=True)
    extra = None
    try:
        one.start()
        assert inside.wait(5)
        extra = servers.start(servers.EchoServer(), name="panel-d")  # a new row for the second redraw
        two.start()
        assert not second_drew.wait(0.3), "a second redraw ran while the first was walking the rows"
        resume.set()
        one.join(5)
        two.join(5)
        assert not one.is_alive() and not two.is_alive() and not errors, errors
        assert second_drew.is_set() and len(panel._rows.children) == 2
        panel.close()
        panel.refresh()  # a redraw on its way when the panel closed
        assert not panel._row_widgets
    finally:
        resume.set()
        panel.close()
        first.stop()
        if extra is not None:
            extra.stop()


def test_background_logs_a_client_thread_that_raises(capsys):
    """Does an exception in a thread the function started go to the job's log, not stderr?"""
    def server_with_buggy_handler(port=0):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))
            listener.listen()
            while True:
                conn, _ = listener.accept()
                def handle(conn=conn):
                    with conn:
                        raise ZeroDivisionError("in the handler")
                threading.Thread(target=handle, name="buggy-handler").start()

    job = servers.background(server_with_buggy_handler)
    assert _daytime_reply(job.address) == b""
    assert _wait_for(lambda: job.log.messages("error"))
    assert "ZeroDivisionError: in the handler" in job.log.messages("error")[0]
    assert "ZeroDivisionError" not in capsys.readouterr().err
    job.stop(timeout=2)
    assert isinstance(job.errors[0], ZeroDivisionError)


def test_background_stops_a_function_given_a_listener_made_elsewhere():
    """Is a listening socket passed in as an argument also shut down by stop()?"""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve(sock):
        while True:
            conn, _ = sock.accept()
            conn.close()

    job = servers.background(serve, listener)
    assert job.address == listener.getsockname()
    job.stop(timeout=2)
    assert job.threads() == []
    listener.close()


def test_100_background_cycles_leak_nothing():
    """Do 100 background()/stop() cycles of the syllabus server leave threads and fds as they were?"""
    job = servers.background(_syllabus_server, port=0)
    _daytime_reply(job.address)
    job.stop()
    gc.collect()
    before = _resources()
    for _ in range(100):
        job = servers.background(_syllabus_server, port=0)
        _daytime_reply(job.address)
        job.stop(timeout=2)
    gc.collect()
    assert _wait_for(lambda: _resources()[0] <= before[0])
    after = _resources()
    assert after[0] == before[0] and after[1] <= before[1] and after[2] <= before[2], (before, after)
    assert not isinstance(sys.stdout, background_mod._ThreadRoutedStdout)


def test_interpreter_exit_with_servers_running_is_prompt_and_clean():
    """Does a process that exits with servers, a job and a connected client still exit at once, cleanly?"""
    code = r'''
import socket, sys
sys.path.insert(0, sys.argv[1])
from course_lib import servers
def blocking(port=0):
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
    while True:
        s.accept()[0].close()
echo = servers.start(servers.EchoServer(), name="echo")
job = servers.background(blocking)
client = socket.create_connection(echo.address, timeout=2)
print("ready", flush=True)
'''
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code, repo], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ready" and proc.stderr == ""
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_the_daytime_benchmark_runs_and_reports_both_regimes(tmp_path):
    """Does benchmarks/bench_daytime.py measure both servers in both regimes, without errors?"""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, os.path.join(repo, "benchmarks", "bench_daytime.py"),
                           "--seconds", "0.2", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    rows = json.loads(out.read_text())["results"]
    assert {(r["regime"], r["server"], r["client_threads"]) for r in rows} == {
        (regime, server, threads) for regime in ("instant", "waiting")
        for server in ("syllabus", "builtin") for threads in (1, 8)}
    assert all(r["connections"] > 0 and r["errors"] == 0 for r in rows)
    assert "instant" in proc.stdout and "waiting" in proc.stdout
