"""Line-based chat: the protocol, its framing, a room server, a client and a partner bot.

What it models: the step from the syllabus's two-way chat (two programs taking
turns, each ``recv(1024)`` taken as one message) to a chat room where anyone
may talk at any time. What it trades off: lines are simple to read with
``nc`` and to type, at the cost of forbidding a newline inside a message (a
length prefix would allow any bytes, but no human can type one); a server
thread per client is easy to follow, at the cost of two threads a client (a
reader, and a writer so that one client that stops reading cannot stall the
room — it is disconnected once its outbox is full).

The protocol (version 1)
------------------------
* A connection carries UTF-8 text lines, each ending in ``\\n`` (a ``\\r``
  before it is ignored, so ``nc -C`` and telnet work too).
* The client's first line is its nickname (1 to 32 characters, no ``:``).
  The server answers ``* welcome NICK`` (a taken nickname gets a suffix:
  ``ann-2``) and tells everyone else ``* NICK joined``.
* Every later line ``TEXT`` from a client goes to every *other* client as
  ``NICK: TEXT`` — in the order that client sent them.
* ``/quit`` or ``bye`` (any case, as in the syllabus) ends the session: the
  server answers ``* bye NICK``, closes the connection and tells the others
  ``* NICK left``. Closing the connection, even in the middle of a line (the
  half line is dropped) or only its sending side (``shutdown(SHUT_WR)``,
  ``nc -N`` at end of input), is the same as quitting: a client that wants
  to keep listening keeps its sending side open (``socat ...,shut-none``).
* A line longer than :data:`MAX_LINE_BYTES` bytes is answered with
  ``! line too long (max N bytes)`` and dropped; a line that is not valid
  UTF-8 with ``! not UTF-8: line ignored``. The connection stays usable.
* A client that reads slowly slows the room down, not out: once
  :data:`OUTBOX_LINES` lines wait for it, a sender's next line waits too
  (the room stops reading that sender). A client that has taken no line at
  all for :data:`STALL_S` seconds while lines wait for it is disconnected;
  the others get ``* NICK left (too slow)``.
* Lines from the server start with ``* `` (a notice), ``! `` (an error about
  your last line) or ``NICK: `` (a message).

Methods for the caller:
    encode_line(text) / decode_line(raw)   one line to bytes and back
    LineSplitter().feed(data)              bytes in, complete lines out
    LineReader(sock).read_line(timeout=)   one line from a socket
    ChatRoomServer().start()               the room (a BackgroundServer)
    ChatClient(address, nickname)          a client with a receive thread
    ChatPartnerBot(replies)                plays either side of the syllabus's
                                           turn-taking chat, or joins a room
    tcp_pair() / wait_for_bytes(sock, n)   the lesson's deterministic demos
"""


from __future__ import annotations

from ..sockets import bytes_waiting, tcp_pair, wait_for_bytes
from .bot import ChatPartnerBot, TurnTakingPartner
from .client import ChatClient
from .probe import RoomReport, probe_room
from .protocol import (MAX_LINE_BYTES, MAX_NICKNAME_CHARS, QUIT_WORDS, TOO_LONG, ChatClosed, ChatError,
                       ChatTimeout, LineReader, LineSplitter, NotUTF8, decode_line, encode_line, is_quit)
from .room import OUTBOX_LINES, STALL_S, ChatRoomServer

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_NICKNAME_CHARS",
    "QUIT_WORDS",
    "TOO_LONG",
    "ChatError",
    "ChatTimeout",
    "ChatClosed",
    "NotUTF8",
    "encode_line",
    "decode_line",
    "is_quit",
    "LineSplitter",
    "LineReader",
    "ChatRoomServer",
    "ChatClient",
    "ChatPartnerBot",
    "TurnTakingPartner",
    "RoomReport",
    "probe_room",
    "tcp_pair",
    "bytes_waiting",
    "wait_for_bytes",
    "OUTBOX_LINES",
    "STALL_S",
]
