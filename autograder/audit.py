"""The grader's end of the judge kernel's private channel (see :mod:`course_lib.judge`).

:class:`JudgeKernelManager` is a jupyter_client ``AsyncKernelManager`` that
starts every kernel as ``python -P -m course_lib.judge`` and listens, before
the kernel starts, on a Unix socket the kernel's trusted start-up code
connects to. :class:`JudgeChannel` holds that connection: it answers the
kernel's hello with the set-up message (a fresh signing key and every
test's source), checks the signature of every line the kernel sends after
it, and sorts what arrives — audit events, check failures, integrity
reports, and the replies to the requests :meth:`JudgeChannel.request` sends
(run a test, call a function). Held against the submission, and reported
as incidents by ``autograder.execute``:

* an event raised with a solution cell on the stack (the caller decides,
  from the cells' file names, which cells are solution cells);
* a line not signed with the kernel's key (something in the kernel wrote
  on the channel), the connection ending while the kernel still runs
  (student code closed the descriptor), or a second connection;
* no hello at all from a kernel that ran cells (the trusted start-up was
  bypassed) — reported as a grading error, not held against the student.

The kernel's own file descriptors 1 and 2 (what C code or ``os.write``
sends past ipykernel) go to a pipe that :class:`CappedLog` drains: the first
``LOG_BYTES`` reach the grading worker's log with control characters
escaped, the rest is counted and dropped, so a flood can neither fill the
host's disk nor block the kernel.

Methods for the caller: ``km.channel.request(...)``, ``.events``, ``.checks``,
``.integrity``, ``.cut``, ``.hellos``. ``shutting_down`` (set by
jupyter_client before it stops a kernel) tells an expected end of the
connection from a cut one.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, Unicode

__all__ = ["JudgeChannel", "JudgeKernelManager", "judge_command", "ChannelClosed"]

LAUNCHER = "ipykernel_launcher"
LOG_BYTES = 64 * 1024
MAX_LINE = 4 << 20
GRACE_S = 15.0  # a kernel that dies closes the channel as it exits; its exit shows within this even on a
               # loaded machine (bubblewrap reaps the kernel's children first: measured over 3 s under load)


class ChannelClosed(ConnectionError):
    """The judge kernel's channel ended (the kernel died or was stopped) before a reply came."""


def judge_command(kernel_cmd: list[str], channel_socket: str, python: str | None = None) -> list[str]:
    """``kernel_cmd`` (``python -m ipykernel_launcher -f F``) started through the judge, safe-path."""
    if LAUNCHER not in kernel_cmd or kernel_cmd[kernel_cmd.index(LAUNCHER) - 1] != "-m":
        raise RuntimeError(f"not an ipykernel command, so the judge cannot start it: {kernel_cmd}")
    at = kernel_cmd.index(LAUNCHER)
    return ([python or kernel_cmd[0], "-P"] + kernel_cmd[1:at - 1]
            + ["-m", "course_lib.judge", "--channel", channel_socket] + kernel_cmd[at + 1:])


