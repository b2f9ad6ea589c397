"""Session 27 hunt: near-duplicates and story identity against what real feeds carry
(boilerplate under every item, ...), through the real App, a local HTTP server and real
SQLite and PostgreSQL databases."""

from __future__ import annotations

from html import escape

from clockedapp import Clock, any_app, app, clock
from httpserver import LocalServer
from test_dedupe_audit import _poll, _titles

from aggregator.app import App
from aggregator.neardup import boilerplate, fingerprint, hamming
from aggregator.store.writes import NEAR_DUP_MAX_DISTANCE
from aggregator.types import StoryQuery

__all__ = ["any_app", "app", "clock"]  # the fixtures (clockedapp)


def _rss(items: str, link: str) -> bytes:
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
    date: str = "20 Nov 2026 09:00:00 GMT",
) -> str:
    parts = [f"<title>{escape(title)}</title>", f"<pubDate>{date}</pubDate>"]
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
    parts.append(f"<description>{escape(text)}</description>")
    return f"<item>{''.join(parts)}</item>"


# --- boilerplate under every item -------------------------------------------------------------

#: What one site's feeds put under every item: a newsletter sign-up, a cookie notice, a
#: "Read more on ..." line and the publisher's "About" paragraph (137 words).
SITE_BOILERPLATE = (
    "<p>Sign up for our free daily newsletter to get the latest internet industry news, "
    "analysis and interviews delivered to your inbox every morning. You can unsubscribe at "
    "any time.</p><p>We use cookies to personalise content and ads, to provide social media "
    "features and to analyse our traffic. We also share information about your use of our "
    "site with our advertising and analytics partners, who may combine it with other "
    "information you have provided to them.</p><p>Read more on Example Tech News, the "
    "leading source of news on domains, hosting, cloud and the business of the internet. "
    "Follow us on Mastodon, LinkedIn and Bluesky.</p><p>About Example Media: Example Media "
    "publishes news and research on the internet infrastructure industry for registrars, "
    "registries, hosting providers and investors in more than 90 countries. Send tips, "
    "corrections and press releases to news@example.com.</p>"
)
#: Another site's footer, under its syndicated copies
WIRE_BOILERPLATE = (
    "<p>Distributed by Industry Wire. Republished with permission; all rights reserved by "
    "the original publisher.</p><p>Get Industry Wire's morning briefing: the day's stories "
    "on registries, registrars, hosting and cloud, every weekday at 7am.</p>"
)
#: (title, teaser): one site's stories of one day
STORIES = {
    "verisign": (
        "Verisign reports rise in .com registrations",
        "Verisign said .com registrations rose 2% in the third quarter, led by demand from Asia.",
    ),
    "cloudflare": (
        "Cloudflare outage hits edge network for two hours",
        "A faulty configuration change took parts of Cloudflare's edge offline on Tuesday.",
    ),
    "hosting": (
        "Hosting firm acquires rival in cloud deal",
        "The Dutch hosting company agreed to buy a smaller rival to expand its cloud business.",
    ),
    "phishing": (
        "Phishing campaign abuses free subdomains",
        "Researchers found thousands of phishing pages on free subdomains of a hosting platform.",
    ),
    "tls": (
        "Browser makers drop support for old TLS",
        "Chrome and Firefox will stop connecting to sites that only offer TLS 1.0 or 1.1.",
    ),
}


def _site_item(name: str, footer: str = SITE_BOILERPLATE, site: str = "news.example") -> str:
    title, teaser = STORIES[name]
    return _item(
        title, text=f"<p>{teaser}</p>{footer}", link=f"https://{site}/2026/11/{name}", guid=name
    )


