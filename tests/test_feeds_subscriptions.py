"""Subscription management as a user meets it: feeds.yaml validation, OPML from other
readers (folders, attribute spellings, encodings, hostile DTDs), OPML export and its
round trip, `feeds add` discovery on a real local server, and duplicates spelled
differently."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import run

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.discover import discover_feeds, find_feed, known_feed
from aggregator.errors import ConfigError
from aggregator.feedlist import load_feeds, parse_feeds_yaml, parse_opml, read_opml, to_opml
from aggregator.fetch import Fetcher, FetchOptions
from aggregator.types import FeedSource, FetchResult

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
HTML = "text/html; charset=utf-8"

# --------------------------------------------------------------------------- feeds.yaml


def test_a_misspelt_top_level_key_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(ConfigError, match=r"unknown top-level key.*feed"):
        parse_feeds_yaml("feed:\n  - url: https://a.example/f\n")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://", "has no host"),
        ("https://a.example/f x", "spaces"),
        ("https://a.example:99999/f", "bad port"),
        ("a.example/feed", r"add https://"),
        ("gopher://a.example/f", "only http"),
        ("feed:ftp://a.example/f", "only http"),
        ("https://ann:secret@/f", "has no host"),
    ],
)
def test_urls_that_cannot_be_fetched_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_feeds_yaml(f"feeds:\n  - url: '{url}'\n")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("90", 90), ("1h", 60), ("'30m'", 30), ("'45'", 45), ("1.5h", 90), ("1d", 1440)],
)
def test_interval_takes_minutes_or_a_span(value: str, minutes: float) -> None:
    (src,) = parse_feeds_yaml(f"feeds:\n  - url: https://a.example/f\n    interval: {value}\n")
    assert src.interval == timedelta(minutes=minutes)


@pytest.mark.parametrize("value", [".inf", ".nan", "0", "-5", "soon", "true", "1e300"])
def test_bad_intervals_are_one_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match="feed #1: 'interval'"):
        parse_feeds_yaml(f"feeds:\n  - url: https://a.example/f\n    interval: {value}\n")


def test_a_typo_in_a_field_name_suggests_the_field() -> None:
    with pytest.raises(ConfigError, match=r"unknown field\(s\) intervall \(did you mean interval"):
        parse_feeds_yaml("feeds:\n  - url: https://a.example/f\n    intervall: 30\n")


@pytest.mark.parametrize(
    "other",
    [
        "https://A.Example/f",
        "http://a.example/f",
        "https://a.example/f/",
        "https://a.example:443/f",
    ],
)
def test_the_same_feed_spelled_twice_is_an_error(other: str) -> None:
    with pytest.raises(ConfigError, match=r"feed #2: .* listed twice, first as feed #1"):
        parse_feeds_yaml(f"feeds:\n  - https://a.example/f\n  - {other}\n")
    # a different path, query or case of the path is another feed
    assert len(parse_feeds_yaml("- https://a.example/f\n- https://a.example/F?x=1\n")) == 2


@pytest.mark.parametrize(
    ("first", "other"),
    [
        ("https://bücher.example/f", "https://xn--bcher-kva.example/f"),
        ("https://xn--bcher-kva.example/f", "https://BÜCHER.example./f/"),
        ("https://faß.de/f", "https://xn--fa-hia.de/f"),  # IDNA 2008, as httpx resolves
    ],
)
def test_an_internationalised_host_is_one_feed_in_either_spelling(first: str, other: str) -> None:
    """Its Unicode and its ASCII (punycode) spelling name one host: two feeds were made."""
    with pytest.raises(ConfigError, match=r"feed #2: .* listed twice, first as feed #1"):
        parse_feeds_yaml(f"feeds:\n  - {first}\n  - {other}\n")
    # faß.de is not fass.de (IDNA 2003 mapped ß to ss)
    assert len(parse_feeds_yaml("- https://faß.de/f\n- https://fass.de/f\n")) == 2


def test_the_file_kind_is_read_from_its_content(tmp_path: Path) -> None:
    yaml_as_xml = tmp_path / "feeds.xml"
    yaml_as_xml.write_text("feeds:\n  - url: https://a.example/f\n")
    assert [s.url for s in load_feeds(yaml_as_xml)] == ["https://a.example/f"]
    opml_as_yaml = tmp_path / "feeds.yaml"
    opml_as_yaml.write_text('<opml><body><outline xmlUrl="https://b.example/f"/></body></opml>')
    assert [s.url for s in load_feeds(opml_as_yaml)] == ["https://b.example/f"]
    empty = tmp_path / "subs.opml"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match="empty"):
        load_feeds(empty)
    empty_yaml = tmp_path / "empty.yaml"
    empty_yaml.write_text("")
    assert load_feeds(empty_yaml) == []


# --------------------------------------------------------------------------- OPML import

FEEDLY = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Ann subscriptions in feedly Cloud</title></head>
  <body>
    <outline text="DNS" title="DNS">
      <outline type="rss" text="CircleID" title="CircleID" xmlUrl="https://circleid.com/rss"
        htmlUrl="https://circleid.com"/>
      <outline type="rss" text="R&amp;D &lt;Labs&gt;" XMLURL="https://labs.example/feed/"/>
    </outline>
    <outline text="Security">
      <outline text="Krebs" type="rss" url="https://krebsonsecurity.com/feed/"/>
      <outline text="CircleID again" type="rss" xmlUrl="https://CircleID.com/rss/"/>
      <outline text="Nested"><outline type="rss" text="https://deep.example/f"
        xmlUrl="https://deep.example/f" category="/Malware,/Threats/Botnets"/></outline>
    </outline>
    <outline type="link" text="A web page" url="https://example.org/"/>
    <outline text="bad" xmlUrl="javascript:alert(1)"/>
    <outline text="no host" xmlUrl="https:///feed"/>
  </body>
</opml>
"""


