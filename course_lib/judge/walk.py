"""The reachability walk: what a solution's allowed names can reach, object by object.

The solution policy (:mod:`autograder.policy`) is a claim about chains: a
solution may start from an allowed module attribute, an allowed built-in,
an instance of an allowed class or its own objects, and follow public
attribute names (its own objects' private ones too) and items. This walk
checks the claim in a live judge kernel, after a lesson's reference
solutions ran: breadth first, to ``depth`` steps, it follows every chain
the policy accepts and reports every object it reaches that a solution must
never hold — the IPython shell, the kernel and its session or sockets,
``sys`` and ``sys.modules``, a frame, a code object or a traceback, ``In`` or
``Out`` or the notebook's namespace, the judge's own code, a module as a
value, a mutable attribute of a protected module, a string holding a line
of a hidden test.

Roots, besides the module attributes and built-ins: every allowed class
called with no arguments and every allowed function that takes none, once
each, in a thread bounded in time; the objects the reference solutions
left in the notebook. Attribute reads can run properties: the walk runs in
its own thread, bounded in time and in the number of objects.

Run by the runner on the grader's request (``{"op": "walk", ...}``), so it
sees the kernel exactly as a solution would.
"""

from __future__ import annotations

import collections
import inspect
import os
import socket
import sys
import threading
import time
import types

__all__ = ["run", "FORBIDDEN_MODULES"]

#: Objects of these packages' types are the notebook's and the kernel's machinery.
FORBIDDEN_MODULES = ("IPython", "ipykernel", "jupyter_client", "jupyter_core", "zmq", "tornado", "traitlets",
                     "comm", "debugpy", "ipywidgets")
_JUDGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: The judge's code that solutions hold on purpose: the method guard's wrappers (ownership.py).
_HANDED_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ownership.py")
_LEAF = (str, bytes, bytearray, int, float, complex, bool, type(None))
_CONTAINERS = (list, tuple, set, frozenset, collections.deque)
_MUTABLE = (dict, list, set, collections.deque, bytearray)


def _safe_dir(value) -> list[str]:
    try:
        return list(dir(value))
    except Exception:
        return []


def _zero_arguments(value) -> bool:
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values())


