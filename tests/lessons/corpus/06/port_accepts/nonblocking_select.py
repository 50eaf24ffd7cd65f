# expect: full
# why: a non-blocking connect_ex and select.select for writability, under one deadline for the call
def port_accepts(host, port, timeout=1.0):
    """True if (host, port) accepts a TCP connection within timeout seconds in total."""
    import errno
    import select
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0-65535, got {port!r}")
    deadline = time.monotonic() + timeout
    try:
        candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    for family, type_, proto, _, address in candidates:
        with socket.socket(family, type_, proto) as sock:
            sock.setblocking(False)
            error = sock.connect_ex(address)
            if error == 0:
                return True
            if error not in (errno.EINPROGRESS, errno.EWOULDBLOCK):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _, writable, _ = select.select([], [sock], [], remaining)
            if writable and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                return True
            if time.monotonic() >= deadline:
                return False
    return False