class JudgeChannel:
    """A listening Unix socket, the kernel's connection to it, and the thread that reads it.

    One connection per kernel start is expected (``expect(tests)`` before
    each start). The threads are daemons that end when ``close()`` closes
    the listener and the connection; ``close()`` joins them.
    """

    def __init__(self, folder: Path, stopping, exited):
        self.path = str(Path(folder) / "audit.sock")
        self.events: list[dict] = []      # audit events
        self.checks: list[dict] = []      # CheckFailed reports: {"request", "test", "message", "line"}
        self.integrity: list[dict] = []   # protected modules found changed: {"integrity", "test", "where"}
        self.cut: list[str] = []          # why the channel was cut or abused
        self.hellos = 0
        self.ready = threading.Event()    # set by the reader when the kernel says its runner is serving
        self.seccomp = False              # did the kernel load its no-process filter?
        self._stopping = stopping         # () -> bool: has the grader begun to stop the kernel?
        self._exited = exited             # () -> bool: has the kernel process ended?
        self._expected = 0                # connections still to come (one per kernel start)
        self._tests: dict = {}
        self.generation = 0               # kernel starts so far: a reader only speaks for its own kernel
        self._lock = threading.Lock()     # guards the lists above and the pending replies; taken by readers
        self._pending: dict[int, dict] = {}
        self._replied = threading.Condition(self._lock)  # notified by a reader when a reply arrives
        self._ids = itertools.count(1)
        self._conn: socket.socket | None = None
        self._key = b""
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(4)
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="audit-accept", daemon=True)
        self._accepter.start()

    def expect(self, tests: dict | None = None) -> None:
        """The next connection is a new kernel's: its tests are ``tests`` (grade id -> source)."""
        with self._lock:
            self._expected = 1
            self.generation += 1
            self._tests = dict(tests or {})
            self.ready.clear()
            for slot in self._pending.values():
                slot.setdefault("closed", True)
            self._replied.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                wanted = self._expected > 0
                self._expected = 0
            if not wanted:
                self._note("a second connection to the judge's channel (code in the kernel dialled in)")
                conn.close()
                continue
            reader = threading.Thread(target=self._read, args=(conn, self.generation),
                                      name="audit-read", daemon=True)
            self._threads.append(reader)
            reader.start()

    def _read(self, conn: socket.socket, generation: int) -> None:
        buffer = b""
        greeted = False
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not greeted:
                        greeted = self._greet(conn, line, generation)
                    else:
                        self._take(line, generation)
                if len(buffer) > MAX_LINE:
                    self._note("the judge's channel carried a line longer than any the judge sends")
                    buffer = b""
        with self._lock:
            if self.generation == generation:
                self._conn = None
                for slot in self._pending.values():
                    slot.setdefault("closed", True)
                self._replied.notify_all()
        self._ended(generation)

    def _greet(self, conn: socket.socket, line: bytes, generation: int) -> bool:
        """The kernel's hello: answer with a fresh key and the tests (before any cell runs)."""
        try:
            hello = json.loads(line)
        except ValueError:
            hello = None
        if not isinstance(hello, dict) or "hello" not in hello:
            self._note("the judge's channel did not start with the judge's hello")
            return False
        key = secrets.token_bytes(32)
        with self._lock:
            self.hellos += 1
            tests = self._tests
        setup = json.dumps({"key": key.hex(), "tests": tests}) + "\n"
        try:
            conn.sendall(setup.encode("utf-8"))
        except OSError:
            return True
        with self._lock:
            if self.generation == generation:
                self._conn, self._key = conn, key
        return True

    def _take(self, line: bytes, generation: int) -> None:
        mac, _, text = line.partition(b" ")
        with self._lock:
            key = self._key if self.generation == generation else b""
        expected = hmac.new(key, text, hashlib.sha256).hexdigest().encode()
        if not key or not hmac.compare_digest(mac, expected):
            self._note("a line on the judge's channel was not signed by the judge (code in the kernel wrote on it)")
            return
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        with self._lock:
            if "event" in message:
                self.events.append(message)
            elif "check" in message:
                self.checks.append(message)
            elif "integrity" in message:
                self.integrity.append(message)
            elif "ready" in message:
                self.seccomp = bool(message.get("seccomp"))
                self.ready.set()
            elif "reply" in message:
                slot = self._pending.get(message.get("reply"))
                if slot is not None:
                    slot["answer"] = message
                    self._replied.notify_all()

    def request(self, message: dict, timeout: float) -> dict:
        """Send ``message`` to the kernel's runner and wait at most ``timeout`` s for its reply.

        Raises :class:`ChannelClosed` if the kernel's channel ends first and
        :class:`TimeoutError` if no reply came in time.
        """
        self.ready.wait(min(timeout, 30))
        with self._lock:
            conn = self._conn
            ident = next(self._ids)
            slot: dict = {}
            self._pending[ident] = slot
        try:
            if conn is None:
                raise ChannelClosed("the judge kernel's channel is not open")
            try:
                conn.sendall((json.dumps({**message, "id": ident}) + "\n").encode("utf-8"))
            except OSError as error:
                raise ChannelClosed(f"the judge kernel's channel ended: {error}") from None
            deadline = time.monotonic() + timeout
            with self._lock:
                while "answer" not in slot and "closed" not in slot:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"no reply from the judge kernel within {timeout:g} s")
                    self._replied.wait(left)
                if "answer" in slot:
                    return slot["answer"]
            raise ChannelClosed("the judge kernel's channel ended before it replied")
        finally:
            with self._lock:
                self._pending.pop(ident, None)

    def checks_for(self, ident: int) -> list[dict]:
        with self._lock:
            return [c for c in self.checks if c.get("request") == ident]

    def _ended(self, generation: int) -> None:
        """The connection ended: expected when the grader stops the kernel or it dies, not otherwise.

        A kernel that dies closes the channel as it exits, so its process is
        gone within moments; a channel closed by code in a kernel that keeps
        running is still open-ended when the grader comes to stop that kernel.
        """
        if self.generation != generation or self._stopping():
            return
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline:
            if self.generation != generation:
                return
            # Exit first: the grader stopping a kernel that already died (to restart it) is no sign of
            # a kernel that kept running.
            if self._exited():
                return
            if self._stopping():
                time.sleep(0.5)  # the stop it began may be what is ending the process now
                if self._exited() or self.generation != generation:
                    return
                break
            time.sleep(0.02)
        self._note("the judge's channel was closed while the kernel kept running")

    def _note(self, why: str) -> None:
        with self._lock:
            if why not in self.cut:
                self.cut.append(why)

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conn = self._conn
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accepter.join(5)
        for reader in self._threads:
            reader.join(GRACE_S + 2)
        try:
            os.unlink(self.path)
        except OSError:
            pass


