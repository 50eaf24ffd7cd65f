# expect: full
# why: socketserver.ThreadingTCPServer accepts and starts a thread per client; stop() shuts it down and joins the client threads it kept, within the timeout in total
import socketserver

class ThreadedDaytimeServer:
    """An RFC 867 day/time server that serves each client in its own thread."""

    def __init__(self, host="127.0.0.1", port=0, now=servers.rfc867_time):
        self.host, self.port, self.now = host, port, now
        self.server = None
        self.serving = None
        self.workers = []                 # client threads; the accept thread adds, stop() reads
        self.workers_lock = threading.Lock()

    def start(self):
        owner = self

        class Reply(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    self.request.settimeout(5)
                    self.request.sendall(owner.now().encode("ascii") + b"\r\n")
                except Exception:
                    pass  # the client left, or now() failed

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            block_on_close = False
            address_family = socket.AF_INET6 if ":" in owner.host else socket.AF_INET

            def process_request(self, request, client_address):
                worker = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                          name="daytime-client", daemon=True)
                with owner.workers_lock:
                    owner.workers = [t for t in owner.workers if t.is_alive()] + [worker]
                worker.start()

        self.server = Server((self.host, self.port), Reply)
        self.serving = threading.Thread(target=self.server.serve_forever, args=(0.1,), name="daytime-accept",
                                        daemon=True)
        self.serving.start()
        return self

    @property
    def address(self):
        return self.server.server_address[:2]

    def stop(self, timeout=2.0):
        deadline = time.monotonic() + timeout
        self.server.shutdown()            # returns once serve_forever has ended (it polls every 0.1 s)
        self.server.server_close()
        self.serving.join(max(0.0, deadline - time.monotonic()))
        with self.workers_lock:
            workers = list(self.workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
