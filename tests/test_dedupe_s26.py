"""Session 26 hunt: story identity, deduplication and re-polls, through the real App, a
local HTTP server and real SQLite and PostgreSQL databases."""

from __future__ import annotations

from html import escape

import pytest
from clockedapp import Clock, any_app, clock
from httpserver import LocalServer
from test_dedupe_audit import _poll

from aggregator.app import App
from aggregator.types import StoryQuery

__all__ = ["any_app", "clock"]  # the fixtures (clockedapp)


def _rss(items: str, link: str = "https://status.example/") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>{link}</link><description>d</description>{items}</channel></rss>"
    ).encode()


def _item(
    title: str,
    *,
    text: str,
    link: str | None = None,
    guid: str | None = None,
    date: str | None = None,
) -> str:
    parts = [f"<title>{escape(title)}</title>"]
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description>{escape(text)}</description>")
    return f"<item>{''.join(parts)}</item>"


NOTICE = (
    "The registry's provisioning system will be unavailable on Saturday between 02:00 and "
    "04:00 UTC while the database cluster is moved to new hardware in the second data "
    "centre. Registrars should expect EPP sessions to be refused during the window and "
    "queued transfers to be processed once the system is back. Zone publication and DNS "
    "resolution are not affected by this work. We will post an update here when the "
    "maintenance has finished and all services are confirmed to be running normally."
)


def _summary(item: str) -> str:
    return item.split("<description>")[1].split("</description>")[0].replace("&#x27;", "'")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            _item("Planned maintenance", text=NOTICE, date="20 Nov 2026 08:00:00 GMT"),
            _item(
                "Planned maintenance",
                text=NOTICE.replace("Registrars", "Registrar's"),
                date="20 Nov 2026 08:00:00 GMT",
            ),
            id="text-keyed-typo-fixed",
        ),
        pytest.param(
            _item("Planned maintenance", text=NOTICE),
            _item("Planned maintenance", text=NOTICE.replace("this work.", "this work!")),
            id="text-keyed-undated-punctuation-fixed",
        ),
        pytest.param(
            _item(
                "Planned maintenance",
                text=NOTICE,
                guid="n-1764600000",
                date="20 Nov 2026 08:00:00 GMT",
            ),
            _item(
                "Planned maintenance",
                text=NOTICE,
                guid="n-1764607200",
                date="20 Nov 2026 08:00:00 GMT",
            ),
            id="guid-with-a-timestamp",
        ),
    ],
)
def test_an_item_without_a_link_is_one_story_when_its_key_changes(
    any_app: App, server: LocalServer, clock: Clock, first: str, second: str
) -> None:
    """An item without a link is keyed by its guid, else by its text: a feed whose
    guids carry the time of the fetch, or a publisher fixing a typo in an item keyed by
    its text, gave the item a new key at the next poll. Nothing clusters one feed's
    stories by their text, and there was no link to cluster them by: the same notice
    was listed twice (once more at every poll of a rotating guid). The story the
    document no longer lists, under the same title and date, with the same or
    near-identical text, is that item: it is updated and takes the new key."""
    app = any_app
    app.add_feed(server.route("/status", body=_rss(first)), discover=False)
    assert [r.new for r in _poll(app, clock)] == [1]
    server.route("/status", body=_rss(second))
    (result,) = _poll(app, clock)
    assert (result.new, len(app.stories(StoryQuery(limit=None)))) == (0, 1)
    (story,) = app.store.get_stories(app.store.story_ids())  # stored once
    assert story.summary == _summary(second)


WEEK_LATER = NOTICE.replace("Saturday", "Sunday")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            _item("Planned maintenance", text=NOTICE, date="13 Nov 2026 08:00:00 GMT"),
            _item("Planned maintenance", text=WEEK_LATER, date="20 Nov 2026 08:00:00 GMT"),
            id="next-weeks-notice",
        ),
        pytest.param(
            _item("Planned maintenance", text=NOTICE, date="20 Nov 2026 08:00:00 GMT"),
            _item("Planned maintenance", text=WEEK_LATER, date="20 Nov 2026 08:00:00 GMT")
            + _item("Planned maintenance", text=NOTICE, date="20 Nov 2026 08:00:00 GMT"),
            id="still-listed",
        ),
        pytest.param(
            _item("Planned maintenance", text=NOTICE, date="20 Nov 2026 08:00:00 GMT"),
            _item("Emergency maintenance", text=NOTICE, date="20 Nov 2026 08:00:00 GMT"),
            id="another-title",
        ),
    ],
)
def test_items_without_a_link_that_are_two_stories_stay_two(
    any_app: App, server: LocalServer, clock: Clock, first: str, second: str
) -> None:
    """The other side: a notice repeated a week later, an item the document still lists
    beside the new one, or another title is another story, stored and listed."""
    app = any_app
    app.add_feed(server.route("/status", body=_rss(first)), discover=False)
    _poll(app, clock)
    server.route("/status", body=_rss(second))
    (result,) = _poll(app, clock)
    assert (result.new, result.updated) == (1, 0)
    assert len(app.stories(StoryQuery(limit=None))) == 2


