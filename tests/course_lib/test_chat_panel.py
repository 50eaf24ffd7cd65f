"""Tests for course_lib.widgets.chat_panel: the widget models, without a browser."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from course_lib import chat
from course_lib.widgets.chat_panel import ChatPanel, parse_address
from tests.waiting import assert_no_new_threads


@pytest.fixture
def room():
    server = chat.ChatRoomServer().start()
    yield server
    server.stop(timeout=5)


def test_parse_address_accepts_the_usual_forms_and_rejects_garbage():
    """Are 'host:port', '[::1]:port' and tuples understood, and a missing port refused?"""
    assert parse_address("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert parse_address(("localhost", 7)) == ("localhost", 7)
    for bad in ("localhost", "host:port", "[::1]80", "h:70000", ":5"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_panel_has_its_parts_and_starts_disconnected():
    """Does a new panel show a messages area, input box, send button and a 'disconnected' status?"""
    panel = ChatPanel()
    try:
        assert panel.messages.disabled is True
        assert panel.send_button.description == "Send"
        assert "disconnected" in panel.status.value
        assert panel.send("hello") is False
        assert "not connected" in panel.status.value
    finally:
        panel.close()


def test_panel_sends_and_receives_through_a_room(room):
    """Does a line typed in the panel reach another client, and a reply appear in the panel?"""
    panel = ChatPanel(room.address, nickname="panel")
    try:
        assert panel.connected
        assert "connected to 127.0.0.1:" in panel.status.value
        panel.wait_for(lambda line: line == "* welcome panel")
        other = chat.ChatClient(room.address, "other")
        panel.wait_for(lambda line: line == "* other joined")
        other.receive_until(lambda line: line.startswith("* welcome"))
        panel.input_box.value = "hello from the panel"
        panel.send_button.click()  # as the browser would
        assert panel.input_box.value == ""
        assert other.receive() == "panel: hello from the panel"
        other.send("hello panel")
        assert panel.wait_for(lambda line: line == "other: hello panel")
        assert panel.messages.value.splitlines()[-2:] == ["me: hello from the panel", "other: hello panel"]
        other.close()
        panel.wait_for(lambda line: line == "* other left")
    finally:
        panel.close()


def test_panel_updates_while_the_main_thread_is_busy(room):
    """Do lines appear in the widget model while the main thread is blocked elsewhere?"""
    panel = ChatPanel(room.address, nickname="p")
    try:
        panel.wait_for(lambda line: line.startswith("* welcome"))
        other = chat.ChatClient(room.address, "o")
        panel.wait_for(lambda line: line == "* o joined")
        for i in range(20):
            other.send(f"line {i}")
        # The main thread does nothing with the panel; only its receive thread runs.
        deadline = time.monotonic() + 5
        while "o: line 19" not in panel.messages.value and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [ln for ln in panel.messages.value.splitlines() if ln.startswith("o: ")] == \
            [f"o: line {i}" for i in range(20)]
        other.close()
    finally:
        panel.close()


def test_panel_keeps_only_the_last_lines(room):
    """Does the messages area keep at most max_lines lines?"""
    panel = ChatPanel(room.address, nickname="p", max_lines=5)
    try:
        panel.wait_for(lambda line: line.startswith("* welcome"))
        other = chat.ChatClient(room.address, "o")
        panel.wait_for(lambda line: line == "* o joined")
        for i in range(12):
            other.send(f"n{i}")
        panel.wait_for(lambda line: line == "o: n11")
        assert panel.messages.value.splitlines() == [f"o: n{i}" for i in range(7, 12)]
        other.close()
    finally:
        panel.close()


def test_panel_reports_a_refused_connection_and_the_server_going_away():
    """Does the status say so when nobody listens, and when the server closes the connection?"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()
    panel = ChatPanel()
    try:
        assert panel.connect(dead, "x") is False
        assert "could not connect" in panel.status.value
        room = chat.ChatRoomServer().start()
        panel.address_box.value = f"127.0.0.1:{room.address[1]}"
        panel.connect_button.click()
        assert panel.connected
        panel.wait_for(lambda line: line.startswith("* welcome"))
        room.stop(timeout=5)
        panel.wait_for(lambda line: line == "* the room is closing")
        deadline = time.monotonic() + 5
        while panel.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not panel.connected
        assert "closed the connection" in panel.status.value
    finally:
        panel.close()


def test_panel_close_leaves_no_thread():
    """Does closing a connected panel end its receive thread?"""
    room = chat.ChatRoomServer().start()
    try:
        before = set(threading.enumerate())
        panel = ChatPanel(room.address, nickname="t")
        panel.wait_for(lambda line: line.startswith("* welcome"))
        panel.close()
        assert_no_new_threads(before, grace=3, named="chat-receive")
    finally:
        room.stop(timeout=5)
