"""Session 28 hunt: story identity and clusters when a stored story changes (its link
corrected, a cache-buster on its link), through the real App, a local HTTP server and
real SQLite and PostgreSQL databases."""

from __future__ import annotations

from contextlib import closing

import pytest
from clockedapp import Clock, any_app, app, clock
from httpserver import LocalServer
from sqlalchemy import text
from test_dedupe_audit import _poll, _titles
from test_dedupe_s27 import _item, _rss
from test_store import T0, check

from aggregator.app import App
from aggregator.dedupe import canonicalize_url, listing_digest, story_drafts
from aggregator.parse import parse_feed
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryRecord

__all__ = ["any_app", "app", "clock"]  # the fixtures (clockedapp)


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


# --- cache-busters on links -------------------------------------------------------------------

ARTICLE = "https://news.example/2026/11/registry-signs-every-zone"


@pytest.mark.parametrize(
    ("link", "canonical"),
    [
        (f"{ARTICLE}?_=1764672000123", ARTICLE),
        (f"{ARTICLE}?id=3&_=1764672000123", f"{ARTICLE}?id=3"),
        (f"{ARTICLE}?cachebuster=8812&utm_source=rss", ARTICLE),
        (f"{ARTICLE}?nocache=1", ARTICLE),
        (f"{ARTICLE}?__=1", f"{ARTICLE}?__=1"),  # not jQuery's: kept
    ],
    ids=["jquery", "with-id", "cachebuster", "nocache", "double-underscore"],
)
def test_a_cache_buster_is_no_part_of_a_canonical_url(link: str, canonical: str) -> None:
    assert canonicalize_url(link) == canonical
    assert canonicalize_url(canonical) == canonical


def _stamped(stamp: int, guid: bool) -> bytes:
    items = "".join(
        _item(
            title,
            text=_words(word),
            link=f"{ARTICLE}-{n}?_={stamp}",
            guid=f"g{n}" if guid else None,
        )
        for n, (title, word) in enumerate(((ZONE, "alpha"), (OUTAGE, "beta")))
    )
    return _rss(items, "https://news.example/")


def test_a_feed_stamping_its_links_with_a_cache_buster_stores_each_story_once(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A feed without guids whose generator stamps every link with the time of the
    request (jQuery's ``?_=<ms>``): each item's key is its link, which was new at every
    poll, so every story was stored again at every poll, and listed once per poll."""
    app = any_app
    app.add_feed(server.route("/f", body=_stamped(1, guid=False)), discover=False)
    assert [r.new for r in _poll(app, clock)] == [2]
    for stamp in (2, 3):
        server.route("/f", body=_stamped(stamp, guid=False))
        assert [(r.new, r.updated) for r in _poll(app, clock)] == [(0, 0)]
    assert _titles(app) == [ZONE, OUTAGE]


def test_a_story_whose_link_carries_a_cache_buster_is_not_rewritten(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """With guids: the new canonical URL at every poll counted as a corrected link, so
    each story was re-written, classified again (and its page fetched again) at every
    poll. An unchanged story is left alone."""
    app.add_feed(server.route("/f", body=_stamped(1, guid=True)), discover=False)
    assert [r.new for r in _poll(app, clock)] == [2]
    server.route("/f", body=_stamped(2, guid=True))
    assert [(r.new, r.updated) for r in _poll(app, clock)] == [(0, 0)]


def test_migration_25_moves_the_stored_links_and_keys_off_their_cache_busters(
    db_url: str,
) -> None:
    """A store from before migration 25 holds such a feed's stories under links with
    their cache-buster: the migration brings them to today's canonical form, so the next
    poll finds them instead of storing each again."""
    body = _stamped(7, guid=False)
    drafts = story_drafts(parse_feed(body, "https://news.example/feed"))
    records = [StoryRecord(draft=d) for d in drafts]
    listed = tuple(listing_digest(d.key) for d in drafts)
    with closing(open_store(db_url)) as st:
        feed, _ = st.add_feed(FeedSource(url="https://news.example/feed"), T0)
        st.save_update(check(feed.id, listed=listed), records)
        with st.engine.begin() as c:  # as version 24 stored them
            for d in drafts:
                old = f"{d.canonical_url}?_=6"
                c.execute(
                    text("UPDATE story SET key = :k, canonical_url = :u WHERE title = :t"),
                    {"k": "v1:link:" + old, "u": old, "t": d.title},
                )
            older = [listing_digest(f"{d.key}?_=6") for d in drafts]
            c.execute(
                text("UPDATE feed SET listed = :l WHERE id = :f"),
                {"l": " ".join(older), "f": feed.id},
            )
            c.execute(text("DELETE FROM schema_version WHERE version = 25"))
        feed_id = feed.id
    with closing(open_store(db_url)) as st:
        with st.engine.connect() as c:
            rows = set(c.execute(text("SELECT key, canonical_url FROM story")).all())
            now_listed = c.execute(
                text("SELECT listed FROM feed WHERE id = :f"), {"f": feed_id}
            ).scalar()
        assert rows == {(d.key, d.canonical_url) for d in drafts}
        assert set(now_listed.split()) == set(listed)
        before = st.story_count()
        assert st.save_update(check(feed_id, at=T0, listed=listed), records).new == ()
        assert st.story_count() == before


# --- new stories of one poll at a URL and its http<->https twin -------------------------------


def test_two_new_items_at_the_http_and_https_urls_of_one_page_are_one_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A feed moving to https lists an article under its http:// link and again, under
    another guid, under its https:// one. Stored on two polls, the second copy joins the
    first's cluster (the twin of its URL is stored: ``dedupe.scheme_twin``); met in one
    poll, as new rows of one batch, it was matched by its URL alone and started a cluster
    of its own: the article was listed twice."""
    app, path = any_app, "/2026/11/registry-signs-every-zone"
    items = "".join(
        _item(ZONE, text=_words("alpha"), link=f"{scheme}://news.example{path}", guid=guid)
        for scheme, guid in (("http", "old-1"), ("https", "new-1"))
    )
    app.add_feed(server.route("/f", body=_rss(items, "https://news.example/")), discover=False)
    assert [r.new for r in _poll(app, clock)] == [2]
    assert _titles(app) == [ZONE]
