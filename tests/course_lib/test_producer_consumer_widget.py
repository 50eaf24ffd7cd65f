"""Tests for course_lib.widgets.producer_consumer: the live demo's model and view, no browser.

Timing here is bounded, never lucky: a test waits for a condition with a
deadline (``wait_until``) instead of sleeping a fixed time and hoping.
"""

import threading
import time

import pytest

from course_lib.widgets.producer_consumer import (
    MAX_THREADS,
    ProducerConsumerDemo,
    ProducerConsumerModel,
    Sample,
    producer_consumer_demo,
    stop_all_demos,
)
from tests.waiting import wait_until


def demo_threads():
    return [t for t in threading.enumerate() if t.name.startswith("pc")]


@pytest.fixture(autouse=True)
def no_demo_left():
    """Every test must leave no demo thread behind (and we clean up if one does)."""
    before = set(threading.enumerate())
    yield
    stop_all_demos()
    leaked = wait_until(lambda: not [t for t in threading.enumerate() if t not in before], 3.0)
    assert leaked or not [t for t in threading.enumerate() if t not in before], \
        f"threads left: {[t.name for t in threading.enumerate() if t not in before]}"


def test_samples_stay_within_capacity_and_counts_never_decrease():
    """Do the samples of a run stay in 0..capacity, with counts that only grow?"""
    model = ProducerConsumerModel(producers=3, consumers=2, produce_rate=50, consume_rate=20,
                                  capacity=4, sample_interval=0.01)
    model.start()
    assert wait_until(lambda: len(model.samples) >= 20 and model.produced >= 10)
    model.stop()
    samples = model.samples
    assert all(isinstance(s, Sample) for s in samples)
    assert all(0 <= s.occupancy <= 4 for s in samples)
    assert all(s.capacity == 4 for s in samples)
    for earlier, later in zip(samples, samples[1:]):
        assert later.t >= earlier.t
        assert later.produced >= earlier.produced and later.consumed >= earlier.consumed


def test_every_item_is_accounted_for_after_stop():
    """After stop, does produced equal consumed plus what is left in the queue?"""
    model = ProducerConsumerModel(producers=4, consumers=3, produce_rate=100, consume_rate=100,
                                  capacity=3)
    model.start()
    assert wait_until(lambda: model.consumed >= 50)
    model.stop()
    assert model.threads() == []
    assert model.produced == model.consumed + model.occupancy
    last = model.last()
    assert (last.produced, last.consumed, last.occupancy) == (
        model.produced, model.consumed, model.occupancy)


def test_stop_is_prompt_when_producers_block_on_a_full_queue():
    """With no consumer, does the queue fill up and stop still end every producer fast?"""
    model = ProducerConsumerModel(producers=5, consumers=0, produce_rate=100, capacity=3)
    model.start()
    assert wait_until(lambda: model.occupancy == 3 and model.produced == 3)
    # Let producers pile up behind the full queue, then stop them.
    assert wait_until(lambda: len(model.threads()) == 6)
    started = time.monotonic()
    model.stop(timeout=30)  # woken, not timed out: far under 30 s even on a busy machine
    assert time.monotonic() - started < 10
    assert model.threads() == [] and not model.running
    assert model.produced == 3  # nothing was put past the capacity


def test_stop_is_prompt_when_consumers_block_on_an_empty_queue():
    """With no producer, do the waiting consumers end fast on stop?"""
    model = ProducerConsumerModel(producers=0, consumers=MAX_THREADS)
    model.start()
    assert wait_until(lambda: len(model.threads()) == MAX_THREADS + 1)
    started = time.monotonic()
    model.stop(timeout=30)  # woken, not timed out: far under 30 s even on a busy machine
    assert time.monotonic() - started < 10
    assert model.threads() == []
    assert (model.produced, model.consumed) == (0, 0)


def test_waiting_consumers_cost_almost_no_cpu():
    """Do 16 consumers waiting on an empty queue for 0.5 s use under 0.1 s of CPU?"""
    model = ProducerConsumerModel(producers=0, consumers=MAX_THREADS)
    with model:
        cpu_before = time.process_time()
        time.sleep(0.5)  # measuring an idle period: the length only scales the bound
        cpu_used = time.process_time() - cpu_before
    assert cpu_used < 0.1, f"idle demo used {cpu_used:.3f} s of CPU in 0.5 s"


