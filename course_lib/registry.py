"""The registry of a kernel's background servers: one per name, so re-running a cell replaces it.

``start(server, name)`` stops the server registered under that name before
starting the new one, so a cell run twice never fails with "address already
in use"; ``running()`` and ``registered()`` render as tables; ``stop_all()``
(also run when the kernel exits) stops everything, registered or not.
Every handle made in this kernel is also tracked (weakly), so ``stop_all()``
and "port in use" messages find servers that were never registered.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref

from .handles import ServerError, table_html

__all__ = ["track", "tracked", "start", "get", "running", "registered", "stop_all", "ServerTable"]

# Every server and job of this kernel not yet garbage-collected.
_tracked: "weakref.WeakSet" = weakref.WeakSet()

# name -> server or job; guarded by _registry_lock (held while replacing, so
# two cells racing to start the same name cannot both win).
_registry: dict[str, object] = {}
_registry_lock = threading.RLock()


def track(handle) -> None:
    """Note a server or job made in this kernel (for stop_all and "who holds this port")."""
    _tracked.add(handle)


def tracked() -> list:
    """Every server and job of this kernel not yet garbage-collected."""
    return list(_tracked)


def start(server, name: str | None = None):
    """Start ``server`` (a BackgroundServer or BackgroundJob) under ``name``.

    If a server with that name is registered, it is stopped first (its
    port freed), so re-running a cell never fails with "address already in
    use". Returns the started server.
    """
    if name is not None:
        server.name = name
    with _registry_lock:
        old = _registry.pop(server.name, None)
        if old is not None and old is not server:
            try:
                old.stop(timeout=5.0)
            except ServerError as exc:
                server.log.add("error", f"replaced server did not stop cleanly: {exc}")
        _registry[server.name] = server
        try:
            server.start()
        except BaseException:
            _registry.pop(server.name, None)
            raise
    return server


def get(name: str):
    """The registered server called ``name`` (KeyError if none)."""
    with _registry_lock:
        return _registry[name]


class ServerTable(list):
    """A list of registered servers that renders as an HTML table."""

    def _repr_html_(self) -> str:
        return table_html(self) if self else "<i>no servers running</i>"

    def __repr__(self) -> str:
        if not self:
            return "no servers running"
        return "\n".join(repr(s) for s in self)


def running() -> ServerTable:
    """The registered servers still running (renders as a table in a notebook)."""
    with _registry_lock:
        return ServerTable(s for s in _registry.values() if s.running)


def registered() -> ServerTable:
    """Every registered server, running or stopped (what a control panel shows)."""
    with _registry_lock:
        return ServerTable(_registry.values())


def stop_all(timeout: float = 5.0) -> list[str]:
    """Stop every registered server, and any other started in this kernel.

    Returns the names stopped. Errors are logged on each server, not raised,
    so one stuck server does not keep the others running.
    """
    with _registry_lock:
        targets = list(_registry.values())
        _registry.clear()
    targets += [s for s in tracked() if s not in targets]
    stopped = []
    for server in targets:
        if server.running or server.threads():
            with contextlib.suppress(ServerError, OSError):
                server.stop(timeout=timeout)
            stopped.append(server.name)
    return stopped


def _at_exit() -> None:
    with contextlib.suppress(Exception):
        stop_all(timeout=2.0)


atexit.register(_at_exit)
