"""A chat window made of ipywidgets, talking to any line-protocol chat server.

What it models: the client of lesson 08 with a face — a receive thread that
puts lines on screen while the kernel stays free, and a send button that
never waits for a reply. What it trades off: the message area is a read-only
``Textarea`` holding the last ``max_lines`` lines (simple, testable through
its ``value``, no HTML injection possible), not a rich chat log.

Methods for the caller:
    ChatPanel(address, nickname)   build (and connect, if an address is given)
    connect(address, nickname)     connect or reconnect; the status shows the result
    send(text=None)                send text (or the input box's text)
    disconnect()                   say /quit and close the connection
    wait_for(predicate, timeout)   wait until a received line matches (tests, demos)
    close()                        disconnect and close the widgets

The receive thread (a :class:`course_lib.chat.ChatClient`) calls back into
the panel; setting a widget's ``value`` from that thread sends a message to
the browser through the kernel's IOPub channel, which does not wait for the
cell that is running — so lines appear while other cells run.
"""

from __future__ import annotations

import html
import threading
import time
import warnings

import ipywidgets as widgets

from course_lib import chat

__all__ = ["ChatPanel", "parse_address"]


def parse_address(address) -> tuple[str, int]:
    """``("127.0.0.1", 5000)``, ``"127.0.0.1:5000"`` or ``"[::1]:5000"`` as ``(host, port)``."""
    if isinstance(address, (tuple, list)):
        host, port = address[0], address[1]
    else:
        text = str(address).strip()
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or not rest.startswith(":"):
                raise ValueError(f"expected [IPv6]:port, got {text!r}")
            port = rest[1:]
        else:
            host, sep, port = text.rpartition(":")
            if not sep:
                raise ValueError(f"expected host:port, got {text!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"the port must be a number, got {port!r}") from None
    if not 0 < port < 65536 or not host:
        raise ValueError(f"not a server address: {address!r}")
    return str(host), port


def _format_address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ChatPanel(widgets.VBox):
    """Messages area, input box, send button and connection status for one chat connection."""

    def __init__(self, address=None, nickname: str = "me", *, max_lines: int = 200,
                 timeout: float = 5.0):
        self.max_lines = max_lines
        self.timeout = timeout
        self.address_box = widgets.Text(
            value="" if address is None else _format_address(parse_address(address)),
            placeholder="host:port", description="Server",
            layout=widgets.Layout(width="260px"))
        self.nickname_box = widgets.Text(value=nickname, description="Nickname",
                                         layout=widgets.Layout(width="220px"))
        self.connect_button = widgets.Button(description="Connect", icon="plug")
        self.status = widgets.HTML()
        self.messages = widgets.Textarea(
            value="", disabled=True, placeholder="messages appear here",
            layout=widgets.Layout(width="100%", height="220px"))
        self.input_box = widgets.Text(placeholder="type a message; Enter or Send sends it",
                                      layout=widgets.Layout(width="70%"))
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        super().__init__([
            widgets.HBox([self.address_box, self.nickname_box, self.connect_button]),
            self.status,
            self.messages,
            widgets.HBox([self.input_box, self.send_button]),
        ])
        # Guards _lines and _client; taken by the receive thread (new line,
        # connection ended) and by the kernel thread (connect, send, close).
        self._lock = threading.Lock()
        # Notified by the receive thread after each new line (wait_for waits on it).
        self._new_line = threading.Condition(self._lock)
        self._lines: list[str] = []
        self._client: chat.ChatClient | None = None
        self._generation = 0  # which connection the receive callbacks belong to
        self.connect_button.on_click(lambda _button: self._connect_from_form())
        self.send_button.on_click(lambda _button: self.send())
        with warnings.catch_warnings():  # on_submit is deprecated but still the Enter key
            warnings.simplefilter("ignore", DeprecationWarning)
            self.input_box.on_submit(lambda _box: self.send())
        self._set_status("disconnected", "grey")
        if address is not None:
            self.connect(address, nickname)

    # -- state ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        client = self._client
        return client is not None and client.connected

    @property
    def lines(self) -> list[str]:
        """The lines shown, oldest first (a copy)."""
        with self._lock:
            return list(self._lines)

    # -- actions -------------------------------------------------------------

    def connect(self, address=None, nickname: str | None = None) -> bool:
        """Connect to ``address`` as ``nickname`` (closing any earlier connection).

        Returns whether it worked; on failure the status says why (nothing raises,
        so a button click never prints a traceback into a random cell).
        """
        self.disconnect()
        try:
            target = parse_address(address if address is not None else self.address_box.value)
        except ValueError as exc:
            self._set_status(f"bad address: {exc}", "#b3261e")
            return False
        nickname = (nickname if nickname is not None else self.nickname_box.value).strip()
        self.address_box.value = _format_address(target)
        self.nickname_box.value = nickname
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._set_status(f"connecting to {_format_address(target)} ...", "#9a6700")
        try:
            client = chat.ChatClient(
                target, nickname, timeout=self.timeout,
                on_line=lambda line: self._on_line(generation, line),
                on_close=lambda: self._on_close(generation))
        except (OSError, ValueError, chat.ChatError) as exc:
            self._set_status(f"could not connect to {_format_address(target)}: {exc}", "#b3261e")
            return False
        with self._lock:
            self._client = client
        if client.connected:
            self._set_status(f"connected to {_format_address(target)} as {nickname}",
                             "#1a7f37")
        return True

    def _connect_from_form(self) -> None:
        self.connect()

    def send(self, text: str | None = None) -> bool:
        """Send ``text`` (default: the input box, which is then cleared); show it as ``me: text``."""
        from_box = text is None
        text = self.input_box.value if from_box else text
        if not text.strip():
            return False
        client = self._client
        if client is None or not client.connected:
            self._set_status("not connected: press Connect first", "#b3261e")
            return False
        try:
            client.send(text)
        except (ValueError, chat.ChatError) as exc:
            self._set_status(f"not sent: {exc}", "#b3261e")
            return False
        if from_box:
            self.input_box.value = ""
        self._add_line(f"me: {text}")
        return True

    def disconnect(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._generation += 1
        if client is not None:
            client.close(timeout=self.timeout)
            self._set_status("disconnected", "grey")

    def close(self) -> None:
        """Disconnect and close every widget of the panel."""
        self.disconnect()
        for child in (self.address_box, self.nickname_box, self.connect_button, self.status,
                      self.messages, self.input_box, self.send_button):
            child.close()
        super().close()

    def wait_for(self, predicate, timeout: float = 5.0) -> str:
        """The first line shown that ``predicate`` accepts, waiting up to ``timeout`` s for it."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self._lines:
                    if predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise chat.ChatTimeout(
                        f"no matching line within {timeout:g} s; shown: {self._lines[-5:]!r}")
                self._new_line.wait(remaining)

    # -- called by the receive thread ----------------------------------------------

    def _on_line(self, generation: int, line: str) -> None:
        if generation == self._generation:
            self._add_line(line)

    def _on_close(self, generation: int) -> None:
        if generation == self._generation:
            self._set_status("the server closed the connection", "grey")

    def _add_line(self, line: str) -> None:
        with self._new_line:
            self._lines.append(line)
            del self._lines[:-self.max_lines]
            # Set under the lock so two threads cannot leave an older text shown.
            self.messages.value = "\n".join(self._lines)
            self._new_line.notify_all()

    def _set_status(self, text: str, colour: str) -> None:
        self.status.value = (f'<span style="color:{colour}">&#9679;</span> '
                             f'<span class="chat-status">{html.escape(text)}</span>')
