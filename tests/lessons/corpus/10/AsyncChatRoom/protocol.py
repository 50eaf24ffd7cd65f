# expect: full
# why: asyncio.Protocol callbacks (data_received, connection_lost) on loop.create_server, run by asyncio.run in one thread of its own: no streams, no AsyncioServer
class AsyncChatRoom:
    """Lesson 08's chat room as asyncio Protocols: callbacks on one event loop, in one thread."""

    class _Member(asyncio.Protocol):
        """One connection: cuts what arrives into lines and hands them to the room."""

        def __init__(self, room):
            self.room, self.transport, self.nickname, self.pending = room, None, None, b""

        def connection_made(self, transport):
            self.transport = transport
            self.room._connections.add(self)

        def data_received(self, data):
            *lines, self.pending = (self.pending + data).split(b"\n")  # the last piece: no newline yet
            for raw in lines:
                if self.transport.is_closing():
                    return  # it left (/quit) or was dropped: the rest is not read
                self.room._line(self, raw.rstrip(b"\r").decode("utf-8", "replace"))
            if len(self.pending) > 1024:
                self.transport.abort()  # a line over 1024 bytes ends the session

        def connection_lost(self, exc):
            self.room._leave(self)

    def __init__(self, host="127.0.0.1", port=0):
        self._host, self._port = host, port
        self._members = {}         # member -> nickname; only the loop's thread touches it
        self._connections = set()  # every open member, named or not (loop's thread only)
        self._loop = self._stopping = self._thread = self._address = self._error = None
        self._ready = threading.Event()

    @property
    def address(self):
        return self._address

    def start(self):
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="protocol-room",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(5)
        if self._error is not None:
            raise self._error
        return self

    async def _main(self):
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            server = await self._loop.create_server(lambda: self._Member(self), self._host, self._port)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._address = server.sockets[0].getsockname()[:2]
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

    def _line(self, member, text):
        if member.nickname is None:
            member.nickname = text.strip() or "anonymous"
            others = list(self._members)
            self._members[member] = member.nickname
            self._send(member, f"* welcome {member.nickname}")
            for other in others:
                self._send(other, f"* {member.nickname} joined")
        elif text.strip().lower() in ("/quit", "bye"):
            member.transport.close()  # sends what is queued, then connection_lost: it leaves
        else:
            self.broadcast(f"{member.nickname}: {text}", exclude=member)

    def _leave(self, member):
        self._connections.discard(member)
        nickname = self._members.pop(member, None)
        if nickname is not None:
            self.broadcast(f"* {nickname} left", exclude=member)

    def broadcast(self, text, exclude=None):
        for member in list(self._members):
            if member is not exclude:
                self._send(member, text)

    def _send(self, member, text):
        """Queue a line; a member more than 1 MB behind is dropped instead of buffered for ever."""
        if member.transport.is_closing():
            return
        member.transport.write((text + "\n").encode("utf-8"))
        if member.transport.get_write_buffer_size() > 1_000_000:
            member.transport.abort()
