"""Hunt: story identity and deduplication edge cases, through the real App, a local
HTTP server and real SQLite (and PostgreSQL) databases."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
from clockedapp import Clock, _make_app, any_app, clock
from httpserver import LocalServer
from test_dedupe_audit import _poll, _titles

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.neardup import hamming, simhash
from aggregator.store.writes import NEAR_DUP_TITLE_MAX_DISTANCE
from aggregator.types import StoryQuery

__all__ = ["any_app", "clock"]  # the fixtures (clockedapp)


@pytest.fixture
def pg_app(tmp_path: Path, clock: Clock, pg_url: str) -> Iterator[App]:
    """The App on PostgreSQL only, closed after the test."""
    yield from _make_app(tmp_path, clock, pg_url)


def _rss(items: str, link: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>{link}</link><description>d</description>{items}</channel></rss>"
    ).encode()


def _item(
    title: str,
    *,
    link: str | None = None,
    guid: str | None = None,
    text: str | None = None,
    date: str | None = None,
) -> str:
    parts = [f"<title>{escape(title)}</title>"]
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    if text is not None:
        parts.append(f"<description>{escape(text)}</description>")
    return f"<item>{''.join(parts)}</item>"


THREAD = (
    "Tell us what you are working on this week! You can be bragging, grousing, sharing "
    "your passion, or explaining your pain. Talk about your current project or your pet "
    "project; whatever you want to share."
)
TITLE = "What is everyone working on this week?"


@pytest.mark.parametrize(
    "later_text",
    [
        pytest.param(THREAD, id="same-text"),
        pytest.param(f"{THREAD} Posted by the moderators.", id="same-title"),
    ],
)
def test_a_recurring_post_in_two_feeds_is_not_hidden_under_last_weeks(
    any_app: App, server: LocalServer, clock: Clock, later_text: str
) -> None:
    """A forum's weekly thread repeats its title and boilerplate text word for word, a
    week apart, each issue at its own URL. This week's, first seen in another feed of
    the site (its "new" feed, last week's in its "hot" one), was a near-duplicate of
    last week's, by SimHash or by its title, and so hidden: the list showed last
    week's thread only. Copies of one article are published within hours; issues of a
    recurring post a week (or a day) apart are two stories."""
    distance = hamming(simhash(f"{TITLE}\n{THREAD}"), simhash(f"{TITLE}\n{later_text}"))
    assert distance <= NEAR_DUP_TITLE_MAX_DISTANCE  # the premise: a match by text or title
    app = any_app
    last = _item(TITLE, link="https://forum.example/t/101", guid="101", text=THREAD,
                 date="16 Nov 2026 08:00:00 GMT")  # fmt: skip
    app.add_feed(server.route("/hot", body=_rss(last, "https://forum.example/hot")), discover=False)
    _poll(app, clock, hours=24 * 7)
    this = _item(TITLE, link="https://forum.example/t/202", guid="202", text=later_text,
                 date="23 Nov 2026 08:00:00 GMT")  # fmt: skip
    app.add_feed(server.route("/new", body=_rss(this, "https://forum.example/new")), discover=False)
    _poll(app, clock)
    links = sorted(s.link or "" for s in app.stories(StoryQuery(limit=None)))
    assert links == ["https://forum.example/t/101", "https://forum.example/t/202"]
    # the control: one issue in two feeds, published the same day, is one story
    copy = _item(TITLE, link="https://mirror.example/t/202", guid="m202", text=later_text,
                 date="23 Nov 2026 09:30:00 GMT")  # fmt: skip
    app.add_feed(
        server.route("/mirror", body=_rss(copy, "https://mirror.example/")), discover=False
    )
    _poll(app, clock)
    assert len(app.stories(StoryQuery(limit=None))) == 2
    # and so is a copy republished two days later by another site (syndication)
    late = _item(TITLE, link="https://syndicate.example/202", guid="s202", text=later_text,
                 date="25 Nov 2026 07:00:00 GMT")  # fmt: skip
    app.add_feed(
        server.route("/late", body=_rss(late, "https://syndicate.example/")), discover=False
    )
    _poll(app, clock)
    assert len(app.stories(StoryQuery(limit=None))) == 2


@pytest.mark.postgres
@pytest.mark.parametrize("when", ["before-the-lock", "after-the-lock"])
def test_a_copy_stored_while_its_first_story_is_removed_is_not_hidden(
    pg_app: App, clock: Clock, server: LocalServer, when: str
) -> None:
    """PostgreSQL, where a poll and ``feeds remove`` (or ``prune``) run at once: feed B's
    copy of feed A's story joined the cluster A's story started, and ``feeds remove A``
    committed while B's poll was still writing: the removal moved the cluster's other
    stories to a new first one, but not B's copy, not yet committed, which went in under
    a cluster no story started: listed nowhere, and every later copy of the story with
    it (a URL joins its smallest cluster). Now the first story is locked against
    deletion until the poll commits; one deleted before that is looked for again."""
    import threading

    from sqlalchemy import event

    app = pg_app
    link, text = "https://wire.example/story", " ".join(f"word{i}" for i in range(60))
    url_a = server.route(
        "/a", body=_rss(_item("Registry signs", link=link, guid="a1", text=text), "https://a.x/")
    )
    app.add_feed(url_a, discover=False)
    _poll(app, clock)
    b = _rss(_item("Registry signs", link=link, guid="b1", text=text), "https://b.x/")
    app.add_feed(server.route("/b", body=b), discover=False)
    removal = threading.Thread(target=app.remove_feed, args=(url_a,))
    seen: list[str] = []

    def between_statements(*args: object) -> None:
        """Runs ``feeds remove A`` in another session at the chosen point of B's write."""
        statement = str(args[2])
        if removal.is_alive() or removal.ident is not None:
            return
        looked_up = seen and seen[-1].startswith("SELECT story.canonical_url, ")
        if when == "before-the-lock" and looked_up and "cluster_id" in seen[-1]:
            removal.start()  # right after the URL's cluster was looked up
            removal.join(10)
        elif when == "after-the-lock" and statement.startswith("INSERT INTO story "):
            removal.start()
            removal.join(2)  # with the lock, it waits for this poll to commit
        seen.append(statement)

    event.listen(app.store.engine, "before_cursor_execute", between_statements)
    try:
        # B's (A, unchanged, is in the poll too: listed when its outcome was written
        # before the removal, which under load it can be, dropped when after)
        (result,) = [r for r in _poll(app, clock) if r.url != url_a]
    finally:
        event.remove(app.store.engine, "before_cursor_execute", between_statements)
    removal.join(10)
    assert result.status == "ok" and result.new == 1
    assert not removal.is_alive() and removal.ident is not None
    assert [s.feed_url for s in app.stories(StoryQuery(limit=None))] == [app.feeds()[0].url]
    # the next copy of the story is listed too
    app.add_feed(server.route("/c", body=b.replace(b"b1", b"c1")), discover=False)
    _poll(app, clock)
    (story,) = app.stories(StoryQuery(limit=None))
    assert story.sources == 2


def test_a_page_a_feed_links_each_day_to_keeps_each_days_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A "quote of the day" feed lists one item, linked to the page that shows the day's
    quote ("/today"): no other item of the document shares the link, so it identifies
    the item and is its canonical URL. Each day's new item (a new guid, a new text, a
    new date) joined the cluster of the first day's by that URL and was hidden under it:
    the list showed the first quote only, for ever. An item of the feed dated a day or
    more apart is another story; one whose guid changes while its date stays is not,
    and neither is another feed's item at the URL, whatever its date."""
    app, page = any_app, "https://site.example/today"
    url = ""
    for day, word in ((16, "alpha"), (17, "beta"), (18, "gamma")):
        text = " ".join(f"{word}{i}" for i in range(40))
        date = f"{day} Nov 2026 08:00:00 GMT"
        item = _item(f"Quote of the day: {word}", link=page, guid=f"q{day}", text=text, date=date)
        url = server.route("/q", body=_rss(item, "https://site.example/"))
        if day == 16:
            app.add_feed(url, discover=False)
        _poll(app, clock, hours=24)
    titles = [f"Quote of the day: {w}" for w in ("alpha", "beta", "gamma")]
    assert _titles(app) == titles
    # the same item under a new guid (a generator making one per fetch): the same story
    server.route("/q", body=_rss(item.replace("q18", "q18-again"), "https://site.example/"))
    assert [r.new for r in _poll(app, clock)] == [1]
    # another feed carrying the page days later (an aggregator dates it when posted)
    later = _item("Quote of the day: gamma", link=page, guid="x", text=text,
                  date="23 Nov 2026 08:00:00 GMT")  # fmt: skip
    app.add_feed(server.route("/agg", body=_rss(later, "https://agg.example/")), discover=False)
    _poll(app, clock)
    assert _titles(app) == titles
    assert [s.sources for s in app.stories(StoryQuery(limit=None))] == [2, 1, 1]


