"""Do lessons 09 and 10 say what Python really does? Each claim the lessons make about a primitive is
tried here on this interpreter, and the lesson's text is checked to state it (and not its old, wrong form)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import nbformat
import pytest

from tests.submissions import NOTEBOOKS


def text_of(lesson: str) -> str:
    nb = nbformat.read(next((NOTEBOOKS / lesson).glob("*.ipynb")), as_version=4)
    return " ".join(" ".join(c.source.split()) for c in nb.cells)


L09, L10 = "09-semaphores-barriers-and-pools", "10-one-thread-many-clients"


def test_a_lock_has_no_owner_an_rlock_has_one():
    """Can another thread release a Lock but not an RLock, as lesson 09 now says?"""
    lock, rlock = threading.Lock(), threading.RLock()
    lock.acquire()
    rlock.acquire()
    failures = []

    def release_both():
        lock.release()
        try:
            rlock.release()
        except RuntimeError as exc:
            failures.append(exc)

    helper = threading.Thread(target=release_both)
    helper.start()
    helper.join(5)
    rlock.release()
    assert not lock.locked() and failures
    text = text_of(L09)
    assert "Unlike a `Lock`, any thread may release" not in text
    assert "as with a plain `Lock`" in text and "only the thread holding it may release it" in text


def test_cpythons_barrier_fills_and_drains():
    """Is threading.Barrier's reuse a filling/draining state, not a generation counter?"""
    import inspect

    assert "0 filling, 1 draining" in inspect.getsource(threading.Barrier.__init__)
    text = text_of(L09)
    assert "generation counter" not in text and "*filling*" in text and "*draining*" in text
    assert "Under the controlled scheduler every run of this program ends the same way" in text


def test_a_party_that_raises_before_wait_breaks_nothing_until_a_timeout():
    """Do the others wait until their own timeout breaks the barrier, when one party raises before wait()?"""
    barrier = threading.Barrier(2, timeout=0.2)
    seen = {}

    def waiter():
        started = time.monotonic()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            seen["after"] = time.monotonic() - started

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not barrier.broken, "the other party raised before wait(): nothing is broken yet"
    thread.join(5)
    assert barrier.broken and seen["after"] >= 0.15
    text = text_of(L09)
    assert "raised before it came" not in text and "breaks nothing by itself" in text


def test_an_await_that_does_not_suspend_lets_nobody_else_run():
    async def no_wait():
        return 1

    async def main():
        log = []

        async def a():
            for _ in range(3):
                await no_wait()
                log.append("A")

        async def b():
            for _ in range(3):
                log.append("B")
                await asyncio.sleep(0)

        await asyncio.gather(a(), b())
        return "".join(log)

    assert asyncio.run(main()) == "AAABBB"
    text = text_of(L10)
    assert "Each `await` is a point where the coroutine says" not in text
    assert "*may* give the loop back" in text and "asyncio.Lock()" in text


def test_a_taskgroup_failure_is_an_exception_group():
    async def fails():
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.sleep(5))
            group.create_task(asyncio.to_thread(int, "x"))

    with pytest.raises(ExceptionGroup) as caught:
        asyncio.run(fails())
    assert not isinstance(caught.value, ValueError) and caught.value.subgroup(ValueError) is not None
    text = text_of(L10)
    assert "**`ExceptionGroup`**" in text and "except* ValueError" in text


def test_send_on_a_socket_with_a_timeout_is_partial_and_without_one_is_whole():
    """Does one send() of 20 MB take it all without a timeout, and part of it with settimeout()?"""
    size = 20_000_000
    firsts = {}
    for timeout in (None, 5.0):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            sender = socket.create_connection(listener.getsockname(), timeout=5)
            receiver, _ = listener.accept()
        with sender, receiver:
            receiver.settimeout(10)
            reader = threading.Thread(target=lambda: [None for _ in iter(lambda: receiver.recv(1 << 20), b"")])
            reader.start()
            sender.settimeout(timeout)
            firsts[timeout] = sender.send(b"x" * size)
            sender.sendall(b"x" * (size - firsts[timeout]))
            sender.shutdown(socket.SHUT_WR)
            reader.join(10)
    assert firsts[None] == size and firsts[5.0] < size
    text = text_of(L10)
    assert "a socket with a **timeout**" in text and "partial sends are the normal case" in text


def test_the_lesson_counts_the_rooms_threads_and_measures_in_processes():
    text = text_of(L10)
    assert "1 if selector_room.thread.is_alive() else 0" not in text
    assert "comparison.compare" in text and "comparison.ranking" in text and "thread_start_cost" in text
    assert "build/bench_servers.png" not in text and "benchmarks/bench_servers.py" not in text
    assert "would run only while some cell awaits" not in text and "an idle notebook answers its clients" in text
