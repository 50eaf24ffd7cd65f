# expect: full
# why: select.select over the listener, a wake-up socket and the clients with bytes still to send: no register() at all
import select

class SelectorDaytimeServer:
    """An RFC 867 day/time server that serves every client from ONE thread, with select.select."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self._listener = None
        self._address = None
        self._thread = None
        self._wake_r = self._wake_w = None  # stop() writes a byte to wake select()
        self._stopping = threading.Event()  # set by stop(); the loop checks it whenever select() returns

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(1024)
        self._listener.setblocking(False)
        self._address = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="select-daytime", daemon=True)
        self._thread.start()
        return self

    @property
    def address(self):
        return self._address

    def _serve(self):
        clients = {}  # socket -> the bytes of its reply not sent yet
        try:
            while not self._stopping.is_set():
                readable, writable, _ = select.select([self._listener, self._wake_r], list(clients), [])
                if self._listener in readable:
                    self._accept(clients)
                for conn in writable:
                    self._send_some(clients, conn)
        finally:
            for conn in clients:
                conn.close()
            self._listener.close()

    def _accept(self, clients):
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
            clients[conn] = memoryview(reply)

    def _send_some(self, clients, conn):
        rest = clients[conn]
        try:
            sent = conn.send(rest)
        except BlockingIOError:
            return
        except OSError:
            sent = len(rest)  # the client left
        rest = rest[sent:]
        if rest:
            clients[conn] = rest
            return
        del clients[conn]
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
