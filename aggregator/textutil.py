"""Small text helpers shared by several stages (HTML fragment -> plain text, whitespace).

Cheap to import (stdlib and nh3, a few milliseconds): the store and the CLI use it on query
paths, the parser and the worker jobs in hot loops.
"""

from __future__ import annotations

import re
from html import unescape

import nh3

# Dropped together with their content: code, styling, or fallback text that is not prose.
DROP_WITH_CONTENT = {
    "script", "style", "iframe", "object", "embed", "noembed", "noframes", "template", "svg",
    "math", "select", "textarea", "button",
}  # fmt: skip

_TEXT_ONLY = nh3.Cleaner(
    tags=set(), clean_content_tags=DROP_WITH_CONTENT, attributes={}, link_rel=None
)
_BLOCK_START = re.compile(
    r"<(?:br|hr|/?(?:p|div|li|dt|dd|h[1-6]|tr|blockquote|pre|table|ul|ol|dl|section|article"
    r"|header|footer|aside|figure|figcaption|address|details|summary))\b",
    re.IGNORECASE,
)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped (script/style with their content),
    entities decoded, one line per block element, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    # Source newlines are spaces in HTML; block boundaries become the line breaks.
    marked = _BLOCK_START.sub(r"\n\g<0>", " ".join(html.split()))
    text = unescape(_TEXT_ONLY.clean(marked))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def one_line(text: str, limit: int | None = None) -> str:
    s = " ".join(text.split())
    if limit is not None and len(s) > limit:
        return s[: max(0, limit - 1)].rstrip() + "…"
    return s