def test_opml_from_other_readers() -> None:
    listing = read_opml(FEEDLY.encode())
    assert [(s.url, s.name, s.topics) for s in listing.sources] == [
        ("https://circleid.com/rss", "CircleID", ("DNS", "Security")),
        ("https://labs.example/feed/", "R&D <Labs>", ("DNS",)),
        ("https://krebsonsecurity.com/feed/", "Krebs", ("Security",)),
        ("https://deep.example/f", None, ("Security", "Nested", "Malware", "Threats", "Botnets")),
    ]
    assert len(listing.skipped) == 3
    assert "listed twice" in listing.skipped[0]
    assert listing.skipped[1].startswith("bad: only http")
    assert "has no host" in listing.skipped[2]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_opml_in_any_declared_encoding(tmp_path: Path, encoding: str) -> None:
    text = FEEDLY.replace('encoding="UTF-8"', f'encoding="{encoding.removesuffix("-sig")}"')
    text = text.replace('CircleID" title', 'Café CircleID" title')
    path = tmp_path / "subscriptions"  # no extension: the content decides
    path.write_bytes(text.encode(encoding))
    assert load_feeds(path)[0].url == "https://circleid.com/rss"


def test_a_billion_laughs_file_is_a_quick_clear_error() -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE opml [{entities}]><opml><body>'
    bomb += '<outline text="&l9;" xmlUrl="https://a.example/f"/></body></opml>'
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"not valid OPML.*amplification"):
        parse_opml(bomb)
    assert time.monotonic() - started < 5
    external = '<!DOCTYPE opml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    with pytest.raises(ConfigError, match="not valid OPML"):
        parse_opml(
            external + '<opml><body><outline text="&e;" xmlUrl="https://a/f"/></body></opml>'
        )


