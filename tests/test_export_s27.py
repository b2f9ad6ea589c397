"""Session 27 hunt: exports and ``serve``: entry ids across exports, and requests as a
demanding client sends them. Real SQLite files, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
from clockedapp import Clock, any_app, app, clock
from httpserver import LocalServer
from sqlalchemy import event
from test_config_serve import _store_stories
from test_dedupe_audit import _poll
from test_dedupe_s26 import _item, _rss
from test_serve_s26 import _get

from aggregator.app import App
from aggregator.serve import FeedServer
from aggregator.types import StoryQuery

__all__ = ["any_app", "app", "clock"]  # the fixtures (clockedapp)

ATOM = "{http://www.w3.org/2005/Atom}"


def _entry_ids(app: App, query: StoryQuery) -> set[tuple[str, str]]:
    """(title, entry id) of each entry of ``query``'s export in each format, RSS streamed
    (``aggregator export --limit 0``)."""
    found: set[tuple[str, str]] = set()
    for item in json.loads(app.export(query, "json"))["items"]:
        found.add((item["title"], item["id"]))
    for entry in ET.fromstring(app.export(query, "atom").encode()).iter(f"{ATOM}entry"):
        found.add((entry.findtext(f"{ATOM}title") or "", entry.findtext(f"{ATOM}id") or ""))
    for item in ET.fromstring(_streamed(app, query, "rss").encode()).iter("item"):
        found.add((item.findtext("title") or "", item.findtext("guid") or ""))
    return found


def _streamed(app: App, query: StoryQuery, fmt: str) -> str:
    out = io.StringIO()
    app.export_to(out.write, query, fmt, chunk=2)  # type: ignore[arg-type]
    return out.getvalue()


def test_a_today_pages_stories_keep_one_entry_id_each_across_exports(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """A "quote of the day" feed links each day's item to one page ("/today"): the store
    keeps each day's story, all at that canonical URL. The first day's export gave its
    story the page as id; the next day's gave the new story that id when it was alone in
    the document (``limit=1``: a reader took it for the story it had, and never showed
    it), and a URN with the story's key otherwise, which changed again when the store
    moved the key off the page (``v1:title-date:``). Each story now has one id in every
    export, format and page, and no two stories share one."""
    page = "https://site.example/today"
    seen: set[tuple[str, str]] = set()
    for day, word in ((16, "alpha"), (17, "beta"), (18, "gamma")):
        text = " ".join(f"{word}{i}" for i in range(60))
        item = _item(f"Quote: {word}", link=page, text=text, date=f"{day} Nov 2026 08:00:00 GMT")
        url = server.route("/q", body=_rss(item, "https://site.example/"))
        if day == 16:
            app.add_feed(url, discover=False)
        _poll(app, clock, hours=24)
        for limit in (None, 1):
            seen |= _entry_ids(app, StoryQuery(limit=limit))
    ids = dict(seen)
    assert len(ids) == len(seen) == 3, sorted(seen)  # one id per story
    assert len(set(ids.values())) == 3, ids  # none shared
    assert ids["Quote: alpha"] == page  # the first story keeps the id it was given


def test_the_first_cluster_at_a_url_is_the_first_storys(any_app: App) -> None:
    """``Store.first_clusters_at``, which the ids above are chosen by, on both databases:
    another feed's copy of the story joins its cluster and changes nothing; a URL no
    story has is not in the answer."""
    url = "https://news.example/2026/ksk"
    _store_stories(any_app, "https://a.example/feed", [("a", url, "KSK")], canonical=True)
    _store_stories(any_app, "https://b.example/feed", [("b", url, "KSK")], canonical=True)
    first, copy = sorted(any_app.store.story_ids())
    assert any_app.store.get_story(copy).cluster_id == first
    assert any_app.store.first_clusters_at([url, "https://news.example/none"]) == {url: first}


def test_thousands_of_feed_values_are_one_clear_400(app: App) -> None:
    """``?feed=`` given 6,000 times (a URL well within the request line's 64 KiB) made
    the server match each value against every feed: seconds of CPU with a few hundred
    feeds, a thread and a read transaction held all along. More than ``MAX_FEEDS``
    different values is a 400 saying so; the same feed named again and again is that
    feed, once (the title named it 6,000 times)."""
    _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
    with FeedServer(app) as srv:
        many = "&".join(f"feed=x{i}" for i in range(6000))
        status, _, body = _get(srv, f"/feed.json?{many}")
        assert (status, body) == (400, b"at most 100 different feed values, not 6000\n")
        status, _, body = _get(srv, "/feed.json?" + "&".join(["feed=1"] * 6000))
        assert status == 200 and json.loads(body)["title"] == "aggregator — feed 1"
        assert _get(srv, "/feed.json?" + "&".join(f"feed=x{i}" for i in range(100)))[0] == 200


def test_a_query_naming_many_feeds_reads_the_feed_table_once(app: App) -> None:
    """Each ``--feed`` value read every feed row again (one SELECT per value), so the
    work grew as values times feeds in statements too."""
    _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
    seen: list[str] = []

    def statement(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(app.store.engine, "before_cursor_execute", statement)
    try:
        app.stories(StoryQuery(feeds=(*(f"x{i}" for i in range(50)), "a.example")))
    finally:
        event.remove(app.store.engine, "before_cursor_execute", statement)
    assert sum(s.startswith("SELECT feed.id, feed.url") for s in seen) == 1, seen


def test_a_topic_named_twice_is_named_once_in_the_title(app: App) -> None:
    """``/topics/DNS.atom?topic=dns`` (a form adding the topic its page is about) and
    ``export --topic DNS --topic dns`` are the DNS feed, titled "aggregator — DNS + DNS"
    (and, without ``--url``, given another Atom id than the DNS feed's). A topic is named
    once, however often and however it is spelled."""
    _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
    query = StoryQuery(
        topics=("DNS", "dns"), any_topics=("DNS", "Dns"), not_topics=("Spam", "spam")
    )
    title = json.loads(app.export(query, "json"))["title"]
    assert title == "aggregator — DNS — DNS — not Spam"
    with FeedServer(app) as srv:
        status, _, body = _get(srv, "/topics/DNS.json?topic=dns")
        assert status == 200 and json.loads(body)["title"] == "aggregator — DNS"


@pytest.mark.parametrize("offset", ["+01:00", "+0100", "+01"])
def test_a_date_with_an_offset_written_as_it_is_is_read(app: App, offset: str) -> None:
    """``?since=2026-11-27T10:01:00+01:00``, an ISO 8601 time as a user types it into a
    URL, was refused (400, "cannot read '2026-11-27T10:01:00 01:00'"): the query's
    form decoding reads "+" as a space. A space where an offset's sign belongs is read as
    the "+" it was; the escaped form (%2B) is read as before."""
    stories = [(str(i), f"https://a.example/{i}", f"KSK {i}") for i in range(3)]
    _store_stories(app, "https://a.example/feed", stories)  # published 09:00, 09:01, 09:02
    with FeedServer(app) as srv:
        for name in ("since", "until"):
            titles = []
            for value in (f"2026-11-27T10:01:00{offset}", "2026-11-27T10:01:00%2B01:00"):
                status, _, body = _get(srv, f"/feed.json?{name}={value}")
                assert status == 200, body
                titles.append([i["title"] for i in json.loads(body)["items"]])
            assert titles[0] == titles[1] and 0 < len(titles[0]) < 3, titles
