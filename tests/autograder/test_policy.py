"""Does the solution-cell policy refuse what reaches into the interpreter or the grader,
and accept every correct solution the lessons have?"""

import pytest

from autograder import normalize
from autograder.normalize import is_solution
from autograder.policy import Bindings, allowed_modules, check_source, notebook_bindings
from tests.submissions import NOTEBOOKS, source_notebook

LESSONS = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir() and p.name[:2].isdigit())
MODULES = Bindings({m: m for m in ("threading", "socket", "time", "queue", "os", "multiprocessing")},
                   frozenset({"datetime"}))

REFUSED = {
    # source: the construct the message must name
    "import sys": "import sys",
    "import importlib": "import importlib",
    "from IPython import get_ipython": "from IPython",
    "import ctypes": "import ctypes",
    "import gc\ngc.get_objects()": "import gc",
    "from . import x": "from .",
    "get_ipython().events.register('pre_run_cell', print)": "get_ipython",
    "grading.expect_equal = lambda *a: None": "grading",
    "from course_lib import grading": "from course_lib",
    "print(In[-1])": "In",
    "print(_ih)": "_ih",
    "print(_i3)": "_i3",
    "exec('x = 1')": "exec",
    "eval('1')": "eval",
    "compile('1', 'f', 'eval')": "compile",
    "open('/etc/passwd').read()": "open",
    "globals()['grading'] = None": "globals",
    "vars(threading)": "vars",
    "__import__('sys')": "__import__",
    "x = ().__class__.__base__.__subclasses__()": ".__class__",
    "def f():\n    pass\nf.__code__ = None": ".__code__",
    "'{0.__globals__}'.format(len)": ".format",
    "template = '{}'\ntemplate.format(1)": ".format",
    "getattr(threading, 'settrace')": "threading.settrace",
    "name = 'sys'\ngetattr(socket, name)": "socket",
    "def read(obj, name):\n    return getattr(obj, name, None, 1)": "getattr",
    "def read(obj, names):\n    return hasattr(obj, *names)": "hasattr",
    "read = getattr": "getattr",
    "FORMAT = getattr(str, 'format')\nFORMAT('{0.__init__.__globals__}', threading.Thread)": "getattr(..., 'format')",
    "def fmt(template, x):\n    return hasattr(template, 'format')": "hasattr(..., 'format')",
    "def hide():\n    global len\n    len = lambda sized: 0": "global len",
    "def hide():\n    global sorted\n    del sorted": "global sorted",
    "setattr(threading, 'Lock', None)": "setattr",
    "t = threading\nt.Lock = object": "threading",
    "time.sleep = lambda s: None": "time.sleep = ...",
    "threading.Thread.start = print": "threading.Thread.start = ...",
    "socket.sys.modules.clear()": "socket.sys",
    "threading._shutdown()": "threading._shutdown",
    "def g():\n    yield\ng().gi_frame.f_back": ".gi_frame",
    "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__": ".__traceback__",
    "socket.socket(fileno=5).close()": "fileno=",
    "threading = None": "threading",
    "def f():\n    global socket\n    socket = None": "global socket",
    "class M(type):\n    pass\nclass A(metaclass=M):\n    pass": "metaclass=",
    "%time x = 1": "%time",
    "!ls": "!ls",
    "os.system('ls')": "os",
    "x = threading.Thread\nx.start = print": "x.start",
    "type(threading.current_thread()).run = print": "type(threading.current_thread()).run",
    "datetime.now = None": "datetime.now",
    "def __getattr__(name):\n    return 1": "def __getattr__",
    "print(__builtins__)": "__builtins__",
    "breakpoint()": "breakpoint",
    # found by the attack corpus (tests/autograder/test_attacks.py)
    "def tick():\n    time = 5\n    return time": "time",
    "_t = %time 1": "_t = %time",
    "x = 1\ndouble?": "double?",
    ";print unchecked\nx = 1": "print",
    "import string\nstring.Formatter().get_field('0.__globals__', [len], {})": "Formatter",
    "import typing\ndef f(x: '__import__(\"os\")'):\n    pass\ntyping.get_type_hints(f)": "__import__",
    "def f(x: 'open(1)'):\n    pass": "open",
    "ValueError = Exception": "ValueError",
    "match 1:\n    case [*grading]:\n        pass": "grading",
    "match 1:\n    case {**threading}:\n        pass": "threading",
    "def shared():\n    return [threading for threading in [threading]]": "threading",
    "f = (lambda threading=threading: threading)": "threading",
    "socket.os.system('id')": "socket.os",
    "import concurrent.futures\nconcurrent.futures.process.multiprocessing.Process": "concurrent.futures.process",
    "socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, 3)": "socket.socket(..., fileno)",
    "import asyncio": "import asyncio",
    # found by the second round of the attack corpus
    "import functools\nfunctools.update_wrapper(object(), len, assigned=('x',), updated=())": "update_wrapper",
    "x = '__globals__'": "'__globals__'",
    "out = threading.Thread()._stderr": "._stderr",
    "fmt = '{0}'.format": ".format",
    "class Hints:\n    def __getattr__(self, name):\n        return 1": "def __getattr__",
    "class Sink:\n    def __setattr__(self, name, value):\n        pass": "def __setattr__",
    "socket.socket(*(1, 2, 0, 3))": "socket.socket(*args)",
    # the allow-list round (issue 27): private names only on self, writes only to own objects
    "class Box:\n    def __init__(self):\n        self._items = []\n    def take(self, other):\n"
    "        return other._items.pop()": "._items",
    "class A:\n    def f(self):\n        self.x = 1\ndef g(ev):\n    ev.wait = print": "ev.wait",
    "def g(ev):\n    ev._flag = True": "ev._flag",
    "class T(threading.Thread):\n    def leak(self):\n        return self._stderr": "._stderr",
    "class A:\n    @staticmethod\n    def f(self):\n        return self._x": "._x",
    "class A:\n    def f(self):\n        return super(A, self).f()": "super(...)",
    "def f(x):\n    return type(x).wait": "type(...)",
    "import dataclasses\ndataclasses.make_dataclass('A', [])": "dataclasses.make_dataclass",
    "import functools\nfunctools.partial(functools.update_wrapper, assigned=('x',))": "update_wrapper",
    "def f():\n    return threading.enumerate()": "threading.enumerate",
    "x = [threading.Event][0]\nx.wait = print": "x.wait",
    "[threading.Event][0].wait = print": "[threading.Event][0].wait",
    "class A:\n    def f(self):\n        self.__class__ = int": "self.__class__",
    "import functools\n@functools.lru_cache\nclass A:\n    pass": "@functools.lru_cache",
    # what trusting self in a @contextlib.contextmanager method, and __slots__, could open (session 4):
    # a decorator is trusted only if it is the real one, never a name the cell bound itself ...
    "def cached_property(f):\n    return staticmethod(f)\nclass A:\n    @cached_property\n    def peek(self):\n"
    "        return self._kwargs": "._kwargs",
    "def contextmanager(f):\n    return staticmethod(f)\nclass A:\n    @contextmanager\n    def peek(self):\n"
    "        yield self._kwargs": "._kwargs",
    "class A:\n    property = staticmethod\n    @property\n    def peek(self):\n        return self._kwargs":
        "._kwargs",
    "class S:\n    def setter(self, f):\n        return staticmethod(f)\ns = S()\nclass A:\n    @s.setter\n"
    "    def peek(self):\n        return self._kwargs": "._kwargs",
    "import abc as contextlib\nclass A:\n    @contextlib.contextmanager\n    def peek(self):\n"
    "        yield self._kwargs": "._kwargs",
    # ... and a method's function never leaves its class body unguarded (keep = [f], f(other), v.fget)
    "class A:\n    def peek(self):\n        return self._kwargs\n    keep = [peek]": "peek",
    "class A:\n    def peek(self):\n        return self._kwargs\n    X = peek(threading.current_thread())": "peek",
    "class A:\n    @property\n    def peek(self):\n        return self._kwargs\n    X = peek.fget": "peek",
    "import contextlib\nclass A:\n    @contextlib.contextmanager\n    def peek(self):\n        yield self._kwargs\n"
    "    X = peek(threading.current_thread())": "peek",
    # __slots__ only as a class body's literal list of attribute names
    "class A:\n    __slots__ = ('__dict__',)": "'__dict__'",
    "class A:\n    __slots__ = tuple(dir(threading))": "__slots__",
    "__slots__ = ('x',)": "__slots__",
    "class A:\n    __slots__ = ('x',)\n    names = __slots__": "__slots__",
}

