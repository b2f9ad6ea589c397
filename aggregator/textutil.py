"""Small text helpers shared by several stages (HTML fragment -> plain text, whitespace).

Stdlib only and cheap to import: the store and the CLI use it on query paths.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "tr",
        "table",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "dt",
        "dd",
        "hr",
    ]
)
_SKIP = frozenset({"script", "style", "template", "noscript", "head"})
_WS = re.compile(r"[ \t\r\f\v\u00a0]+")
_NL = re.compile(r"\s*\n\s*")
_TAG_HINT = re.compile(r"<[A-Za-z/!]")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, block elements
    become line breaks, runs of white space collapsed."""
    if not fragment:
        return ""
    if not _TAG_HINT.search(fragment):
        text = html.unescape(fragment)
    else:
        p = _TextParser()
        p.feed(fragment)
        p.close()
        text = "".join(p.parts)
    text = _WS.sub(" ", text)
    return _NL.sub("\n", text).strip()


def one_line(text: str, limit: int | None = None) -> str:
    s = " ".join(text.split())
    if limit is not None and len(s) > limit:
        return s[: max(0, limit - 1)].rstrip() + "…"
    return s
