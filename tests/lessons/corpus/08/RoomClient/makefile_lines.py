# expect: full
# why: the receive thread reads lines from sock.makefile("rb") instead of cutting recv chunks by hand
class RoomClient:
    """A chat client: a receive thread fills self.lines (a queue.Queue); None marks the end."""

    def __init__(self, address, nickname, timeout=5.0):
        self.lines = queue.Queue()
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.settimeout(None)
        self._send_lock = threading.Lock()
        self._say(nickname)
        self._receiver = threading.Thread(target=self.receive_loop, daemon=True, name=f"receive-{nickname}")
        self._receiver.start()

    def _say(self, text):
        with self._send_lock:
            self.sock.sendall(text.encode("utf-8") + b"\n")

    def send(self, text):
        """Send text as one line."""
        self._say(text)

    def close(self, timeout=2.0):
        """Say /quit, stop the receive thread and close the socket, within about timeout s."""
        try:
            self._say("/quit")
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._receiver.join(timeout)
        self.sock.close()

    def receive_loop(self):
        """Runs in the receive thread: cut the stream into lines, put them in self.lines, then None."""
        try:
            with self.sock.makefile("rb") as stream:
                for raw in stream:
                    if not raw.endswith(b"\n"):
                        break  # a last line cut off by the close: not a whole line
                    self.lines.put(raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace"))
        except OSError:
            pass
        finally:
            self.lines.put(None)
