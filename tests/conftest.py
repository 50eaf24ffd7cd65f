"""Shared by every test folder. ``tests`` is a package, so pytest puts the repository (not
``tests/``) on ``sys.path``: ``tests/course_lib/`` can never shadow the real ``course_lib``, and
the shared helpers are imported as ``tests.submissions``, ``tests.waiting`` and so on."""

import os
import shutil
import tempfile

import pytest


def pytest_configure(config):
    """One template cache for the whole run (its workers included), fresh each run: grading
    reuses a built lesson template within the run, never one left by an earlier run."""
    if not hasattr(config, "workerinput") and "COURSE_CACHE_DIR" not in os.environ:
        os.environ["COURSE_CACHE_DIR"] = config._course_cache = tempfile.mkdtemp(prefix="course-cache-")


def pytest_unconfigure(config):
    if getattr(config, "_course_cache", None):
        shutil.rmtree(config._course_cache, ignore_errors=True)
        os.environ.pop("COURSE_CACHE_DIR", None)


#: A slow test's bound (pytest-timeout's default is 300 s): its module's batch (a class of fixtures
#: graded by ``course grade``) is made in its first test's time, which on a busy machine can pass 300 s.
SLOW_TEST_TIMEOUT = 900


def pytest_collection_modifyitems(config, items):
    """Give slow tests their bound; skip sandbox tests, with the reason, where bubblewrap or user
    namespaces are missing."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT))
    if not any(item.get_closest_marker("sandbox") for item in items):
        return
    from autograder import sandbox

    ok, why = sandbox.available()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"grading sandbox unavailable: {why}")
    for item in items:
        if item.get_closest_marker("sandbox"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_warm_kernel_left_behind():
    """A test that grades in this process (``worker.run``) leaves the kernel started ahead for a next
    job that never comes; stop it with the test, as a worker does when it ends, so no judge kernel
    outlives the test that started it."""
    import sys

    yield
    warm = sys.modules.get("autograder.warm")
    if warm is not None and warm._slot is not None:
        warm.close()
