"""The live producer/consumer demo's model: threads around a ``queue.Queue``, sampled over time.

Its ipywidgets view (sliders, buttons, a live plot) is
:mod:`course_lib.widgets.producer_consumer`; the model needs no browser.

:class:`ProducerConsumerModel` runs N producer threads and M consumer threads
around one bounded ``queue.Queue`` and samples, a few times a second, how full
the queue is and how many items were produced and consumed so far. Rates and
thread counts can be changed while it runs ("add a consumer and watch the
queue drain"); the queue's capacity applies from the next start.
:class:`ProducerConsumerDemo` puts sliders, Start/Stop buttons and a plot that
redraws itself in front of a model.

What it models and what it trades off:

* Everything the view shows comes from the model, so the model is tested
  without a browser: set the sliders' values as attributes, ``start()``,
  wait, ``stop()``, read ``samples``.
* Stop always works and leaves no thread behind. A thread blocked in
  ``Queue.put``/``Queue.get`` cannot be woken by another event, so workers
  block with a short timeout (``poll``, 50 ms) and re-check their stop flag
  between tries: stopping costs at most about ``poll`` per thread, and an
  idle worker wakes 20 times a second (a few microseconds of CPU each). The
  lesson's own bounded buffer, built on a Condition, does better; this demo
  keeps to ``queue.Queue`` so it does not give that exercise away.
* A model stops itself after ``max_seconds`` (default 300 s), so a demo left
  running in a forgotten tab does not keep the kernel busy forever; and
  creating a new demo stops the old ones (re-running a cell replaces it).
* The plot is drawn with matplotlib's Agg backend into a PNG shown by an
  ``ipywidgets.Image``, from a background thread: the kernel stays free to run
  other cells while the demo runs, and no pyplot state is touched.
* The numbers are real threads on a shared machine: a rate of 50 items/s is a
  target, not a promise. ``samples`` record what happened.

Methods for the caller (model)::

    model = ProducerConsumerModel(producers=2, consumers=1, produce_rate=10,
                                  consume_rate=5, capacity=8)
    model.start()                 # returns at once; threads run in the background
    model.consumers = 3           # live: starts two more consumers
    model.stop()                  # joins every thread (bounded), takes a last sample
    model.samples                 # list[Sample(t, occupancy, produced, consumed, ...)]
    model.run_for(2.0)            # start, wait 2 s, stop: for a notebook that runs unattended
    model.plot()                  # a matplotlib Figure: occupancy, produced vs consumed

View::

    demo = producer_consumer_demo(capacity=8)   # display it: sliders, buttons, live plot
    demo.start(); demo.stop()                    # the buttons do the same
"""

from __future__ import annotations

import atexit
import io
import itertools
import queue
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

__all__ = ["ProducerConsumerModel", "Sample", "StopTimeout", "stop_all_demos"]

MAX_THREADS = 16  # per role; the sliders' upper end
MAX_RATE = 100.0  # items per second per thread


class StopTimeout(RuntimeError):
    """Some demo threads did not end within the time ``stop()`` allowed."""


@dataclass(frozen=True)
class Sample:
    """The state of the demo ``t`` seconds after start."""

    t: float
    occupancy: int  # items in the queue
    produced: int  # items put into the queue so far
    consumed: int  # items taken out of it so far
    producers: int  # producer threads running
    consumers: int  # consumer threads running
    capacity: int


class _Worker:
    """One producer or consumer thread and the Event that retires it."""

    def __init__(self, role: str, index: int):
        self.role = role
        self.index = index
        # Set by the model (stop(), or fewer threads asked for); read by this worker.
        self.retire = threading.Event()
        self.thread: threading.Thread | None = None


_running_models: "weakref.WeakSet[ProducerConsumerModel]" = weakref.WeakSet()


def stop_all_demos(timeout: float = 2.0) -> int:
    """Stop every running model in this process; return how many were running."""
    models = [m for m in list(_running_models) if m.running or m.threads()]
    for model in models:
        model.stop(timeout=timeout)
    return len(models)


atexit.register(stop_all_demos)


