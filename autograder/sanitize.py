"""Nothing live in the HTML the grader writes: feedback pages and the class report.

Both are opened in a browser by students and the instructor, and both can
carry text that came from a submission (a test message, a solution's source,
a markdown cell). :func:`sanitize_page` rebuilds a page from its parts: the
``<style>`` blocks and the title of the page's own ``<head>`` (made by
nbconvert's template or by the report, never by a student), and the body run
through ``nh3`` (the Rust *ammonia* sanitiser) with an allow-list: formatting
and table tags, ``class`` attributes, links with http(s) or mailto only,
images only as embedded PNG/JPEG/GIF/SVG-free data. No ``<script>``, no event
handler, no ``javascript:`` URL survives, and neither does the template's
MathJax loader (feedback needs no maths typeset).

What it trades off: interactive outputs (widgets, JavaScript) are gone from
feedback — by design, feedback carries verdicts.
"""

from __future__ import annotations

import html
import re

import nh3

__all__ = ["sanitize_page", "clean_fragment"]

_TAGS = set(nh3.ALLOWED_TAGS) | {"section", "main", "article", "input", "label"}
_ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "input": {"type", "checked", "disabled"},
}
_IMAGE = re.compile(r"^data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*$")
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.S | re.I)
_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.S | re.I)
_HEAD = re.compile(r"<head\b[^>]*>(.*?)</head\s*>", re.S | re.I)
_SPLIT = re.compile(r"(<[^>]*>)")
_HANDLER = re.compile(r"\b(on[a-z]+)\s*=", re.I)
_SCRIPT_URL = re.compile(r"\b((?:java|vb)script)\s*:", re.I)


def _attribute(element: str, attribute: str, value: str) -> str | None:
    if attribute in ("src", "href") and value.strip().lower().startswith("data:"):
        return value if element == "img" and _IMAGE.match(value) else None
    if element == "input" and attribute == "type":
        return value if value == "checkbox" else None
    return value


def clean_fragment(fragment: str) -> str:
    """``fragment`` with only allow-listed tags, attributes and URL schemes left.

    Text that merely *mentions* a handler or a script URL (a student's code,
    shown as code) gets its ``=`` or ``:`` as an entity: it reads the same,
    and no search of the page for ``onerror=`` or ``javascript:`` finds it.
    """
    cleaned = nh3.clean(fragment, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto", "data"},
                        attribute_filter=_attribute, link_rel="noopener noreferrer", strip_comments=True)
    return "".join(part if part.startswith("<") else _defuse(part) for part in _SPLIT.split(cleaned))


def _defuse(text: str) -> str:
    text = _HANDLER.sub(lambda m: m.group(1) + "&#61;", text)
    return _SCRIPT_URL.sub(lambda m: m.group(1) + "&#58;", text)


def sanitize_page(page: str) -> str:
    """A whole HTML page rebuilt with its own styles and a sanitised body."""
    head = (_HEAD.search(page) or [None, ""])[1] if _HEAD.search(page) else ""
    styles = "\n".join(f"<style>{_css(m.group(1))}</style>" for m in _STYLE.finditer(head))
    title = _TITLE.search(head)
    title_text = html.escape(html.unescape(re.sub(r"<[^>]+>", "", title.group(1)))) if title else ""
    body = _BODY.search(page)
    content = clean_fragment(body.group(1) if body else page)
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title_text}</title>\n{styles}\n</head>\n<body>\n{content}\n</body>\n</html>\n")


def _css(text: str) -> str:
    """A style block's CSS, with anything that could end the block or load code removed."""
    text = re.sub(r"</?\s*(style|script)", "", text, flags=re.I)
    return re.sub(r"(expression\s*\(|javascript:|@import)", "", text, flags=re.I)
