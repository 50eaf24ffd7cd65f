# expect: loses
# why: the reference as it was: counts the slot and calls factory() under the lock, so a factory that raises loses the slot for good and a slow one holds up every release
class ConnectionPool:
    """At most `size` connections made by `factory`, each lent to one thread at a time."""

    def __init__(self, factory, size):
        if type(size) is not int or size < 1:
            raise ValueError(f"size must be an int >= 1, not {size!r}")
        self._factory = factory
        self._size = size
        self._idle = []                          # made, given back, not lent
        self._made = 0
        self._returned = threading.Condition()   # notified by release: a connection is idle

    def acquire(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._returned:
            while not self._idle and self._made >= self._size:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no connection was free within {timeout} s")
                self._returned.wait(remaining)
            if self._idle:
                return self._idle.pop()
            self._made += 1
            return self._factory()

    def release(self, conn):
        with self._returned:
            self._idle.append(conn)
            self._returned.notify()
