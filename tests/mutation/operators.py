"""Mutation operators for the reference solutions, on libcst trees (the source keeps its shape).

Two families. The concurrency operators follow Bradbury, Cordy and Dingel, "Mutation
Operators for Concurrent Java (J2SE 5.0)" (Mutation 2006), adapted to Python's threading,
socket, selectors and asyncio: they change exactly the code responsible for
synchronization (a critical region, a wait, a signal, a join, a timeout, a lock order) or
for a connection's life (a close, a disconnect handler, a partial send, a framing loop).
The classic ones (mutmut's and cosmic-ray's: comparisons, boundaries, constants, branches)
are for code that is not about threads: parsing, classification, input checks.

An operator is a function ``(Site) -> [(description, replacement)]`` registered with
:func:`operator`, where the replacement is a node (or a sentinel: removed, several
statements) for the site's node, or a dict of such replacements by node; :mod:`tests.mutation.engine` finds the sites (nodes inside the
``### BEGIN SOLUTION`` blocks), swaps one node for its replacement and keeps the mutant
if it still compiles and differs from every other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

__all__ = ["Site", "OPERATORS", "CONCURRENCY", "CLASSIC", "operator", "dotted", "pass_line"]


@dataclass
class Site:
    """A node the operators may change, and what they may need to know around it."""

    node: cst.CSTNode
    parent: cst.CSTNode | None        # the node that holds it (for statements: their block)
    sync_names: frozenset = field(default_factory=frozenset)   # locks, conditions, ... of the cell
    grandparent: cst.CSTNode | None = None
    in_async: bool = False


OPERATORS: dict = {}
CONCURRENCY: set = set()
CLASSIC: set = set()


def operator(name: str, family: str):
    def register(fn):
        OPERATORS[name] = fn
        (CONCURRENCY if family == "concurrency" else CLASSIC).add(name)
        return fn
    return register


def dotted(node) -> str | None:
    """``self._lock`` for the expression self._lock, None for anything but names and attributes."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    if isinstance(node, cst.Subscript):   # table.forks[first]: a lock taken from a list
        base = dotted(node.value)
        return None if base is None else f"{base}[]"
    return None


def pass_line() -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Pass()])


