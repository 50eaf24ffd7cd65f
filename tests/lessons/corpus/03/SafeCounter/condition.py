# expect: full
# why: a Condition used as the lock (its with-block acquires the lock it wraps), an RLock inside
class SafeCounter:
    """A counter that many threads may increment at once without losing updates."""

    def __init__(self):
        self._count = 0
        self._guard = threading.Condition(threading.RLock())

    def increment(self, amount=1):
        """Add amount to the count."""
        with self._guard:
            self._count = self._count + amount

    def value(self):
        """The current count."""
        with self._guard:
            return self._count
