"""Does a text quote hidden test code, plainly or disguised?

Test messages are the only kernel-made text a student gets back, and some
carry what student code returned (``expected 4, got '...'``). A message that
quotes a line of a hidden test is withheld. The check sees through the
disguises measured against this grader: zero-width and other invisible
characters between the letters, HTML entities, backslash escapes, the text
reversed or ROT13'd, and base64, hex or zlib encodings of it; comparison
ignores spaces. A disguise not on this list gets past it: the README says so.

Trade-off: lines shorter than ``MIN_LINE`` characters (``pass``, ``else:``)
are too common to count as a quote.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import zlib

__all__ = ["hidden_lines", "quotes_hidden", "WITHHELD"]

WITHHELD = "[withheld from feedback: it quoted hidden test code]"
MIN_LINE = 12
BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")


def hidden_lines(cells) -> set[str]:
    """The squeezed lines between the hidden-test markers of the given cells, less the lines that a
    cell other than a solution cell shows outside them (a visible line of a test that its hidden block
    repeats is no secret: withholding a message that quotes it would only hide what the notebook shows).

    ``cells`` are notebook cells, or bare sources (taken as test cells). A solution cell shows nothing:
    in the source notebook it holds the reference, which students never see, and in a graded notebook
    it holds the student's code, which must not be able to declare a hidden line shown.
    """
    hidden: set[str] = set()
    shown: set[str] = set()
    for cell in cells:
        source = cell if isinstance(cell, str) else cell.get("source", "")
        solution = not isinstance(cell, str) and bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))
        inside = False
        for line in source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            else:
                squeezed = _squeeze(line)
                if len(squeezed) < MIN_LINE:
                    continue
                if inside:
                    hidden.add(squeezed)
                elif not solution:
                    shown.add(squeezed)
    return hidden - shown


def _squeeze(text: str) -> str:
    """Drop invisible characters and all white space; undo HTML entities."""
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc", "Mn"))


def _decodings(text: str):
    """The text itself, reversed, ROT13'd, then whatever its base64 / hex / zlib-looking tokens decode to."""
    import codecs

    yield text
    yield text[::-1]
    yield codecs.decode(text, "rot13")
    if "\\" in text:  # \xNN, \uNNNN escapes
        yield codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape", "replace")
    for token in _TOKEN.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(token + "=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            yield from _raw_texts(raw)
    for token in _HEX.findall(text):
        yield from _raw_texts(bytes.fromhex(token))


def _raw_texts(raw: bytes):
    for candidate in (raw, _inflate(raw)):
        if candidate:
            yield candidate.decode("utf-8", "ignore")


def _inflate(raw: bytes) -> bytes | None:
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS, zlib.MAX_WBITS | 16):
        try:
            return zlib.decompressobj(wbits).decompress(raw, 1 << 20)
        except zlib.error:
            continue
    return None


def quotes_hidden(text: str, lines: set[str]) -> bool:
    """Does ``text`` contain one of ``lines`` (from :func:`hidden_lines`), plainly or encoded?"""
    if not lines or not text:
        return False
    for candidate in _decodings(text):
        squeezed = _squeeze(candidate)
        if any(line in squeezed for line in lines):
            return True
    return False