def test_deeply_nested_outlines_and_big_files() -> None:
    deep = "<outline text='f'>" * 5000 + "<outline xmlUrl='https://a.example/f'/>"
    deep += "</outline>" * 5000
    (src,) = parse_opml(f"<opml><body>{deep}</body></opml>")
    assert len(src.topics) == 1  # the folders' names, each once
    many = "".join(f"<outline xmlUrl='https://a.example/{i}'/>" for i in range(20000))
    assert len(parse_opml(f"<opml><body>{many}</body></opml>")) == 20000


# --------------------------------------------------------------------------- OPML export


def test_export_reads_back_the_same(tmp_path: Path) -> None:
    sources = [
        FeedSource(url="https://ann:pw@private.example/f", name='A & B <"x">'),
        FeedSource(url="https://b.example/f", name="Bell\x07 \x0bTitle\U0001f600"),
        FeedSource(url="https://c.example/f", topics=("DNS", "DNS Security")),
        FeedSource(url="https://d.example/f", name="D", topics=("DNS",)),
    ]
    text = to_opml(sources, sites={"https://c.example/f": "https://c.example/"})
    assert 'htmlUrl="https://c.example/"' in text
    path = tmp_path / "out.opml"
    path.write_text(text, encoding="utf-8")
    back = {s.url: s for s in load_feeds(path)}
    assert back["https://ann:pw@private.example/f"].name == 'A & B <"x">'
    assert back["https://b.example/f"].name == "Bell Title\U0001f600"
    assert back["https://c.example/f"].topics == ("DNS", "DNS Security")
    assert back["https://c.example/f"].name is None
    assert back["https://d.example/f"].topics == ("DNS",)
    assert text.count('text="DNS"') == 1  # one folder per topic


@pytest.mark.parametrize(
    "topics",
    [
        ("Tech", "AI/ML"),
        ("Registries, registrars", "DNS"),
        ("DNS", "Names, numbers", "TCP/IP"),
        ("A/B", "C/D"),
        ("Tech/AI",),
    ],
    ids=repr,
)
def test_export_keeps_topics_opml_categories_cannot_hold(
    tmp_path: Path, topics: tuple[str, ...]
) -> None:
    """OPML's ``category`` is comma-separated slash paths: a topic with ``/`` or ``,``
    other than the folder's was lost from export to import (README: the same topics
    back). Our ``aggregator:topics`` keeps them; other readers still see the folder."""
    path = tmp_path / "out.opml"
    path.write_text(to_opml([FeedSource(url="https://a.example/f", topics=topics)]))
    (back,) = load_feeds(path)
    assert back.topics == topics
    # Without our attribute (another reader's re-export) the folder is still there.
    plain = re.sub(r' aggregator:topics="[^"]*"', "", path.read_text())
    assert read_opml(plain).sources[0].topics[0] == topics[0]


def test_a_bad_topics_attribute_skips_its_feed_with_the_reason() -> None:
    bad = (
        '<opml xmlns:aggregator="urn:aggregator:opml"><body>'
        '<outline type="rss" xmlUrl="https://a.example/f" aggregator:topics="DNS"/>'
        '<outline type="rss" xmlUrl="https://b.example/f" aggregator:topics=\'["DNS"]\'/>'
        "</body></opml>"
    )
    listing = read_opml(bad)
    assert [(s.url, s.topics) for s in listing.sources] == [("https://b.example/f", ("DNS",))]
    assert len(listing.skipped) == 1 and "aggregator:topics" in listing.skipped[0]


# --------------------------------------------------------------------------- discovery


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(
            b'<link rel="alternate" type="application/rss+xml" title="Blog &raquo; Comments Feed"'
            b' href="/comments/feed/">'
            b'<link rel="alternate" type="application/rss+xml" title="Blog &raquo; Feed"'
            b' href="/feed/">',
            ["https://example.com/feed/", "https://example.com/comments/feed/"],
            id="comments-listed-first",
        ),
        pytest.param(
            b'<link rel="alternate" type="application/rss+xml" title="Post Comments Feed"'
            b' href="/2026/post/feed/">'
            b'<link rel="alternate feed" type="application/atom+xml" href="/?a=1&amp;b=2">',
            ["https://example.com/?a=1&b=2", "https://example.com/2026/post/feed/"],
            id="post-comments-and-entities",
        ),
    ],
)
def test_the_main_feed_comes_before_comment_feeds(html: bytes, expected: list[str]) -> None:
    assert discover_feeds(html, "https://example.com/blog/") == expected


