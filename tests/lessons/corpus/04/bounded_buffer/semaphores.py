# expect: full
# why: the Little Book's bounded buffer: a semaphore of free slots, one of items, a lock around the deque
class BoundedBuffer:
    """A FIFO of at most `capacity` items whose put() waits while full and get() while empty."""

    def __init__(self, capacity):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self._items = collections.deque()
        self._lock = threading.Lock()                  # held while the deque changes
        self._slots = threading.Semaphore(capacity)    # released by get: a slot is free
        self._filled = threading.Semaphore(0)          # released by put: an item is there

    def put(self, item, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be a non-negative number")
        if not self._slots.acquire(timeout=timeout):
            raise queue.Full(f"buffer still full after {timeout} s")
        with self._lock:
            self._items.append(item)
        self._filled.release()

    def get(self, timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be a non-negative number")
        if not self._filled.acquire(timeout=timeout):
            raise queue.Empty(f"buffer still empty after {timeout} s")
        with self._lock:
            item = self._items.popleft()
        self._slots.release()
        return item

    def __len__(self):
        with self._lock:
            return len(self._items)
