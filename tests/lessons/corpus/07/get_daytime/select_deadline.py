# expect: full
# why: select.select waits for each chunk with what is left of one deadline; recv never blocks long
import select


def get_daytime(host, port, timeout=2.0):
    """Return the day/time server's reply without its line end; raise DaytimeError on failure."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise DaytimeError(f"{host}:{port} refused the connection: is the server running?") from None
    except OSError as exc:  # socket.timeout is an OSError too
        raise DaytimeError(f"could not connect to {host}:{port}: {exc}") from None
    chunks = []
    with sock:
        while True:
            remaining = deadline - time.monotonic()
            readable = select.select([sock], [], [], remaining)[0] if remaining > 0 else []
            if not readable:
                raise DaytimeError(f"no complete reply within {timeout} s")
            try:
                chunk = sock.recv(1024)
            except OSError as exc:
                raise DaytimeError(f"the connection failed: {exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            if sum(map(len, chunks)) > 1000:
                raise DaytimeError("the reply is longer than 1000 bytes: not a day/time line")
    reply = b"".join(chunks)
    try:
        text = reply.decode("ascii")
    except UnicodeDecodeError:
        raise DaytimeError(f"the reply is not ASCII text: {reply[:60]!r}") from None
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