ALLOWED = [
    "class Counter:\n    _lock = threading.Lock()\n    def __init__(self):\n        super().__init__()\n"
    "        self._count = 0\n    def __enter__(self):\n        return self\n    def __exit__(self, *exc):\n"
    "        return False\n    def __repr__(self):\n        return f'Counter({self._count})'",
    "import collections\nfrom concurrent.futures import ThreadPoolExecutor\nimport queue as q\nx = q.Queue()",
    "def name_of(x):\n    return type(x).__name__",
    "print('{} and {:>4}'.format(1, 2))",
    "def f(source, target):\n    first, second = sorted([source, target], key=id)\n    with first.lock, second.lock:\n        pass",
    "with socket.create_connection(('127.0.0.1', 1), timeout=1) as s:\n    s.sendall(b'x')",
    "value = getattr(threading.current_thread(), 'name')",
    "KINDS = ('is_loopback', 'is_private')\ndef kind(address):\n    return [k for k in KINDS if getattr(address, k)]",
    "def has(obj, name):\n    return hasattr(obj, name) and getattr(obj, name, None) is not None",
    "total = 0\ndef add(n):\n    global total\n    total += n",
    "x = [i for i in range(3)]\n_ = x",
    "from datetime import datetime\nnow = datetime.now().strftime('%H')",
    "import collections\nP = collections.namedtuple('P', 'x y')\nq = P(1, 2)._replace(x=3)",
    "class Box:\n    def __init__(self):\n        self._items = []\n    def take(self):\n"
    "        def inner():\n            return self._items.pop()\n        return inner()",
    "def start(fn):\n    t = threading.Thread(target=fn)\n    t.daemon = True\n    t.start()\n    return t",
    "class W:\n    def __init__(self):\n        self.thread = threading.Thread(target=print)\n"
    "        self.thread.daemon = True",
    "class A:\n    @property\n    def v(self):\n        return self._v\n    @v.setter\n    def v(self, x):\n"
    "        self._v = x",
    "class A:\n    @classmethod\n    def make(cls):\n        cls._made = True\n        return cls()",
    "import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass P:\n    x: int = 0",
    "SENTINEL = object()\nclass A(object):\n    pass",
    "def describe(x):\n    return type(x) is int or type(x).__name__",
    "import select\np = select.poll()\ndef reg(sock):\n    p.register(sock.fileno(), select.POLLIN)",
    "import functools\ndef deco(f):\n    @functools.wraps(f)\n    def inner(*a):\n        return f(*a)\n    return inner",
    "status = 'open'\nreply = 'help: /quit leaves'",
    "import contextlib\nclass Bank:\n    @contextlib.contextmanager\n    def locked(self):\n        with self._lock:\n"
    "            yield self._balances",
    "from contextlib import contextmanager\nclass Bank:\n    @contextmanager\n    def locked(self):\n"
    "        yield self._balances",
    "import functools\nclass A:\n    @functools.cached_property\n    def total(self):\n        return self._n",
    "class Bank:\n    __slots__ = ('_balances', '_lock')\n    def __init__(self):\n        self._lock = threading.Lock()",
    "class A:\n    __slots__ = '_v'\n    @property\n    def v(self):\n        return self._v\n    @v.setter\n"
    "    def v(self, v):\n        self._v = v\n    @v.deleter\n    def v(self):\n        del self._v",
]


