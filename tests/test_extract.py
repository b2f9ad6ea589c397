"""extract_article on hand-written pages, plus decoding without HTTP headers.

Each ``tests/data/pages/NAME.html`` with a ``NAME.expected.txt`` is a golden case. In the
expected file, ``+ text`` must appear in the extracted text, ``- text`` must not (site
boilerplate: navigation, comments, footers, tables), ``title:``/``author:`` give the
metadata; ``#`` starts a comment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.errors import ExtractError
from aggregator.extract import MIN_TEXT_CHARS, decode_html, extract_article

PAGES = Path(__file__).parent / "data" / "pages"
GOLDEN = sorted(
    PAGES / (p.name.removesuffix(".expected.txt") + ".html") for p in PAGES.glob("*.expected.txt")
)


def _expectations(page: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"+": [], "-": [], "title": [], "author": []}
    expected = page.with_name(page.stem + ".expected.txt")
    for line in expected.read_text(encoding="utf-8").splitlines():
        if line.startswith(("+ ", "- ")):
            found[line[0]].append(line[2:])
        elif line.startswith(("title:", "author:")):
            name, _, value = line.partition(":")
            found[name].append(value.strip())
    return found


@pytest.mark.parametrize("page", GOLDEN, ids=lambda p: p.stem)
def test_golden_page(page: Path) -> None:
    article = extract_article(page.read_bytes(), f"https://pages.example.org/{page.name}")
    assert article is not None
    expect = _expectations(page)
    assert expect["+"], "a golden page needs text that must appear"
    for snippet in expect["+"]:
        assert snippet in article.text, snippet
    for snippet in expect["-"]:
        assert snippet not in article.text, snippet
    if expect["title"]:
        assert article.title == expect["title"][0]
    if expect["author"]:
        assert article.author == expect["author"][0]
    assert article.url == f"https://pages.example.org/{page.name}"
    assert len(article.text) >= MIN_TEXT_CHARS


def test_golden_pages_exist() -> None:
    assert len(GOLDEN) >= 3


@pytest.mark.parametrize(
    "html",
    [
        pytest.param((PAGES / "near_empty.html").read_bytes(), id="near-empty"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<html><body><nav><a href='/'>Home</a></nav></body></html>", id="nav-only"),
        pytest.param(b"<p>Too short to be an article.</p>", id="short"),
    ],
)
def test_nothing_usable_is_none(html: bytes) -> None:
    assert extract_article(html, "https://pages.example.org/x") is None


@pytest.mark.parametrize(
    "html",
    [
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", id="pdf"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", id="png"),
        pytest.param(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", id="gzip"),
        pytest.param(b"<html>\x00\x00\x00<body>", id="nul-bytes"),
        pytest.param(bytes(range(128, 256)) * 20, id="undecodable"),
    ],
)
def test_undecodable_input_raises(html: bytes) -> None:
    with pytest.raises(ExtractError) as raised:
        extract_article(html, "https://pages.example.org/x")
    assert raised.value.url == "https://pages.example.org/x"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        pytest.param("<p>café “x”</p>".encode(), "<p>café “x”</p>", id="utf8-default"),
        pytest.param(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>", "<p>café</p>", id="utf8-bom"),
        pytest.param("<p>café</p>".encode("utf-16"), "<p>café</p>", id="utf16-bom"),
        pytest.param(
            b'<meta charset="windows-1252"><p>\x93q\x94</p>',
            '<meta charset="windows-1252"><p>“q”</p>',
            id="meta-charset",
        ),
        pytest.param(
            b'<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">\x80',
            '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">€',
            id="latin1-read-as-1252",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="iso-8859-15"?><p>\xa4</p>',
            '<?xml version="1.0" encoding="iso-8859-15"?><p>€</p>',
            id="xml-declaration",
        ),
        pytest.param(
            b'<meta charset="utf-16"><p>plain</p>',
            '<meta charset="utf-16"><p>plain</p>',
            id="meta-utf16-means-utf8",
        ),
        pytest.param(
            b'<meta charset="no-such-charset"><p>caf\xc3\xa9</p>',
            '<meta charset="no-such-charset"><p>café</p>',
            id="unknown-label",
        ),
        pytest.param(b"<p>bad \xff byte</p>", "<p>bad \ufffd byte</p>", id="replacement"),
    ],
)
def test_decode_html(html: bytes, text: str) -> None:
    assert decode_html(html) == text


@pytest.mark.parametrize(
    ("content_type", "html", "text"),
    [
        pytest.param(
            "text/html; charset=windows-1252", b"<p>caf\xe9</p>", "<p>café</p>", id="header"
        ),
        pytest.param(
            'text/html; Charset="ISO-8859-1"',
            b"<p>\x93q\x94</p>",
            "<p>\u201cq\u201d</p>",
            id="header-latin1-read-as-1252",
        ),
        pytest.param(
            "text/html; charset=utf-8",
            b'<meta charset="windows-1252"><p>caf\xc3\xa9</p>',
            '<meta charset="windows-1252"><p>café</p>',
            id="header-over-meta",
        ),
        pytest.param(
            "text/html; charset=bogus",
            b'<meta charset="windows-1252"><p>caf\xe9</p>',
            '<meta charset="windows-1252"><p>café</p>',
            id="unknown-header-label-falls-back-to-meta",
        ),
        pytest.param(
            "text/html; charset=windows-1252",
            b"\xef\xbb\xbf<p>caf\xc3\xa9</p>",
            "<p>café</p>",
            id="bom-over-header",
        ),
        pytest.param("text/html", b"<p>caf\xc3\xa9</p>", "<p>café</p>", id="no-charset"),
    ],
)
def test_decode_html_with_the_http_charset(content_type: str, html: bytes, text: str) -> None:
    assert decode_html(html, content_type=content_type) == text