class CappedLog:
    """The read end of a kernel's stdout/stderr pipe, drained by a thread into ``sink``, bounded.

    The thread ends at the pipe's end, or at ``close()`` even while a
    process the kernel started still holds the write end.
    """

    def __init__(self, sink=None, limit: int = LOG_BYTES):
        self.read_fd, self.write_fd = os.pipe()
        self.dropped = 0
        self._sink = sink or sys.stderr
        self._limit = limit
        self._closing = threading.Event()  # set by close(): stop draining even if the pipe stays open
        self._thread = threading.Thread(target=self._drain, name="kernel-log", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        import select

        kept = 0
        try:
            while not self._closing.is_set():
                ready, _, _ = select.select([self.read_fd], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(self.read_fd, 65536)
                if not chunk:
                    return
                room = max(self._limit - kept, 0)
                if room:
                    text = chunk[:room].decode("utf-8", "replace")
                    safe = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)
                    try:
                        self._sink.write(safe)
                        self._sink.flush()
                    except (OSError, ValueError):
                        pass
                kept += min(len(chunk), room)
                self.dropped += len(chunk) - min(len(chunk), room)
        finally:
            os.close(self.read_fd)

    def started(self) -> None:
        """The kernel has its copy of the write end: close ours, so the pipe ends with the kernel."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def close(self) -> None:
        self.started()
        self._thread.join(1.0)  # the kernel is gone: what it wrote is drained in moments
        self._closing.set()
        self._thread.join(1.0)


class JudgeKernelManager(AsyncKernelManager):
    """Kernels started through :mod:`course_lib.judge`, with their audit channel open first."""

    audit_dir = Unicode("", help="Folder for the judge's channel socket (default: a fresh temporary folder).").tag(
        config=True)
    allow_processes = Bool(True, help="May solution code start processes? (False: reported as tampering)").tag(
        config=True)
    peer = Bool(False, help="Judge the tests' peer checks here (autograder.peer), through a relay "
                            "the kernel starts first.").tag(config=True)
    niceness = Integer(0, help="Start the kernel at this nice level (a kernel started ahead waits at 10, so "
                               "it never slows the submission being graded)").tag(config=True)

    def _audit_folder(self) -> Path:
        if self.audit_dir:
            return Path(self.audit_dir)
        self._own_audit_dir = tempfile.mkdtemp(prefix="audit-")
        return Path(self._own_audit_dir)

    def _kernel_exited(self) -> bool:
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        return process is None or process.poll() is not None

    async def _async_pre_start_kernel(self, **kw):  # type: ignore[override]
        if getattr(self, "audit", None) is None:
            self.audit = JudgeChannel(self._audit_folder(), lambda: self.shutting_down, self._kernel_exited)
        self.audit.expect(getattr(self, "judge_tests", None))
        if self.peer and getattr(self, "peer_service", None) is None:
            from .peer import PeerService

            folder = Path(self.audit.path).parent
            self.peer_service = PeerService(folder, str(folder / "relay.sock"))
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self.niceness > 0:
            cmd = ["nice", "-n", str(self.niceness), *cmd]
        env = dict(kw.get("env") or os.environ)
        env.update(self.judge_env())
        kw["env"] = env
        self._close_log()
        self._log = CappedLog()
        kw["stdout"] = kw["stderr"] = self._log.write_fd
        return cmd, kw

    pre_start_kernel = _async_pre_start_kernel

    async def _async_post_start_kernel(self, **kw) -> None:  # type: ignore[override]
        if getattr(self, "_log", None) is not None:
            self._log.started()
        await super()._async_post_start_kernel(**kw)

    post_start_kernel = _async_post_start_kernel

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None

    def judge_env(self) -> dict[str, str]:
        """Environment of a judge kernel: no startup files, no unsafe path."""
        # IPython keeps the cells it ran (history.sqlite) in IPYTHONDIR: a folder of this kernel's own,
        # mode 700 and removed with it, so on a shared machine no one else reads a student's code there.
        if getattr(self, "_ipython_dir", None) is None:
            self._ipython_dir = tempfile.mkdtemp(prefix="judge-ipython-")
        return {"PYTHONSAFEPATH": "1", "IPYTHONDIR": self._ipython_dir, "PYTHONNOUSERSITE": "1"}

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments=extra_arguments)
        cmd = judge_command(cmd, self.audit.path, python=sys.executable)
        service = getattr(self, "peer_service", None)
        if service is not None:
            cmd += ["--peer-socket", service.path, service.referee.dial.relay_path]
        return cmd if self.allow_processes else cmd + ["--no-processes"]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        self._close_log()
        if not restart and getattr(self, "peer_service", None) is not None:
            self.peer_service.close()
            self.peer_service = None
        if not restart and getattr(self, "audit", None) is not None:
            self.audit.close()
            import shutil

            for own in (getattr(self, "_own_audit_dir", None), getattr(self, "warm_scratch", None),
                        getattr(self, "_ipython_dir", None)):
                if own:
                    shutil.rmtree(own, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources
