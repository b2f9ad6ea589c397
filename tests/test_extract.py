"""extract_article on hand-written pages, plus decoding without HTTP headers, and the
refusal of text that does not mention its story (consent and paywall pages).

Each ``tests/data/pages/NAME.html`` with a ``NAME.expected.txt`` is a golden case. In the
expected file, ``+ text`` must appear in the extracted text, ``- text`` must not (site
boilerplate: navigation, comments, footers, tables), ``title:``/``author:`` give the
metadata; ``#`` starts a comment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from httpserver import LocalServer

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import ExtractError
from aggregator.extract import (
    MIN_TEXT_CHARS,
    NOT_THE_STORY,
    decode_html,
    extract_article,
    mentions_story,
)
from aggregator.types import StoryQuery

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


# --- text that does not belong to the story ---------------------------------------------------

CONSENT = (
    "Before you continue to our website we and our partners use cookies and data to deliver "
    "and maintain services, track outages and protect against spam, fraud and abuse, measure "
    "audience engagement and site statistics to understand how our services are used and "
    "enhance the quality of those services. If you choose to accept all, we will also use "
    "cookies and data to develop and improve new services, deliver and measure the "
    "effectiveness of ads, and show personalised content depending on your settings. If you "
    "choose to reject all, we will not use cookies for these additional purposes. "
    "Personalised content and ads can also include more relevant results, recommendations "
    "and tailored ads based on past activity from this browser. Select more options to see "
    "additional information, including details about managing your privacy settings."
)
CONSENT_PAGE = (
    "<html><head><title>Before you continue</title></head><body><div class='consent'>"
    f"<p>{CONSENT}</p></div></body></html>"
).encode()
PAYWALL = (
    "Subscribe to continue reading. You have reached your limit of free articles this month. "
    "Become a subscriber today for unlimited digital access to our award-winning journalism, "
    "exclusive newsletters, puzzles and the daily edition on any device. Already a "
    "subscriber? Log in to your account. Cancel anytime. Special offer: your first three "
    "months for just one dollar, then billed monthly. Terms and conditions apply."
)
DEMO = Path(__file__).parents[1] / "aggregator" / "demo"
NEWS_TITLE = "Registry finishes DNSSEC signing of all second-level zones"


@pytest.mark.parametrize(
    ("text", "title", "expected"),
    [
        pytest.param(CONSENT, "Registry raises .com prices by seven percent", False, id="consent"),
        pytest.param(CONSENT, "Certificate authority distrusted by browsers", False, id="1-of-4"),
        pytest.param(PAYWALL, "Phishing kit targets bank customers in Brazil", False, id="paywall"),
        pytest.param(
            CONSENT, "Online Age-Verification Laws Raise Privacy Alarm", False, id="1-of-6"
        ),
        pytest.param(
            "The registry raised its prices; pricing for .com rises 7%.",
            "Registry raises .com prices by seven percent",
            True,
            id="2-of-5-through-suffixes",
        ),
        pytest.param("Les registres européens", "Registres Européens", True, id="accents"),
        pytest.param("Companies merge.", "Two companies", True, id="y-ies"),
        pytest.param(CONSENT, "Episode 12", False, id="one-word-title-missing"),
        pytest.param(CONSENT, "Weekly privacy roundup", True, id="short-title-1-of-3"),
        pytest.param(CONSENT, "Q3 2026: 4.5%", True, id="no-content-words"),
        pytest.param(CONSENT, "Why that is so", True, id="only-stop-words"),
        pytest.param(CONSENT, "東京でドメイン登録が急増", True, id="spaceless-script"),
        pytest.param(
            "Крупнейший регистратор доменов объявил о повышении цен на регистрацию с марта.",
            "Регистратор повысил цены на домены",
            True,
            id="inflected-language-2-of-4-by-prefix",
        ),
        pytest.param(
            "Мы используем файлы cookie, чтобы улучшить работу сайта и показывать рекламу.",
            "Регистратор повысил цены на домены",
            False,
            id="inflected-language-notice",
        ),
    ],
)
def test_mentions_story(text: str, title: str, expected: bool) -> None:
    assert mentions_story(text, title) is expected


@pytest.mark.parametrize("page", GOLDEN, ids=lambda p: p.stem)
def test_golden_pages_mention_their_story(page: Path) -> None:
    (title,) = _expectations(page)["title"]
    assert extract_article(page.read_bytes(), "https://pages.example.org/x", title=title)


def test_demo_pages_mention_their_story() -> None:
    expected = json.loads((DEMO / "expected.json").read_text(encoding="utf-8"))
    for slug, story in expected.items():
        html = (DEMO / story["path"].lstrip("/")).read_bytes()
        url = f"https://pages.example.org/{slug}"
        article = extract_article(html, url, title=story["title"])
        assert article is not None, slug
        with pytest.raises(ExtractError, match="does not mention the story"):
            extract_article(CONSENT_PAGE, url, title=story["title"])


def test_a_consent_page_is_refused_with_the_title_and_read_without() -> None:
    url = "https://news.example.com/a"
    with pytest.raises(ExtractError) as raised:
        extract_article(CONSENT_PAGE, url, title=NEWS_TITLE)
    assert raised.value.url == url and raised.value.message == NOT_THE_STORY
    article = extract_article(CONSENT_PAGE, url)  # no story to compare with: not judged
    assert article is not None and "cookies" in article.text


def test_consent_pages_neither_replace_nor_cluster_stories(
    tmp_path: Path, server: LocalServer
) -> None:
    """Through the App: two feeds whose article pages are one consent notice, a third
    whose page is a real article. The notice is refused (the stories keep their feed text
    and say why, and stay two stories); the article is read."""
    titles = [
        "Registry raises .com prices by seven percent",
        "Ransomware gang hits hospital network in Ohio",
        NEWS_TITLE,
    ]
    pages = [CONSENT_PAGE, CONSENT_PAGE, (PAGES / "news_article.html").read_bytes()]
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        for i, (title, page) in enumerate(zip(titles, pages, strict=True)):
            link = server.route(f"/p{i}", body=page, content_type="text/html; charset=utf-8")
            feed = (
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>Site{i}</title>'
                f"<link>http://site{i}.example/</link><item><title>{title}</title>"
                f"<link>{link}</link><guid>g{i}</guid><description>Teaser {i}.</description>"
                "</item></channel></rss>"
            )
            app.add_feed(server.route(f"/f{i}", body=feed.encode()), discover=False)
        results = list(app.update_due(all_feeds=True))
        assert [(r.status, r.new) for r in results] == [("ok", 1)] * 3
        assert sum(r.extracted for r in results) == 1
        stories = {s.title: s for s in app.stories(StoryQuery(limit=None))}
    assert sorted(stories) == sorted(titles)  # all three shown: nothing clustered
    for title in titles[:2]:
        story = stories[title]
        assert story.extraction_status == "failed" and story.full_text is None
        assert story.extraction_error == NOT_THE_STORY
    article = stories[NEWS_TITLE]
    assert article.extraction_status == "ok" and article.extraction_error is None
    assert article.full_text and "signed with DNSSEC" in article.full_text
