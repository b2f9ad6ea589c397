"""``feed:`` URLs, as browsers and sites publish "subscribe" links (``feed://host/rss``,
``feed:https://host/rss``): taken by `feeds add`, feeds.yaml, OPML and a page's feed
links as the http(s) URL they stand for; other schemes are still refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import run

from aggregator.credentials import display_url
from aggregator.discover import discover_feeds
from aggregator.errors import ConfigError
from aggregator.feedlist import (
    check_feed_url,
    feed_key,
    parse_feeds_yaml,
    read_opml,
    unwrap_feed_scheme,
)

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("feed://a.example/rss", "http://a.example/rss"),
        ("FEED://a.example/rss", "http://a.example/rss"),
        ("feed://a.example:8080/rss?x=1", "http://a.example:8080/rss?x=1"),
        ("feed:https://a.example/rss", "https://a.example/rss"),
        ("feed:http://a.example/rss", "http://a.example/rss"),
        ("Feed:HTTPS://a.example/rss", "HTTPS://a.example/rss"),
        ("feed://https://a.example/rss", "https://a.example/rss"),  # as some sites write it
        ("feed://ann:pw@a.example/f", "http://ann:pw@a.example/f"),
        ("  feed://a.example/rss\n", "http://a.example/rss"),
        ("https://a.example/feed://x", "https://a.example/feed://x"),  # not at the start
    ],
)
def test_a_feed_url_is_the_http_url_it_stands_for(given: str, url: str) -> None:
    assert check_feed_url(given) == url
    assert feed_key(given) == feed_key(url)


@pytest.mark.parametrize(
    "given",
    [
        "feed:ftp://a.example/rss",
        "feed://ftp://a.example/rss",
        "feed:a.example/rss",
        "feed:javascript:alert(1)",
        "ftp://a.example/rss",
        "file:///etc/passwd",
        "itpc://a.example/rss",
    ],
)
def test_other_schemes_are_still_refused(given: str) -> None:
    assert unwrap_feed_scheme(given) == given
    with pytest.raises(ConfigError, match=r"only http\(s\) URLs are supported"):
        check_feed_url(given)


def test_a_feed_url_without_a_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="has no host"):
        check_feed_url("feed://")


def test_a_password_in_a_feed_url_is_not_shown() -> None:
    assert display_url("feed:https://ann:secret@a.example/f") == (
        "feed:https://ann:***@a.example/f"
    )
    with pytest.raises(ConfigError) as info:
        check_feed_url("feed:https://ann:secret@a.example:99999/f")
    assert "secret" not in str(info.value)


def test_feeds_yaml_takes_feed_urls() -> None:
    sources = parse_feeds_yaml(
        "feeds:\n  - feed://a.example/rss\n  - url: 'feed:https://b.example/atom'\n"
    )
    assert [s.url for s in sources] == ["http://a.example/rss", "https://b.example/atom"]
    with pytest.raises(ConfigError, match=r"feeds.yaml:3: feed #2: .* listed twice"):
        parse_feeds_yaml("feeds:\n  - feed://a.example/rss\n  - https://a.example/rss\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:2: feed #1: only http\(s\)"):
        parse_feeds_yaml("feeds:\n  - feed:gopher://a.example/rss\n")


def test_opml_takes_feed_urls() -> None:
    listing = read_opml(
        '<opml version="2.0"><body>'
        '<outline type="rss" text="feed://a.example/rss" xmlUrl="feed://a.example/rss"/>'
        '<outline type="rss" text="B" xmlUrl="feed:https://b.example/atom"/>'
        '<outline type="rss" text="C" xmlUrl="feed:ftp://c.example/rss"/>'
        "</body></opml>"
    )
    assert [(s.url, s.name) for s in listing.sources] == [
        ("http://a.example/rss", None),  # the URL as a label is no name
        ("https://b.example/atom", "B"),
    ]
    assert len(listing.skipped) == 1 and "only http(s)" in listing.skipped[0]


def test_a_page_linking_its_feed_as_feed_url() -> None:
    html = b'<html><head><link rel="alternate" type="application/rss+xml" href="feed://a.example/rss"></head></html>'
    assert discover_feeds(html, "https://a.example/") == ["http://a.example/rss"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "none.yaml").write_text("feeds: []\n", encoding="utf-8")
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "none.yaml"))
    return tmp_path


def test_feeds_add_a_feed_url(
    env: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = server.route("/rss", body=RSS, content_type="application/rss+xml")
    assert url.startswith("http://")
    # refused for its address: said once, by the URL given
    code, _, err = run(capsys, "feeds", "add", "feed:" + url)
    assert code == 2
    assert " ".join(err.split()).startswith(f"not added feed:{url}: refused loopback address")

    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    code, out, err = run(capsys, "feeds", "add", url.replace("http://", "feed://", 1))
    assert code == 0, err
    assert out.startswith(f"added: {url}")
    code, out, err = run(capsys, "feeds", "add", "--no-discover", "feed:" + url)
    assert code == 0 and out.startswith(f"already present: {url}"), err
    code, out, err = run(capsys, "feeds", "add", "--no-discover", "feed:ftp://a.example/rss")
    assert code == 2 and "only http(s) URLs are supported" in err
    listed = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert [f["url"] for f in listed] == [url]
    # and named so: `feeds remove` of the subscribe link removes the feed
    code, out, err = run(capsys, "feeds", "remove", "feed:" + url)
    assert code == 0, err
    assert json.loads(run(capsys, "feeds", "list", "--format", "json")[1]) == []


def test_feeds_yaml_with_a_feed_url_syncs_once(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = env / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: feed://a.example/rss\n    name: A\n")
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(feeds))
    for _ in range(2):
        listed = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
        assert [(f["url"], f["name"]) for f in listed] == [("http://a.example/rss", "A")]
