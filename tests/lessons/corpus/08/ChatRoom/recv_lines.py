# expect: full
# why: the client threads cut lines from recv chunks by hand (a generator) instead of conn.makefile().readline
class ChatRoom:
    """A chat room server: a thread per client; every line goes to all the *other* clients."""

    def __init__(self, host="127.0.0.1", port=0):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((host, port))
        self._listener.listen()
        # Guards the four attributes below. Held by the accept thread, the client
        # threads and stop() to read or change them, never while sending, reading
        # or joining, so a slow client cannot stall joins, leaves or the others.
        self._lock = threading.Lock()
        self._members = {}          # conn -> (nickname, its send lock): clients in the room
        self._connections = set()   # every open client socket, named or not
        self._threads = []          # client threads started; finished ones dropped at each accept
        self._stopping = False      # set by stop(); from then on nobody new gets in
        self._accepter = threading.Thread(target=self.accept_loop, name="room-accept", daemon=True)

    @property
    def address(self):
        """The (host, port) the room listens on."""
        return self._listener.getsockname()

    def start(self):
        """Start accepting clients in the background; return self."""
        self._accepter.start()
        return self

    def stop(self, timeout=2.0):
        """Stop accepting, disconnect every client, join every thread (within about timeout s)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping = True  # the accept loop checks it under this lock after each accept()
            connections = list(self._connections)
            threads = list(self._threads)  # complete: no thread is added once _stopping is set
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a waiting accept() on Linux
        except OSError:
            pass  # refused on some systems (ENOTCONN), or closed by an earlier stop()
        self._listener.close()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes that client's thread from readline() or sendall()
            except OSError:
                pass  # that client's thread has closed it already
        if self._accepter.ident is not None:  # start() was called
            threads.insert(0, self._accepter)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def accept_loop(self):
        """Runs in the accept thread: accept clients, start a thread per client, until stop()."""
        while True:
            try:
                conn, (peer_host, peer_port) = self._listener.accept()
            except OSError:
                return  # the listener was shut down by stop() (or failed: stop accepting)
            with self._lock:
                if self._stopping:
                    # Accepted while stop() ran: stop() has taken its lists already, so
                    # this client would escape both its shutdown and its joins.
                    conn.close()
                    return
                self._threads = [t for t in self._threads if t.is_alive()]  # forget finished ones
                self._connections.add(conn)
                thread = threading.Thread(target=self.serve_client, args=(conn,), daemon=True,
                                          name=f"room-client-{peer_host}:{peer_port}")
                self._threads.append(thread)
                # Started with the lock held, so stop() never gets a thread it cannot join yet.
                # start() only waits for the thread to begin, not for this lock: no deadlock.
                thread.start()

    def serve_client(self, conn):
        """Runs in one client's thread: nickname, welcome, its lines, and its leaving."""
        nickname = None
        try:
            for raw in self._lines(conn):
                text = raw.rstrip(b"\r").decode("utf-8", "replace")
                if nickname is None:
                    nickname = text.strip() or "anonymous"
                    send_lock = threading.Lock()
                    with self._lock:
                        others = [(c, lock) for c, (_, lock) in self._members.items()]
                        self._members[conn] = (nickname, send_lock)
                    self.send_line(conn, send_lock, f"* welcome {nickname}")
                    for other, lock in others:
                        self.send_line(other, lock, f"* {nickname} joined")
                elif text.strip().lower() in ("/quit", "bye"):
                    return
                else:
                    self.broadcast(f"{nickname}: {text}", exclude=conn)
        except OSError:
            pass
        finally:
            with self._lock:
                self._members.pop(conn, None)
                self._connections.discard(conn)
            if nickname is not None:
                self.broadcast(f"* {nickname} left", exclude=conn)
            conn.close()

    @staticmethod
    def _lines(conn, longest=1024):
        """Yield each whole line (without its b"\\n") cut from recv chunks; stop at the end or a line too long."""
        pending = b""
        while True:
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if len(line) > longest:
                    return
                yield line
            if len(pending) > longest:
                return
            chunk = conn.recv(4096)
            if not chunk:
                return
            pending += chunk

    def broadcast(self, text, exclude=None):
        """Send text as one line to every member except the socket exclude."""
        with self._lock:  # copy the members under the lock, then send without it
            targets = [(c, lock) for c, (_, lock) in self._members.items() if c is not exclude]
        for conn, send_lock in targets:
            self.send_line(conn, send_lock, text)

    # Add helper methods of your own below if you like.
    @staticmethod
    def send_line(conn, send_lock, text):
        """Send one line; a client that is gone is ignored (its own thread cleans up)."""
        with send_lock:  # two broadcasts never interleave inside one line
            try:
                conn.sendall((text + "\n").encode("utf-8"))
            except OSError:
                pass