"""The partner bot: plays either side of the syllabus's turn-taking chat, or joins a room."""

from __future__ import annotations

import socket
import threading
from typing import Callable, Iterable

from .protocol import ChatError, ChatTimeout, close_quietly, is_quit, shutdown_quietly
from .client import ChatClient



class ChatPartnerBot:
    """Someone to chat with, so no cell has to wait for ``input()``.

    ``reply(message)`` is what the bot says next: the scripted ``replies`` in
    order, then ``"bye"``. Pass ``bot.reply`` wherever the syllabus calls
    ``input("You: ")``. The bot can also *be* either side of the syllabus's
    turn-taking chat (:meth:`serve_turn_taking`, :meth:`talk_turn_taking`),
    or join a chat room (:meth:`join_room`).
    """

    def __init__(self, replies: Iterable[str] = ("hello!", "fine, thanks", "bye"),
                 name: str = "bot"):
        self.name = name
        self._script = list(replies)
        # Guards the position in the script (reply may be called from any thread).
        self._lock = threading.Lock()
        self._next = 0
        self.heard: list[str] = []

    def reply(self, message: str = "") -> str:
        with self._lock:
            self.heard.append(message)
            if self._next < len(self._script):
                answer = self._script[self._next]
                self._next += 1
                return answer
            return "bye"

    def serve_turn_taking(self, timeout: float = 5.0) -> "TurnTakingPartner":
        """Play the syllabus's *server*: listen on port 0, accept one client, then
        receive / reply in turns with ``recv(1024)`` until someone says ``bye``."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        partner = TurnTakingPartner(listener.getsockname(), role="server")

        def run():
            try:
                listener.settimeout(timeout)
                conn, _ = listener.accept()
            except OSError as exc:
                partner._fail(exc)
                return
            finally:
                listener.close()
            with conn:
                conn.settimeout(timeout)
                partner._converse(conn, self, first="receive")

        def stop_listening():
            shutdown_quietly(listener)  # wakes a blocked accept() (close alone does not)
            close_quietly(listener)

        partner._start(run, on_stop=stop_listening)
        return partner

    def talk_turn_taking(self, address, timeout: float = 5.0) -> "TurnTakingPartner":
        """Play the syllabus's *client*: connect, then send / receive in turns
        until someone says ``bye``."""
        partner = TurnTakingPartner(tuple(address[:2]), role="client")

        def run():
            try:
                conn = socket.create_connection(partner.address, timeout=timeout)
            except OSError as exc:
                partner._fail(exc)
                return
            partner._sock = conn
            with conn:
                partner._converse(conn, self, first="send")

        partner._start(run)
        return partner

    def join_room(self, address, timeout: float = 5.0) -> ChatClient:
        """Join a chat room under :attr:`name` and answer every message with :meth:`reply`.

        Returns once the room has welcomed the bot. Answers go to the room as
        ``@SPEAKER ANSWER``; notices (``* ...``) and errors are not answered;
        when the script is used up the bot echoes instead of saying ``bye``,
        so it never leaves a room on its own. Close it with ``.close()``.
        """
        holder: dict = {}
        # Set by the receive thread at the welcome line: the bot is in the room.
        welcomed = threading.Event()

        def on_line(line: str) -> None:
            if line.startswith("* welcome"):
                welcomed.set()
            if line.startswith(("* ", "! ")) or ": " not in line:
                return
            speaker, text = line.split(": ", 1)
            answer = self.reply(text)
            if is_quit(answer):
                answer = f"{speaker} said {text!r}"
            client = holder.get("client")
            if client is not None:
                try:
                    client.send(f"@{speaker} {answer}")
                except ChatError:
                    pass

        client = ChatClient(address, self.name, on_line=on_line, timeout=timeout)
        holder["client"] = client
        if not welcomed.wait(timeout):
            client.close(timeout=1.0)
            raise ChatTimeout(f"the room did not welcome {self.name!r} within {timeout:g} s")
        return client


class TurnTakingPartner:
    """The handle of a bot playing one side of the syllabus's turn-taking chat.

    ``transcript`` lists ``(who, text)`` pairs as they happen (``who`` is
    ``"bot"`` or ``"peer"``); ``wait(timeout)`` waits for the conversation to
    end and raises :class:`ChatTimeout` if it does not; ``stop()`` ends it
    early. ``error`` holds what went wrong, if anything.
    """

    def __init__(self, address, role: str):
        self.address = address
        self.role = role
        self.transcript: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        # Set by the bot's thread when the conversation is over, however it ended.
        self.done = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._on_stop: Callable[[], None] | None = None

    def _start(self, run, on_stop=None) -> None:
        self._on_stop = on_stop

        def body():
            try:
                run()
            except BaseException as exc:
                self.error = exc
            finally:
                self.done.set()

        self._thread = threading.Thread(target=body, name=f"chat-bot:{self.role}", daemon=True)
        self._thread.start()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc

    def _converse(self, conn: socket.socket, bot: ChatPartnerBot, first: str) -> None:
        self._sock = conn
        turn = first
        while True:
            if turn == "receive":
                data = conn.recv(1024)
                if not data:
                    self.transcript.append(("peer", "<closed the connection>"))
                    return
                message = data.decode("utf-8", errors="replace")
                self.transcript.append(("peer", message))
                if message.lower() == "bye":
                    return
                turn = "send"
            else:
                heard = self.transcript[-1][1] if self.transcript else ""
                answer = bot.reply(heard)
                conn.sendall(answer.encode("utf-8"))
                self.transcript.append(("bot", answer))
                if answer.lower() == "bye":
                    return
                turn = "receive"

    def wait(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        if not self.done.wait(timeout):
            raise ChatTimeout(f"the bot's conversation did not end within {timeout:g} s")
        if self._thread is not None:
            self._thread.join(timeout)
        return self.transcript

    def stop(self, timeout: float = 2.0) -> None:
        if self._on_stop is not None:
            self._on_stop()
        if self._sock is not None:
            shutdown_quietly(self._sock)
        self.done.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
