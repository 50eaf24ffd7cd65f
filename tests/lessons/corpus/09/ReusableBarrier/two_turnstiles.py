# expect: full
# why: the two-turnstile semaphore barrier (Downey, The Little Book of Semaphores, 3.7)
class ReusableBarrier:
    """A barrier for n threads, usable for many rounds."""

    def __init__(self, n):
        if type(n) is not int or n < 1:
            raise ValueError(f"the number of parties must be an int >= 1, not {n!r}")
        self.n = n
        self._count = 0
        self._mutex = threading.Lock()
        self._entry = threading.Semaphore(0)   # opened n times by the last to arrive
        self._exit = threading.Semaphore(0)    # opened n times by the last to leave

    def wait(self):
        with self._mutex:
            self._count += 1
            if self._count == self.n:
                self._entry.release(self.n)
        self._entry.acquire()
        with self._mutex:
            self._count -= 1
            if self._count == 0:
                self._exit.release(self.n)
        self._exit.acquire()