def _expr_call(stmt) -> cst.Call | None:
    """The call of a statement that is only a call (or an awaited call)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if not isinstance(small, cst.Expr):
        return None
    value = small.value
    if isinstance(value, cst.Await):
        value = value.expression
    return value if isinstance(value, cst.Call) else None


def _method(call) -> str | None:
    if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    return None


def _contains(node, predicate) -> bool:
    found = []

    class Finder(cst.CSTVisitor):
        def on_visit(self, n):
            if not found and predicate(n):
                found.append(n)
            return not found

    node.visit(Finder())
    return bool(found)


def _calls_method(node, names) -> bool:
    return _contains(node, lambda n: isinstance(n, cst.Call) and _method(n) in names)


def _is_sync_with(node: cst.With, site: Site) -> bool:
    return any(dotted(item.item) in site.sync_names for item in node.items)


def _block(stmts) -> cst.IndentedBlock:
    return cst.IndentedBlock(body=list(stmts))


# ---------------------------------------------------------------- critical regions


@operator("with_unwrap", "concurrency")
def with_unwrap(site):
    """Remove a ``with`` block (a lock, a socket, a file): its body runs without it."""
    node = site.node
    if isinstance(node, cst.With) and isinstance(node.body, cst.IndentedBlock):
        what = ", ".join(cst.Module([]).code_for_node(i.item) for i in node.items)
        return [(f"`with {what}:` removed, its body kept", cst.FlattenSentinel(node.body.body))]
    return []


@operator("fresh_lock", "concurrency")
def fresh_lock(site):
    """Replace the lock of a ``with`` by a fresh one made per call: it excludes nobody."""
    node = site.node
    if isinstance(node, cst.With) and len(node.items) == 1 and _is_sync_with(node, site) \
            and not site.in_async:
        fresh = cst.parse_expression("threading.Lock()")
        item = node.items[0].with_changes(item=fresh)
        name = dotted(node.items[0].item)
        return [(f"`with {name}:` takes a fresh threading.Lock() instead", node.with_changes(items=[item]))]
    return []


@operator("lock_replace", "concurrency")
def lock_replace(site):
    """Take another lock of the cell instead of this one."""
    node = site.node
    out = []
    if isinstance(node, cst.With) and len(node.items) == 1 and _is_sync_with(node, site):
        name = dotted(node.items[0].item)
        for other in sorted(site.sync_names - {name}):
            if "[]" in other or other.split(".")[0] != name.split(".")[0]:
                continue
            item = node.items[0].with_changes(item=cst.parse_expression(other))
            out.append((f"`with {name}:` takes {other} instead", node.with_changes(items=[item])))
    return out


def _region_statements(site):
    node = site.node
    if isinstance(node, cst.With) and _is_sync_with(node, site) and isinstance(node.body, cst.IndentedBlock):
        return list(node.body.body)
    return None


@operator("region_shrink", "concurrency")
def region_shrink(site):
    """Move the first or the last statement of a critical region out of it."""
    body = _region_statements(site)
    node = site.node
    if not body or len(body) < 2:
        return []
    out = []
    last = body[-1]
    if not _contains(last, lambda n: isinstance(n, (cst.Return, cst.Raise))):
        out.append(("the region's last statement moved after it",
                    cst.FlattenSentinel([node.with_changes(body=_block(body[:-1])), last])))
    first = body[0]
    out.append(("the region's first statement moved before it",
                cst.FlattenSentinel([first, node.with_changes(body=_block(body[1:]))])))
    return out


@operator("region_split", "concurrency")
def region_split(site):
    """Split a critical region in two: another thread may run between the halves."""
    body = _region_statements(site)
    node = site.node
    if not body or len(body) < 2:
        return []
    return [(f"the region split after its statement {k}",
             cst.FlattenSentinel([node.with_changes(body=_block(body[:k])),
                                  node.with_changes(body=_block(body[k:]))]))
            for k in range(1, len(body))]


@operator("region_expand", "concurrency")
def region_expand(site):
    """Pull the call that follows a critical region into it (held while it calls out)."""
    parent, node = site.parent, site.node
    if _region_statements(site) is None or parent is None:
        return []
    siblings = list(getattr(parent, "body", []))
    index = next((i for i, s in enumerate(siblings) if s is node), None)
    if index is None or index + 1 >= len(siblings):
        return []
    following = siblings[index + 1]
    if not _contains(following, lambda n: isinstance(n, cst.Call)):
        return []
    grown = node.with_changes(body=_block([*node.body.body, following]))
    return [("the statement after the region pulled into it", {node: grown, following: cst.RemoveFromParent()})]


@operator("check_outside", "concurrency")
def check_outside(site):
    """Move the check of an ``if`` out of the region its action is in (check-then-act)."""
    body = _region_statements(site)
    node = site.node
    out = []
    for k, stmt in enumerate(body or []):
        if isinstance(stmt, cst.If):
            checked = cst.parse_statement("_checked = None")
            assign = checked.with_changes(body=[checked.body[0].with_changes(value=stmt.test)])
            moved = stmt.with_changes(test=cst.Name("_checked"))
            new_body = [*body[:k], moved, *body[k + 1:]]
            out.append((f"the check `if {cst.Module([]).code_for_node(stmt.test)}:` made before the lock",
                        cst.FlattenSentinel([assign, node.with_changes(body=_block(new_body))])))
    return out


@operator("acquire_release_remove", "concurrency")
def acquire_release_remove(site):
    """Remove an ``acquire()`` or a ``release()`` of a lock or semaphore (a lost signal)."""
    call = _expr_call(site.node)
    name = _method(call)
    if name in ("acquire", "release") and not site.in_async:
        owner = dotted(call.func.value)
        return [(f"`{owner}.{name}()` removed", pass_line())]
    return []


@operator("lock_order_swap", "concurrency")
def lock_order_swap(site):
    """Take two locks in the other order."""
    node = site.node
    if isinstance(node, cst.With) and len(node.items) == 2:
        a, b = node.items
        return [("the two locks of one `with` taken in the other order",
                 node.with_changes(items=[b.with_changes(comma=a.comma), a.with_changes(comma=b.comma)]))]
    if isinstance(node, cst.With) and len(node.items) == 1 and isinstance(node.body, cst.IndentedBlock) \
            and len(node.body.body) == 1 and isinstance(node.body.body[0], cst.With) \
            and len(node.body.body[0].items) == 1:
        inner = node.body.body[0]
        return [("nested locks taken in the other order",
                 node.with_changes(items=inner.items, body=node.body.with_changes(
                     body=[inner.with_changes(items=node.items)])))]
    return []


# ---------------------------------------------------------------- waiting and signalling


@operator("while_to_if", "concurrency")
def while_to_if(site):
    """``while`` → ``if`` around a wait: a waiter that wakes checks its condition once."""
    node = site.node
    if isinstance(node, cst.While) and _calls_method(node.body, {"wait", "acquire", "wait_for"}):
        return [("`while` around a wait made `if`",
                 cst.If(test=node.test, body=node.body, leading_lines=node.leading_lines))]
    return []


@operator("wait_for_once", "concurrency")
def wait_for_once(site):
    """``cond.wait_for(pred, t)`` checks ``pred`` once, waits once, checks once more."""
    node = site.node
    if isinstance(node, cst.Call) and _method(node) == "wait_for" and node.args:
        pred = cst.Module([]).code_for_node(node.args[0].value)
        owner = cst.Module([]).code_for_node(node.func.value)
        rest = ", ".join(cst.Module([]).code_for_node(a.value) for a in node.args[1:])
        text = f"(({pred})() or ({owner}.wait({rest}) and ({pred})()))"
        return [("`wait_for` made a single wait", cst.parse_expression(text))]
    return []


@operator("notify_all_to_notify", "concurrency")
def notify_all_to_notify(site):
    node = site.node
    if isinstance(node, cst.Call) and _method(node) == "notify_all":
        return [("`notify_all()` made `notify()`",
                 node.with_changes(func=node.func.with_changes(attr=cst.Name("notify"))))]
    return []


@operator("signal_remove", "concurrency")
def signal_remove(site):
    """Remove a ``notify``/``notify_all`` or an Event's ``set()``/``clear()``."""
    call = _expr_call(site.node)
    name = _method(call)
    if name in ("notify", "notify_all", "set", "clear"):
        return [(f"`{dotted(call.func.value)}.{name}()` removed", pass_line())]
    return []


