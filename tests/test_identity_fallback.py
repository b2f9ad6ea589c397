"""Story identity where a document does not give one: entries with neither a guid nor a
link that share their text (podcast episodes all titled "Weekly news roundup", "Security
advisory" notices with one boilerplate line), and a guid repeated in one document (an
older and an edited copy of one item). Through the real App, a real local server and a
real database (SQLite and PostgreSQL), and as pure functions on both parsers' output."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest
from clockedapp import Clock
from httpserver import LocalServer
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import fastparse
from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.dedupe import content_hash, scheme_twin, story_drafts
from aggregator.parse import parse_feed
from aggregator.types import ParsedEntry, ParsedFeed, StoryDraft, StoryQuery, UpdateResult

URL = "https://feeds.example.org/identity"
HOME = "http://pod.example/"
ATOM_URL = "http://pod.example/releases"
ROUNDUP = "Weekly news roundup"
ADVISORY = "Security advisory"
NOTICE = "A new advisory is out: see the security page."


def _rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Pod</title>'
        f"<link>{HOME}</link><description>A show</description>{''.join(items)}</channel></rss>"
    ).encode()


def _item(
    title: str,
    day: int,
    *,
    enclosure: str | None = None,
    description: str | None = None,
    guid: str | None = None,
    link: str | None = None,
) -> str:
    """An RSS item published ``day`` November 2026, 10:00 UTC (before the test clock)."""
    parts = [f"<title>{title}</title>", f"<pubDate>{day:02d} Nov 2026 10:00:00 GMT</pubDate>"]
    if description is not None:
        parts.append(f"<description>{description}</description>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if enclosure is not None:
        parts.append(f'<enclosure url="{enclosure}" length="1000" type="audio/mpeg"/>')
    return f"<item>{''.join(parts)}</item>"


def _episode(n: int, day: int) -> str:
    return _item(ROUNDUP, day, enclosure=f"http://cdn.pod.example/ep{n}.mp3")


def _notice(day: int) -> str:
    return _item(ADVISORY, day, description=NOTICE)


def _atom(*entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>Releases</title><link href="{HOME}"/><id>tag:pod.example,2026:releases</id>'
        f"<updated>2026-11-20T00:00:00Z</updated>{''.join(entries)}</feed>"
    ).encode()


def _release(text: str, updated: str) -> str:
    """One Atom entry "tag:pod.example,2026:r1": the same id, link, title and publication
    date in every copy; only the text and ``updated`` vary."""
    return (
        "<entry><id>tag:pod.example,2026:r1</id><title>Release 1.0</title>"
        '<link href="http://pod.example/releases/1.0"/>'
        f"<published>2026-11-10T09:00:00Z</published><updated>{updated}</updated>"
        f"<content type='html'>{escape(text)}</content></entry>"
    )


def _drafts(body: bytes, url: str = URL) -> list[StoryDraft]:
    return story_drafts(parse_feed(body, url))


def _kinds(drafts: list[StoryDraft]) -> list[str]:
    return [d.key.split(":")[1] for d in drafts]


def _title_date_key(title: str, day: int) -> str:
    digest = hashlib.sha1(title.encode()).hexdigest()
    return f"v1:title-date:{digest}:2026-11-{day:02d}T10:00:00+00:00"


# --- through the App -------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=db_url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
    )
    with make_app(s, now=clock) as a:
        yield a


def _poll(app: App, clock: Clock) -> UpdateResult:
    (result,) = app.update_due(all_feeds=True)
    assert result.status == "ok", result
    clock.t += timedelta(hours=2)
    return result


def _stored(app: App) -> dict[int, tuple[str, int | None, str]]:
    """story id -> (title, day published, key)"""
    return {
        s.id: (s.title, s.published.day if s.published else None, s.key)
        for s in app.stories(StoryQuery(limit=None))
    }


def test_episodes_sharing_their_text_are_each_a_story_and_upgrade_safely(
    app: App, server: LocalServer, clock: Clock
) -> None:
    # The first episode alone is unambiguous: it is stored under today's key form, as a
    # store from before this change holds it.
    app.add_feed(server.route("/pod", body=_rss(_episode(1, 6))), discover=False)
    assert _poll(app, clock).new == 1
    (first,) = _stored(app).items()
    assert first[1] == (ROUNDUP, 6, "v1:hash:" + content_hash(ROUNDUP, None, None))

    # A second episode with the same title and no text: it used to collapse into the
    # first (new=0, and the episode was never stored). The first keeps its story.
    server.route("/pod", body=_rss(_episode(2, 13), _episode(1, 6)))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (1, 0)
    stored = _stored(app)
    assert stored[first[0]] == first[1]
    assert sorted(day for _, day, _ in stored.values()) == [6, 13]

    # A third one, while the publisher moves the second one's date: the enclosure still
    # says which episode it is, so that is no new story.
    server.route("/pod", body=_rss(_episode(3, 20), _episode(2, 14), _episode(1, 6)))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (1, 0)
    stored = _stored(app)
    assert sorted(day for _, day, _ in stored.values()) == [6, 13, 20]
    assert stored[first[0]] == first[1]


def test_notices_sharing_title_and_text_are_told_apart_by_their_date(
    app: App, server: LocalServer, clock: Clock
) -> None:
    app.add_feed(server.route("/notices", body=_rss(_notice(20))), discover=False)
    assert _poll(app, clock).new == 1
    (first,) = _stored(app).items()

    server.route("/notices", body=_rss(_notice(27), _notice(20)))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (1, 0)
    stored = _stored(app)
    assert stored[first[0]] == first[1]
    assert sorted(day for _, day, _ in stored.values()) == [20, 27]

    # The same notices in the other order (a changed body, so it is parsed again): the
    # keys do not depend on the order, so nothing is new or updated.
    server.route("/notices", body=_rss(_notice(20), _notice(27)))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (0, 0)
    assert _stored(app) == stored


def test_a_first_poll_of_colliding_episodes_stores_each_once(
    app: App, server: LocalServer, clock: Clock
) -> None:
    episodes = [_episode(3, 20), _episode(2, 13), _episode(1, 6)]
    app.add_feed(server.route("/pod", body=_rss(*episodes)), discover=False)
    assert _poll(app, clock).new == 3
    stored = _stored(app)
    assert sorted(day for _, day, _ in stored.values()) == [6, 13, 20]

    server.route("/pod", body=_rss(*reversed(episodes)))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (0, 0)
    assert _stored(app) == stored


def test_a_guid_repeated_with_an_edited_copy_is_one_story_with_the_latest_text(
    app: App, server: LocalServer, clock: Clock
) -> None:
    first = _release("<p>First text.</p>", "2026-11-10T09:00:00Z")
    edited = _release("<p>Edited text.</p>", "2026-11-12T09:00:00Z")
    app.add_feed(server.route("/releases", body=_atom(first)), discover=False)
    assert _poll(app, clock).new == 1
    ((story_id, (_, _, key)),) = _stored(app).items()
    assert key == "v1:guid:tag:pod.example,2026:r1"

    # Both copies in one document: one story, updated to the copy updated last. Before,
    # the guid was refused (shared by two texts) and each copy became a story of its own
    # beside the first: three stories for one release.
    server.route("/releases", body=_atom(edited, first))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (0, 1)
    (story,) = app.stories(StoryQuery(limit=None))
    assert (story.id, story.key, story.content) == (story_id, key, "<p>Edited text.</p>")

    # The copies swapped: the choice does not depend on the order, so no phantom update.
    server.route("/releases", body=_atom(first, edited))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (0, 0)
    assert app.stories(StoryQuery(limit=None)) == [story]
    # The older copy gone: still the same story, unchanged.
    server.route("/releases", body=_atom(edited))
    result = _poll(app, clock)
    assert (result.new, result.updated) == (0, 0)
    assert app.stories(StoryQuery(limit=None)) == [story]


# --- the keys ----------------------------------------------------------------------------------


def test_colliding_entries_keep_todays_key_for_the_oldest_and_fall_back_for_the_others() -> None:
    drafts = _drafts(_rss(_episode(3, 20), _episode(2, 13), _episode(1, 6)))
    assert [d.key for d in drafts] == [
        "v1:enclosure:http://cdn.pod.example/ep3.mp3",
        "v1:enclosure:http://cdn.pod.example/ep2.mp3",
        "v1:hash:" + content_hash(ROUNDUP, None, None),  # what the first episode had alone
    ]
    assert [d.published and d.published.day for d in drafts] == [20, 13, 6]

    # No enclosure: the title and the publication date.
    drafts = _drafts(_rss(_notice(27), _notice(20)))
    assert [d.key for d in drafts] == [
        _title_date_key(ADVISORY, 27),
        "v1:hash:" + content_hash(ADVISORY, NOTICE, None),
    ]


def test_neither_a_date_edit_nor_the_order_moves_a_key() -> None:
    before = _drafts(_rss(_episode(2, 13), _episode(1, 6)))
    after = _drafts(_rss(_episode(1, 6), _episode(2, 14)))
    assert {d.key for d in before} == {d.key for d in after}


def test_copies_nothing_tells_apart_are_one_story() -> None:
    # The same episode twice: one story, as before.
    assert _kinds(_drafts(_rss(_episode(1, 6), _episode(1, 6)))) == ["hash"]
    # Same text, no date, no enclosure: nothing would tell them apart on the next poll
    # either (a key from the position would change with every new item).
    undated = f"<item><title>{ADVISORY}</title><description>{NOTICE}</description></item>"
    assert _kinds(_drafts(_rss(undated, undated))) == ["hash"]


def test_when_no_fallback_is_unique_a_hash_of_what_differs_keys_the_entry() -> None:
    # Same text and date, and every first enclosure the same (a shared intro); only the
    # second enclosure (Atom allows several) differs. Built directly, for brevity.
    entries = tuple(
        ParsedEntry(
            guid=None,
            link=None,
            title=ROUNDUP,
            published=datetime(2026, 11, 6, 10, tzinfo=UTC),
            enclosures=("http://cdn.pod.example/intro.mp3", f"http://cdn.pod.example/{x}.mp3"),
        )
        for x in ("a", "b", "c")
    )
    feed = ParsedFeed(url=URL, version="atom10", title="x", link=HOME, entries=entries)
    drafts = story_drafts(feed)
    assert sorted(_kinds(drafts)) == ["hash", "variant", "variant"]
    assert len({d.key for d in drafts}) == 3


def test_a_guid_shared_by_items_that_differ_only_in_link_keys_each_by_its_link() -> None:
    # One guid on every item (a broken generator) and one text: today's key stays with
    # the oldest, the others are told apart by their own links.
    photo = "A new photo is up."
    drafts = _drafts(
        _rss(
            _item("New photo", 13, description=photo, guid="photo", link="http://pod.example/p/2"),
            _item("New photo", 6, description=photo, guid="photo", link="http://pod.example/p/1"),
        )
    )
    assert [d.key for d in drafts] == ["v1:link:http://pod.example/p/2", "v1:guid:photo"]
    assert [d.canonical_url for d in drafts] == ["http://pod.example/p/2", "http://pod.example/p/1"]


def test_versions_of_one_guid_keep_the_latest_copy_whatever_the_order() -> None:
    first = _release("<p>First text.</p>", "2026-11-10T09:00:00Z")
    edited = _release("<p>Edited text.</p>", "2026-11-12T09:00:00Z")
    for body in (_atom(edited, first), _atom(first, edited)):
        (draft,) = _drafts(body, ATOM_URL)
        assert draft.key == "v1:guid:tag:pod.example,2026:r1"
        assert draft.content == "<p>Edited text.</p>"
        assert draft.canonical_url == "http://pod.example/releases/1.0"

    # RSS: no updated date; the copy with more text is kept (an edit usually adds).
    def copy(text: str) -> str:
        return _item("Release 1.0", 10, description=text, guid="r1", link="http://pod.example/r")

    short, longer = copy("Short."), copy("Short, then more.")
    for order in ((short, longer), (longer, short)):
        (draft,) = _drafts(_rss(*order))
        assert (draft.key, draft.summary) == ("v1:guid:r1", "Short, then more.")


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(
            _item("Release 1.0b", 10, description="Other", guid="r1", link="http://pod.example/r"),
            id="other-title",
        ),
        pytest.param(
            _item("Release 1.0", 11, description="Other", guid="r1", link="http://pod.example/r"),
            id="other-date",
        ),
        pytest.param(
            "<item><title>Release 1.0</title><description>Other</description>"
            '<guid isPermaLink="false">r1</guid><link>http://pod.example/r</link></item>',
            id="undated",
        ),
    ],
)
def test_a_guid_shared_by_texts_that_may_be_two_items_identifies_neither(second: str) -> None:
    # A different title or date, or no date to compare, may be a second item under a
    # reused guid: both are kept, as before (the link is shared too, so the text keys).
    first = _item("Release 1.0", 10, description="First", guid="r1", link="http://pod.example/r")
    drafts = _drafts(_rss(first, second))
    assert _kinds(drafts) == ["hash", "hash"]


def test_an_enclosure_key_has_a_scheme_twin() -> None:
    assert scheme_twin("v1:enclosure:http://cdn.pod.example/ep1.mp3") == (
        "v1:enclosure:https://cdn.pod.example/ep1.mp3"
    )
    assert scheme_twin("v1:title-date:0123:2026-11-06T10:00:00+00:00") is None


DOCUMENTS = [
    pytest.param(_rss(_episode(3, 20), _episode(2, 13), _episode(1, 6)), URL, id="episodes"),
    pytest.param(_rss(_notice(27), _notice(20), _notice(20)), URL, id="notices"),
    pytest.param(
        _atom(
            _release("<p>Edited text.</p>", "2026-11-12T09:00:00Z"),
            _release("<p>First text.</p>", "2026-11-10T09:00:00Z"),
        ),
        ATOM_URL,
        id="atom-versions",
    ),
    pytest.param(
        _rss(
            _item("New photo", 13, description="x", guid="photo", link="http://pod.example/p/2"),
            _item("New photo", 6, description="x", guid="photo", link="http://pod.example/p/1"),
        ),
        URL,
        id="one-guid-two-links",
    ),
]


@pytest.mark.parametrize(("body", "url"), DOCUMENTS)
def test_both_parsers_give_the_same_identities(body: bytes, url: str) -> None:
    assert fastparse.extract(body, {}) is not None  # the fast path takes these documents
    fast = parse_feed(body, url)
    assert fast == parse_feed(body, url, fast=False)
    assert story_drafts(fast) == story_drafts(parse_feed(body, url, fast=False))


# --- properties -------------------------------------------------------------------------------

_DAYS = [None, datetime(2026, 11, 6, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC)]
_entries = st.builds(
    ParsedEntry,
    guid=st.sampled_from([None, None, "g1", "g2"]),
    link=st.sampled_from([None, None, HOME, "http://pod.example/a", "http://pod.example/b"]),
    title=st.sampled_from([ROUNDUP, ADVISORY]),
    summary=st.sampled_from([None, NOTICE, "Other text."]),
    published=st.sampled_from(_DAYS),
    updated=st.sampled_from(_DAYS),
    enclosures=st.sampled_from(
        [(), ("http://cdn.pod.example/1.mp3",), ("http://cdn.pod.example/2.mp3",)]
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_entries, max_size=8), st.randoms(use_true_random=False))
def test_keys_are_unique_order_free_and_lose_no_key_less_item(
    entries: list[ParsedEntry], rnd: random.Random
) -> None:
    def feed(items: list[ParsedEntry]) -> ParsedFeed:
        return ParsedFeed(url=URL, version="rss20", title="x", link=HOME, entries=tuple(items))

    drafts = story_drafts(feed(entries))
    assert len({d.key for d in drafts}) == len(drafts)
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert set(story_drafts(feed(shuffled))) == set(drafts)
    # Entries with neither guid nor link that differ in text, enclosure or date are
    # never folded into one story.
    key_less = {
        (content_hash(e.title, e.summary, e.content), e.enclosures, e.published)
        for e in entries
        if e.guid is None and e.link is None
    }
    assert len(drafts) >= len(key_less)
