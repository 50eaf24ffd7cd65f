# expect: full
# why: a writer holds a gate Lock from arrival to release, so later readers wait at it; a Condition counts readers
class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that come after it."""

    def __init__(self):
        self._gate = threading.Lock()          # held by a writer while it waits and writes
        self._room = threading.Condition()     # notified when the last reader leaves
        self._readers = 0

    def acquire_read(self):
        with self._gate:                       # a waiting writer holds it: wait behind the writer
            with self._room:
                self._readers += 1

    def release_read(self):
        with self._room:
            self._readers -= 1
            if self._readers == 0:
                self._room.notify_all()

    def acquire_write(self):
        self._gate.acquire()
        with self._room:
            self._room.wait_for(lambda: self._readers == 0)

    def release_write(self):
        self._gate.release()
