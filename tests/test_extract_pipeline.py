"""Extraction through the App against a real HTTP server: what each kind of bad page
costs (its own story's full text, with the reason recorded on it) and what it must not
cost (the feed's other stories, or the feed)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Sequence
from pathlib import Path

import pytest
from httpserver import LocalServer

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, FetchOptions
from aggregator.types import Story, StoryQuery

ARTICLE = (
    "The registry said on Tuesday that every second-level zone under the country's domain "
    "is now signed with DNSSEC, two years after the project began. Resolvers that validate "
    "signatures will reject forged answers for those names. The operator thanked the "
    "registrars that uploaded their keys early and said the last laggards had been moved "
    "over the weekend without incident. "
)
TITLE = "Registry finishes DNSSEC signing of all zones"


def article_page(text: str = ARTICLE, head: str = "") -> str:
    return (
        f"<html><head>{head}<title>{TITLE}</title></head><body><article><h1>{TITLE}</h1>"
        f"<p>{text}</p><p>{text}</p></article></body></html>"
    )


def poll(
    tmp_path: Path, server: LocalServer, pages: Sequence[dict[str, object]], **settings: object
) -> tuple[list[tuple[str, int]], dict[str, Story]]:
    """One feed whose item i links to ``/page/i`` served with ``pages[i]`` (route options);
    the (status, new) of the poll and the stored stories by title ("s0", "s1", ...)."""
    items = ""
    for i, options in enumerate(pages):
        link = server.route(f"/page/{i}", **{"content_type": "text/html", **options})
        items += (
            f"<item><title>s{i} {TITLE}</title><link>{link}</link><guid>g{i}</guid>"
            "<description>Teaser.</description></item>"
        )
    feed = server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
            "</channel></rss>"
        ).encode(),
    )
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, workers=1, **settings
    )
    with make_app(s) as app:
        app.add_feed(feed, discover=False)
        results = [(r.status, r.new) for r in app.update_due(all_feeds=True)]
        stories = {s.title.split()[0]: s for s in app.stories(StoryQuery(limit=None))}
    return results, stories


def test_a_page_naming_a_non_text_codec_costs_no_other_story(
    tmp_path: Path, server: LocalServer
) -> None:
    """``<meta charset="base64">`` made decode_html raise LookupError (not ExtractError):
    it escaped the story, failed the whole feed's extraction batch, and the feed was
    recorded as an error with none of its stories stored."""
    pages = [
        {"body": article_page(head='<meta charset="base64">').encode()},
        {"body": article_page().encode(), "content_type": "text/html; charset=undefined"},
        {"body": article_page().encode()},
    ]
    results, stories = poll(tmp_path, server, pages)
    assert results == [("ok", 3)]
    for key in ("s0", "s1", "s2"):
        story = stories[key]
        assert story.extraction_status == "ok", story.extraction_error
        assert story.full_text and "signed with DNSSEC" in story.full_text


def test_an_undeclared_windows_1252_page_is_read_right(tmp_path: Path, server: LocalServer) -> None:
    text = ARTICLE + "The registry’s “last laggards” – café owners, mostly – were déjà vu. "
    pages = [{"body": article_page(text).encode("windows-1252")}]
    results, stories = poll(tmp_path, server, pages)
    assert results == [("ok", 1)]
    full = stories["s0"].full_text
    assert full and "registry’s “last laggards” – café owners" in full and "\ufffd" not in full


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param(
            {"body": b"%PDF-1.7\n" + ARTICLE.encode() * 10, "content_type": "application/pdf"},
            "not an HTML page (application/pdf)",
            id="pdf",
        ),
        pytest.param(
            {"body": ARTICLE.encode() * 10, "content_type": "application/octet-stream"},
            "not an HTML page (application/octet-stream)",
            id="octet-stream",
        ),
        pytest.param(
            {"body": b"\xff\xd8\xff\xe0" + bytes(range(1, 256)) * 20, "content_type": "image/jpeg"},
            "not an HTML page (image/jpeg)",
            id="jpeg",
        ),
        pytest.param(
            {
                "body": b'{"html": "' + article_page().encode().replace(b'"', b"'") + b'"}',
                "content_type": "application/json",
            },
            "not an HTML page (application/json)",
            id="json",
        ),
        pytest.param(
            {"body": article_page().encode(), "status": 404},
            "page fetch failed: HTTP 404",
            id="404",
        ),
        pytest.param(
            {"body": article_page().encode(), "status": 500},
            "page fetch failed: HTTP 500",
            id="500",
        ),
        pytest.param(
            {"body": article_page(ARTICLE * 40).encode(), "encoding": "gzip"},
            "page fetch failed: body too large",
            id="gzip-bomb",
        ),
    ],
)
def test_an_unusable_page_is_recorded_on_its_story_alone(
    tmp_path: Path, server: LocalServer, options: dict[str, object], error: str
) -> None:
    pages = [options, {"body": article_page().encode()}]
    results, stories = poll(tmp_path, server, pages, max_body_bytes=16 * 1024)
    assert results == [("ok", 2)]
    bad, good = stories["s0"], stories["s1"]
    assert bad.extraction_status == "failed" and bad.full_text is None
    assert error in (bad.extraction_error or ""), bad.extraction_error
    assert good.extraction_status == "ok" and good.full_text


def test_a_redirect_to_another_host_is_followed(tmp_path: Path, server: LocalServer) -> None:
    target = server.route("/moved", body=article_page().encode(), content_type="text/html")
    elsewhere = target.replace("127.0.0.1", "localhost")
    pages = [{"status": 301, "headers": {"Location": elsewhere}, "content_type": None}]
    results, stories = poll(tmp_path, server, pages)
    assert results == [("ok", 1)]
    assert stories["s0"].extraction_status == "ok", stories["s0"].extraction_error
    assert [r.host for r in server.requests_for("/moved")] == ["localhost"]


def test_gzip_page_is_read_when_small(tmp_path: Path, server: LocalServer) -> None:
    assert len(gzip.compress(article_page().encode())) < 16 * 1024
    pages = [{"body": article_page().encode(), "encoding": "gzip"}]
    results, stories = poll(tmp_path, server, pages, max_body_bytes=16 * 1024)
    assert results == [("ok", 1)]
    assert stories["s0"].extraction_status == "ok", stories["s0"].extraction_error


@pytest.mark.parametrize("hop", ["direct", "redirect"])
def test_a_page_on_a_refused_address_is_not_fetched(server: LocalServer, hop: str) -> None:
    """Article pages go through the feed fetcher's address policy, redirect hops
    included: only the allowed loopback address is contacted."""
    with LocalServer(host="127.0.0.2") as other:
        target = other.route("/p", body=article_page().encode(), content_type="text/html")
        start = target if hop == "direct" else server.redirect("/hop", target)

        async def go() -> None:
            options = FetchOptions(allowed_networks=("127.0.0.1/32",), timeout=5.0)
            async with Fetcher(options) as fetcher:
                await fetcher.fetch_page(start)

        with pytest.raises(FetchError, match=r"refused loopback address 127\.0\.0\.2"):
            asyncio.run(go())
        assert other.requests == []


def _feed(server: LocalServer, description: str) -> str:
    link = server.url("/page/0")
    return server.route(
        "/feed",
        body=(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>{TITLE}</title><link>{link}</link><guid>g0</guid>"
            f"<description>{description}</description></item></channel></rss>"
        ).encode(),
    )


def test_an_edited_story_keeps_its_article_when_the_page_fails_this_time(
    tmp_path: Path, server: LocalServer
) -> None:
    """Its full text was overwritten with nothing by a transient page error; the search
    index keeps the article's words too."""
    server.route("/page/0", body=article_page().encode(), content_type="text/html")
    feed = _feed(server, "Teaser.")
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(feed, discover=False)
        assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 1)]
        server.route("/page/0", status=503, body=b"")
        _feed(server, "Teaser, edited.")
        assert [(r.status, r.updated) for r in app.update_due(all_feeds=True)] == [("ok", 1)]
        (story,) = app.stories(StoryQuery(limit=None))
        assert story.summary == "Teaser, edited."
        assert story.full_text and "signed with DNSSEC" in story.full_text
        assert story.extraction_status == "ok"
        found = app.stories(StoryQuery(text="laggards", limit=None))
        assert [s.id for s in found] == [story.id]


def test_a_page_giving_less_than_the_feed_leaves_the_feed_text(
    tmp_path: Path, server: LocalServer
) -> None:
    """Feed text under the extraction threshold (600 characters) but longer than what
    the page gives (a teaser behind a paywall): the page's text does not replace it."""
    feed_text = ARTICLE + "It ran without incident."  # 445 characters
    page_text = ARTICLE[:260]  # the page repeats it; trafilatura keeps it once
    server.route("/page/0", body=article_page(page_text).encode(), content_type="text/html")
    feed = _feed(server, feed_text)
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(feed, discover=False)
        assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 1)]
        (story,) = app.stories(StoryQuery(limit=None))
    assert len(server.requests_for("/page/0")) == 1  # it was tried
    assert story.full_text is None and story.extraction_status == "skipped"
    assert story.summary == feed_text
