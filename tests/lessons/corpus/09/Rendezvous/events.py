# expect: full
# why: two Events, each set by its side on arrival and waited for by the other
class Rendezvous:
    """One meeting of two threads: each waits in arrive_* until the other has arrived."""

    def __init__(self):
        self._a_here = threading.Event()   # set by arrive_a, waited for by arrive_b
        self._b_here = threading.Event()   # set by arrive_b, waited for by arrive_a

    def arrive_a(self):
        self._a_here.set()
        self._b_here.wait()

    def arrive_b(self):
        self._b_here.set()
        self._a_here.wait()
