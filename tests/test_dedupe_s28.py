"""Session 28 hunt: story identity and clusters when a stored story changes (its link
corrected, a cache-buster on its link), through the real App, a local HTTP server and
real SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_dedupe_audit import Clock, _make_app, _poll, _titles
from test_dedupe_s27 import _item, _rss

from aggregator.app import App


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def any_app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    """The App on SQLite, then on PostgreSQL."""
    yield from _make_app(tmp_path, clock, db_url)


@pytest.fixture
def app(tmp_path: Path, clock: Clock, sqlite_url: str) -> Iterator[App]:
    yield from _make_app(tmp_path, clock, sqlite_url)


def _words(word: str, n: int = 40) -> str:
    return " ".join(f"{word}{i}" for i in range(n))


OUTAGE = "Resolver outage hits Europe for two hours"
ZONE = "Registry signs every zone it runs"
WRONG = "https://news.example/2026/11/registry-signs-every-zone"
RIGHT = "https://news.example/2026/11/resolver-outage-in-europe"


def _feed(server: LocalServer, path: str, title: str, text: str, link: str, guid: str) -> str:
    item = _item(title, text=text, link=link, guid=guid)
    return server.route(path, body=_rss(item, f"https://{path.strip('/')}.example/"))


# --- a stored story's link corrected ----------------------------------------------------------


def test_a_story_whose_wrong_link_is_corrected_leaves_the_cluster_it_hid_in(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """Feed B has a story at a page; feed A's item on another story links to that page
    by mistake, so it joined B's story's cluster by URL and was hidden under it. The
    publisher corrects the link (same guid, new URL, same text): the story was updated
    but kept the cluster, so it stayed hidden from every list and export for good. It
    was there only by the URL it no longer has: it leaves."""
    app = any_app
    app.add_feed(_feed(server, "/b", ZONE, _words("alpha"), WRONG, "b1"), discover=False)
    _poll(app, clock)
    app.add_feed(_feed(server, "/a", OUTAGE, _words("beta"), WRONG, "a1"), discover=False)
    _poll(app, clock)
    assert _titles(app) == [ZONE]  # one URL, one cluster: as the feeds said
    _feed(server, "/a", OUTAGE, _words("beta"), RIGHT, "a1")
    assert sorted((r.new, r.updated) for r in _poll(app, clock)) == [(0, 0), (0, 1)]
    assert _titles(app) == [ZONE, OUTAGE]


def test_a_story_whose_wrong_link_is_corrected_frees_the_story_it_hid(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """The other way round: feed A's item, linked by mistake to a page, was stored
    first; feed B's story at that page then joined its cluster and was hidden under it.
    Once A's link is corrected, B's story is in A's cluster only by a URL A's story no
    longer has: it starts a cluster of its own (with its own copies), and both show."""
    app = any_app
    app.add_feed(_feed(server, "/a", OUTAGE, _words("beta"), WRONG, "a1"), discover=False)
    _poll(app, clock)
    app.add_feed(_feed(server, "/b", ZONE, _words("alpha"), WRONG, "b1"), discover=False)
    app.add_feed(_feed(server, "/c", ZONE, _words("alpha"), WRONG + "?utm_source=c", "c1"),
                 discover=False)  # fmt: skip
    _poll(app, clock)
    assert _titles(app) == [OUTAGE]
    _feed(server, "/a", OUTAGE, _words("beta"), RIGHT, "a1")
    _poll(app, clock)
    assert _titles(app) == [ZONE, OUTAGE]
    (zone,) = [s for s in app.store.get_stories(app.store.story_ids()) if s.title == ZONE][:1]
    assert len(app.also_covered(zone)) == 1  # B's and C's copies: still one story


def test_a_copy_of_a_story_keeps_its_cluster_when_its_link_is_corrected(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """What a corrected link must not undo: a copy that is in its cluster by its text
    (another feed's copy of the same article) stays there, whatever its link."""
    app = any_app
    app.add_feed(_feed(server, "/b", ZONE, _words("alpha"), WRONG, "b1"), discover=False)
    _poll(app, clock)
    app.add_feed(_feed(server, "/a", ZONE, _words("alpha"), RIGHT, "a1"), discover=False)
    _poll(app, clock)
    assert _titles(app) == [ZONE]
    _feed(server, "/a", ZONE, _words("alpha"), RIGHT + "-corrected", "a1")
    _poll(app, clock)
    assert _titles(app) == [ZONE]
