# expect: full
# why: select.poll instead of selectors, registering file descriptors as poll is normally used: poller.register(sock.fileno(), select.POLLIN)
import select

class SelectorDaytimeServer:
    """An RFC 867 day/time server that serves every client from ONE thread, with select.poll."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self._listener = None
        self._address = None
        self._thread = None
        self._wake_r = self._wake_w = None  # stop() writes a byte to wake poll()
        self._stopping = threading.Event()  # set by stop(); the loop checks it whenever poll() returns

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(1024)
        self._listener.setblocking(False)
        self._address = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="poll-daytime", daemon=True)
        self._thread.start()
        return self

    @property
    def address(self):
        return self._address

    def _serve(self):
        poller = select.poll()
        poller.register(self._listener.fileno(), select.POLLIN)
        poller.register(self._wake_r.fileno(), select.POLLIN)
        clients = {}  # fd -> (socket, the bytes of its reply not sent yet)
        try:
            while not self._stopping.is_set():
                for fd, _ in poller.poll():
                    if fd == self._listener.fileno():
                        self._accept(poller, clients)
                    elif fd in clients:
                        self._send_some(poller, clients, fd)
        finally:
            for conn, _ in clients.values():
                conn.close()
            self._listener.close()

    def _accept(self, poller, clients):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # BlockingIOError: no one is waiting any more
                return
            conn.setblocking(False)
            try:
                reply = (self.now() + "\r\n").encode("ascii")
            except Exception:
                conn.close()
                continue
            clients[conn.fileno()] = (conn, memoryview(reply))
            poller.register(conn.fileno(), select.POLLOUT)

    def _send_some(self, poller, clients, fd):
        conn, rest = clients[fd]
        try:
            sent = conn.send(rest)
        except BlockingIOError:
            return
        except OSError:
            sent = len(rest)  # the client left
        rest = rest[sent:]
        if rest:
            clients[fd] = (conn, rest)
            return
        poller.unregister(fd)
        del clients[fd]
        conn.close()

    def stop(self, timeout=2.0):
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout)
        self._wake_r.close()
        self._wake_w.close()