_DE = '<link rel="alternate" type="application/rss+xml" hreflang="de" href="/de/feed/">'
_EN = '<link rel="alternate" type="application/rss+xml" hreflang="en-US" href="/en/feed/">'
_PLAIN = '<link rel="alternate" type="application/rss+xml" href="/feed/">'
_ANY = '<link rel="alternate" type="application/rss+xml" hreflang="x-default" href="/all/">'


def _langs(lang: str | None, *links: str) -> bytes:
    tag = "<html>" if lang is None else f'<html lang="{lang}">'
    return f"<!doctype html>{tag}<head>{''.join(links)}</head><body>x</body></html>".encode()


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # a translation's feed listed first was the one subscribed to
        pytest.param(_langs(None, _DE, _PLAIN), ["/feed/", "/de/feed/"], id="no-lang"),
        pytest.param(_langs("en", _DE, _PLAIN), ["/feed/", "/de/feed/"], id="page-en"),
        pytest.param(_langs("en-GB", _DE, _EN), ["/en/feed/", "/de/feed/"], id="same-language"),
        pytest.param(_langs("DE-at", _EN, _DE), ["/de/feed/", "/en/feed/"], id="subtag-case"),
        pytest.param(_langs("fr", _DE, _ANY), ["/all/", "/de/feed/"], id="x-default"),
        # every one a translation, none the page's: document order
        pytest.param(_langs("fr", _DE, _EN), ["/de/feed/", "/en/feed/"], id="none-matches"),
        pytest.param(
            _langs(
                "en",
                _DE,
                '<link rel="alternate" type="application/rss+xml" title="Comments Feed"'
                ' href="/comments/feed/">',
                _PLAIN,
            ),
            ["/feed/", "/de/feed/", "/comments/feed/"],
            id="comments-last",
        ),
    ],
)
def test_the_page_language_feed_comes_before_translations(html: bytes, expected: list[str]) -> None:
    """A page announcing its feed and its translations' (``hreflang``): the feed in the
    page's language, or without ``hreflang``, comes first, whatever their order."""
    assert discover_feeds(html, "https://example.com/") == [
        f"https://example.com{p}" for p in expected
    ]


def test_find_feed_takes_the_page_language_feed(server: LocalServer) -> None:
    url = server.route("/", body=_langs("en", _DE, _PLAIN), content_type=HTML)
    found = find_feed(url, fetcher_for(server))
    assert found.url == server.url("/feed/") and found.found_from == url


def fetcher_for(server: LocalServer):  # type: ignore[no-untyped-def]
    def fetch_page(url: str) -> FetchResult:
        async def go() -> FetchResult:
            opts = FetchOptions(allowed_networks=("127.0.0.0/8",), timeout=5.0)
            async with Fetcher(opts) as fetcher:
                return await fetcher.fetch_page(url)

        return asyncio.run(go())

    return fetch_page


def page(*links: str) -> bytes:
    return (
        "<!doctype html><html><head>" + "".join(links) + "</head><body>x</body></html>"
    ).encode()


def test_find_feed_prefers_the_main_feed(server: LocalServer) -> None:
    url = server.route(
        "/blog/",
        body=page(
            '<link rel="alternate" type="application/rss+xml" title="B » Comments Feed" '
            'href="/blog/comments/feed/">',
            '<link rel="alternate" type="application/rss+xml" title="B » Feed" href="feed/">',
        ),
        content_type=HTML,
    )
    found = find_feed(url, fetcher_for(server))
    assert found.url == server.url("/blog/feed/") and found.found_from == url


