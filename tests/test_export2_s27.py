"""Session 27 hunt, second pass over exports and ``serve``: entry ids that must outlive
the stories they were chosen against, and self links as the request named them. Real
SQLite files and the local PostgreSQL, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import timedelta

from clockedapp import Clock, any_app, app, clock
from sqlalchemy import text
from test_config_serve import _store_stories
from test_export_conformance import _raw_get as _request_bytes
from test_export_s27 import _entry_ids
from test_serve_audit import _raw_get

from aggregator.app import App
from aggregator.serve import FeedServer
from aggregator.store import open_store
from aggregator.types import StoryQuery

__all__ = ["any_app", "app", "clock"]  # the fixtures (clockedapp)

PAGE = "https://site.example/today"
FEED = "http://feeds.example/feed.json"


def _two_days_of_a_today_page(app: App, clock: Clock) -> set[tuple[str, str]]:
    """A feed linking each day's item to ``PAGE``, stored on two days (two stories, two
    clusters, one URL); the (title, entry id) pairs its exports give, whole and
    ``limit=1``."""
    _store_stories(app, "https://site.example/feed", [("a", PAGE, "Alpha")], day=16, canonical=True)
    clock.t += timedelta(days=1)
    _store_stories(app, "https://site.example/feed", [("b", PAGE, "Beta")], day=17, canonical=True)
    alpha, beta = (app.store.get_story(i) for i in sorted(app.store.story_ids()))
    assert alpha.cluster_id != beta.cluster_id  # two stories, not two copies of one
    return _entry_ids(app, StoryQuery()) | _entry_ids(app, StoryQuery(limit=1))


def _prune_the_first(app: App, clock: Clock) -> set[tuple[str, str]]:
    clock.t += timedelta(days=2)
    assert app.prune(timedelta(days=1), keep_per_feed=1) == 1  # Alpha, the older
    return _entry_ids(app, StoryQuery()) | _entry_ids(app, StoryQuery(limit=1))


def test_a_later_story_at_a_url_keeps_its_id_once_the_first_is_gone(
    any_app: App, clock: Clock
) -> None:
    """A "today" page's first story has the page as entry id, the next day's a URN of
    its own. Once the first was pruned (or went with its feed), the next became the
    first story at the page and took the page as id: a reader that had the first day's
    story under it took the next day's for that one (and dropped the URN it showed it
    by). The store now keeps, with each story, whether another's was at its URL first."""
    before = dict(_two_days_of_a_today_page(any_app, clock))
    assert before["Alpha"] == PAGE and before["Beta"].startswith("urn:"), before
    after = _prune_the_first(any_app, clock)
    assert after == {("Beta", before["Beta"])}


def test_migration_24_marks_the_stories_at_another_storys_url(
    any_app: App, clock: Clock, db_url: str
) -> None:
    """A database from before migration 24 gets the mark from the stories it holds, as
    the ids were chosen then (the first story stored at each URL keeps it)."""
    before = dict(_two_days_of_a_today_page(any_app, clock))
    with any_app.store.engine.begin() as c:  # as version 23 stored it
        c.execute(text("ALTER TABLE story DROP COLUMN later_at_url"))
        c.execute(text("DELETE FROM schema_version WHERE version = 24"))
    open_store(db_url).close()
    assert _prune_the_first(any_app, clock) == {("Beta", before["Beta"])}


def test_an_absolute_form_target_names_the_self_links_host(app: App) -> None:
    """``GET http://feeds.example/feed.json`` with ``Host: x`` (a client that speaks to
    the server as to a proxy): RFC 9112 §3.2.2 has the server ignore Host and take the
    target's authority. The self link named the Host header's "x" instead. A target whose
    authority carries userinfo, names no host or another scheme is a 400, as an invalid Host
    is."""
    _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
    with FeedServer(app) as srv:
        status, body = _raw_get(srv.url, b"http://feeds.example:8080/feed.json?limit=1")
        assert status == 200, body
        assert json.loads(body)["feed_url"] == "http://feeds.example:8080/feed.json?limit=1"
        bad = (b"http://u@feeds.example/feed.json", b'http://a"b/feed.json', b"ftp://x/feed.json")
        for target in (*bad, b"http:///feed.json", b"http:/feed.json"):
            status, body = _raw_get(srv.url, target)
            assert (status, body) == (400, b"invalid host in the request target\n"), target


def test_a_target_with_an_ipv6_literal_left_open_is_a_400(app: App) -> None:
    """``GET http://[::1/feed.json``: reading the target raised ValueError ("Invalid IPv6
    URL") inside the handler, so the connection closed without an answer and the server
    printed a traceback for each such request. It is a 400 now."""
    with FeedServer(app) as srv:
        for bad in (b"http://[::1/feed.json", b"http://[/feed.json?limit=1"):
            status, body = _raw_get(srv.url, bad)
            assert (status, body) == (400, b"invalid request target\n"), bad


def test_a_self_link_names_its_host_in_one_spelling(app: App) -> None:
    """The Atom feed id is the self link, and ``Host: Feeds.Example:80`` (a client that
    keeps the case typed, or names the default port) gave another id than ``Host:
    feeds.example`` for the same feed: a reader seeing both took them for two feeds.
    RFC 4287 §4.2.6.1 asks for the host in lowercase and no default port; so does RFC
    3986 §6.2.3 for the URI."""
    cases = [
        (b"/feed.json", b"feeds.example", FEED),
        (b"/feed.json", b"Feeds.EXAMPLE:80", FEED),
        (b"/feed.json", b"feeds.example:", FEED),
        (b"HTTP://Feeds.Example:80/feed.json", b"x", FEED),
        (b"https://Feeds.Example:443/feed.json", b"x", "https://feeds.example/feed.json"),
        (b"/feed.json", b"[::1]:8080", "http://[::1]:8080/feed.json"),
    ]
    with FeedServer(app) as srv:
        for target, host, url in cases:
            status, body = _request_bytes(
                srv.url,
                b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
            )
            assert (status, json.loads(body)["feed_url"]) == (200, url), host


def test_a_story_moved_onto_another_storys_url_leaves_it_its_id(any_app: App) -> None:
    """A stored story whose item now links to the page another story was first at (a
    feed's link corrected onto a page another feed's story has): the earlier-stored
    story took that page as entry id, and the story that had it got a URN, so a reader
    took the moved story for the one it had. The moved story now counts as later."""
    page = "https://news.example/2026/ksk"
    _store_stories(any_app, "https://a.example/feed", [("a", "https://a.example/x", "Alpha")])
    _store_stories(any_app, "https://b.example/feed", [("b", page, "Beta")], canonical=True)
    before = dict(_entry_ids(any_app, StoryQuery()))
    assert before["Beta"] == page
    _store_stories(any_app, "https://a.example/feed", [("a", page, "Alpha")], canonical=True)
    after = dict(_entry_ids(any_app, StoryQuery()) | _entry_ids(any_app, StoryQuery(limit=1)))
    assert after["Beta"] == page and after["Alpha"].startswith("urn:"), after