def test_an_edited_story_fetches_its_page_again(tmp_path: Path, server: LocalServer) -> None:
    """A poll extracts a story when it is new or its feed text changes (README), so that
    a corrected article is read again. The edited story found its own stored text by its
    canonical URL, taken as another feed's extraction of the same article: its page was
    not fetched, and the story kept the text from before the correction. Another feed's
    copy of the article still takes the stored text (tests/test_article_reuse.py)."""
    from test_extract_pipeline import ARTICLE, TITLE, article_page

    corrected = ARTICLE.replace("two years", "three years") + "Corrected: the date. "
    page = server.route("/2026/dnssec", content_type="text/html", body=article_page().encode())

    def feed(teaser: str) -> str:
        item = f"<item><title>{TITLE}</title><link>{page}</link><guid>g1</guid>"
        body = f"{item}<description>{teaser}</description></item>"
        return server.route("/feed.xml", body=_rss(body, "https://site.example/"))

    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(feed("Teaser."), discover=False)
        assert [r.extracted for r in app.update_due(all_feeds=True)] == [1]
        server.route(
            "/2026/dnssec", content_type="text/html", body=article_page(corrected).encode()
        )
        feed("Teaser, corrected.")
        (result,) = app.update_due(all_feeds=True)
        assert (result.updated, result.extracted) == (1, 1)
        assert len(server.requests_for("/2026/dnssec")) == 2
        (story,) = app.store.get_stories(app.store.story_ids())
        assert "three years" in (story.full_text or "")
