# expect: full
# why: one regular expression splits "[v6]:port", "host:port" and "host"; ipaddress checks the v6 part
import re


def parse_host_port(text, default_port=None):
    """Split "host:port" (or "[v6]:port", or "host") into (host, port)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    text = text.strip()
    match = re.fullmatch(r"\[(?P<v6>[^\]]*)\](?::(?P<v6port>.*))?|(?P<host>[^:]*)(?::(?P<port>[^:]*))?", text, re.S)
    if not text or match is None:
        raise ValueError(f"{text!r}: expected host:port, [v6]:port or host (a v6 address with a port needs brackets)")
    if match["v6"] is not None:
        host, port_text = match["v6"], match["v6port"]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: only an IPv6 address goes in brackets, not {host!r}") from None
    else:
        host, port_text = match["host"], match["port"]
    if not host:
        raise ValueError(f"{text!r}: no host before the port")
    if port_text is None:
        if default_port is None:
            raise ValueError(f"{text!r}: no port given (expected host:port)")
        port = default_port
    elif re.fullmatch(r"[0-9]+", port_text):
        port = int(port_text)
    else:
        raise ValueError(f"{text!r}: the port must be a number, got {port_text!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is outside 0-65535")
    return host, port
