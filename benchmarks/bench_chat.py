"""Broadcast latency and message throughput of the built-in chat room (course_lib.chat).

    .venv/bin/python benchmarks/bench_chat.py [--clients 10 100] [--messages 300] [--seconds 3]

The room (``ChatRoomServer``: a reader thread and a writer thread per client)
runs in a child process, so its threads do not share a GIL with the
clients. The clients are plain sockets driven by one ``selectors`` loop in
this process, so measuring costs one thread, not one per client.

For each room size N it reports:

* **broadcast latency**: one client sends a line, waits until all N-1 others
  have it, then sends the next. ``fan-out`` is the time until the *last*
  receiver has the line (median, p99); ``per delivery`` the time until each
  receiver has it.
* **throughput**: every client sends in turn, as fast as the room takes it,
  with at most ``--window`` lines in flight (so the room's per-client outbox,
  1000 lines, never overflows and nobody is disconnected for being slow).
  ``messages/s`` counts lines fully delivered to all N-1 others;
  ``deliveries/s`` counts lines received (messages × (N-1)).

The ratio between room sizes (same run, same machine) is the figure to quote.
One run on a shared 2-core machine (Python 3.11):

    clients | fan-out ms med     p99 | per delivery ms med     p99 | messages/s deliveries/s
         10 |           0.38   14.88 |                0.29   14.78 |       3526        31736
        100 |           3.28   31.46 |                2.91   27.99 |       1059       104819

Fan-out time grows about linearly with the room (each line is queued once
per member and written by that member's thread), messages/s falls less than
1/N because deliveries/s *rises* with N: with more lines in flight the
writer threads and the reader find several lines per send/recv. p99 is
dominated by thread scheduling on 2 cores and varies by tens of percent
between runs.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER = """
import sys
from course_lib import chat
room = chat.ChatRoomServer().start()
print(room.address[1], flush=True)
sys.stdin.read()          # until the benchmark closes our stdin
room.stop(timeout=10)
"""


class Clients:
    """N raw sockets in the room, read by one selector loop."""

    def __init__(self, port: int, count: int, timeout: float = 10.0):
        self.selector = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.buffers: dict[socket.socket, bytes] = {}
        self.received: dict[str, dict[int, float]] = {}
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.sendall(f"c{i}\n".encode())
            self._expect(sock, f"* welcome c{i}", timeout)
            sock.setblocking(False)
            self.socks.append(sock)
            self.buffers[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ, f"c{i}")

    @staticmethod
    def _expect(sock: socket.socket, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        data = b""
        while wanted.encode() + b"\n" not in data:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk or time.monotonic() > deadline:
                raise RuntimeError(f"no {wanted!r} from the room")
            data += chunk

    def pump(self, timeout: float, on_message) -> None:
        """Read what has arrived; call on_message(receiver, sender, seq, now) per message line."""
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError(f"the room closed {key.data}'s connection")
            now = time.perf_counter()
            data = self.buffers[sock] + chunk
            *lines, self.buffers[sock] = data.split(b"\n")
            for line in lines:
                sender, sep, text = line.partition(b": ")
                if sep and text.startswith(b"#"):
                    on_message(key.data, sender.decode(), int(text[1:].split(b" ", 1)[0]), now)

    def close(self) -> None:
        for sock in self.socks:
            self.selector.unregister(sock)
            sock.close()
        self.selector.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure_latency(clients: Clients, messages: int, payload: bytes) -> tuple[list[float], list[float]]:
    n = len(clients.socks)
    sender = clients.socks[0]
    fan_out, per_delivery = [], []
    for seq in range(messages):
        got = 0
        sent_at = time.perf_counter()
        sender.setblocking(True)
        sender.sendall(b"#%d " % seq + payload + b"\n")
        sender.setblocking(False)
        last = sent_at

        def on_message(receiver, who, number, now):
            nonlocal got, last
            if number == seq and who == "c0":
                got += 1
                last = now
                per_delivery.append(now - sent_at)

        deadline = time.monotonic() + 10
        while got < n - 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"message {seq} reached {got} of {n - 1} clients in 10 s")
            clients.pump(0.5, on_message)
        fan_out.append(last - sent_at)
    return fan_out, per_delivery


def measure_throughput(clients: Clients, seconds: float, window: int, payload: bytes) -> tuple[int, int, float]:
    n = len(clients.socks)
    deliveries = 0
    counts: dict[int, int] = {}
    complete = 0

    def on_message(receiver, who, number, now):
        nonlocal deliveries, complete
        deliveries += 1
        counts[number] = counts.get(number, 0) + 1
        if counts[number] == n - 1:
            complete += 1
            del counts[number]

    seq = 0
    started = time.perf_counter()
    end = started + seconds
    while time.perf_counter() < end:
        while seq - complete < window:
            sock = clients.socks[seq % n]
            sock.setblocking(True)
            sock.sendall(b"#%d " % seq + payload + b"\n")
            sock.setblocking(False)
            seq += 1
        clients.pump(0.05, on_message)
    deadline = time.monotonic() + 20
    while complete < seq and time.monotonic() < deadline:  # drain what is in flight
        clients.pump(0.2, on_message)
    elapsed = time.perf_counter() - started
    return complete, deliveries, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--messages", type=int, default=300, help="latency samples per room size")
    parser.add_argument("--seconds", type=float, default=3.0, help="throughput run length")
    parser.add_argument("--window", type=int, default=200, help="lines in flight during the throughput run")
    parser.add_argument("--payload", type=int, default=40, help="bytes of text per message")
    args = parser.parse_args()
    payload = b"x" * args.payload

    rows = []
    for n in args.clients:
        server = subprocess.Popen([sys.executable, "-c", SERVER], cwd=REPO, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            port = int(server.stdout.readline())
            clients = Clients(port, n)
            try:
                fan_out, per_delivery = measure_latency(clients, args.messages, payload)
                complete, deliveries, elapsed = measure_throughput(clients, args.seconds, args.window, payload)
            finally:
                clients.close()
        finally:
            server.stdin.close()
            server.wait(30)
        rows.append({
            "clients": n,
            "fan_med": statistics.median(fan_out) * 1e3,
            "fan_p99": percentile(fan_out, 99) * 1e3,
            "del_med": statistics.median(per_delivery) * 1e3,
            "del_p99": percentile(per_delivery, 99) * 1e3,
            "msg_s": complete / elapsed,
            "del_s": deliveries / elapsed,
        })

    print(f"built-in chat room, {args.payload}-byte lines, {args.messages} latency samples, "
          f"{args.seconds:g} s throughput runs (window {args.window})")
    print(f"{'clients':>7} | {'fan-out ms med':>14} {'p99':>7} | {'per delivery ms med':>19} {'p99':>7} |"
          f" {'messages/s':>10} {'deliveries/s':>12}")
    for r in rows:
        print(f"{r['clients']:>7} | {r['fan_med']:>14.2f} {r['fan_p99']:>7.2f} | {r['del_med']:>19.2f} "
              f"{r['del_p99']:>7.2f} | {r['msg_s']:>10.0f} {r['del_s']:>12.0f}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(f"ratio {b['clients']} vs {a['clients']} clients: fan-out median x{b['fan_med'] / a['fan_med']:.1f}, "
              f"messages/s x{b['msg_s'] / a['msg_s']:.2f}, deliveries/s x{b['del_s'] / a['del_s']:.2f}")


if __name__ == "__main__":
    main()