@operator("join_remove", "concurrency")
def join_remove(site):
    """Remove a ``join`` or replace it with a short sleep."""
    call = _expr_call(site.node)
    if _method(call) == "join" and not call.args[1:] and not site.in_async \
            and not (isinstance(call.func.value, cst.SimpleString)):
        owner = dotted(call.func.value) or "thread"
        return [(f"`{owner}.join()` removed", pass_line()),
                (f"`{owner}.join()` made `time.sleep(0.01)`",
                 cst.parse_statement("time.sleep(0.01)"))]
    return []


@operator("start_to_run", "concurrency")
def start_to_run(site):
    """``thread.start()`` → ``thread.run()``: the work runs in the calling thread."""
    node = site.node
    if isinstance(node, cst.Call) and _method(node) == "start" and not node.args:
        return [("`start()` made `run()` (no new thread)",
                 node.with_changes(func=node.func.with_changes(attr=cst.Name("run"))))]
    return []


@operator("daemon_flip", "concurrency")
def daemon_flip(site):
    node = site.node
    if isinstance(node, cst.Arg) and node.keyword is not None and node.keyword.value == "daemon" \
            and isinstance(node.value, cst.Name) and node.value.value in ("True", "False"):
        flipped = "False" if node.value.value == "True" else "True"
        return [(f"daemon={node.value.value} made daemon={flipped}", node.with_changes(value=cst.Name(flipped))),
                (f"daemon={node.value.value} dropped", cst.RemoveFromParent())]
    return []


_TIMED = {"join", "wait", "wait_for", "acquire", "get", "put", "result", "select", "connect",
          "create_connection", "stop", "readline"}


