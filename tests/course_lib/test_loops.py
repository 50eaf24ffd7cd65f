"""Tests of course_lib.loops: asyncio servers and coroutines on loops of their own, bounded in time."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time

import pytest

from course_lib import loops, servers
from course_lib.grading import read_until_closed
from course_lib.handles import HandlerError, PortInUseError, StopTimeout
from tests.waiting import nothing_left_behind, wait_until


@pytest.fixture(autouse=True)
def _no_leaks():
    """Every test leaves no thread, fd or socket behind (and nothing registered)."""
    with nothing_left_behind(kind="inet"):
        yield


async def _echo(reader, writer):
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()


async def _hello(reader, writer):
    writer.write(b"hello\r\n")
    await writer.drain()


def test_asyncio_server_serves_a_real_client_and_counts_it():
    """Does an AsyncioServer echo to a socket client, count it, and log start/accept/served/stop?"""
    with loops.AsyncioServer(_echo) as server:
        assert server.running and server.address[1] != 0
        with socket.create_connection(server.address, timeout=3) as sock:
            sock.sendall(b"ping")
            assert sock.recv(100) == b"ping"
        assert wait_until(lambda: server.clients_served == 1, timeout=3)
    assert not server.running and server.status() == "stopped"
    kinds = [e.kind for e in server.log]
    assert kinds[0] == "start" and kinds[-1] == "stop" and "served" in kinds


@pytest.mark.parametrize("tool", ["nc", "socat"])
def test_asyncio_server_serves_nc_and_socat(tool):
    """Do nc and socat on loopback get the handler's reply and see the connection close?"""
    with loops.AsyncioServer(_hello) as server:
        host, port = server.address
        command = (["nc", "-w", "5", host, str(port)] if tool == "nc"
                   else ["socat", "-T", "5", "-", f"TCP:{host}:{port}"])
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert done.stdout == b"hello\r\n"


def test_start_and_stop_leave_no_thread_and_no_socket():
    """After 20 start/serve/stop cycles, are threads, fds and inet sockets back where they were?"""
    with loops.AsyncioServer(_hello):  # warm up asyncio's lazily created objects
        pass
    threads_before = threading.active_count()
    with nothing_left_behind():
        for _ in range(20):
            _serve_once()
    assert threading.active_count() == threads_before


def _serve_once():
    server = loops.AsyncioServer(_hello).start()
    assert len(server.threads()) == 1
    with socket.create_connection(server.address, timeout=3) as sock:
        assert read_until_closed(sock, timeout=3) == b"hello\r\n"
    server.stop(timeout=3)
    assert server.threads() == []


def test_a_handler_exception_lands_in_the_log_not_in_the_cell(capfd):
    """Is a handler's exception recorded in .errors and .log, with nothing printed to stderr?"""
    async def broken(reader, writer):
        raise ValueError("the handler broke")

    with loops.AsyncioServer(broken) as server:
        with socket.create_connection(server.address, timeout=3) as sock:
            assert read_until_closed(sock, timeout=3) == b""
        assert wait_until(lambda: server.errors, timeout=3)
    assert isinstance(server.errors[0], ValueError)
    assert any("the handler broke" in m for m in server.log.messages("error"))
    assert server.clients_served == 0
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "the handler broke" not in err + out


def test_stop_reraise_raises_handler_error_with_the_cause():
    """Does stop(reraise=True) raise HandlerError whose __cause__ is the handler's exception?"""
    async def broken(reader, writer):
        raise KeyError("k")

    server = loops.AsyncioServer(broken).start()
    with socket.create_connection(server.address, timeout=3) as sock:
        read_until_closed(sock, timeout=3)
    wait_until(lambda: server.errors, timeout=3)
    with pytest.raises(HandlerError) as info:
        server.stop(timeout=3, reraise=True)
    assert isinstance(info.value.__cause__, KeyError)


def test_a_task_exception_never_retrieved_goes_to_the_log(capfd):
    """Does asyncio's "Task exception was never retrieved" report go to the log, not stderr?"""
    async def spawns(reader, writer):
        async def fails():
            raise RuntimeError("orphan task failed")

        task = asyncio.get_running_loop().create_task(fails())
        await asyncio.sleep(0.01)
        del task
        import gc
        gc.collect()

    with loops.AsyncioServer(spawns) as server:
        with socket.create_connection(server.address, timeout=3) as sock:
            read_until_closed(sock, timeout=3)
        assert wait_until(lambda: any("orphan" in m for m in server.log.messages("error")), timeout=3)
    assert "orphan" not in capfd.readouterr().err