@pytest.mark.parametrize("source", sorted(REFUSED))
def test_a_construct_that_reaches_the_interpreter_is_refused_by_name(source):
    """Is each forbidden construct refused, with a message naming it and its line?"""
    found = check_source(source, "03-race-conditions-and-locks", bindings=MODULES)
    assert found, f"accepted: {source!r}"
    assert any(REFUSED[source] in v.construct for v in found), [str(v) for v in found]
    assert all(v.line >= 1 and v.why for v in found)


@pytest.mark.parametrize("source", ALLOWED)
def test_ordinary_solution_code_is_accepted(source):
    """Are classes with special methods, allowed imports, f-strings and literal getattr accepted?"""
    assert check_source(source, "03-race-conditions-and-locks", bindings=MODULES) == []


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_reference_solution_passes_the_policy(lesson):
    """Does every solution cell of every lesson pass the policy the students' cells face?"""
    _, nb = source_notebook(lesson)
    bindings = normalize.notebook_bindings(nb.cells)
    for cell in nb.cells:
        if is_solution(cell):
            assert check_source(cell.source, lesson, bindings=bindings) == [], cell.metadata


def test_the_allow_list_is_per_lesson():
    """May only lesson 01 import os and multiprocessing, and then only os's process ids?"""
    assert "os" in allowed_modules("01-processes-and-threads")
    assert "os" not in allowed_modules("03-race-conditions-and-locks")
    assert check_source("import os\npid = os.getpid()", "01-processes-and-threads") == []
    found = check_source("import os\nos.remove('x')", "01-processes-and-threads")
    assert [v.construct for v in found] == ["os.remove"]
    assert check_source("import multiprocessing", "06-networks")