def test_find_feed_probes_usual_paths_when_the_page_links_none(server: LocalServer) -> None:
    url = server.route("/site/", body=page(), content_type=HTML)
    server.route("/site/feed", status=302, headers={"Location": "/site/"}, content_type=None)
    server.route("/site/rss", body=b"<html><body>soft 404</body></html>", content_type=HTML)
    server.route("/site/feed.xml", body=RSS, content_type="text/html")  # mislabelled
    found = find_feed(url, fetcher_for(server))
    assert found.url == server.url("/site/feed.xml")
    assert [r.path for r in server.requests][-1] == "/site/feed.xml"


def test_probing_stops_when_the_site_is_unhappy(server: LocalServer) -> None:
    url = server.route("/busy/", body=page(), content_type=HTML)
    server.route("/busy/feed", status=503)
    with pytest.raises(ConfigError, match="links to no feed"):
        find_feed(url, fetcher_for(server))
    assert [r.path for r in server.requests] == ["/busy/", "/busy/feed"]


def test_only_a_comment_feed_is_taken_when_nothing_else_is_found(server: LocalServer) -> None:
    url = server.route(
        "/x/post/",
        body=page(
            '<link rel="alternate" type="application/rss+xml" title="Post Comments Feed" '
            'href="/x/post/feed/">'
        ),
        content_type=HTML,
    )
    found = find_feed(url, fetcher_for(server))
    assert found.url == server.url("/x/post/feed/")
    assert len(server.requests) <= 1 + 8  # the page, then at most eight guesses


def test_a_feed_is_recognised_by_content_and_its_redirect_noted(server: LocalServer) -> None:
    feed = server.route("/new.xml", body=RSS, content_type="text/html")
    old = server.redirect("/old.xml", feed, status=301)
    found = find_feed(old, fetcher_for(server))
    assert found.url == old and found.found_from is None
    assert feed in found.seen_as


def test_known_feed_finds_the_same_feed_spelled_differently(tmp_path: Path) -> None:
    s = Settings.from_env({}, data_dir=tmp_path, extract=False)
    with make_app(s) as app:
        app.store.add_feed(FeedSource(url="https://Blog.example/feed/"), app.now())
        feeds = app.feeds()
    for spelled in ("http://blog.example/feed", "https://blog.example:443/feed/#x"):
        assert known_feed([spelled], feeds) is not None
    assert known_feed(["https://blog.example/feed/comments"], feeds) is None
    with make_app(s) as app:
        app.store.add_feed(FeedSource(url="https://bücher.example/feed"), app.now())
        feeds = app.feeds()
    assert known_feed(["https://xn--bcher-kva.example/feed/"], feeds) is not None


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    # a feeds file with no feeds: a file named by AGGREGATOR_FEEDS must exist
    (tmp_path / "none.yaml").write_text("feeds: []\n", encoding="utf-8")
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "none.yaml"))
    return tmp_path


