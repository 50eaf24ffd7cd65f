"""The live producer/consumer demo's view: sliders, Start/Stop buttons and a plot that redraws itself.

The numbers all come from :class:`ProducerConsumerModel`
(:mod:`course_lib.widgets.producer_consumer_model`), so the model is tested
without a browser and the view only draws it::

    demo = producer_consumer_demo(capacity=8)   # display it: sliders, buttons, live plot
    demo.start(); demo.stop()                    # the buttons do the same

The plot is drawn with matplotlib's Agg backend into a PNG shown by an
``ipywidgets.Image``, from a background thread: the kernel stays free to run
other cells while the demo runs, and no pyplot state is touched.
"""

from __future__ import annotations

import threading
import weakref

from .producer_consumer_model import MAX_THREADS, ProducerConsumerModel, Sample, StopTimeout, stop_all_demos

__all__ = [
    "ProducerConsumerModel",
    "ProducerConsumerDemo",
    "Sample",
    "StopTimeout",
    "producer_consumer_demo",
    "stop_all_demos",
]


class ProducerConsumerDemo:
    """Sliders, Start/Stop buttons and a live plot in front of a :class:`ProducerConsumerModel`.

    Methods for the caller: ``start()``, ``stop()``, ``render()`` (redraw now),
    ``close()``; display the object (or ``.widget``) in a notebook.
    The plot is redrawn every ``refresh`` s by a background thread while the
    model runs; the kernel stays free.
    """

    def __init__(self, model: ProducerConsumerModel | None = None, refresh: float = 0.3):
        import ipywidgets as w

        self.model = model if model is not None else ProducerConsumerModel()
        self.refresh = refresh
        # Set by stop()/close() to end the redraw thread; cleared by start().
        self._refresh_stop = threading.Event()
        self._refresh_stop.set()
        self._refresher: threading.Thread | None = None
        m = self.model
        style = {"description_width": "150px"}
        layout = w.Layout(width="420px")
        self.producers = w.IntSlider(m.producers, 0, MAX_THREADS, description="producers",
                                     style=style, layout=layout)
        self.consumers = w.IntSlider(m.consumers, 0, MAX_THREADS, description="consumers",
                                     style=style, layout=layout)
        self.produce_rate = w.FloatSlider(m.produce_rate, min=0.5, max=50, step=0.5,
                                          description="items/s per producer", style=style,
                                          layout=layout)
        self.consume_rate = w.FloatSlider(m.consume_rate, min=0.5, max=50, step=0.5,
                                          description="items/s per consumer", style=style,
                                          layout=layout)
        self.capacity = w.IntSlider(m.capacity, 1, 50, description="queue size", style=style,
                                    layout=layout)
        self.start_button = w.Button(description="Start", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True)
        self.status = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(width="720px"))
        for slider, name in ((self.producers, "producers"), (self.consumers, "consumers"),
                             (self.produce_rate, "produce_rate"),
                             (self.consume_rate, "consume_rate"), (self.capacity, "capacity")):
            slider.observe(self._setter(name), names="value")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = w.VBox([
            w.HBox([w.VBox([self.producers, self.produce_rate, self.capacity]),
                    w.VBox([self.consumers, self.consume_rate,
                            w.HBox([self.start_button, self.stop_button])])]),
            self.status,
            self.image,
        ])
        self.render()

    def _setter(self, name: str):
        def on_change(change) -> None:
            try:
                setattr(self.model, name, change["new"])
            except ValueError as error:  # e.g. a rate of 0: keep the old value, say why
                self.status.value = f"<span style='color:#b00'>{error}</span>"
        return on_change

    def start(self) -> "ProducerConsumerDemo":
        """Start the model and the redraw thread; returns at once."""
        if self.model.running:
            return self
        self.model.start()
        self.capacity.disabled = True  # applies at the next start only
        self.start_button.disabled = True
        self.stop_button.disabled = False
        self._refresh_stop.clear()
        self._refresher = threading.Thread(target=self._refresh_loop, daemon=True,
                                           name="pc-demo-redraw")
        self._refresher.start()
        return self

    def stop(self) -> "ProducerConsumerDemo":
        """Stop the model and the redraw thread (bounded), then draw the final plot."""
        self._refresh_stop.set()
        if self._refresher is not None and self._refresher is not threading.current_thread():
            self._refresher.join(timeout=2.0)
        try:
            self.model.stop()
        finally:
            self.capacity.disabled = False
            self.start_button.disabled = False
            self.stop_button.disabled = True
            self.render()
        return self

    def close(self) -> None:
        """Stop and close the widgets (their comms)."""
        self.stop()
        for widget in (self.producers, self.consumers, self.produce_rate, self.consume_rate,
                       self.capacity, self.start_button, self.stop_button, self.status,
                       self.image, *self._boxes()):
            widget.close()

    def _boxes(self):
        """Every box of the layout, outermost last."""
        found = []

        def walk(box):
            for child in getattr(box, "children", ()):
                if hasattr(child, "children"):
                    walk(child)
            found.append(box)
        walk(self.widget)
        return found

    def render(self) -> None:
        """Redraw the plot and the status line from the model's samples."""
        self.image.value = self.model.png()
        self.status.value = f"<code>{self.model.summary()}</code>"

    def _refresh_loop(self) -> None:
        while not self._refresh_stop.wait(self.refresh):
            try:
                self.render()
            except Exception as error:  # a drawing error must not kill the demo silently
                self.status.value = f"<span style='color:#b00'>redraw failed: {error!r}</span>"
                return
            if not self.model.running:  # stopped itself at max_seconds
                self.model.stop()
                self.start_button.disabled = False
                self.stop_button.disabled = True
                self.capacity.disabled = False
                self.render()
                return

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<ProducerConsumerDemo {self.model.summary()}>"


_demos: "weakref.WeakSet[ProducerConsumerDemo]" = weakref.WeakSet()


def producer_consumer_demo(**settings) -> ProducerConsumerDemo:
    """A new demo with the given model settings; any demo made before is stopped.

    Re-running the notebook cell that makes it therefore replaces the old demo
    instead of leaving its threads running.
    """
    for old in list(_demos):
        old.stop()
    demo = ProducerConsumerDemo(ProducerConsumerModel(**settings))
    _demos.add(demo)
    return demo
