"""What does the sandbox cost? Kernel start plus a short notebook, sandboxed
against plain, measured alternately in one process (same machine load).

Runs the same five-cell notebook (import course_lib, start and join threads,
a loopback echo with a server thread) with nbclient, once with jupyter_client's
AsyncKernelManager (tcp on the host's loopback) and once with
autograder.sandbox.SandboxKernelManager (bwrap, ipc transport, fresh copy of a
submission folder), ``--runs`` times each, alternating, and reports the medians
and their ratio. The aim (issue 10) is a ratio under 1.2.

    .venv/bin/python benchmarks/bench_sandbox.py --runs 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets.config import Config

from autograder import sandbox

CELLS = [
    "from course_lib import grading",
    "import threading\nresults = []\nthreads = [threading.Thread(target=results.append, args=(i,)) "
    "for i in range(8)]\nfor t in threads: t.start()\nfor t in threads: t.join(timeout=5)\nlen(results)",
    "import socket\nsrv = socket.create_server(('127.0.0.1', 0))\nport = srv.getsockname()[1]",
    "def serve():\n    conn, _ = srv.accept()\n    with conn:\n        conn.sendall(conn.recv(64))\n"
    "server = threading.Thread(target=serve)\nserver.start()",
    "with socket.create_connection(('127.0.0.1', port), timeout=5) as c:\n    c.sendall(b'hello')\n"
    "    reply = c.recv(64)\nserver.join(timeout=5)\nsrv.close()\nreply",
]


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    return nb


def run_once(manager_class, config: Config, cwd: str) -> float:
    nb = notebook()
    started = time.perf_counter()
    NotebookClient(nb, kernel_manager_class=manager_class, config=config, timeout=30,
                   shutdown_kernel="immediate", resources={"metadata": {"path": cwd}}).execute()
    took = time.perf_counter() - started
    assert nb.cells[-1].outputs[0]["data"]["text/plain"] == "b'hello'", nb.cells[-1].outputs
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    ok, why = sandbox.available()
    if not ok:
        print(f"sandbox unavailable: {why}")
        return 2
    root = Path(tempfile.mkdtemp(prefix="sbxb-"))
    try:
        submission = root / "submitted" / "ps1"
        submission.mkdir(parents=True)
        nbformat.write(notebook(), submission / "ps1.ipynb")
        config = Config()
        config.SandboxKernelManager.submission_dir = str(submission)
        config.SandboxKernelManager.runtime_dir = str(root / "runtime")
        run_once(AsyncKernelManager, Config(), str(submission))  # warm caches
        run_once(sandbox.SandboxKernelManager, config, str(submission))
        plain, boxed = [], []
        for _ in range(args.runs):
            plain.append(run_once(AsyncKernelManager, Config(), str(submission)))
            boxed.append(run_once(sandbox.SandboxKernelManager, config, str(submission)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    p, b = statistics.median(plain), statistics.median(boxed)
    print(f"kernel start + 5-cell notebook, median of {args.runs} alternating runs")
    print(f"  plain (AsyncKernelManager, tcp):     {p * 1000:7.0f} ms  "
          f"(min {min(plain) * 1000:.0f}, max {max(plain) * 1000:.0f})")
    print(f"  sandboxed (bwrap, ipc, folder copy): {b * 1000:7.0f} ms  "
          f"(min {min(boxed) * 1000:.0f}, max {max(boxed) * 1000:.0f})")
    print(f"  ratio sandboxed/plain: {b / p:.2f}x (aim < 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
