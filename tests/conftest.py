"""Shared by every test folder. ``tests`` is a package, so pytest puts the repository (not
``tests/``) on ``sys.path``: ``tests/course_lib/`` can never shadow the real ``course_lib``, and
the shared helpers are imported as ``tests.submissions``, ``tests.waiting`` and so on."""

import pytest


def pytest_collection_modifyitems(config, items):
    """Skip sandbox tests, with the reason, where bubblewrap or user namespaces are missing."""
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
