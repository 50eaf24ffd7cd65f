"""Does lesson 06 autograde its fixture submissions with the expected scores, in bounded time?

Points: the prediction predict_loopback_correct 1; classify_address ipv4 1,
ipv6 1, invalid 1; parse_host_port ipv4_and_names 1, ipv6 1, bad_input 2;
port_accepts open_and_refused 1, timeout 1, closes_sockets 1 — 11 in all.

Every fixture keeps the source's prediction (the right count) unless it replaces
``predict_loopback``: a wrong count loses that point, the right count written as
an expression the cell computes keeps it.
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "06-networks"
MAX_SCORE = 11.0

# Checks is_private first: 127.0.0.1 and ::1 come out "private".
PRIVATE_FIRST = '''
def classify_address(text):
    if not isinstance(text, str):
        raise TypeError("expected a str")
    address = ipaddress.ip_address(text.strip())
    for kind, test in [("private", address.is_private), ("unspecified", address.is_unspecified),
                       ("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast), ("global", address.is_global)]:
        if test:
            return address.version, kind
    return address.version, "reserved"
'''

# Splits at the last colon: no default port, no brackets, "::1:80" accepted.
RSPLIT_PARSER = '''
def parse_host_port(text, default_port=None):
    host, port = text.rsplit(":", 1)
    return host, int(port)
'''

# Never returns: loops forever on every call.
LOOPING_PORT_CHECK = '''
def port_accepts(host, port, timeout=1.0):
    while True:
        pass
'''

# One connect with the timeout per attempt, no range check, no getaddrinfo loop.
SIMPLE_PORT_CHECK = '''
def port_accepts(host, port, timeout=1.0):
    sock = socket.socket()
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()
'''

# The visible "check that it does" cell calls port_accepts directly: the
# per-cell limit interrupts it, and the row says so.
# The looping port checks are abandoned by the tests' time limits and spin on in the kernel:
# the cells after them still finish in time (graded) unless a busy machine starves one past
# the cell limit (timeout). The score is the same either way.
STATUS = {"looping_port_check": {"graded", "timeout"}}

# A timeout per address, not in total: create_connection tries every address with the whole
# timeout each.
PER_ADDRESS_TIMEOUT = '''
def port_accepts(host, port, timeout=1.0):
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError("port must be an int in 0-65535")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
'''

# Forgets to strip the text; and trusts int() with the port.
NO_STRIP_CLASSIFIER = '''
def classify_address(text):
    if not isinstance(text, str):
        raise TypeError("expected a str")
    address = ipaddress.ip_address(text)
    checks = [("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
              ("link-local", address.is_link_local), ("multicast", address.is_multicast),
              ("private", address.is_private), ("global", address.is_global)]
    for kind, holds in checks:
        if holds:
            return address.version, kind
    return address.version, "reserved"
'''

INT_PORT_PARSER = '''
def parse_host_port(text, default_port=None):
    if not isinstance(text, str):
        raise TypeError("expected a str")
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif text.count(":") == 1:
        host, port = text.split(":")
        port = int(port)
    elif ":" in text:
        raise ValueError("IPv6 needs brackets, like [::1]:80")
    else:
        host, port = text, default_port
    if not host or port is None or not 0 <= port <= 65535:
        raise ValueError(f"bad address {text!r}")
    return host, port
'''

# Predictions of how many of 127.0.0.1, 127.42.0.7, ::1 and 192.168.1.1 are loopback.
WRONG_PREDICTION = "LOOPBACK_COUNT = 2  # only 127.0.0.1 and ::1"
LIST_PREDICTION = 'LOOPBACK_COUNT = ["127.0.0.1", "127.42.0.7", "::1"]'
COMPUTED_PREDICTION = '''
LOOPBACK_COUNT = sum(ipaddress.ip_address(a).is_loopback
                     for a in ["127.0.0.1", "127.42.0.7", "::1", "192.168.1.1"])
'''

FIXTURES = {
    # student: (replacements, expected score)
    "correct": ({}, MAX_SCORE),
    # no strip: classify_address_ipv4's hidden '  8.8.4.4\\n' (1); int() takes '８０' and '+80': bad_input (2)
    # and a timeout per address: port_accepts_timeout's hidden two-silent-addresses check (1)
    "no_strip_int_port": ({"classify_address": NO_STRIP_CLASSIFIER, "parse_host_port": INT_PORT_PARSER,
                           "port_accepts": PER_ADDRESS_TIMEOUT}, MAX_SCORE - 4),
    # classify: invalid 1; parse: 0; port_accepts: 3; the prediction 1
    "private_first_and_rsplit": ({"classify_address": PRIVATE_FIRST,
                                  "parse_host_port": RSPLIT_PARSER}, 5.0),
    # port_accepts: open_and_refused loses its hidden range check (OverflowError); timeout and
    # closes_sockets pass
    "simple_port_check": ({"port_accepts": SIMPLE_PORT_CHECK}, MAX_SCORE - 1),
    # every port_accepts cell times out (call_with_timeout), the rest passes
    "looping_port_check": ({"port_accepts": LOOPING_PORT_CHECK}, MAX_SCORE - 3),
    # an int, but the wrong count (127.42.0.7 left out): the prediction's point only
    "wrong_prediction": ({"predict_loopback": WRONG_PREDICTION}, MAX_SCORE - 1),
    # the list of addresses instead of their count: refused by the visible type check
    "prediction_as_a_list": ({"predict_loopback": LIST_PREDICTION}, MAX_SCORE - 1),
    # the right count, computed by the cell instead of written as a literal: full marks
    "prediction_computed": ({"predict_loopback": COMPUTED_PREDICTION}, MAX_SCORE),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--no-sandbox", "--jobs", "2", max_score=MAX_SCORE, within=180, statuses=STATUS, timeout=400)
