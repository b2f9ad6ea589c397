"""UTF-16 pages without a byte-order mark, told from their bytes and Content-Type: shared
by feed discovery (:mod:`aggregator.discover`) and article extraction
(:mod:`aggregator.extract`), which read such pages alike.

Must not: decode anything else (each reader has its own rules for BOMs, labels and
legacy encodings), import another stage, or do any I/O. Stdlib only.
"""

from __future__ import annotations

import re

__all__ = ["UTF16_MARKUP", "utf16_codec"]

#: UTF-16 without a byte-order mark: a "<" as its first character but whitespace (XML 1.0
#: Appendix F), little-endian (``<\x00``) or big-endian (``\x00<``).
UTF16_MARKUP = re.compile(rb"(?:[ \t\r\n]\x00)*<\x00|(?:\x00[ \t\r\n])*\x00<")
_HEADER_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_START = 4096


def utf16_codec(page: bytes, content_type: str | None) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` for a page without a byte-order mark (the
    caller reads one first) that starts with markup in UTF-16 (:data:`UTF16_MARKUP`), or
    whose Content-Type names UTF-16 and whose first bytes have NULs; None otherwise.

    The byte order is the label's (``utf-16le``, ``utf-16be``), else the NULs': the
    high bytes of ASCII markup come first in big-endian. ("utf-16" alone would be
    little-endian, as the WHATWG Encoding Standard reads the label, but a page's NULs
    are better evidence.) A UTF-16 page read as UTF-8 has a NUL between every two
    characters: discovery found no feed link in it, extraction refused it as binary."""
    start = page[:_START]
    header = _HEADER_CHARSET.search(content_type or "")
    label = header.group(1).lower().replace("_", "-") if header else ""
    if not (UTF16_MARKUP.match(start) or (label.startswith("utf-16") and b"\x00" in start)):
        return None
    if label in ("utf-16le", "utf-16-le", "utf-16be", "utf-16-be"):
        big = label.endswith("be")
    else:
        big = start[0::2].count(0) > start[1::2].count(0)
    return "utf-16-be" if big else "utf-16-le"
