# expect: full
# why: tries IPv4Address then IPv6Address, and takes the first kind whose test holds from an ordered table
KINDS = (("unspecified", lambda a: a.is_unspecified), ("loopback", lambda a: a.is_loopback),
         ("link-local", lambda a: a.is_link_local), ("multicast", lambda a: a.is_multicast),
         ("private", lambda a: a.is_private), ("global", lambda a: a.is_global))


def classify_address(text):
    """Return (version, kind) for an IP address given as text; see the contract above."""
    if not isinstance(text, str):
        raise TypeError(f"expected the address as a str, got {type(text).__name__}")
    text = text.strip()
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither an IPv4 nor an IPv6 address") from None
    return address.version, next((kind for kind, holds in KINDS if holds(address)), "reserved")