def test_thread_counts_change_while_running():
    """Does setting consumers/producers on a running model start and retire threads?"""
    model = ProducerConsumerModel(producers=1, consumers=1, produce_rate=20, consume_rate=20)
    model.start()
    try:
        model.consumers = 4
        assert wait_until(lambda: model.last().consumers == 4)
        model.consumers = 2
        model.producers = 3
        assert wait_until(lambda: (model.last().consumers, model.last().producers) == (2, 3))
        assert wait_until(lambda: len([t for t in model.threads() if "consumer" in t.name]) == 2)
    finally:
        model.stop()
    assert model.threads() == []


def test_production_rate_is_an_upper_bound():
    """Does one producer at 20 items/s put at most about 20 items in one second?"""
    model = ProducerConsumerModel(producers=1, consumers=2, produce_rate=20, consume_rate=100,
                                  capacity=50)
    model.run_for(1.0)
    assert 0 < model.produced <= 22


def test_capacity_applies_at_next_start():
    """Does a new capacity set while running take effect only after a restart?"""
    model = ProducerConsumerModel(producers=2, consumers=0, produce_rate=100, capacity=2)
    model.start()
    model.capacity = 6
    assert wait_until(lambda: model.occupancy == 2)
    model.stop()
    assert model.last().capacity == 2
    model.start()
    assert wait_until(lambda: model.occupancy == 6)
    model.stop()
    assert model.last().capacity == 6


def test_bad_settings_are_refused_with_a_reason():
    """Are a zero rate, a negative count, a bool and a zero capacity refused?"""
    model = ProducerConsumerModel()
    with pytest.raises(ValueError, match="produce_rate"):
        model.produce_rate = 0
    with pytest.raises(ValueError, match="consumers"):
        model.consumers = -1
    with pytest.raises(ValueError, match="producers"):
        model.producers = True
    with pytest.raises(ValueError, match="producers"):
        model.producers = MAX_THREADS + 1
    with pytest.raises(ValueError, match="capacity"):
        model.capacity = 0
    assert model.produce_rate == 10.0 and model.consumers == 2


def test_start_twice_is_an_error_and_stop_twice_is_not():
    """Is a second start refused while a second stop is harmless?"""
    model = ProducerConsumerModel(producers=1, consumers=1)
    model.start()
    with pytest.raises(RuntimeError, match="already running"):
        model.start()
    model.stop()
    model.stop()
    assert model.threads() == []


def test_model_stops_itself_after_max_seconds():
    """Does a forgotten demo stop by itself at max_seconds, leaving no thread?"""
    model = ProducerConsumerModel(producers=2, consumers=2, max_seconds=0.3)
    model.start()
    assert wait_until(lambda: not model.running, timeout=3.0)
    assert wait_until(lambda: model.threads() == [], timeout=3.0)
    model.stop()


def test_plot_has_two_panels_and_png_is_an_image():
    """Does plot() draw two panels, and png() return PNG bytes?"""
    model = ProducerConsumerModel(producers=1, consumers=1, produce_rate=50)
    model.run_for(0.3)
    fig = model.plot()
    assert len(fig.axes) == 2
    assert model.png().startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_of_a_long_run_shows_only_the_last_window():
    """Does plot(window=0.2) draw only the last 0.2 s of a longer run?"""
    model = ProducerConsumerModel(producers=1, consumers=1, sample_interval=0.01)
    model.run_for(0.5)
    occupancy_line = model.plot(window=0.2).axes[0].lines[0]
    times = list(occupancy_line.get_xdata())
    assert times and min(times) >= model.samples[-1].t - 0.2 - 1e-9
    assert len(model.plot(window=None).axes[0].lines[0].get_xdata()) == len(model.samples)