@operator("timeout_remove", "concurrency")
def timeout_remove(site):
    """Remove a ``timeout=`` (or a join's or wait's timeout), a ``settimeout``, an ``asyncio.wait_for``."""
    node = site.node
    out = []
    if isinstance(node, cst.Call):
        name = _method(node) or (node.func.value if isinstance(node.func, cst.Name) else None)
        for k, arg in enumerate(node.args):
            if arg.keyword is not None and arg.keyword.value == "timeout":
                out.append((f"`timeout=` of {name}() removed",
                            node.with_changes(args=[a for j, a in enumerate(node.args) if j != k])))
        positional = [a for a in node.args if a.keyword is None]
        if name in ("join", "wait") and len(positional) == 1 and len(node.args) == 1:
            out.append((f"the timeout of {name}() removed", node.with_changes(args=[])))
        if name == "wait" and len(positional) == 2 and isinstance(node.func, cst.Attribute) \
                and dotted(node.func.value) == "asyncio":
            pass
        if name == "wait_for" and dotted(node.func) == "asyncio.wait_for" and node.args:
            out.append(("`asyncio.wait_for(x, t)` made `x`", node.args[0].value))
    call = _expr_call(node)
    if _method(call) == "settimeout":
        out.append(("`settimeout(...)` removed", pass_line()))
    return out


@operator("deadline_restart", "concurrency")
def deadline_restart(site):
    """Restart a deadline inside the loop that follows it: each round gets the whole timeout."""
    parent, node = site.parent, site.node
    if not (isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1
            and isinstance(node.body[0], cst.Assign) and len(node.body[0].targets) == 1):
        return []
    target = dotted(node.body[0].targets[0].target)
    if not target or "deadline" not in target:
        return []
    siblings = list(getattr(parent, "body", []))
    index = next((i for i, s in enumerate(siblings) if s is node), None)
    if index is None:
        return []

    def restart(stmt):
        if isinstance(stmt, (cst.For, cst.While)):
            return stmt.with_changes(body=stmt.body.with_changes(body=[node, *stmt.body.body]))
        if isinstance(stmt, cst.With):
            inner = [restart(s) for s in stmt.body.body]
            if any(a is not b for a, b in zip(inner, stmt.body.body)):
                return stmt.with_changes(body=stmt.body.with_changes(body=inner))
        return stmt

    for later in siblings[index + 1:]:
        moved = restart(later)
        if moved is not later:
            return [("the deadline restarted inside its loop", {later: moved})]
    return []


@operator("count_change", "concurrency")
def count_change(site):
    """Change a Semaphore's, BoundedSemaphore's or Barrier's count by one."""
    node = site.node
    if isinstance(node, cst.Call) and (dotted(node.func) or "").split(".")[-1] in (
            "Semaphore", "BoundedSemaphore", "Barrier") and node.args:
        value = node.args[0].value
        text = cst.Module([]).code_for_node(value)
        out = []
        for delta in (+1, -1):
            if isinstance(value, cst.Integer):
                new = cst.Integer(str(max(0, int(value.value) + delta)))
            else:
                new = cst.parse_expression(f"({text}) {'+' if delta > 0 else '-'} 1")
            if isinstance(new, cst.Integer) and new.value == value.value:
                continue
            out.append((f"{dotted(node.func)}({text}) made {cst.Module([]).code_for_node(new)}",
                        node.with_changes(args=[node.args[0].with_changes(value=new), *node.args[1:]])))
        return out
    return []


# ---------------------------------------------------------------- sockets and streams


@operator("sendall_to_send", "concurrency")
def sendall_to_send(site):
    node = site.node
    if isinstance(node, cst.Call) and _method(node) == "sendall":
        return [("`sendall` made `send` (a partial send goes unnoticed)",
                 node.with_changes(func=node.func.with_changes(attr=cst.Name("send"))))]
    return []


@operator("finally_remove", "concurrency")
def finally_remove(site):
    """Remove a ``finally`` (that closes or releases)."""
    node = site.node
    if isinstance(node, cst.Try) and node.finalbody is not None:
        if node.handlers:
            return [("the `finally:` removed", node.with_changes(finalbody=None))]
        return [("the `try/finally` removed, its body kept", cst.FlattenSentinel(node.body.body))]
    return []


