"""Connections per second of day/time servers on loopback, in two regimes.

Compares, in one run and one process (so the ratios are fair):

* ``builtin``  — ``course_lib.servers.DaytimeServer``: a thread per client;
* ``syllabus`` — the syllabus's accept loop (one client at a time), run with
  ``servers.background``.

Clients run in a separate process (1 and 8 client threads), each looping
connect → read until closed → close, for a fixed time.

The two regimes, and why both are reported (see FIELD-NOTES.md):

* ``instant``  — the reply needs no waiting. Serving one client at a time is
  the *fastest* here: a thread per connection costs a thread start and
  switches, and nothing is gained by overlapping work that never waits.
* ``waiting``  — each reply waits ``--wait`` seconds first (default 5 ms: a
  slow client, a disk or a lookup). One at a time, clients queue behind each
  other's waits; with a thread per client the waits overlap, so throughput
  grows with the number of clients. This is where concurrency pays.

Usage::

    .venv/bin/python benchmarks/bench_daytime.py            # 2 s per measurement (~20 s)
    .venv/bin/python benchmarks/bench_daytime.py --seconds 0.5 --json out.json

Numbers depend on the machine and on what else runs; the ratios within one
run are what to quote.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib import servers  # noqa: E402

CLIENT = r"""
import socket, sys, threading, time
host, port, threads, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
counts = [0] * threads
errors = [0] * threads
start = threading.Barrier(threads + 1)
stop_at = [0.0]
def run(i):
    start.wait()
    while time.monotonic() < stop_at[0]:
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                while s.recv(4096):
                    pass
            counts[i] += 1
        except OSError:
            errors[i] += 1
workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
for w in workers:
    w.start()
stop_at[0] = time.monotonic() + seconds
began = time.monotonic()
start.wait()
for w in workers:
    w.join()
print(sum(counts), sum(errors), time.monotonic() - began)
"""


def syllabus_server(port=0, wait=0.0):
    """The syllabus's day/time server, port made a parameter; ``wait`` before each reply."""
    from datetime import datetime

    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server_socket.bind(("127.0.0.1", port))
        server_socket.listen(5)
        while True:
            client_socket, address = server_socket.accept()
            if wait:
                time.sleep(wait)
            current_time = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            client_socket.send(current_time.encode())
            client_socket.close()
    finally:
        server_socket.close()


def measure(address, threads: int, seconds: float) -> dict:
    """Run the client process against ``address``; return conn/s and errors."""
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, address[0], str(address[1]), str(threads), str(seconds)],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client process failed: {proc.stderr}")
    done, errors, elapsed = proc.stdout.split()
    return {"connections": int(done), "errors": int(errors),
            "conn_per_s": int(done) / float(elapsed)}


def run(seconds: float, wait: float, thread_counts=(1, 8)) -> list[dict]:
    results = []
    for regime, delay in (("instant", 0.0), ("waiting", wait)):
        builtin = servers.start(servers.DaytimeServer(delay=delay), name="bench-builtin")
        syllabus = servers.background(syllabus_server, port=0, wait=delay, name="bench-syllabus")
        try:
            for threads in thread_counts:
                for name, server in (("syllabus", syllabus), ("builtin", builtin)):
                    row = {"regime": regime, "server": name, "client_threads": threads,
                           **measure(server.address, threads, seconds)}
                    results.append(row)
                    print(f"  {regime:<8} {name:<9} {threads} client thread(s): "
                          f"{row['conn_per_s']:9.0f} conn/s  ({row['errors']} errors)", flush=True)
        finally:
            builtin.stop()
            syllabus.stop()
    return results


def summary(results: list[dict], wait: float) -> str:
    rate = {(r["regime"], r["server"], r["client_threads"]): r["conn_per_s"] for r in results}
    lines = ["", "builtin (thread per client) / syllabus (one at a time), same run:"]
    for regime, meaning in (("instant", "reply needs no waiting: one at a time is the fast way"),
                            ("waiting", f"each reply waits {wait * 1000:g} ms: concurrency pays")):
        ratios = ", ".join(
            f"{threads} client thread(s) {rate[(regime, 'builtin', threads)] / rate[(regime, 'syllabus', threads)]:.2f}x"
            for threads in sorted({r["client_threads"] for r in results}))
        lines.append(f"  {regime:<8} {ratios}   ({meaning})")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each measurement")
    parser.add_argument("--wait", type=float, default=0.005,
                        help="seconds each reply waits in the 'waiting' regime (default 0.005)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    print(f"day/time servers on 127.0.0.1, clients in another process, {args.seconds:g} s each")
    results = run(args.seconds, args.wait)
    print(summary(results, args.wait))
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "wait": args.wait,
                                         "results": results}, indent=2))
    servers.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
