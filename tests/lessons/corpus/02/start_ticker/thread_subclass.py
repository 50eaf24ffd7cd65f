# expect: full
# why: a Thread subclass whose run() waits on the stop Event between ticks
class _Ticker(threading.Thread):
    def __init__(self, interval, tick, stop):
        super().__init__(name="ticker", daemon=True)
        self._interval, self._tick, self._stop_event = interval, tick, stop

    def run(self):
        while True:
            if self._stop_event.wait(self._interval):
                return
            self._tick()


def start_ticker(interval, tick, stop):
    """Start and return a daemon thread named "ticker" that calls tick() every
    `interval` s until the Event `stop` is set."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    ticker = _Ticker(interval, tick, stop)
    ticker.start()
    return ticker
