"""Is a guarded class's ``self`` always its own instance, however its methods are reached?"""

import asyncio
import contextlib
import threading

import pytest

from course_lib.judge.ownership import guard_class


def make_bank():
    class Bank:
        def __init__(self):
            self._lock = threading.RLock()
            self._balances = {"ann": 5}

        @contextlib.contextmanager
        def locked(self):
            with self._lock:
                yield self._balances

        @contextlib.asynccontextmanager
        async def locked_async(self):
            yield self._balances

    return guard_class(Bank)


def test_a_context_manager_method_still_works_on_its_own_instance():
    """Does a guarded @contextlib.contextmanager method (and an async one) still lock and yield?"""
    bank = make_bank()()
    with bank.locked() as balances:
        assert balances == {"ann": 5}

    async def use():
        async with bank.locked_async() as balances:
            return balances

    assert asyncio.run(use()) == {"ann": 5}


@pytest.mark.parametrize("method", ["locked", "locked_async"])
def test_a_context_managers_func_refuses_a_foreign_self(method):
    """Is the function a context-manager method's manager keeps in ``.func`` (a public attribute) the
    checked one, so ``bank.locked().func(a_thread)`` cannot read a library object's private names?"""
    bank = make_bank()()
    with pytest.raises(TypeError, match="needs a Bank"):
        getattr(bank, method)().func(threading.Thread())
    with pytest.raises(TypeError, match="needs a Bank"):
        getattr(type(bank), method)(threading.Thread())


def test_a_cell_class_beside_a_library_class_it_does_not_extend_is_refused():
    """Is ``class B(Mine, threading.Thread)`` refused, where Mine's methods (vetted against Mine's own
    bases only) would read a Thread's private state through B, while library-only and own-only
    mixes, and subclasses of a guarded library subclass, are made as usual?"""
    from course_lib.judge.ownership import refuse_mixed_bases

    class Mine:
        def peek(self):
            return self._kwargs

    guard_class(Mine)

    class Spy(Mine, threading.Thread):
        pass

    with pytest.raises(TypeError, match="does not extend"):
        refuse_mixed_bases(Spy)

    class Worker(threading.Thread):
        pass

    guard_class(Worker)

    class Named(Worker):
        pass

    class Both(Named, Mine):  # Mine again beside Thread, through Worker
        pass

    with pytest.raises(TypeError, match="does not extend"):
        refuse_mixed_bases(Both)
    import socketserver

    class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
        pass

    class Refused(ValueError):
        pass

    guard_class(Refused)

    class Worse(Refused):
        pass

    for fine in (Named, Server, Worse):
        refuse_mixed_bases(fine)
