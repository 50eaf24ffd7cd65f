"""A control panel for the servers running in this kernel (ipywidgets).

One row per registered server (``course_lib.servers.start`` / ``background``):
its name, kind, address, status and clients served, with a Stop button; below,
the event log of the server chosen in the drop-down, refreshed live.

What it trades off: the log's listeners run in the servers' own threads, so
the panel redraws from those threads, at most every ``interval`` seconds (a
short timer catches the last burst). A busy server therefore costs a few
redraws a second, not one per connection. Redraws never overlap (one lock
for the whole redraw): a server's thread and the timer redrawing at once
once changed the rows while the other walked them, under load. The panel
only shows and stops servers; it never starts one.
"""

from __future__ import annotations

import html
import threading
import time

import ipywidgets as widgets

from course_lib import servers as _servers

__all__ = ["ServerPanel"]


class ServerPanel(widgets.VBox):
    """Running servers with Stop buttons, and the selected server's log.

    Methods for the caller:
        ServerPanel(last=15, interval=0.25)   display it as the cell's result
        refresh()                             redraw now (the button does it too)
        close()                               stop listening to the servers' logs
    """

    def __init__(self, *, last: int = 15, interval: float = 0.25):
        self.last = last
        self.interval = interval
        self._rows = widgets.VBox()
        self._choice = widgets.Dropdown(description="log of", options=[])
        self._log = widgets.HTML()
        self._refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self._stop_all_button = widgets.Button(description="Stop all", button_style="danger")
        self._refresh_button.on_click(lambda _: self.refresh())
        self._stop_all_button.on_click(lambda _: self._stop_all())
        self._choice.observe(lambda _: self._draw_log(), names="value")
        # Guards _watched, _last_draw and _pending; held briefly by server
        # threads (log listeners) and the kernel's thread (buttons, refresh).
        self._lock = threading.Lock()
        # Held for a whole redraw: the kernel's thread, a server's thread and the redraw timer may all
        # redraw, and two redraws at once would change the rows while the other walks them.
        self._drawing = threading.RLock()
        self._closed = False
        self._watched: dict[int, object] = {}
        self._last_draw = 0.0
        self._pending: threading.Timer | None = None
        self._row_widgets: dict[int, widgets.HBox] = {}  # id(server) -> its row
        self._empty = widgets.HTML("<i>no servers started in this kernel</i>")
        super().__init__([
            widgets.HBox([self._refresh_button, self._stop_all_button]),
            self._rows, self._choice, self._log,
        ])
        self.refresh()

    # -- drawing ------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw the rows and the log; start listening to new servers' logs (nothing once closed)."""
        with self._drawing:
            if self._closed:  # a redraw that was already on its way when close() ran
                return
            shown = list(_servers.registered())
            self._watch(shown)
            rows = [self._row(s) for s in shown]
            keep = {id(s) for s in shown}
            for key in [k for k in self._row_widgets if k not in keep]:
                _close_all(self._row_widgets.pop(key))
            self._rows.children = rows or [self._empty]
            names = [s.name for s in shown]
            current = self._choice.value
            self._choice.options = names
            if names:
                self._choice.value = current if current in names else names[-1]
            self._draw_log()
            with self._lock:
                self._last_draw = time.monotonic()

    def _row(self, server) -> widgets.HBox:
        """The server's row, made once and updated in place (no widget churn)."""
        address = server.address
        where = f"{address[0]}:{address[1]}" if address else "-"
        served = server.clients_served
        text = (f"<b>{html.escape(server.name)}</b> &nbsp; {type(server).__name__} &nbsp; "
                f"<code>{html.escape(where)}</code> &nbsp; {server.status()}"
                + ("" if served is None else f" &nbsp; {served} served")
                + (f" &nbsp; <span style='color:#b3261e'>{len(server.errors)} error(s)</span>"
                   if server.errors else ""))
        row = self._row_widgets.get(id(server))
        if row is None:
            button = widgets.Button(description="Stop", layout=widgets.Layout(width="70px"))
            button.on_click(lambda _, s=server: self._stop(s))
            row = widgets.HBox([button, widgets.HTML()])
            self._row_widgets[id(server)] = row
        button, label = row.children
        button.disabled = not server.running
        label.value = text
        return row

    def _draw_log(self) -> None:
        name = self._choice.value
        server = next((s for s in _servers.registered() if s.name == name), None)
        self._log.value = server.log._repr_html_(last=self.last) if server else ""

    # -- live updates --------------------------------------------------------
    def _watch(self, shown) -> None:
        with self._lock:
            for server in shown:
                if id(server) not in self._watched:
                    server.log.subscribe(self._on_event)
                    self._watched[id(server)] = server

    def _on_event(self, _event) -> None:
        # Runs in a server's thread: redraw now, or once the interval is over.
        with self._lock:
            wait = self._last_draw + self.interval - time.monotonic()
            if wait > 0:
                if self._pending is None:
                    self._pending = threading.Timer(wait, self._redraw_later)
                    self._pending.daemon = True
                    self._pending.start()
                return
            self._last_draw = time.monotonic()
        self.refresh()

    def _redraw_later(self) -> None:
        with self._lock:
            self._pending = None
        self.refresh()

    # -- buttons ----------------------------------------------------------------
    def _stop(self, server) -> None:
        try:
            server.stop(timeout=5.0)
        except _servers.ServerError:
            pass  # recorded in its log, shown below
        self.refresh()

    def _stop_all(self) -> None:
        _servers.stop_all()
        self.refresh()

    def close(self) -> None:
        with self._drawing:  # after any redraw under way, and before any that comes later
            self._closed = True
        with self._lock:
            watched = list(self._watched.values())
            self._watched.clear()
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        for server in watched:
            server.log.unsubscribe(self._on_event)
        for row in self._row_widgets.values():
            _close_all(row)
        self._row_widgets.clear()
        super().close()


def _close_all(widget) -> None:
    """Close a widget, its children, and their layout and style models."""
    for child in getattr(widget, "children", ()):
        _close_all(child)
    for part in ("layout", "style"):
        sub = getattr(widget, part, None)
        if isinstance(sub, widgets.Widget):
            sub.close()
    widget.close()
