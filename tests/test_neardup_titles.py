"""Copies of one story that the SimHash bands miss: a syndicated press release with a
wire service's dateline or an "About" paragraph added is 4-12 bits from the original, past
the bands' reach (at most 3), and was shown twice. A copy under the same title (its
words, see ``neardup.title_key``) in another feed is now found by the title's hash and
joins the cluster when its text is within ``NEAR_DUP_TITLE_MAX_DISTANCE`` bits; a
different story that only shares a title (a weekly column, a generic headline) stays
apart. Through the real App and store, on SQLite and PostgreSQL, with feeds served on
127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

from clockedapp import Clock, any_app, app, clock
from httpserver import LocalServer
from sqlalchemy import create_engine, text
from test_dedupe_audit import _item, _poll, _rss, _titles

from aggregator.app import App
from aggregator.neardup import TITLE_MATCH_MIN_WORDS, hamming, simhash, title_hash, title_key
from aggregator.store.writes import NEAR_DUP_MAX_DISTANCE, NEAR_DUP_TITLE_MAX_DISTANCE
from aggregator.types import StoryQuery

__all__ = ["any_app", "app", "clock"]  # the fixtures (clockedapp)

# Written for this test.
TITLE = "Registry operator launches a lock service for high-value domain names"
RELEASE = (
    "The registry operator today announced a registry lock service for the domain names "
    "it manages. Once a name is locked, changes to its name servers, its contacts or its "
    "registrar need a manual check by the registry's staff, who call back the registrant "
    "at a number given in advance. The service is meant for banks, governments and other "
    "holders of names whose hijacking would hurt many users. Registrars can offer it to "
    "their customers from next month, and the registry will publish the fees with its "
    "next price list. The operator said that attacks on registrar accounts had grown over "
    "the past year and that a lock at the registry stops changes even when an attacker "
    "holds the registrant's password. Industry groups welcomed the launch and asked other "
    "registries to offer similar protection for the names they manage."
)
DATELINE = "AMSTERDAM, Nov. 19, 2026 /Newswire/ -- "
ABOUT = (
    " About the registry: the operator runs the registries of several top-level domains"
    " and provides back-end services to others."
)


def _copies() -> list[tuple[str, str]]:
    return [("/wire", DATELINE + RELEASE), ("/blog", RELEASE + ABOUT)]


def test_the_premise_the_copies_are_past_the_bands_but_within_the_title_limit() -> None:
    original = simhash(f"{TITLE}\n{RELEASE}")
    for _, copy in _copies():
        d = hamming(original, simhash(f"{TITLE}\n{copy}"))
        assert NEAR_DUP_MAX_DISTANCE < d <= NEAR_DUP_TITLE_MAX_DISTANCE, d


def test_title_hash_is_the_words_of_the_title_and_needs_a_few() -> None:
    assert title_hash(TITLE) == title_hash(f"  {TITLE.upper()}!  ") is not None
    assert title_hash("Registry operator launches a lock service") != title_hash(TITLE)
    few = " ".join(["word"] * (TITLE_MATCH_MIN_WORDS - 1))
    assert title_hash(few) is None and title_hash("") is None and title_hash("🎉 🎉") is None
    assert title_key("Café – DNS: “Lock”") == "cafe dns lock"
    h = title_hash(TITLE)
    assert h is not None and -(1 << 63) <= h < 1 << 63  # a signed BIGINT


def test_a_press_release_syndicated_with_a_dateline_or_a_note_is_one_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    home = _item(TITLE, link="https://registry.example/news/lock", guid="r1", text=RELEASE)
    any_app.add_feed(server.route("/registry", body=_rss(home)), discover=False)
    _poll(any_app, clock)
    for path, copy in _copies():
        item = _item(TITLE, link=f"https://{path[1:]}.example/lock", guid=path, text=copy)
        body = _rss(item, f"https://{path[1:]}.example/")
        any_app.add_feed(server.route(path, body=body), discover=False)
    _poll(any_app, clock)
    (story,) = any_app.stories(StoryQuery(limit=None))
    assert story.link == "https://registry.example/news/lock"  # the first seen leads
    assert len(any_app.also_covered(story)) == 2


def test_the_same_title_over_another_text_is_another_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A weekly column or a generic headline over unrelated texts: apart."""
    column = "This week in domain names and DNS security"
    texts = [
        RELEASE,
        "Resolver operators met to compare notes on DNSSEC validation failures, the "
        "handling of expired signatures and the rollout of encrypted transports between "
        "stub resolvers and recursive servers, and agreed to publish common test cases.",
    ]
    for i, body_text in enumerate(texts):
        item = _item(column, link=f"https://s{i}.example/c", guid=f"c{i}", text=body_text)
        any_app.add_feed(
            server.route(f"/c{i}", body=_rss(item, f"https://s{i}.example/")), discover=False
        )
    _poll(any_app, clock)
    assert _titles(any_app) == [column, column]