def test_view_sliders_and_buttons_drive_the_model():
    """Do the view's sliders set the model, and its buttons start and stop it promptly?"""
    demo = ProducerConsumerDemo(ProducerConsumerModel(producers=1, consumers=1), refresh=0.05)
    demo.producers.value = 3
    demo.consume_rate.value = 25.0
    demo.capacity.value = 7
    assert (demo.model.producers, demo.model.consume_rate, demo.model.capacity) == (3, 25.0, 7)
    started = time.monotonic()
    demo.start_button.click()
    assert time.monotonic() - started < 5, "Start must return at once, not block the kernel"
    assert demo.model.running and demo.capacity.disabled and not demo.stop_button.disabled
    first_image = demo.image.value
    assert wait_until(lambda: demo.image.value != first_image), "the plot did not redraw"
    demo.stop_button.click()
    assert not demo.model.running and demo.model.threads() == []
    assert not demo.start_button.disabled and not demo.capacity.disabled
    assert "stopped" in demo.status.value
    assert bytes(demo.image.value).startswith(b"\x89PNG")
    demo.close()


def test_a_new_demo_stops_the_old_one():
    """Does making a new demo (re-running the cell) stop the previous one?"""
    first = producer_consumer_demo(producers=1, consumers=1)
    first.start()
    second = producer_consumer_demo(producers=1, consumers=1)
    assert not first.model.running and first.model.threads() == []
    assert not second.model.running
    second.close()


@pytest.mark.slow
def test_live_plot_updates_reach_the_frontend_while_the_kernel_is_idle():
    """In a real kernel, does the running demo send plot updates after its cell has finished?"""
    import queue as queue_module

    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        reply = kc.execute_interactive(
            "from course_lib.widgets.producer_consumer import producer_consumer_demo\n"
            "demo = producer_consumer_demo(produce_rate=20)\n"
            "demo.start()", timeout=60, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok"
        updates = 0
        deadline = time.monotonic() + 3.0
        while updates < 2 and time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.2)
            except queue_module.Empty:
                continue
            if msg["msg_type"] == "comm_msg" and msg["content"]["data"].get("method") == "update":
                updates += 1
        assert updates >= 2, "no widget updates arrived while the kernel was idle"
        outputs = []
        reply = kc.execute_interactive(
            "demo.stop()\nimport threading\n"
            "print(sorted(t.name for t in threading.enumerate() if t.name.startswith('pc')))",
            timeout=30, output_hook=lambda msg: outputs.append(msg))
        assert reply["content"]["status"] == "ok"
        printed = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        assert printed.strip() == "[]", f"demo threads left after stop: {printed}"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.slow
@pytest.mark.browser
def test_demo_runs_and_stops_in_jupyterlab(tmp_path):
    """In JupyterLab in headless Chromium, does Start redraw the plot while the kernel is idle, and Stop stop it?"""
    import json
    import os
    import secrets
    import shutil
    import socket
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    import nbformat

    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("no chromium binary")
    work = tmp_path / "work"
    work.mkdir()
    settings = tmp_path / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from course_lib.widgets.producer_consumer import producer_consumer_demo\n"
        "demo = producer_consumer_demo(produce_rate=20, consume_rate=5, capacity=5)\ndemo")]
    nbformat.write(nb, work / "demo.ipynb")
    with socket.socket() as probe:  # a free port for the lab server (it cannot take port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(8)
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
               JUPYTERLAB_SETTINGS_DIR=str(settings))
    lab = subprocess.Popen(
        [str(venv_bin / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not start within 60 s"
                time.sleep(0.3)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{base}/lab/tree/demo.ipynb?token={token}")
                page.get_by_text("Python 3", exact=False).first.wait_for(timeout=60_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=60_000)
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
                page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
                page.wait_for_selector(".widget-slider", timeout=60_000)
                image = page.locator(".jp-OutputArea-output img").first
                image.wait_for(timeout=30_000)
                first_src = image.get_attribute("src")
                page.locator("button.widget-button[title=Start]").click()
                # The cell has finished: new plots can only come from the demo's redraw thread.
                page.wait_for_function(
                    "(s) => { const i = document.querySelector('.jp-OutputArea-output img');"
                    " return i && i.src !== s; }", arg=first_src, timeout=15_000)
                page.wait_for_selector("text=running at", timeout=10_000)
                page.locator("button.widget-button[title=Stop]").click()
                page.wait_for_selector("text=stopped at", timeout=10_000)
            finally:
                browser.close()
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=10)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(timeout=10)
