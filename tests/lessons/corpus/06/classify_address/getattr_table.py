# expect: full
# why: tries IPv4Address then IPv6Address, then the first kind whose property (looked up by name with getattr) holds
KINDS = (("is_unspecified", "unspecified"), ("is_loopback", "loopback"), ("is_link_local", "link-local"),
         ("is_multicast", "multicast"), ("is_private", "private"), ("is_global", "global"))


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
    kind = next((kind for attribute, kind in KINDS if getattr(address, attribute)), "reserved")
    return address.version, kind