class ProducerConsumerModel:
    """N producers and M consumers around a bounded ``queue.Queue``, sampled over time.

    Settings (the view's sliders; validated when set):
        producers, consumers   threads of each role, 0..16; live while running
        produce_rate           items per second *per producer*; live
        consume_rate           items per second *per consumer*; live
        capacity               the queue's maxsize, >= 1; applies at the next start

    Methods for the caller: ``start()``, ``stop(timeout)``, ``run_for(seconds)``,
    ``samples``, ``last()``, ``plot()``, ``threads()``, usable in ``with``.
    """

    def __init__(self, producers: int = 2, consumers: int = 2, produce_rate: float = 10.0,
                 consume_rate: float = 8.0, capacity: int = 10, *, sample_interval: float = 0.05,
                 poll: float = 0.05, max_seconds: float = 300.0, max_samples: int = 20_000):
        if sample_interval <= 0 or poll <= 0 or max_seconds <= 0:
            raise ValueError("sample_interval, poll and max_seconds must be positive")
        self.sample_interval = sample_interval
        self.poll = poll
        self.max_seconds = max_seconds
        # Serialises start/stop/resizing (the buttons and sliders call them from the
        # kernel's thread, the time limit from the sampler). Held only briefly.
        self._control = threading.RLock()
        # Guards the two counters; taken by every worker once per item.
        self._count_lock = threading.Lock()
        self._produced = 0
        self._consumed = 0
        self._queue: queue.Queue = queue.Queue(1)
        self._workers: dict[str, list[_Worker]] = {"producer": [], "consumer": []}
        self._sampler: threading.Thread | None = None
        # Set by stop() or by the sampler at max_seconds; every thread of this run ends.
        self._halt = threading.Event()
        self._halt.set()  # not running yet
        self._samples: deque[Sample] = deque(maxlen=max_samples)
        self._t0 = time.monotonic()
        self._ids = itertools.count()
        self._run = 0  # how many times started; names threads of each run apart
        self._producers = self._check_count("producers", producers)
        self._consumers = self._check_count("consumers", consumers)
        self.produce_rate = produce_rate
        self.consume_rate = consume_rate
        self.capacity = capacity

    # ---- settings --------------------------------------------------------
    @staticmethod
    def _check_count(what: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_THREADS:
            raise ValueError(f"{what} must be an int from 0 to {MAX_THREADS}, got {value!r}")
        return value

    @staticmethod
    def _check_rate(what: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_RATE:
            raise ValueError(f"{what} must be a number in (0, {MAX_RATE:g}] items/s, got {value!r}")
        return float(value)

    @property
    def producers(self) -> int:
        return self._producers

    @producers.setter
    def producers(self, value: int) -> None:
        self._producers = self._check_count("producers", value)
        self._resize("producer", self._producers)

    @property
    def consumers(self) -> int:
        return self._consumers

    @consumers.setter
    def consumers(self, value: int) -> None:
        self._consumers = self._check_count("consumers", value)
        self._resize("consumer", self._consumers)

    @property
    def produce_rate(self) -> float:
        return self._produce_rate

    @produce_rate.setter
    def produce_rate(self, value: float) -> None:
        self._produce_rate = self._check_rate("produce_rate", value)

    @property
    def consume_rate(self) -> float:
        return self._consume_rate

    @consume_rate.setter
    def consume_rate(self, value: float) -> None:
        self._consume_rate = self._check_rate("consume_rate", value)

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"capacity must be an int >= 1, got {value!r}")
        self._capacity = value  # the running queue keeps its size until the next start

    # ---- state -----------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between start() and stop() (or the time limit)."""
        return not self._halt.is_set()

    @property
    def produced(self) -> int:
        return self._produced

    @property
    def consumed(self) -> int:
        return self._consumed

    @property
    def occupancy(self) -> int:
        """Items in the queue now (``qsize()``: exact once the threads are stopped)."""
        return self._queue.qsize()

    @property
    def samples(self) -> list[Sample]:
        """Every sample of the current (or last) run, oldest first."""
        return list(self._samples)

    def last(self) -> Sample | None:
        return self._samples[-1] if self._samples else None

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def threads(self) -> list[threading.Thread]:
        """The demo's threads that are still alive (empty after stop())."""
        found = [w.thread for role in self._workers.values() for w in role if w.thread]
        if self._sampler is not None:
            found.append(self._sampler)
        return [t for t in found if t.is_alive()]

    # ---- start / stop ----------------------------------------------------
    def start(self) -> "ProducerConsumerModel":
        """Start the threads and return at once. Starting a running model is an error."""
        with self._control:
            if self.running:
                raise RuntimeError("the demo is already running; stop() it first")
            self._join_leftovers(timeout=2.0)
            self._run += 1
            self._queue = queue.Queue(maxsize=self._capacity)
            self._produced = self._consumed = 0
            self._ids = itertools.count()
            self._samples.clear()
            self._workers = {"producer": [], "consumer": []}
            self._t0 = time.monotonic()
            self._halt.clear()
            _running_models.add(self)
            self._take_sample()
            self._resize("producer", self._producers)
            self._resize("consumer", self._consumers)
            self._sampler = threading.Thread(target=self._sample_loop, daemon=True,
                                             name=f"pc{self._run}-sampler")
            self._sampler.start()
        return self

    def stop(self, timeout: float = 2.0) -> "ProducerConsumerModel":
        """Stop every thread, join them within ``timeout`` s, take a last sample.

        Safe to call at any time, any number of times. Raises :class:`StopTimeout`
        naming the threads still alive if they did not end in time (they are
        daemon threads, so they cannot keep the kernel from exiting).
        """
        with self._control:
            self._halt.set()
            for role in self._workers.values():
                for worker in role:
                    worker.retire.set()
            self._join_leftovers(timeout)
            _running_models.discard(self)
            if self._sampler is not None or self._samples:
                self._take_sample()
        return self

    def run_for(self, seconds: float, stop_timeout: float = 2.0) -> "ProducerConsumerModel":
        """Start, let it run ``seconds`` s, stop: a bounded run for a notebook cell."""
        self.start()
        try:
            self._halt.wait(seconds)  # returns early if the time limit stopped it
        finally:
            self.stop(timeout=stop_timeout)
        return self

    def __enter__(self) -> "ProducerConsumerModel":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _join_leftovers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads():
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self.threads() if t is not threading.current_thread()]
        if alive:
            raise StopTimeout(f"demo threads still running after {timeout:g} s: {', '.join(alive)}")

    def _resize(self, role: str, wanted: int) -> None:
        """Start or retire workers of ``role`` until ``wanted`` are running."""
        with self._control:
            if not self.running:
                return
            workers = self._workers[role]
            active = [w for w in workers if not w.retire.is_set()]
            target = self._produce if role == "producer" else self._consume
            next_index = max((w.index for w in workers), default=-1) + 1
            while len(active) < wanted:
                worker = _Worker(role, next_index)
                next_index += 1
                worker.thread = threading.Thread(target=target, args=(worker,), daemon=True,
                                                 name=f"pc{self._run}-{role}-{worker.index}")
                workers.append(worker)
                active.append(worker)
                worker.thread.start()
            for worker in active[wanted:]:
                worker.retire.set()  # it ends within about `poll`; joined at stop()
            # Forget retired workers that have already ended.
            self._workers[role] = [w for w in workers
                                   if not w.retire.is_set() or (w.thread and w.thread.is_alive())]

    # ---- the threads -----------------------------------------------------
    def _should_stop(self, worker: _Worker) -> bool:
        return worker.retire.is_set() or self._halt.is_set()

    def _pace(self, worker: _Worker, rate_of) -> bool:
        """Wait 1/rate s (rate read live, in slices); return False if told to stop."""
        started = time.monotonic()
        while not self._should_stop(worker):
            remaining = started + 1.0 / rate_of() - time.monotonic()
            if remaining <= 0:
                return True
            worker.retire.wait(min(remaining, 0.1))
        return False

    def _produce(self, worker: _Worker) -> None:
        q = self._queue
        while self._pace(worker, lambda: self._produce_rate):
            item = next(self._ids)  # itertools.count's next() is atomic in CPython
            while not self._should_stop(worker):
                try:
                    q.put(item, timeout=self.poll)
                except queue.Full:
                    continue  # still full: re-check the stop flag, try again
                with self._count_lock:
                    self._produced += 1
                break

    def _consume(self, worker: _Worker) -> None:
        q = self._queue
        while not self._should_stop(worker):
            try:
                q.get(timeout=self.poll)
            except queue.Empty:
                continue  # still empty: re-check the stop flag, try again
            with self._count_lock:
                self._consumed += 1
            self._pace(worker, lambda: self._consume_rate)  # "processing" the item

    def _take_sample(self) -> None:
        with self._count_lock:
            produced, consumed = self._produced, self._consumed
        live = {role: sum(1 for w in ws if not w.retire.is_set() and w.thread and w.thread.is_alive())
                for role, ws in self._workers.items()}
        self._samples.append(Sample(round(self.elapsed(), 4), self._queue.qsize(), produced,
                                    consumed, live["producer"], live["consumer"],
                                    self._queue.maxsize))

    def _sample_loop(self) -> None:
        while not self._halt.wait(self.sample_interval):
            self._take_sample()
            if self.elapsed() >= self.max_seconds:
                self._halt.set()  # every worker sees it within about `poll`
        # stop() joins the workers; the time limit does not need to.

    # ---- drawing ---------------------------------------------------------
    def plot(self, fig=None, width: float = 9.0, height: float = 3.2, window: float | None = 60.0):
        """Draw occupancy over time and produced vs consumed; return the Figure.

        Only the last ``window`` seconds are drawn (None: everything), so a
        long run stays readable. Made without pyplot (safe from any thread,
        nothing left open); a notebook with the inline backend shows the
        returned Figure as the cell's value.
        """
        from matplotlib.figure import Figure

        if fig is None:
            fig = Figure(figsize=(width, height), layout="constrained")
        else:
            fig.clear()
        occ_ax, count_ax = fig.subplots(1, 2)
        samples = self.samples
        if window is not None and samples and samples[-1].t > window:
            samples = [s for s in samples if s.t >= samples[-1].t - window]
        t = [s.t for s in samples]
        occ_ax.step(t, [s.occupancy for s in samples], where="post", color="#fd8d3c",
                    label="items in the queue")
        capacity = samples[-1].capacity if samples else self._capacity
        occ_ax.axhline(capacity, color="#333", linestyle="--", linewidth=1,
                       label=f"capacity ({capacity})")
        occ_ax.set_ylim(-0.3, capacity * 1.15 + 0.5)
        occ_ax.set_xlabel("time (s)")
        occ_ax.set_title("queue occupancy", fontsize=10)
        occ_ax.legend(loc="upper left", fontsize=8, frameon=False)
        count_ax.plot(t, [s.produced for s in samples], color="#41ab5d", label="produced")
        count_ax.plot(t, [s.consumed for s in samples], color="#807dba", label="consumed")
        count_ax.set_xlabel("time (s)")
        count_ax.set_title("items so far", fontsize=10)
        count_ax.legend(loc="upper left", fontsize=8, frameon=False)
        for ax in (occ_ax, count_ax):
            ax.grid(alpha=0.3)
            left = t[0] if t and window is not None and t[-1] > window else 0.0
            ax.set_xlim(left, max(t[-1] if t else 0.0, left + 1.0))
        return fig

    def png(self, width: float = 9.0, height: float = 3.2, dpi: int = 80) -> bytes:
        """The plot as PNG bytes (what the view's Image shows)."""
        buffer = io.BytesIO()
        self.plot(width=width, height=height).savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def summary(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"{state} at {self.elapsed():.1f} s: produced {self._produced}, "
                f"consumed {self._consumed}, in the queue {self.occupancy}/{self._queue.maxsize}")

    def __repr__(self) -> str:
        return (f"<ProducerConsumerModel producers={self._producers} consumers={self._consumers} "
                f"produce_rate={self._produce_rate:g} consume_rate={self._consume_rate:g} "
                f"capacity={self._capacity} {self.summary()}>")
