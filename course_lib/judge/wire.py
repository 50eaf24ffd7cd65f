"""Values as data: what crosses between the judge kernel and the grader.

A test judged in the grader's process (:mod:`autograder.referee`) calls the
student's functions through the judge's channel: arguments go in and
results come out as *data* — ``None``, ``bool``, ``int``, ``float``,
``str``, ``bytes`` and lists, tuples, dicts, sets and frozensets of them,
each of exactly that type. Anything else (an object of the student's own
class, an ``int`` subclass, a value whose ``__eq__`` always answers
``True``) arrives as an :class:`Opaque` description, which equals nothing:
a comparison made in the grader compares the grader's own objects.

An exception crosses as the built-in exception classes of its type's MRO
and its message, and is raised again on the other side as the most derived
built-in class, so ``except ValueError`` in a test works on a student's
``ValueError`` subclass.

What it trades off: data only, so a test that hands the student a function
or needs an object back runs in the kernel instead. Both directions are
bounded (``MAX_NODES``, ``MAX_DEPTH``, ``MAX_TEXT``), and encoding is strict
about types (``type(v) is int``), never about values.
"""

from __future__ import annotations

import base64
import builtins
import math

__all__ = ["Opaque", "NotData", "encode", "decode", "encode_exception", "raise_decoded", "MAX_TEXT"]

MAX_NODES = 100_000
MAX_DEPTH = 40
MAX_TEXT = 1 << 20          # characters of one str, bytes of one bytes value
MAX_REPR = 200


class NotData(TypeError):
    """A value that cannot cross as data (a function, an open socket, ...)."""


class Opaque:
    """What arrives for a value that is not data: its type's name and a short repr. Equal to nothing."""

    __slots__ = ("type_name", "text")

    def __init__(self, type_name: str, text: str):
        self.type_name = type_name
        self.text = text

    def __eq__(self, other) -> bool:
        return False

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{self.type_name} object: {self.text}>"


class _Budget:
    def __init__(self):
        self.nodes = 0

    def spend(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise NotData(f"more than {MAX_NODES} values in one result")


def _short_repr(value) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "?"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR - 3] + "..."


def encode(value, *, strict: bool = False, _budget: _Budget | None = None, _depth: int = 0):
    """``value`` as JSON-ready data; a non-data value becomes an opaque description
    (or raises :class:`NotData` when ``strict``: arguments must be data)."""
    budget = _budget or _Budget()
    budget.spend()
    if _depth > MAX_DEPTH:
        raise NotData(f"nested more than {MAX_DEPTH} deep")
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is str:
        if len(value) > MAX_TEXT:
            raise NotData(f"a str of {len(value)} characters (at most {MAX_TEXT})")
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$f": repr(value)}
    if kind is bytes:
        if len(value) > MAX_TEXT:
            raise NotData(f"bytes of {len(value)} (at most {MAX_TEXT})")
        return {"$b": base64.b64encode(value).decode("ascii")}
    inner = dict(strict=strict, _budget=budget, _depth=_depth + 1)
    if kind is list:
        return [encode(v, **inner) for v in value]
    if kind is tuple:
        return {"$t": [encode(v, **inner) for v in value]}
    if kind is dict:
        return {"$d": [[encode(k, **inner), encode(v, **inner)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"$s" if kind is set else "$fs": [encode(v, **inner) for v in value]}
    if strict:
        raise NotData(f"a {kind.__name__} cannot be sent as data")
    return {"$o": [getattr(kind, "__qualname__", "?")[:100], _short_repr(value)]}


def decode(data, *, _depth: int = 0):
    """The value :func:`encode` described (opaque descriptions become :class:`Opaque`)."""
    if _depth > MAX_DEPTH + 1:
        raise NotData("nested too deep")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(v, _depth=_depth + 1) for v in data]
    if type(data) is not dict or len(data) != 1:
        raise NotData("not an encoded value")
    (tag, body), = data.items()
    if tag == "$t":
        return tuple(decode(v, _depth=_depth + 1) for v in body)
    if tag == "$d":
        return {decode(k, _depth=_depth + 1): decode(v, _depth=_depth + 1) for k, v in body}
    if tag == "$s":
        return {decode(v, _depth=_depth + 1) for v in body}
    if tag == "$fs":
        return frozenset(decode(v, _depth=_depth + 1) for v in body)
    if tag == "$b":
        return base64.b64decode(body)
    if tag == "$f":
        return float(body)
    if tag == "$o":
        return Opaque(str(body[0]), str(body[1]))
    raise NotData(f"unknown tag {tag!r}")


def encode_exception(error: BaseException) -> dict:
    """The built-in classes of ``error``'s type (most derived first), its type's name, its message."""
    lineage = [k.__name__ for k in type(error).__mro__
               if getattr(builtins, k.__name__, None) is k and issubclass(k, BaseException)]
    try:
        args = encode(tuple(error.args), strict=True)
    except Exception:
        args = None
    try:
        message = str(error)
    except Exception:
        message = "?"
    return {"builtin": lineage, "type": type(error).__name__[:100], "message": message[:2000], "args": args}


def raise_decoded(described: dict):
    """Raise what :func:`encode_exception` described, as its most derived built-in class."""
    base = next((getattr(builtins, name) for name in described.get("builtin", ())
                 if name not in ("BaseException", "object") and isinstance(getattr(builtins, name, None), type)),
                Exception)
    if base in (KeyboardInterrupt, SystemExit, GeneratorExit):
        base = Exception
    args = described.get("args")
    try:
        values = decode(args) if args is not None else (described.get("message", ""),)
    except NotData:
        values = (described.get("message", ""),)
    if type(values) is not tuple:
        values = (described.get("message", ""),)
    name = str(described.get("type", base.__name__))
    kind = base if name == base.__name__ else type(name, (base,), {"__module__": "student"})
    try:
        error = kind(*values)
    except Exception:  # a class whose constructor wants other arguments (UnicodeDecodeError)
        error = type(name, (Exception,), {"__module__": "student"})(described.get("message", ""))
    raise error