def test_two_stories_of_one_site_sharing_its_boilerplate_are_two_stories(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """A site's main feed and its security feed put the same 137 words of newsletter
    sign-up, cookie notice, "Read more on ..." and "About us" under a one-sentence teaser.
    The SimHashes of two of its stories of one day (an acquisition, a phishing report)
    were 2 bits apart, a near-duplicate: the phishing report was hidden under the
    acquisition. What every item of a document repeats says nothing about its story:
    the fingerprint leaves it out, and the two are two stories."""
    footed = [
        fingerprint(STORIES[n][0], f"{STORIES[n][1]}\n{SITE_BOILERPLATE}")
        for n in ("hosting", "phishing")
    ]
    assert hamming(*footed) <= NEAR_DUP_MAX_DISTANCE  # the premise  # type: ignore[arg-type]
    main = "".join(_site_item(n) for n in ("verisign", "cloudflare", "hosting"))
    app.add_feed(server.route("/main", body=_rss(main, "https://news.example/")), discover=False)
    security = server.route("/security", body=_rss(_site_item("tls"), "https://news.example/"))
    app.add_feed(security, discover=False)
    _poll(app, clock)
    # the phishing report comes alone among the feed's stories stored already
    both = _site_item("phishing") + _site_item("tls")
    server.route("/security", body=_rss(both, "https://news.example/"))
    assert sorted(r.new for r in _poll(app, clock)) == [0, 1]
    assert _titles(app) == sorted(title for title, _ in STORIES.values())


def test_a_syndicated_copy_under_other_boilerplate_is_one_story(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """The acquisition story republished by a wire under its own footer (with its other
    stories) was 32 SimHash bits from the site's copy, under the same title: two
    stories. Without the footers their texts are the same: one story."""
    main = "".join(_site_item(n) for n in ("verisign", "cloudflare", "hosting"))
    app.add_feed(server.route("/main", body=_rss(main, "https://news.example/")), discover=False)
    _poll(app, clock)
    wire = "".join(_site_item(n, WIRE_BOILERPLATE, "wire.example") for n in ("hosting", "tls"))
    app.add_feed(server.route("/wire", body=_rss(wire, "https://wire.example/")), discover=False)
    _poll(app, clock)
    assert _titles(app) == sorted(
        STORIES[n][0] for n in ("verisign", "cloudflare", "hosting", "tls")
    )
    (hosting,) = [s for s in app.stories(StoryQuery(limit=None)) if s.link.endswith("hosting")]
    assert [s.link for s in app.also_covered(hosting)] == ["https://wire.example/2026/11/hosting"]


def test_boilerplate_is_what_texts_under_other_titles_repeat() -> None:
    """Sentences (title_key) repeated under two titles, in plain text or one per line;
    not what copies of one story under one title share, nor a sentence once."""
    footer = "Read more on Example News. Sign up for our newsletter!"
    found = boilerplate(
        [
            ("Registry signs every zone", f"The registry signed its zones. {footer}"),
            ("Resolver outage in Europe", f"A resolver failed on Monday.\n{footer}"),
            ("Resolver outage in Europe", "A resolver failed on Monday.\nIt is back."),
            ("Resolver outage in Europe!", "It is back."),  # one title, as title_key has it
        ]
    )
    assert found == {"read more on example news", "sign up for our newsletter"}
    text = f"A resolver failed on Monday. {footer}"
    title = "Resolver outage in Europe"
    assert fingerprint(title, text, found) == fingerprint(title, "A resolver failed on Monday.")
    assert fingerprint(title, text, frozenset()) == fingerprint(title, text)


# --- a guid reused for another story ----------------------------------------------------------


def _numbered(n: int, guid: str) -> str:
    """Story ``n`` of a feed that numbers its items by their place in the list."""
    words = " ".join(f"w{n}x{i}" for i in range(30))  # texts far apart (SimHash)
    return _item(
        f"Registry news number {n} of the week",
        text=f"Text of story {n}: {words}",
        link=f"https://site.example/news/{n}",
        guid=guid,
        date=f"20 Nov 2026 {8 + n:02d}:00:00 GMT",
    )


def test_a_guid_reused_for_another_story_keeps_both_stories(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A feed that numbers its items by their place in the list ("1" the newest) gives
    each stored story's guid to the next story at the next poll. The stored stories were
    overwritten each by the next: the new story came in as an edit of the one before it
    (with its id, first-seen time, labels and cluster), and the oldest, stored again as
    new at the URL its row had just left, joined that row's cluster and was hidden.
    A guid whose stored story is at another link under another title with other text is
    another item: the stored story keeps its row, re-keyed to the guid it now has (its
    link says which), and the new story is new."""
    app = any_app
    url = server.route("/f", body=_rss(_numbered(1, "1") + _numbered(0, "2"), "https://s/"))
    app.add_feed(url, discover=False)
    _poll(app, clock)
    before = {s.title: s.id for s in app.stories(StoryQuery(limit=None))}
    shifted = _numbered(2, "1") + _numbered(1, "2") + _numbered(0, "3")
    server.route("/f", body=_rss(shifted, "https://s/"))
    assert [r.new for r in _poll(app, clock)] == [1]
    stories = app.store.get_stories(app.store.story_ids())
    assert sorted(s.title for s in stories) == [
        f"Registry news number {n} of the week" for n in range(3)
    ]
    after = {s.title: s.id for s in app.stories(StoryQuery(limit=None))}
    assert len(after) == 3 and all(after[title] == i for title, i in before.items())
    for story in stories:
        assert story.link == f"https://site.example/news/{story.title.split()[3]}"
    # the next poll, with nothing new, changes nothing
    assert [(r.new, r.updated) for r in _poll(app, clock)] == [(0, 0)]
    # a list of three: the oldest leaves it as the others move down, and keeps its story
    server.route(
        "/f", body=_rss(_numbered(3, "1") + _numbered(2, "2") + _numbered(1, "3"), "https://s/")
    )
    assert [r.new for r in _poll(app, clock)] == [1]
    assert len(app.stories(StoryQuery(limit=None))) == len(app.store.story_ids()) == 4


def test_a_story_rewritten_under_its_guid_at_a_new_link_is_updated(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """The other side: a breaking story rewritten under its guid (WordPress's "?p=123")
    with a new title, a new slug and a new text is the same post, updated: nothing else
    in the document is at its old link, and nothing stored at its new one."""
    app, guid = any_app, "https://site.example/?p=123"
    first = _item("Explosion reported at chemical plant", guid=guid,
                  link="https://site.example/2026/11/explosion-reported",
                  text="Emergency services are responding to reports of an explosion.")  # fmt: skip
    others = _numbered(1, "https://site.example/?p=120")
    app.add_feed(server.route("/f", body=_rss(first + others, "https://s/")), discover=False)
    _poll(app, clock)
    text = (
        "Five workers died when a reactor vessel burst on Thursday night, the fire brigade "
        "said; the plant will stay shut pending an inquiry."
    )
    rewritten = _item("Five dead in chemical plant blast", guid=guid, text=text,
                      link="https://site.example/2026/11/five-dead-in-plant-blast")  # fmt: skip
    server.route("/f", body=_rss(rewritten + others, "https://s/"))
    assert [(r.new, r.updated) for r in _poll(app, clock)] == [(0, 1)]
    assert sorted(s.title for s in app.store.get_stories(app.store.story_ids())) == [
        "Five dead in chemical plant blast",
        "Registry news number 1 of the week",
    ]


def test_a_guid_a_feed_gives_each_days_item_at_one_page_keeps_each_days_story(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """A "quote of the day" feed whose one item keeps its guid ("quote-of-the-day") and
    its link (the page of the day's quote) while its title, text and date change each
    day: each day's quote was taken for an edit of the first day's story and overwrote
    it, the feed's earlier quotes lost. The feed without guids, keyed by the page, keeps
    each day's story (session 26); so does this one now. An edit (the text near, under
    the same guid, whatever the date) still updates the story."""
    app, page = any_app, "https://site.example/today"
    url = ""
    for day, word in ((16, "alpha"), (17, "beta"), (18, "gamma")):
        text = " ".join(f"{word}{i}" for i in range(60))
        item = _item(f"Quote of the day: {word}", text=text, link=page,
                     guid="quote-of-the-day", date=f"{day} Nov 2026 08:00:00 GMT")  # fmt: skip
        url = server.route("/q", body=_rss(item, "https://site.example/"))
        if day == 16:
            app.add_feed(url, discover=False)
        assert [(r.new, r.updated) for r in _poll(app, clock, hours=24)] == [(1, 0)]
    assert _titles(app) == [f"Quote of the day: {w}" for w in ("alpha", "beta", "gamma")]
    text = " ".join(f"gamma{i}" for i in range(60)).replace("gamma7 ", "delta7 ")
    item = _item("Quote of the day: gamma", text=text, link=page, guid="quote-of-the-day",
                 date="19 Nov 2026 09:00:00 GMT")  # fmt: skip
    server.route("/q", body=_rss(item, "https://site.example/"))
    assert [(r.new, r.updated) for r in _poll(app, clock, hours=24)] == [(0, 1)]
    assert len(app.store.story_ids()) == 3


def test_a_story_a_generator_stamps_with_each_days_guid_and_date_is_shown_once(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """A generated feed (a scraper's) gives its item a new guid and the time of the
    fetch as its date at each fetch, with the same link, title and text. Polled once a
    day, each copy was dated a day from the stored ones at the page, taken for another
    day's item of a "today" page and given a cluster of its own: the story was listed
    once more every day. The same text at the page is the same story, whatever its
    date; another text a day apart is still another day's item."""
    page = "https://site.example/2026/11/registry-signs-every-zone"
    text = " ".join(f"alpha{i}" for i in range(40))
    for day in (16, 17, 18):
        item = _item("Registry signs every zone it runs", text=text, link=page,
                     guid=f"g-{day}", date=f"{day} Nov 2026 08:00:00 GMT")  # fmt: skip
        url = server.route("/f", body=_rss(item, "https://site.example/"))
        if day == 16:
            app.add_feed(url, discover=False)
        _poll(app, clock, hours=24)
    (story,) = app.stories(StoryQuery(limit=None))
    assert len(app.also_covered(story)) == 2  # stored three times, shown once
    other = _item("Registry signs every zone it runs", text=text.replace("alpha", "beta"),
                  link=page, guid="g-19", date="19 Nov 2026 08:00:00 GMT")  # fmt: skip
    server.route("/f", body=_rss(other, "https://site.example/"))
    _poll(app, clock, hours=24)
    assert len(app.stories(StoryQuery(limit=None))) == 2