def test_a_syntax_error_is_left_for_the_student_to_see():
    """Is a cell that does not parse passed on (it fails when it runs), not called a policy breach?"""
    assert check_source("def f(:\n    pass", "06-networks") == []


def test_a_class_another_solution_cell_rebinds_is_no_longer_the_cells_own():
    """May a method read its own class's private names (SafeCounter._lock) — but not when another
    solution cell rebinds that class's name to something else (then the name may be anything)?"""
    from autograder.policy import check_cells

    own = ("class SafeCounter:\n    _lock = threading.Lock()\n    def increment(self):\n"
           "        with SafeCounter._lock:\n            pass")
    alone = check_cells({"a": own}, "03-race-conditions-and-locks", bindings=MODULES)
    assert alone == {"a": []}
    rebound = check_cells({"a": own, "b": "SafeCounter = threading.Thread()"}, "03-race-conditions-and-locks",
                          bindings=MODULES)
    assert [v.construct for v in rebound["a"]] == ["._lock", "._lock"] or any(
        v.construct == "._lock" for v in rebound["a"]), rebound


def test_what_the_notebooks_own_cells_define_is_never_rebound_by_a_solution():
    """A course cell defines ``DaytimeError`` and a helper the tests call: is a solution that rebinds either
    (at its top level, or through ``global`` in a function) refused — while one that rebinds a course
    cell's plain variable, or a name only a test defines, is accepted (the tests keep their own)?"""
    course = ["class DaytimeError(Exception):\n    pass", "from course_lib import grading\ndef probe(x):\n    return x",
              "n = 3\nfor i in range(n):\n    pass"]
    tests = ["def verdict():\n    return True\ngrading.passed('t')"]
    bindings = notebook_bindings(course + tests, course=course)
    assert bindings.defined >= {"DaytimeError", "probe"} and not bindings.defined & {"n", "i", "verdict"}
    for source, construct in [("DaytimeError = OSError", "DaytimeError"), ("def probe(x):\n    return 1", "probe"),
                              ("def f():\n    global DaytimeError\n    DaytimeError = OSError", "global DaytimeError"),
                              ("from socket import socket as probe", "probe")]:
        found = check_source(source, "07-daytime-client-server", bindings=bindings)
        assert [v.construct for v in found] == [construct], (source, [str(v) for v in found])
        assert "notebook's own cells" in found[0].why
    for source in ["n = 10\nfor i in range(n):\n    pass", "from socket import socket\nimport threading", "def verdict():\n    return False",
                   "class Mine(DaytimeError):\n    pass", "def f():\n    error = DaytimeError('x')\n    return error"]:
        assert check_source(source, "07-daytime-client-server", bindings=bindings) == [], source
