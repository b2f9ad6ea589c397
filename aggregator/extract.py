"""Article pages -> :class:`Article`: the main text of a story's web page, via trafilatura.

Owns: decoding the page bytes (BOM, then the HTTP ``Content-Type`` charset, then
``<meta charset>`` / XML declaration, else UTF-8 with replacement characters, as the
WHATWG encoding-sniffing order has it) and running trafilatura tuned for
precision (no comments, no tables, no links or images), plus the "too little text to be
an article" cut-off.

Must not: fetch anything (trafilatura is given the page, never asked to download), touch
the store, or keep state between calls: it runs in worker processes.
"""

from __future__ import annotations

import codecs
import re

import trafilatura

from aggregator.errors import ExtractError
from aggregator.types import Article

__all__ = ["MIN_TEXT_CHARS", "decode_html", "extract_article"]

MIN_TEXT_CHARS = 200  # shorter extractions are teasers, paywalls or navigation

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([\w.:+-]+)"""  # <meta charset> and http-equiv
    rb"""|^\s*<\?xml[^>]+?encoding\s*=\s*["']([\w.:+-]+)""",
    re.IGNORECASE,
)
# WHATWG Encoding Standard: browsers read these labels as windows-1252, and pages rely
# on it (curly quotes in "iso-8859-1" pages).
_AS_WINDOWS_1252 = {"ascii", "iso8859-1", "cp1252"}
_BINARY_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b")
_MAX_REPLACEMENT_SHARE = 0.2
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:+-]+)""", re.IGNORECASE)


def extract_article(html: bytes, url: str, content_type: str | None = None) -> Article | None:
    """The article in ``html`` (the page at ``url``, served with ``content_type``), or
    None when there is not enough text to be one. Raises :class:`ExtractError` for input
    that cannot be read as text."""
    text = decode_html(html, url, content_type)
    try:
        doc = trafilatura.bare_extraction(
            text,
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
            with_metadata=True,
        )
    except Exception as e:  # a crash on one hostile page must cost only that page
        raise ExtractError(url, f"extraction failed: {type(e).__name__}: {e}") from e
    body = (getattr(doc, "text", None) or "").strip()
    if len(body) < MIN_TEXT_CHARS:
        return None
    return Article(
        url=url,
        text=body,
        title=_clean(getattr(doc, "title", None)),
        author=_clean(getattr(doc, "author", None)),
    )


def decode_html(html: bytes, url: str = "", content_type: str | None = None) -> str:
    """Decode a page: its BOM, else the charset of ``content_type`` (the HTTP header),
    else what the page declares; raise :class:`ExtractError` for binary data."""
    for bom, encoding in _BOMS:
        if html.startswith(bom):
            return html[len(bom) :].decode(encoding, "replace")
    head = html[:4096]
    if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
        raise ExtractError(url, "not text: binary content")
    header = _HEADER_CHARSET.search(content_type or "")
    sent = _encoding(header.group(1)) if header else None
    text = html.decode(sent or _declared_encoding(head), "replace")
    if text.count("\ufffd") > _MAX_REPLACEMENT_SHARE * len(text):
        raise ExtractError(url, "not text: undecodable bytes")
    return text


def _declared_encoding(head: bytes) -> str:
    match = _DECLARED.search(head)
    if match is None:
        return "utf-8"
    name = _encoding((match.group(1) or match.group(2)).decode("ascii"))
    if name is None:
        return "utf-8"
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a readable ASCII <meta> means it is not UTF-16 (WHATWG rule)
    return name


def _encoding(label: str) -> str | None:
    """Python's codec for a charset label, None when unknown (latin-1 and ASCII read as
    windows-1252, as browsers read them)."""
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return "cp1252" if name in _AS_WINDOWS_1252 else name


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None
