# expect: full
# why: a LIFO queue.Queue of slots, None for one whose connection is not made yet: the queue does all the waiting, and a factory that raises puts its None back (waking a waiter)
import queue

class ConnectionPool:
    """At most `size` connections made by `factory`, each lent to one thread at a time."""

    def __init__(self, factory, size):
        if type(size) is not int or size < 1:
            raise ValueError(f"size must be an int >= 1, not {size!r}")
        self._factory = factory
        self._slots = queue.LifoQueue()   # idle connections on top of the slots not made yet (None)
        for _ in range(size):
            self._slots.put(None)

    def acquire(self, timeout=None):
        try:
            conn = self._slots.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no connection was free within {timeout} s") from None
        if conn is not None:
            return conn
        try:
            return self._factory()
        except BaseException:
            self._slots.put(None)         # the slot is free again
            raise

    def release(self, conn):
        self._slots.put(conn)
