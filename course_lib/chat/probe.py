"""Checking a room from the outside: many clients at once, every message once and in order."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .client import ChatClient

from .protocol import ChatError, ChatTimeout


@dataclass
class RoomReport:
    """What :func:`probe_room` saw: ``problems`` is empty when the room behaved."""

    clients: int
    messages_each: int
    delivered: int = 0
    expected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        return ("room OK: " if self.ok else "room FAILED: ") + str(self)

    def __str__(self) -> str:
        head = (f"{self.clients} clients x {self.messages_each} messages: "
                f"{self.delivered} of {self.expected} deliveries")
        return head if self.ok else head + "\n  " + "\n  ".join(self.problems[:10])


def probe_room(address, clients: int = 20, messages_each: int = 5, timeout: float = 10.0,
               prefix: str = "u", connect=None) -> RoomReport:
    """Drive a chat room with ``clients`` simultaneous clients and check it.

    Each client joins and waits for its ``* welcome`` line (the server's
    word that it is in the room); the first one must then see every later
    join notice. Then all send ``messages_each`` lines at once (released by a barrier). Every
    message must reach every *other* client exactly once, in the order its
    sender sent it, and never come back to its sender. Works on any server
    that speaks the protocol; extra notice lines (``* ...``) are ignored.
    Bounded by ``timeout`` overall; the clients are always closed.
    ``connect(address, timeout)``, if given, opens each client's stream
    (the grader's relay into a sandbox).
    """
    report = RoomReport(clients, messages_each)
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    names = [f"{prefix}{i}" for i in range(clients)]
    members: list[ChatClient] = []
    try:
        for i, name in enumerate(names):
            wait = min(5.0, max(0.1, left()))
            members.append(ChatClient(address, name, timeout=wait,
                                      sock=connect(address, wait) if connect else None))
            try:
                members[-1].receive_until(lambda line: line.startswith("* welcome"), timeout=left())
            except ChatError:
                report.problems.append(f"{name} never received its '* welcome {name}' line")
                return report
            if i:
                try:
                    members[0].receive_until(lambda line, n=name: line == f"* {n} joined",
                                             timeout=left())
                except ChatError:
                    report.problems.append(
                        f"{names[0]} never received the line '* {name} joined' after {name} connected")
                    return report
        # Everyone must be in the room before the real test: one round trip proves it.
        if clients > 1:
            members[0].send("ready?")
            for member in members[1:]:
                try:
                    member.receive_until(lambda line: line == f"{names[0]}: ready?", timeout=left())
                except ChatError:
                    report.problems.append(f"{member.nickname} never received '{names[0]}: ready?'")
                    return report
        start = threading.Barrier(clients)
        send_errors: list[str] = []

        def talk(member: ChatClient) -> None:
            try:
                start.wait(timeout=left())
                for k in range(messages_each):
                    member.send(f"m{k} from {member.nickname}")
            except (ChatError, threading.BrokenBarrierError, OSError) as exc:
                send_errors.append(f"{member.nickname} could not send: {exc}")

        talkers = [threading.Thread(target=talk, args=(m,), name=f"probe:{m.nickname}", daemon=True)
                   for m in members]
        for t in talkers:
            t.start()
        for t in talkers:
            t.join(left())
        report.problems.extend(send_errors)
        report.expected = clients * (clients - 1) * messages_each
        for member in members:
            want = (clients - 1) * messages_each
            got: dict[str, list[int]] = {}
            count = 0
            while count < want:
                try:
                    line = member.receive(timeout=left())
                except ChatTimeout:
                    report.problems.append(
                        f"{member.nickname} received {count} of the {want} messages within {timeout:g} s")
                    break
                if line is None:
                    report.problems.append(f"the server closed {member.nickname}'s connection")
                    break
                speaker, sep, text = line.partition(": ")
                if not sep or not text.startswith("m") or " from " not in text:
                    continue  # a notice, or the ready? line
                if speaker == member.nickname:
                    if not any("own message back" in p for p in report.problems):
                        report.problems.append(f"{member.nickname} got its own message back: {line!r}")
                    continue
                count += 1
                got.setdefault(speaker, []).append(int(text[1:].split(" ", 1)[0]))
            report.delivered += count
            for speaker in names:
                if speaker == member.nickname:
                    continue
                seq = got.get(speaker, [])
                if seq != list(range(messages_each)):
                    report.problems.append(
                        f"{member.nickname} received {speaker}'s messages as {seq[:12]} "
                        f"(expected {list(range(messages_each))[:12]}: each once, in order)")
        return report
    finally:
        for member in members:
            member.close(timeout=min(1.0, max(0.1, left())))
