# expect: full
# why: asyncio.Protocol callbacks (data_received, connection_lost) on loop.create_server, run by an asyncio.Runner in one thread of its own: no streams, no AsyncioServer
class AsyncChatRoom:
    """Lesson 08's chat room as asyncio Protocols: callbacks on one event loop, in one thread."""

    class Member(asyncio.Protocol):
        """One connection: cuts what arrives into lines and hands them to the room."""

        def __init__(self, room):
            self.room, self.transport, self.pending = room, None, b""

        def connection_made(self, transport):
            self.transport = transport
            self.room.arrived(self)

        def data_received(self, data):
            *lines, self.pending = (self.pending + data).split(b"\n")  # the last piece: no newline yet
            for raw in lines:
                if self.transport.is_closing():
                    return  # it left (/quit) or was dropped: the rest is not read
                self.room.received(self, raw.rstrip(b"\r").decode("utf-8", "replace"))
            if len(self.pending) > 1024:
                self.transport.abort()  # a line over 1024 bytes ends the session

        def connection_lost(self, exc):
            self.room.gone(self)

    def __init__(self, host="127.0.0.1", port=0):
        self._host, self._port = host, port
        self._members = {}         # member -> nickname; only the loop's thread touches it
        self._connections = set()  # every open member, named or not (the loop's thread only)
        self._loop = self._stopping = self._thread = self._address = self._error = None
        self._ready = threading.Event()

    @property
    def address(self):
        return self._address

    def start(self):
        self._thread = threading.Thread(target=self._run, name="protocol-room", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        if self._error is not None:
            raise self._error
        return self

    def _run(self):
        with asyncio.Runner() as runner:
            runner.run(self._main(runner.get_loop()))

    async def _main(self, loop):
        self._stopping = asyncio.Event()
        try:
            server = await loop.create_server(lambda: self.Member(self), self._host, self._port)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._address = server.sockets[0].getsockname()[:2]
        self._loop = loop
        self._ready.set()
        async with server:  # closes the listener on the way out
            await self._stopping.wait()
        for member in list(self._connections):
            member.transport.abort()  # connection_lost is called soon: each one leaves
        await asyncio.sleep(0)

    def stop(self, timeout=2.0):
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass  # the loop is closed: stopped already
        if self._thread is not None:
            self._thread.join(timeout)

    def arrived(self, member):
        self._connections.add(member)

    def received(self, member, text):
        nickname = self._members.get(member)
        if nickname is None:
            nickname = text.strip() or "anonymous"
            others = list(self._members)
            self._members[member] = nickname
            self.send_line(member, f"* welcome {nickname}")
            for other in others:
                self.send_line(other, f"* {nickname} joined")
        elif text.strip().lower() in ("/quit", "bye"):
            member.transport.close()  # sends what is queued, then connection_lost: it leaves
        else:
            self.broadcast(f"{nickname}: {text}", exclude=member)

    def gone(self, member):
        self._connections.discard(member)
        nickname = self._members.pop(member, None)
        if nickname is not None:
            self.broadcast(f"* {nickname} left", exclude=member)

    def broadcast(self, text, exclude=None):
        for member in list(self._members):
            if member is not exclude:
                self.send_line(member, text)

    def send_line(self, member, text):
        """Queue a line; a member more than 1 MB behind is dropped instead of buffered for ever."""
        if member.transport.is_closing():
            return
        member.transport.write((text + "\n").encode("utf-8"))
        if member.transport.get_write_buffer_size() > 1_000_000:
            member.transport.abort()
