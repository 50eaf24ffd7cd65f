"""Thread per client vs selectors vs asyncio: day/time servers under 10, 100 and 1,000 clients at once.

Compares, in one run (so the ratios are fair), the three styles of
``course_lib.daytime_styles``:

* ``thread``    — ``ThreadPerClientDaytime``: one thread accepts, a thread per client;
* ``selectors`` — ``SelectorsDaytime``: one thread, non-blocking sockets, a selector;
* ``asyncio``   — ``AsyncioDaytime``: one thread running an asyncio loop.

Two regimes, as in ``bench_daytime.py``:

* ``instant`` — the reply needs no waiting: a thread per client only pays a
  thread start per connection, and the threads never pile up;
* ``waiting`` — each reply waits ``--wait`` seconds first (default 50 ms: a
  lookup, a disk). A thread per client then holds a thread per waiting
  client; the one-thread styles hold a timer (selectors) or a suspended
  coroutine (asyncio) instead.

Each server runs in a child process of its own, so the threads and resident
memory (RSS) reported are the server's alone (sampled with psutil every 10
ms while the load runs: the peak is reported; "threads" leaves out the
child's main thread, which only waits for the benchmark to end). The load is ``course_lib.loadtest.measure``
in this process: every client connects at the same moment (non-blocking
connects and a selector, one thread), reads the line until the server
closes. A level is run a few rounds (pooled), in two passes over all the
styles back to back, and each style's better pass is kept, to damp what
other programs do meanwhile.

Reported per style and level: connections served a second, p99 latency
(connect to reply complete), peak threads, peak RSS, and the ratios against
thread-per-client at the same level. A plot goes to ``build/bench_servers.png``.

Usage::

    .venv/bin/python benchmarks/bench_servers.py            # about 10-30 s on 2 cores
    .venv/bin/python benchmarks/bench_servers.py --rounds 5 --json out.json

The tester is one Python thread and shares the machine with the server: for
the fastest server it may be the tester that sets the pace. Quote ratios
within one run, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib import loadtest  # noqa: E402

STYLES = {"thread": "ThreadPerClientDaytime", "selectors": "SelectorsDaytime", "asyncio": "AsyncioDaytime"}
LEVELS = (10, 100, 1000)

CHILD = r"""
import resource, sys
sys.path.insert(0, sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < 4096:
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096 if hard == resource.RLIM_INFINITY else min(4096, hard), hard))
from course_lib import daytime_styles
server = getattr(daytime_styles, sys.argv[2])(delay=float(sys.argv[3])).start()
print(server.address[0], server.address[1], flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
server.stop(timeout=5)
"""


class Child:
    """One server style in a process of its own; closing its stdin stops it."""

    def __init__(self, style: str, delay: float):
        self.style = style
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), STYLES[style], str(delay)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2:
            self.close()
            raise RuntimeError(f"the {style} server did not start")
        self.address = (line[0], int(line[1]))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class PeakSampler:
    """Samples a process's threads and RSS every ``interval`` s on a thread; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.01):
        self.pid, self.interval = pid, interval
        first = loadtest.footprint(pid)
        self.threads, self.rss = first.threads, first.rss_bytes
        self._done = threading.Event()  # set on leaving the with block: the sampling thread ends
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            seen = loadtest.footprint(self.pid)
            self.threads, self.rss = max(self.threads, seen.threads), max(self.rss, seen.rss_bytes)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(5)


def rounds_for(level: int, rounds: int) -> int:
    """More rounds for small levels, so each measurement spans more than a few connections."""
    return rounds * {10: 10, 100: 2}.get(level, 1)


def run(rounds: int, wait: float, repeat: int = 2, levels=LEVELS, timeout: float = 20.0) -> list[dict]:
    results = []
    for regime, delay in (("instant", 0.0), ("waiting", wait)):
        children = {}
        try:
            for style in STYLES:
                children[style] = Child(style, delay)
            for child in children.values():  # warm up: imports, first connections
                loadtest.measure(child.address, 10, rounds=2, timeout=timeout)
            for level in levels:
                n = rounds_for(level, rounds)
                best, peaks = {}, {}
                for _ in range(repeat):  # passes over the styles, back to back; the best pass is kept
                    for style, child in children.items():
                        with PeakSampler(child.proc.pid) as peak:
                            result = loadtest.measure(child.address, level, rounds=n, timeout=timeout)
                        if style not in best or result.connections_per_s > best[style].connections_per_s:
                            best[style] = result
                        threads, rss = peaks.get(style, (0, 0))  # the peaks over every pass
                        peaks[style] = (max(threads, peak.threads), max(rss, peak.rss))
                for style, result in best.items():
                    threads, rss = peaks[style]
                    row = {"regime": regime, "delay_s": delay, "style": style, "clients": level,
                           "rounds": n, "conn_per_s": result.connections_per_s,
                           "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors,
                           "served": result.served, "threads": threads - 1,
                           "rss_mb": rss / 1e6, "notes": result.notes}
                    results.append(row)
                    errors = sum(result.errors.values())
                    print(f"  {regime:<8} {level:>5} clients  {style:<10} {row['conn_per_s']:8.0f} conn/s  "
                          f"p99 {_ms(row['p99_ms'])}  {row['threads']:>5} threads  {row['rss_mb']:6.1f} MB"
                          + (f"  ({errors} errors: {result.errors})" if errors else ""), flush=True)
        finally:
            for child in children.values():
                child.close()
    return results


def _ms(value) -> str:
    return "      -" if value is None else f"{value:7.1f} ms"


def table(results: list[dict]) -> str:
    base = {(r["regime"], r["clients"]): r for r in results if r["style"] == "thread"}
    lines = []
    for regime in dict.fromkeys(r["regime"] for r in results):
        rows = [r for r in results if r["regime"] == regime]
        wait = rows[0]["delay_s"]
        meaning = f"each reply waits {wait * 1000:g} ms" if wait else "the reply needs no waiting"
        lines += ["", f"{regime}: {meaning}",
                  f"{'clients':>7}  {'style':<10} {'conn/s':>8} {'x thread':>8}  {'p99':>10} {'x thread':>8}"
                  f"  {'threads':>7}  {'RSS MB':>6}  errors"]
        for r in rows:
            b = base[(regime, r["clients"])]
            rate = r["conn_per_s"] / b["conn_per_s"] if b["conn_per_s"] else float("nan")
            p99 = r["p99_ms"] / b["p99_ms"] if r["p99_ms"] and b["p99_ms"] else float("nan")
            lines.append(f"{r['clients']:>7}  {r['style']:<10} {r['conn_per_s']:8.0f} {rate:7.2f}x  "
                         f"{_ms(r['p99_ms']):>10} {p99:7.2f}x  {r['threads']:>7}  {r['rss_mb']:6.1f}  "
                         f"{sum(r['errors'].values())}")
    return "\n".join(lines)


def conclusion(results: list[dict]) -> str:
    """One sentence, computed from this run's numbers (so it cannot claim what was not seen)."""
    top = max(r["clients"] for r in results)
    at = {(r["regime"], r["style"]): r for r in results if r["clients"] == top}

    def ratios(regime):
        thread = at[(regime, "thread")]["conn_per_s"]
        return ", ".join(f"{s} {at[(regime, s)]['conn_per_s'] / thread:.1f}x" for s in ("selectors", "asyncio"))

    fastest = {regime: max((r for r in at.values() if r["regime"] == regime), key=lambda r: r["conn_per_s"])["style"]
               for regime in ("instant", "waiting")}
    waiting = [at[("waiting", s)] for s in STYLES]
    where = f"{platform.python_implementation()} {platform.python_version()}, {_cores()} cores"
    wait_ms = f"{waiting[0]['delay_s'] * 1000:g} ms"
    if fastest["instant"] == fastest["waiting"]:
        who = (f"{fastest['instant']} served the most connections a second both when the reply needs no "
               f"waiting (against thread-per-client: {ratios('instant')}) and when each reply waits "
               f"{wait_ms} ({ratios('waiting')})")
    else:
        who = (f"{fastest['instant']} served the most connections a second when the reply needs no waiting "
               f"(against thread-per-client: {ratios('instant')}) and {fastest['waiting']} when each reply "
               f"waits {wait_ms} ({ratios('waiting')})")
    return (f"On this machine ({where}), with {top} clients at once and a one-line reply, {who}, while "
            f"thread-per-client needed up to {waiting[0]['threads']} threads and {waiting[0]['rss_mb']:.0f} MB "
            f"where the one-thread styles needed {max(r['threads'] for r in waiting[1:])} and "
            f"{max(r['rss_mb'] for r in waiting[1:]):.0f} MB; the tester is one Python thread on the same "
            "cores, so these are ratios for this run, not the servers' limits.")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    looks = {"thread": ("o", "-"), "selectors": ("s", "-"), "asyncio": ("^", "--")}  # 1-thread lines overlap
    regimes = list(dict.fromkeys(r["regime"] for r in results))
    fig, axes = plt.subplots(len(regimes), 3, figsize=(13, 3.6 * len(regimes)), squeeze=False)
    panels = (("conn_per_s", "connections served / s"), ("p99_ms", "p99 latency (ms)"),
              ("threads", "server threads (peak)"))
    for row, regime in zip(axes, regimes):
        wait = next(r["delay_s"] for r in results if r["regime"] == regime)
        for ax, (key, label) in zip(row, panels):
            for style in STYLES:
                rows = [r for r in results if r["style"] == style and r["regime"] == regime]
                marker, line = looks[style]
                ax.plot([r["clients"] for r in rows], [max(r[key] or 0, 0.5) for r in rows],
                        marker=marker, linestyle=line, label=style)
            ax.set_xscale("log")
            if key != "conn_per_s":
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("clients at once")
            ax.set_title(f"{label} — {regime}" + (f" ({wait * 1000:g} ms)" if wait else ""))
            ax.grid(True, alpha=0.3)
        row[0].legend()
    fig.suptitle("RFC 867 day/time on loopback: thread per client vs selectors vs asyncio")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds at 1000 clients (default 3; 2x that at 100, 10x at 10)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="passes over the styles per level; the best is kept (default 2)")
    parser.add_argument("--wait", type=float, default=0.05,
                        help="seconds each reply waits in the 'waiting' regime (default 0.05)")
    parser.add_argument("--plot", type=Path, default=ROOT / "build" / "bench_servers.png")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    began = time.monotonic()
    print(f"day/time servers on 127.0.0.1, each in its own process; all clients of a round connect at "
          f"once; best of {args.repeat} pass(es) per level")
    results = run(args.rounds, args.wait, args.repeat)
    print(table(results))
    plot(results, args.plot)
    print(f"\nplot: {args.plot}   ({time.monotonic() - began:.0f} s in all)")
    print("\n" + conclusion(results))
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "wait": args.wait, "results": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