def test_undated_episodes_sharing_title_and_text_are_each_a_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """Podcast episodes under one title and text, with their own guids but no link and
    no date: the episode the document no longer lists is not the new one."""

    def episode(n: int) -> str:
        enclosure = f'<enclosure url="https://cdn.example/ep{n}.mp3" type="audio/mpeg"/>'
        item = _item("Weekly news roundup", text="This week's news.", guid=f"ep{n}")
        return item.replace("</item>", f"{enclosure}</item>")

    app = any_app
    app.add_feed(server.route("/pod", body=_rss(episode(1) + episode(2))), discover=False)
    _poll(app, clock)
    server.route("/pod", body=_rss(episode(2) + episode(3)))
    (result,) = _poll(app, clock)
    assert (result.new, result.updated) == (1, 0)
    assert len(app.store.story_ids()) == 3


def test_a_page_a_feed_without_guids_links_each_day_to_keeps_each_days_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A "quote of the day" feed without guids lists one item, linked to the page of
    the day's quote: its link is its key. Each day's item (another title, text and date)
    was taken for an edit of the first day's story, which it overwrote: the feed's
    earlier quotes were lost, though the README says such a feed keeps every day's
    story. An item dated a day or more from the stored one with another text is another
    story; an edit (the text near, whatever the date) still updates it."""
    app, page = any_app, "https://site.example/today"
    url = ""
    for day, word in ((16, "alpha"), (17, "beta"), (18, "gamma")):
        text = " ".join(f"{word}{i}" for i in range(60))
        date = f"{day} Nov 2026 08:00:00 GMT"
        item = _item(f"Quote of the day: {word}", link=page, text=text, date=date)
        url = server.route("/q", body=_rss(item, "https://site.example/"))
        if day == 16:
            app.add_feed(url, discover=False)
        assert [(r.new, r.updated) for r in _poll(app, clock, hours=24)] == [(1, 0)]
    titles = [f"Quote of the day: {w}" for w in ("alpha", "beta", "gamma")]
    assert sorted(s.title for s in app.stories(StoryQuery(limit=None))) == titles
    # the day's quote corrected and re-dated a day later: an edit, not another story
    text = " ".join(f"gamma{i}" for i in range(60)).replace("gamma7 ", "delta7 ")
    item = _item("Quote of the day: gamma", link=page, text=text, date="19 Nov 2026 09:00:00 GMT")
    server.route("/q", body=_rss(item, "https://site.example/"))
    assert [(r.new, r.updated) for r in _poll(app, clock, hours=24)] == [(0, 1)]
    assert len(app.store.story_ids()) == 3


def test_a_live_page_linked_under_one_title_stays_one_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """The other side: a live blog without a guid, rewritten and re-dated every day
    under its title, is one story, updated."""
    app, page = any_app, "https://news.example/live/election"
    for day, word in ((16, "alpha"), (17, "beta")):
        text = " ".join(f"{word}{i}" for i in range(60))
        item = _item("Live: election results", link=page, text=text,
                     date=f"{day} Nov 2026 08:00:00 GMT")  # fmt: skip
        url = server.route("/live", body=_rss(item, "https://news.example/"))
        if day == 16:
            app.add_feed(url, discover=False)
        _poll(app, clock, hours=24)
    (story,) = app.store.get_stories(app.store.story_ids())
    assert (story.summary or "").startswith("beta0")


@pytest.mark.parametrize(
    "text", ["Read more", "Continue reading →", "Weekly roundup", "Weekly roundup."]
)
def test_two_sites_posts_under_a_short_title_and_a_boilerplate_line_stay_apart(
    any_app: App, server: LocalServer, clock: Clock, text: str
) -> None:
    """Two sites' "Weekly roundup" posts of one Friday, each feed giving a line of
    boilerplate (or the title again) as the text: their SimHashes, over three or four
    words, were equal, so the second site's post joined the first's cluster and was
    hidden. Titles this short are not matched by title (TITLE_MATCH_MIN_WORDS), and a
    text this short does not tell two stories apart either: each is shown."""
    app = any_app
    for site, hour in (("a", 8), ("b", 15)):
        item = _item("Weekly roundup", text=text, guid=f"{site}1",
                     link=f"https://{site}.example/2026/11/20/roundup",
                     date=f"20 Nov 2026 {hour:02d}:00:00 GMT")  # fmt: skip
        body = _rss(item, f"https://{site}.example/")
        app.add_feed(server.route(f"/{site}", body=body), discover=False)
    _poll(app, clock)
    assert len(app.stories(StoryQuery(limit=None))) == 2


def test_an_item_without_a_guid_edited_and_re_dated_is_updated(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """The other side of a "today" page: an item keyed by its link whose title typo is
    fixed, teaser rewritten in part (14 SimHash bits away) and date moved a day on is
    the same story, updated, not another day's item."""
    before = (
        "The registry signed every zone it runs on Monday, the first to do so in Europe. "
        "Registrars were told last month. The move follows two years of tests with resolvers."
    )
    after = before.replace("last month", "in October").replace(
        "with resolvers.", "with large resolvers and ISPs."
    )
    link = "https://site.example/2026/11/registry"
    app = any_app
    first = _item("Registy signs every zone", link=link, text=before,
                  date="18 Nov 2026 10:00:00 GMT")  # fmt: skip
    app.add_feed(server.route("/f", body=_rss(first, "https://site.example/")), discover=False)
    _poll(app, clock)
    fixed = _item("Registry signs every zone", link=link, text=after,
                  date="19 Nov 2026 12:00:00 GMT")  # fmt: skip
    server.route("/f", body=_rss(fixed, "https://site.example/"))
    assert [(r.new, r.updated) for r in _poll(app, clock)] == [(0, 1)]
    (story,) = app.store.get_stories(app.store.story_ids())
    assert (story.title, story.summary) == ("Registry signs every zone", after)
