"""Tests for course_lib.processes: the workers lesson 01 sends to threads and processes."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from course_lib import processes


@pytest.fixture(autouse=True)
def _fresh_setting(monkeypatch):
    processes.reset_setting()
    monkeypatch.delenv(processes.WITNESS_ENV, raising=False)
    yield
    processes.reset_setting()


def test_identify_reports_this_process_and_thread():
    """Does identify() name the calling process and thread?"""
    report = processes.identify()
    assert report["pid"] == os.getpid()
    assert report["ppid"] == os.getppid()
    assert report["thread_ident"] == threading.get_ident()
    assert report["native_id"] == threading.get_native_id()
    assert report["thread_name"] == threading.current_thread().name


def test_set_setting_in_a_thread_is_seen_by_the_caller():
    """Is a global changed by another thread of this process seen here?"""
    worker = threading.Thread(target=processes.set_setting, args=("from-thread",))
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    assert processes.SETTING == "from-thread"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_set_setting_in_a_child_process_is_not_seen(method, tmp_path, monkeypatch):
    """Does a child's change stay in the child, while its witness reaches the parent?"""
    monkeypatch.setenv(processes.WITNESS_ENV, str(tmp_path))
    child = multiprocessing.get_context(method).Process(
        target=processes.set_setting, args=("from-child",)
    )
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert processes.SETTING == processes.ORIGINAL
    witnesses = processes.read_witnesses(tmp_path)
    assert [w["setting"] for w in witnesses] == ["from-child"]
    assert witnesses[0]["pid"] == child.pid != os.getpid()


def test_no_witness_without_the_environment_variable(tmp_path):
    """Does set_setting() leave no file when the variable is unset?"""
    report = processes.set_setting("quiet")
    assert report["setting"] == "quiet" and report["pid"] == os.getpid()
    assert processes.read_witnesses(tmp_path) == []


def test_witness_records_the_thread(tmp_path, monkeypatch):
    """Does a witness name the native thread that ran set_setting()?"""
    monkeypatch.setenv(processes.WITNESS_ENV, str(tmp_path))
    ids = []
    worker = threading.Thread(target=lambda: ids.append(processes.set_setting("t")["native_id"]))
    worker.start()
    worker.join(5)
    (witness,) = processes.read_witnesses(tmp_path)
    assert witness == {"pid": os.getpid(), "native_id": ids[0], "setting": "t"}
    assert ids[0] != threading.get_native_id()


@pytest.mark.parametrize("kind", ["thread", "fork"])
def test_start_cost_is_positive_and_leaves_nothing_running(kind):
    """Does start_cost() return a time and join everything it started?"""
    before = set(threading.enumerate())
    seconds = processes.start_cost(kind, 3)
    assert 0 < seconds < 10
    assert set(threading.enumerate()) <= before
    assert multiprocessing.active_children() == []


def test_start_cost_rejects_unknown_kinds():
    """Is a misspelt kind an error rather than a silent thread?"""
    with pytest.raises(ValueError):
        processes.start_cost("threads", 1)
    with pytest.raises(ValueError):
        processes.start_cost("thread", -1)


def test_workers_compute_and_wait():
    """Do burn_cpu and wait_io return their documented values?"""
    assert processes.burn_cpu(10) == sum(i * i % 7 for i in range(10))
    assert processes.wait_io(0.0) == 0.0


def test_run_workload_threads_overlap_waiting():
    """Do threads overlap sleeps, so 4 waits of 0.2 s take far less than 0.8 s?"""
    seconds = processes.run_workload(processes.wait_io, [0.2] * 4, "threads")
    # Serial would be >= 0.8 s; overlapping needs about 0.2 s. The margin is wide.
    assert 0.2 <= seconds < 0.7


def test_run_workload_serial_adds_up():
    """Does serial work take at least the sum of its waits?"""
    assert processes.run_workload(processes.wait_io, [0.05] * 3, "serial") >= 0.15


def test_run_workload_rejects_bad_arguments():
    """Are an unknown mode and a missing pool errors?"""
    with pytest.raises(ValueError):
        processes.run_workload(processes.wait_io, [0], "parallel")
    with pytest.raises(ValueError):
        processes.run_workload(processes.wait_io, [0], "processes")


def test_run_workload_times_out_with_a_named_error():
    """Does work longer than its timeout raise WorkerTimeout?"""
    with pytest.raises(processes.WorkerTimeout):
        processes.run_workload(processes.wait_io, [1.0], "threads", timeout=0.1)


@pytest.mark.slow
def test_process_pool_runs_importable_workers_and_shuts_down():
    """Does a spawn pool run our workers and leave no child behind?"""
    with processes.process_pool(workers=2) as pool:
        assert pool.submit(processes.burn_cpu, 10).result(timeout=10) == processes.burn_cpu(10)
        assert pool.submit(processes.set_setting, "x").result(timeout=10)["pid"] != os.getpid()
        seconds = processes.run_workload(processes.wait_io, [0.01] * 2, "processes", pool=pool)
        assert seconds > 0
    assert processes.SETTING == processes.ORIGINAL
    assert multiprocessing.active_children() == []