@operator("except_remove", "concurrency")
def except_remove(site):
    """Remove an ``except`` (one that handles a disconnect, a timeout, a bad input)."""
    node = site.node
    out = []
    if isinstance(node, cst.Try) and node.handlers:
        for k, handler in enumerate(node.handlers):
            caught = cst.Module([]).code_for_node(handler.type) if handler.type else "everything"
            rest = [h for j, h in enumerate(node.handlers) if j != k]
            if rest or node.finalbody is not None:
                new = node.with_changes(handlers=rest, orelse=node.orelse if rest else None)
                if not rest and node.orelse is not None:
                    new = new.with_changes(body=node.body.with_changes(body=[*node.body.body, *node.orelse.body.body]))
                out.append((f"`except {caught}` removed", new))
            else:
                tail = list(node.orelse.body.body) if node.orelse is not None else []
                out.append((f"`except {caught}` removed (the try with it)",
                            cst.FlattenSentinel([*node.body.body, *tail])))
    return out


_READS = {"recv", "recv_into", "read", "readline", "recvfrom", "accept"}


@operator("loop_once", "concurrency")
def loop_once(site):
    """A loop that reads (or accepts) runs once: one recv taken as the whole message."""
    node = site.node
    if isinstance(node, (cst.While, cst.For)) and _calls_method(node.body, _READS):
        body = node.body.body
        return [("the reading loop runs once (break at its end)",
                 node.with_changes(body=node.body.with_changes(body=[*body, cst.parse_statement("break")])))]
    return []


_CLEANUP = {"close", "unregister", "shutdown", "wait_closed", "abort", "cancel", "drain"}


@operator("cleanup_remove", "concurrency")
def cleanup_remove(site):
    """Remove a close, shutdown, unregister, drain or wait_closed."""
    call = _expr_call(site.node)
    name = _method(call)
    if name in _CLEANUP:
        return [(f"`{dotted(call.func.value) or '...'}.{name}()` removed", pass_line())]
    return []


@operator("setblocking_flip", "concurrency")
def setblocking_flip(site):
    call = _expr_call(site.node)
    if _method(call) == "setblocking":
        return [("`setblocking(...)` removed", pass_line())]
    return []


# ---------------------------------------------------------------- classic


_COMPARE = {cst.LessThan: cst.LessThanEqual, cst.LessThanEqual: cst.LessThan,
            cst.GreaterThan: cst.GreaterThanEqual, cst.GreaterThanEqual: cst.GreaterThan,
            cst.Equal: cst.NotEqual, cst.NotEqual: cst.Equal, cst.Is: cst.IsNot, cst.IsNot: cst.Is,
            cst.In: cst.NotIn, cst.NotIn: cst.In}
_SYMBOL = {cst.LessThan: "<", cst.LessThanEqual: "<=", cst.GreaterThan: ">", cst.GreaterThanEqual: ">=",
           cst.Equal: "==", cst.NotEqual: "!=", cst.Is: "is", cst.IsNot: "is not", cst.In: "in",
           cst.NotIn: "not in"}


@operator("compare", "classic")
def compare(site):
    """A comparison's boundary or its negation: < ↔ <=, > ↔ >=, == ↔ !=, is ↔ is not, in ↔ not in."""
    node = site.node
    out = []
    if isinstance(node, cst.Comparison):
        for k, target in enumerate(node.comparisons):
            kind = type(target.operator)
            new_op = _COMPARE[kind]()
            targets = list(node.comparisons)
            targets[k] = target.with_changes(operator=new_op)
            out.append((f"`{_SYMBOL[kind]}` made `{_SYMBOL[type(new_op)]}`", node.with_changes(comparisons=targets)))
    return out


@operator("boolean", "classic")
def boolean(site):
    """``and`` ↔ ``or``; drop a ``not``."""
    node = site.node
    if isinstance(node, cst.BooleanOperation):
        other = cst.Or() if isinstance(node.operator, cst.And) else cst.And()
        return [(f"`{'and' if isinstance(node.operator, cst.And) else 'or'}` made "
                 f"`{'or' if isinstance(other, cst.Or) else 'and'}`", node.with_changes(operator=other))]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
        return [("a `not` dropped", node.expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))]
    return []


_ARITH = {cst.Add: cst.Subtract, cst.Subtract: cst.Add, cst.Multiply: cst.Divide, cst.Divide: cst.Multiply,
          cst.FloorDivide: cst.Divide, cst.Modulo: cst.FloorDivide}