def test_port_in_use_is_raised_by_start_clearly():
    """Does start() on a taken port raise PortInUseError naming the server that holds it?"""
    with loops.AsyncioServer(_hello, name="first") as first:
        second = loops.AsyncioServer(_hello, port=first.address[1])
        with pytest.raises(PortInUseError, match="first"):
            second.start()
        assert second.threads() == []


def test_stop_cancels_clients_that_wait_and_those_that_never_read():
    """Does stop() end, promptly, a handler awaiting a silent client and one blocked in drain()?"""
    async def waits(reader, writer):
        await reader.read(1)  # the client never sends

    async def floods(reader, writer):
        while True:  # the client never reads: drain() waits for ever
            writer.write(b"x" * 65536)
            await writer.drain()

    for handler in (waits, floods):
        server = loops.AsyncioServer(handler).start()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server.address)
        assert wait_until(lambda: server.clients_accepted == 1, timeout=3)
        began = time.monotonic()
        server.stop(timeout=3)
        assert time.monotonic() - began < 1.5
        assert any("cancelled by stop()" in m for m in server.log.messages("closed"))
        sock.close()


def test_a_handler_that_blocks_the_loop_makes_stop_raise_stop_timeout():
    """Does stop() on a loop blocked by time.sleep raise StopTimeout within its timeout?"""
    release = threading.Event()  # set by the test: lets the blocking handler end

    async def blocks(reader, writer):
        release.wait(5)  # blocks the whole loop, as time.sleep would

    server = loops.AsyncioServer(blocks).start()
    sock = socket.create_connection(server.address, timeout=3)
    assert wait_until(lambda: server.clients_accepted == 1, timeout=3)
    began = time.monotonic()
    with pytest.raises(StopTimeout, match="blocks"):
        server.stop(timeout=0.3)
    assert time.monotonic() - began < 1.0
    release.set()
    server.stop(timeout=3)
    assert server.threads() == []
    sock.close()


def test_registered_servers_show_in_the_registry_and_stop_all_stops_them():
    """Is an AsyncioServer started through servers.start listed, and stopped by stop_all()?"""
    server = servers.start(servers.AsyncioServer(_hello), name="asyncio-demo")
    assert server in servers.running() and servers.get("asyncio-demo") is server
    assert "asyncio-demo" in servers.stop_all(timeout=3)
    assert not server.running and server.threads() == []
    unregistered = loops.AsyncioServer(_hello).start()  # tracked only
    servers.stop_all(timeout=3)
    assert not unregistered.running


def test_servers_reexports_the_loop_names():
    """Are AsyncioServer, run_in_loop and LoopJob importable from course_lib.servers?"""
    assert servers.AsyncioServer is loops.AsyncioServer
    assert servers.run_in_loop is loops.run_in_loop
    assert {"AsyncioServer", "run_in_loop"} <= set(servers.__all__)


def test_run_in_loop_returns_the_value_and_leaves_no_thread():
    """Does run_in_loop(coro_fn, *args).result() return the coroutine's value on its own loop?"""
    async def double(x):
        await asyncio.sleep(0.01)
        return x * 2, threading.current_thread().name

    job = loops.run_in_loop(double, 21, name="double")
    value, thread_name = job.result(timeout=3)
    assert value == 42 and thread_name == "double-loop"
    assert wait_until(lambda: not job.threads(), timeout=3)
    assert job.done and job.status() == "finished"


def test_run_in_loop_reraises_the_coroutine_exception():
    """Does result() raise the coroutine's own exception (and log it)?"""
    async def fails():
        raise ZeroDivisionError("no")

    job = loops.run_in_loop(fails)
    with pytest.raises(ZeroDivisionError):
        job.result(timeout=3)
    assert job.status() == "failed" or not job.threads()
    assert any("ZeroDivisionError" in m for m in job.log.messages("error"))
    job.stop(timeout=3)
    assert job.status() == "failed"


def test_run_in_loop_stop_cancels_and_result_says_so():
    """Does stop() cancel a long coroutine promptly, and result() then raise CancelledError?"""
    async def forever():
        await asyncio.sleep(60)

    job = loops.run_in_loop(forever)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)
    began = time.monotonic()
    job.stop(timeout=3)
    assert time.monotonic() - began < 1.0
    with pytest.raises(asyncio.CancelledError):
        job.result(timeout=1)
    assert job.status() == "cancelled" and job.threads() == []


def test_run_in_loop_replaces_a_job_of_the_same_name():
    """Does running the same cell twice (same name) stop the first job?"""
    async def forever():
        await asyncio.sleep(60)

    first = loops.run_in_loop(forever, name="cell")
    second = loops.run_in_loop(forever, name="cell")
    assert wait_until(lambda: first.done, timeout=3) and not second.done
    second.stop(timeout=3)
