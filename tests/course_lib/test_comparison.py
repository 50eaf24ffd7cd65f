"""Do server styles get compared fairly from a notebook: each in its own process, medians with spread,
and a ranking only where the runs do not overlap?"""

import psutil

from course_lib import comparison


def test_each_style_is_served_by_a_child_that_ends_with_the_comparison():
    """Are all three styles measured from processes of their own, and are those gone afterwards?"""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    rows = comparison.compare(levels=(5,), runs=2, rounds=1)
    assert sorted(r.style for r in rows) == ["asyncio", "selectors", "thread"]
    assert all(len(r.conn_per_s) == 2 and r.low <= r.median <= r.high and r.errors == 0 for r in rows)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"child servers left running: {left}"


def test_overlapping_runs_are_not_ranked():
    """Is an order claimed only between styles whose every run is apart?"""
    rows = [comparison.Row("a", 10, [900, 1000, 1100], [1.0], 0), comparison.Row("b", 10, [400, 500, 600], [2.0], 0),
            comparison.Row("c", 10, [450, 700, 800], [2.0], 0)]
    said = comparison.ranking(rows, 10)
    assert said.startswith("10 clients: a > c") and "cannot rank c and b" in said


def test_a_thread_start_is_measured_not_assumed():
    cost = comparison.thread_start_cost(count=50)
    assert 0 < cost < 0.5