def _bounded(call, seconds: float):
    outcome = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as error:  # a root that cannot be made is no root
            outcome["error"] = error

    worker = threading.Thread(target=work, name="walk-root", daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome.get("value", None) if "value" in outcome else None


class _Rules:
    """What the policy lets a chain do next, and what a chain must never reach."""

    def __init__(self, request: dict, user_ns: dict, modules: dict):
        self.dunders = frozenset(request.get("dunders", ()))
        self.public_underscore = frozenset(request.get("public_underscore", ()))
        self.forbidden_names = frozenset(request.get("forbidden_attributes", ()))
        self.prefixes = tuple(request.get("frame_prefixes", ()))
        self.hidden = [line for line in request.get("hidden", ()) if len(line) >= 12]
        self.user_ns = user_ns
        self.special = {id(sys.modules): "sys.modules", id(user_ns): "the notebook's namespace"}
        for name in ("In", "Out", "_ih", "_oh", "_dh"):
            if name in user_ns:
                self.special[id(user_ns[name])] = f"the notebook's {name}"
        self.mutable_of_modules = {}
        for module in modules.values():
            for name, value in list(vars(module).items()):
                if isinstance(value, _MUTABLE) and not (name.startswith("__") and name.endswith("__")):
                    self.mutable_of_modules.setdefault(id(value), f"{module.__name__}.{name}")

    def names(self, value) -> list[str]:
        own = type(value).__module__ == "__main__" or (isinstance(value, type) and value.__module__ == "__main__")
        found = []
        for name in _safe_dir(value):
            if name.startswith("__") and name.endswith("__"):
                if name in self.dunders:
                    found.append(name)
            elif name.startswith("_"):
                if own or name in self.public_underscore:
                    found.append(name)
            elif name not in self.forbidden_names and not name.startswith(self.prefixes):
                found.append(name)
        return found

    def forbidden(self, value) -> str:
        special = self.special.get(id(value)) or self.mutable_of_modules.get(id(value))
        if special:
            return special
        if isinstance(value, types.ModuleType):
            return f"the module {value.__name__} as a value"
        if isinstance(value, (types.FrameType, types.CodeType, types.TracebackType)):
            return f"a {type(value).__name__}"
        kind = type(value)
        module = getattr(kind, "__module__", "") or ""
        if module.split(".")[0] in FORBIDDEN_MODULES:
            return f"a {module}.{kind.__qualname__}"
        code = getattr(value, "__code__", None) if isinstance(value, types.FunctionType) else None
        if code is not None and code.co_filename.startswith(_JUDGE) and code.co_filename != _HANDED_OUT:
            return f"the judge's function {value.__qualname__}"
        if module.startswith("course_lib.judge"):
            return f"the judge's {kind.__qualname__}"
        if isinstance(value, socket.socket) and value.family == socket.AF_UNIX:
            try:
                peer = value.getpeername()
            except OSError:
                peer = ""
            if isinstance(peer, str) and peer.endswith((".sock", "relay")):
                return "a socket to the grader"
        if isinstance(value, str) and self.hidden and len(value) >= 12:
            squeezed = "".join(value.split())
            if any(line in squeezed for line in self.hidden):
                return "a line of a hidden test"
        return ""


def _roots(request: dict, modules: dict, user_ns: dict, seconds: float) -> list[tuple[str, object]]:
    import builtins

    roots: list[tuple[str, object]] = []
    for module_name, names in request.get("modules", {}).items():
        module = modules.get(module_name) or sys.modules.get(module_name)
        if module is None:
            continue
        for name in names:
            try:
                roots.append((f"{module_name}.{name}", getattr(module, name)))
            except Exception:
                continue
    for name in request.get("builtins", ()):
        if hasattr(builtins, name):
            roots.append((name, getattr(builtins, name)))
    for name in request.get("solution_names", ()):
        if name in user_ns:
            roots.append((name, user_ns[name]))
    made = []
    deadline = time.monotonic() + seconds
    for path, value in list(roots):
        if time.monotonic() > deadline:
            break
        if callable(value) and not isinstance(value, types.ModuleType) and _zero_arguments(value):
            result = _bounded(value, 1.0)
            if result is not None:
                made.append((f"{path}()", result))
    return roots + made


def _items(value):
    if isinstance(value, dict):
        for key, item in list(value.items())[:100]:
            yield f"[{key!r}]"[:40], item
            yield f"(key {key!r})"[:40], key
    elif isinstance(value, _CONTAINERS):
        for index, item in enumerate(list(value)[:100]):
            yield f"[{index}]", item


def run(request: dict, *, user_ns: dict, modules: dict) -> dict:
    """Walk from the roots the request names; the objects reached and every forbidden one, with its chain."""
    depth = int(request.get("depth", 6))
    limit = int(request.get("limit", 300_000))
    seconds = float(request.get("seconds", 120))
    rules = _Rules(request, user_ns, modules)
    started = time.monotonic()
    queue = collections.deque((path, value, 0) for path, value in _roots(request, modules, user_ns, seconds / 4))
    seen: set[int] = set()
    keep_alive = []  # every object reached stays alive until the walk ends, so no id is reused
    found: list[dict] = []
    cut = ""
    while queue:
        if len(seen) >= limit:
            cut = f"stopped at {limit} objects"
            break
        if time.monotonic() - started > seconds:
            cut = f"stopped after {seconds:g} s"
            break
        path, value, level = queue.popleft()
        if id(value) in seen:
            continue
        seen.add(id(value))
        keep_alive.append(value)
        why = rules.forbidden(value)
        if why:
            if len(found) < 200:
                found.append({"path": path, "what": why})
            continue
        if level >= depth or isinstance(value, _LEAF):
            continue
        for name in rules.names(value):
            try:
                child = getattr(value, name)
            except Exception:
                continue
            queue.append((f"{path}.{name}", child, level + 1))
        for label, child in _items(value):
            queue.append((f"{path}{label}", child, level + 1))
    return {"reached": len(seen), "forbidden": found, "cut": cut, "seconds": round(time.monotonic() - started, 2)}