@operator("arithmetic", "classic")
def arithmetic(site):
    node = site.node
    if isinstance(node, cst.BinaryOperation) and type(node.operator) in _ARITH:
        if isinstance(node.left, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)) \
                or isinstance(node.right, (cst.SimpleString, cst.FormattedString)):
            return []
        new = _ARITH[type(node.operator)]()
        return [(f"`{type(node.operator).__name__}` made `{type(new).__name__}`", node.with_changes(operator=new))]
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return [("`|` made its left operand", node.left)]
    return []


# Buffer sizes, backlogs and socket options: one more or less changes nothing a test could see.
_SIZES = {"recv", "recv_into", "listen", "setsockopt", "makefile", "socketpair"}


@operator("constant", "classic")
def constant(site):
    """A number one up or down (a float doubled or halved), a bool flipped, a compared or returned str changed."""
    node = site.node
    if isinstance(site.parent, cst.Arg) and _method(site.grandparent) in _SIZES:
        return []
    if isinstance(node, cst.Integer):
        value = int(node.value.replace("_", ""), 0)
        new = [value + 1] if value == 0 else [value + 1, value - 1]
        return [(f"{node.value} made {v}", cst.Integer(str(v))) for v in new]
    if isinstance(node, cst.Float):
        value = float(node.value.replace("_", ""))
        return [(f"{node.value} made {v!r}", cst.Float(repr(v))) for v in (value * 2, value / 2) if v != value]
    return []


@operator("string", "classic")
def string(site):
    """A string that is compared, returned, or a prediction's value, changed."""
    node = site.node
    if isinstance(node, cst.SimpleString) and isinstance(site.parent, (cst.Return, cst.ComparisonTarget,
                                                                       cst.Comparison, cst.Element,
                                                                       cst.Assign, cst.Tuple)):
        text = node.evaluated_value
        if isinstance(text, bytes):
            return [(f"{node.value} changed", cst.SimpleString(repr(text + b"!")))]
        if re.fullmatch(r"\d+(x\d+)?( \d+(x\d+)?)*", text or ""):   # a schedule "0x3 1x3 0"
            steps = text.split()
            out = []
            if len(steps) > 1:
                out.append(("the schedule's last step dropped", cst.SimpleString(repr(" ".join(steps[:-1])))))
            first = steps[0].split("x")
            count = int(first[1]) if len(first) == 2 else 1
            if count > 1:
                shorter = f"{first[0]}x{count - 1}" if count > 2 else first[0]
                out.append(("the schedule's first step one shorter",
                            cst.SimpleString(repr(" ".join([shorter, *steps[1:]])))))
            return out
        return [(f"{node.value} changed", cst.SimpleString(repr((text or "") + "!")))]
    return []


@operator("name_constant", "classic")
def name_constant(site):
    node = site.node
    if isinstance(node, cst.Name) and node.value in ("True", "False") and not (
            isinstance(site.parent, cst.Arg) and site.parent.keyword is not None
            and site.parent.keyword.value == "daemon"):
        flipped = "False" if node.value == "True" else "True"
        return [(f"{node.value} made {flipped}", cst.Name(flipped))]
    return []


@operator("branch", "classic")
def branch(site):
    """An ``if``'s condition made always true or always false; a ``raise`` removed."""
    node = site.node
    if isinstance(node, cst.If):
        out = [("an `if` condition made False", node.with_changes(test=cst.Name("False")))]
        guard = len(node.body.body) == 1 and _contains(node.body, lambda n: isinstance(n, (cst.Raise, cst.Return)))
        if node.orelse is not None or not guard:   # an always-taken guard fails every test: no news
            out.insert(0, ("an `if` condition made True", node.with_changes(test=cst.Name("True"))))
        return out
    if isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1 and isinstance(node.body[0], cst.Raise) \
            and node.body[0].exc is not None and not _sole_statement_of_if(node, site):
        return [("a `raise` removed", pass_line())]
    return []


def _sole_statement_of_if(node, site) -> bool:
    """A raise that is all its ``if`` does: "condition made False" is the same mutant."""
    return isinstance(site.parent, cst.IndentedBlock) and len(site.parent.body) == 1