def test_a_short_title_is_never_matched_by_title(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """ "Press release" names many stories: a copy under it clusters only as the bands
    allow (within 3 bits)."""
    short = "Press release"
    assert title_hash(short) is None
    for path, copy in [("/a", RELEASE), ("/b", DATELINE + RELEASE)]:
        item = _item(short, link=f"https://{path[1:]}.example/p", guid=path, text=copy)
        app.add_feed(
            server.route(path, body=_rss(item, f"https://{path[1:]}.example/")), discover=False
        )
    _poll(app, clock)
    assert _titles(app) == [short, short]


def test_a_copy_in_the_same_feed_or_past_the_window_stays_apart(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """As with the bands: a feed's own items are its own stories, and copies more than
    NEAR_DUP_WINDOW apart are not looked for."""
    from aggregator.store.writes import NEAR_DUP_WINDOW

    items = _item(TITLE, link="https://a.example/1", guid="a1", text=RELEASE) + _item(
        TITLE, link="https://a.example/2", guid="a2", text=DATELINE + RELEASE
    )
    app.add_feed(server.route("/same", body=_rss(items)), discover=False)
    _poll(app, clock, hours=(NEAR_DUP_WINDOW + timedelta(days=1)).total_seconds() / 3600)
    late = _item(TITLE, link="https://b.example/1", guid="b1", text=RELEASE + ABOUT)
    app.add_feed(server.route("/late", body=_rss(late, "https://b.example/")), discover=False)
    _poll(app, clock)
    assert len(app.stories(StoryQuery(limit=None))) == 3


def test_stories_stored_before_the_title_hash_are_found_by_it(sqlite_url: str) -> None:
    """Migration 18 gives the stories of the last NEAR_DUP_WINDOW their title hash: a
    copy polled after the upgrade joins a story stored before it."""
    from contextlib import closing
    from dataclasses import replace

    from test_store import T0, check, draft

    from aggregator.store import open_store
    from aggregator.types import FeedSource, StoryRecord

    def record(key: str, body: str, link: str) -> StoryRecord:
        d = replace(draft(key, TITLE, link=link, summary=body), content_hash=key)
        return StoryRecord(draft=d, fingerprint=simhash(f"{TITLE}\n{body}"))

    with closing(open_store(sqlite_url)) as st:
        first, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T0)
        st.save_update(check(first.id), [record("a1", RELEASE, "https://a.example/1")])
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # as an older version stored it
        conn.execute(text("UPDATE story SET title_hash = NULL"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 18"))
    engine.dispose()
    with closing(open_store(sqlite_url)) as st:
        second, _ = st.add_feed(FeedSource(url="https://b.example/feed"), T0)
        at = T0 + timedelta(hours=1)
        copy = record("b1", DATELINE + RELEASE, "https://b.example/1")
        st.save_update(check(second.id, at), [copy])
        (story,) = st.stories(StoryQuery(limit=None))
        assert len(st.cluster_members(story)) == 1