def test_import_reports_and_keeps_settings_opml_cannot_carry(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yaml_file = env / "mine.yaml"
    yaml_file.write_text(
        "feeds:\n  - url: https://circleid.com/rss\n    interval: 2h\n    enabled: false\n"
    )
    assert run(capsys, "feeds", "import", str(yaml_file))[1].startswith("1 added")
    opml = env / "feedly.opml"
    opml.write_text(FEEDLY)
    code, out, err = run(capsys, "feeds", "import", str(opml))
    assert code == 0
    assert out.strip() == "3 added, 1 updated, 0 unchanged, 3 skipped"
    assert err.count("skipped") == 3 and "javascript" in err
    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    rows = {r["url"]: r for r in json.loads(out)}
    assert len(rows) == 4  # https://CircleID.com/rss/ was the same feed
    assert rows["https://circleid.com/rss"]["enabled"] is False
    s = Settings.from_env({}, data_dir=env / "data")
    with make_app(s) as app:
        (circleid,) = [f for f in app.feeds() if "circleid" in f.url]
    assert circleid.interval == timedelta(hours=2) and circleid.topics == ("DNS", "Security")
    # export and import again: nothing changes
    code, exported, _ = run(capsys, "feeds", "export")
    (env / "back.opml").write_text(exported)
    code, out, _ = run(capsys, "feeds", "import", str(env / "back.opml"))
    assert out.strip() == "0 added, 0 updated, 4 unchanged, 0 skipped"


def test_remove_and_enable_by_the_url_feeds_list_shows(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = Settings.from_env({}, data_dir=env / "data")
    with make_app(s) as app:
        app.store.add_feed(FeedSource(url="https://ann:hunter2@p.example/f"), app.now())
        app.store.add_feed(FeedSource(url="https://q.example/f/"), app.now())
        ids = [f.id for f in app.feeds()]
    code, out, err = run(capsys, "feeds", "enable", "https://ann:***@p.example/f")
    assert code == 0, err
    code, out, err = run(capsys, "feeds", "remove", "https://ann:***@p.example/f")
    assert code == 0 and "hunter2" not in out, err
    code, out, err = run(capsys, "feeds", "remove", str(ids[1]))
    assert code == 0 and "q.example" in out, err
    assert json.loads(run(capsys, "feeds", "list", "--format", "json")[1]) == []


def test_feeds_add_through_the_cli(
    env: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`feeds add` runs find_feed and known_feed: the main feed of a page that lists its
    comment feed first, the usual paths for a page that links none, a respelled URL
    already present, and a URL with no host."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    server.route("/blog/feed/", body=RSS, content_type="application/rss+xml")
    blog = server.route(
        "/blog/",
        body=page(
            '<link rel="alternate" type="application/rss+xml" title="B » Comments Feed" '
            'href="/blog/comments/feed/">',
            '<link rel="alternate" type="application/rss+xml" title="B » Feed" href="feed/">',
        ),
        content_type=HTML,
    )
    code, out, err = run(capsys, "feeds", "add", blog)
    assert code == 0, err
    assert out.startswith(f"added: {server.url('/blog/feed/')} (found on {blog})")

    server.route("/plain/", body=page(), content_type=HTML)
    server.route("/plain/index.xml", body=RSS, content_type="application/xml")
    code, out, err = run(capsys, "feeds", "add", server.url("/plain/"))
    assert code == 0 and out.startswith(f"added: {server.url('/plain/index.xml')}"), err

    respelled = server.url("/blog/feed").replace("127.0.0.1", "127.0.0.1.")
    code, out, err = run(capsys, "feeds", "add", "--no-discover", respelled)
    assert code == 0 and out.startswith("already present:"), err

    code, out, err = run(capsys, "feeds", "add", "https://")
    assert code == 2 and "has no host" in err
    listed = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert sorted(f["url"] for f in listed) == [
        server.url("/blog/feed/"),
        server.url("/plain/index.xml"),
    ]


def test_feeds_add_refuses_what_is_neither_a_feed_nor_a_page(server: LocalServer) -> None:
    """A JSON API or a PDF was subscribed and then failed at every poll."""
    api = server.route("/api/v1/items", body=b'{"items": [1, 2]}', content_type="application/json")
    pdf = server.route("/report.pdf", body=b"%PDF-1.7\n...", content_type="application/pdf")
    for url, kind in ((api, "application/json"), (pdf, "application/pdf")):
        with pytest.raises(ConfigError, match=rf"neither a feed nor a web page \({kind}\)"):
            find_feed(url, fetcher_for(server))
    # feeds that are feeds still are, whatever they are labelled
    late = b'{"title": "T", "items": [' + b'{"id": "x"},' * 400 + b'{"id": "y"}],'
    late += b' "version": "https://jsonfeed.org/version/1.1"}'
    utf16 = '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel/></rss>'
    # PHP's json_encode escapes "/" unless told not to (Bandcamp's feeds): it was refused
    escaped = rb'{"version":"https:\/\/jsonfeed.org\/version\/1","title":"T","items":[]}'
    # PHP generators declare HTML's entities in a DOCTYPE's internal subset, whose first
    # ">" was taken for the DOCTYPE's end: refused as neither a feed nor a page
    latin1 = b'<!ENTITY % HTMLlat1 PUBLIC "-//W3C//ENTITIES Latin 1 for XHTML//EN" "x.ent">'
    rss = RSS.partition(b"?>")[2]
    subset = b"<?xml version='1.0'?>\n<!DOCTYPE rss [" + latin1 + b" %HTMLlat1;]>\n" + rss
    netscape = b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd">'
    for path, body, ctype in (
        ("/late.json", late, "application/json"),
        ("/escaped.json", escaped, "application/json"),
        ("/subset.rss", subset, "application/rss+xml"),
        ("/subset.php", subset, "text/html"),
        ("/netscape.php", netscape + rss, "text/html; charset=utf-8"),
        ("/utf16.xml", "\ufeff".encode("utf-16-le") + utf16.encode("utf-16-le"), "text/xml"),
        ("/feed.rss", RSS, "application/octet-stream"),
        # a JSON Feed without "version" (the parser reads it, with a warning), labelled one
        ("/unversioned.json", b'{"title": "T", "items": []}', "application/feed+json"),
    ):
        url = server.route(path, body=body, content_type=ctype)
        assert find_feed(url, fetcher_for(server)).url == url


RSS1 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>T</title></channel>
</rdf:RDF>"""
FOAF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:foaf="http://xmlns.com/foaf/0.1/"><foaf:Person><foaf:name>A</foaf:name></foaf:Person>
</rdf:RDF>"""


def test_an_rss_1_0_feed_linked_as_rdf_is_found_and_other_rdf_is_not(
    server: LocalServer,
) -> None:
    """RSS 1.0 is announced as application/rdf+xml, a type other RDF (FOAF, DOAP) has
    too: such a link is taken once its document proves to be RSS 1.0."""
    server.route("/foaf.rdf", body=FOAF, content_type="application/rdf+xml")
    server.route("/news.rdf", body=RSS1, content_type="application/rdf+xml")
    rdf = '<link rel="alternate" type="application/rdf+xml" href="{}">'
    url = server.route(
        "/a/", body=page(rdf.format("/foaf.rdf"), rdf.format("/news.rdf")), content_type=HTML
    )
    found = find_feed(url, fetcher_for(server))
    assert found.url == server.url("/news.rdf")
    only_foaf = server.route("/b/", body=page(rdf.format("/foaf.rdf")), content_type=HTML)
    with pytest.raises(ConfigError, match="links to no feed"):
        find_feed(only_foaf, fetcher_for(server))
    # a page's RSS 2.0 link still comes before an RDF one, unfetched
    both = '<link rel="alternate" type="application/rss+xml" href="/c/feed">'
    url = server.route("/c/", body=page(rdf.format("/news.rdf"), both), content_type=HTML)
    assert find_feed(url, fetcher_for(server)).url == server.url("/c/feed")


def test_feeds_add_refused_says_why_once_and_how_to_allow_it(
    env: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "not added URL: cannot add URL: refused …" said the URL twice and not what to do
    about a loopback or private address."""
    url = server.route("/feed", body=RSS, content_type="application/rss+xml")
    code, _, err = run(capsys, "feeds", "add", url)
    assert code == 2
    line = " ".join(err.split())
    assert line == (
        f"not added {url}: refused loopback address 127.0.0.1 "
        "(AGGREGATOR_ALLOW_PRIVATE_ADDRESSES=1 allows such addresses)"
    )
