"""Session 27 hunt: what a feed document repeats under every item (its boilerplate,
``neardup.boilerplate``) against the decision to fetch a story's page and what the page
then gives it, through the real App, a local HTTP server, the worker processes and a
real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_dedupe_s27 import SITE_BOILERPLATE, STORIES, _item, _rss
from test_extract_pipeline import ARTICLE

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.neardup import fingerprint, hamming
from aggregator.store.writes import NEAR_DUP_MAX_DISTANCE
from aggregator.textutil import html_to_text
from aggregator.types import StoryQuery


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as a:
        yield a


def _page(title: str) -> bytes:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{title}. {ARTICLE}</p></article></body></html>"
    ).encode()


def _footed_feed(server: LocalServer) -> str:
    """A feed of two teasers above the site's footer, each linking to its article."""
    assert len(html_to_text(SITE_BOILERPLATE)) > 850  # the premise
    items = ""
    for name in ("verisign", "hosting"):
        title, teaser = STORIES[name]
        link = server.route(f"/2026/{name}", body=_page(title), content_type="text/html")
        items += _item(title, text=f"<p>{teaser}</p>{SITE_BOILERPLATE}", link=link, guid=name)
    return server.route("/feed", body=_rss(items, "https://news.example/"))


def _assert_articles_taken(app: App) -> None:
    stories = app.stories(StoryQuery(limit=None))
    assert len(stories) == 2
    for story in stories:
        assert story.extraction_status == "ok", story.extraction_error
        assert story.full_text and "signed with DNSSEC" in story.full_text
        assert len(story.full_text) < len(html_to_text(SITE_BOILERPLATE))


def test_a_teaser_above_the_sites_footer_gets_its_page(app: App, server: LocalServer) -> None:
    """Each item of the feed is a one-sentence teaser above the site's 900 characters of
    newsletter sign-up, cookie notice and "About us": 1,000 characters in all, past the
    600 below which a story's page is fetched. No page was fetched, and the stories were
    stored, tagged and searched on the footer. What the document repeats under its items
    is not the story's text: the teaser is short, the page is fetched, and its article,
    shorter than teaser and footer together, is the story's text."""
    app.add_feed(_footed_feed(server), discover=False)
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 2)]
    _assert_articles_taken(app)


def test_teasers_stored_without_their_pages_get_them_later(app: App, server: LocalServer) -> None:
    """The same stories stored by ``poll --no-extract`` wait for their pages, and
    ``aggregator extract`` takes the articles: what the feed's stories it extracts
    repeat under their titles is not counted as their feed text either."""
    app.add_feed(_footed_feed(server), discover=False)
    assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [2]
    stored = app.stories(StoryQuery(limit=None))
    assert [s.extraction_status for s in stored] == ["pending", "pending"]
    tally = app.extract_waiting()
    assert (tally.tried, tally.extracted) == (2, 2)
    _assert_articles_taken(app)


#: A company's "About", safe-harbor and trademark paragraphs under each press release
#: (about 450 words), in its feed and on its pages
_SAFE_HARBOR = (
    "About Example Networks. Example Networks, Inc. (NASDAQ: EXNW) is a leading provider of "
    "domain name registry services, managed DNS and DDoS protection for enterprises, "
    "governments and internet service providers in more than 120 countries. Founded in "
    "1998, the company operates critical internet infrastructure from 40 data centres on "
    "five continents. For more information, visit www.example-networks.com.\n"
    "Forward-Looking Statements. This press release contains forward-looking statements "
    "within the meaning of the Private Securities Litigation Reform Act of 1995. These "
    "statements involve risks and uncertainties that could cause actual results to differ "
    "materially, including competition, changes in regulation, our ability to retain "
    "customers and the other risks described in our most recent annual report on Form 10-K "
    "filed with the Securities and Exchange Commission. Example Networks undertakes no "
    "obligation to update any forward-looking statement.\n"
    "Media contact: press@example-networks.com, +1 555 0100.\n"
    "Investor contact: investors@example-networks.com. Example Networks and the Example "
    "Networks logo are trademarks of Example Networks, Inc. in the United States and other "
    "countries. All other trademarks are the property of their respective owners. Statements "
    "in this release about the timing, availability and performance of products and "
    "services, our expected financial results, the benefits customers may receive and the "
    "growth of our markets are forward-looking. Actual results may differ, and readers "
    "should not place undue reliance on them. Additional information about these risks is "
    "available in our quarterly reports on Form 10-Q."
)
_SAFE_HARBOR += "\n" + _SAFE_HARBOR.replace("Example Networks", "the Company").replace(
    "Form 10-K", "Form 20-F"
)
_RELEASES = {
    "singapore": (
        "Example Networks opens data centre in Singapore",
        "Example Networks today announced the opening of a data centre in Singapore, its "
        "fourth in Asia.",
    ),
    "shielddns": (
        "Example Networks completes acquisition of ShieldDNS",
        "Example Networks has completed its acquisition of ShieldDNS, a provider of "
        "protective DNS.",
    ),
    "cfo": (
        "Example Networks names Jane Doe chief financial officer",
        "Example Networks today announced that Jane Doe will join the company as chief "
        "financial officer on January 1.",
    ),
    "dividend": (
        "Example Networks declares quarterly dividend",
        "The board of Example Networks declared a quarterly dividend of 12 cents per share.",
    ),
}


def test_two_press_releases_over_one_safe_harbor_are_two_stories(
    app: App, server: LocalServer
) -> None:
    """A company's news feed and its investor feed carry each release whole: a sentence
    of news above 450 words of "About", safe-harbor and trademark text, which its pages
    carry too. The sentence is the story's own text, so the page is fetched (above); its
    article was fingerprinted with all that text in it, and two releases of the day, one
    in each feed and 2 SimHash bits apart, were one story, the other hidden. The page's
    text is fingerprinted without what the feed document repeats under its items, as
    the feed's text is: four releases, four stories."""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in _SAFE_HARBOR.split("\n"))
    pair = [_RELEASES[n] for n in ("singapore", "shielddns")]
    footed = [fingerprint(t, f"{t}\n{body}\n{_SAFE_HARBOR}") for t, body in pair]
    assert hamming(*footed) <= NEAR_DUP_MAX_DISTANCE  # the premise  # type: ignore[arg-type]
    for feed, names in (("news", ("singapore", "cfo")), ("investors", ("shielddns", "dividend"))):
        items = ""
        for name in names:
            title, body = _RELEASES[name]
            page = (
                f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
                f"<p>{escape(body)}</p>{paragraphs}</article></body></html>"
            )
            link = server.route(f"/{feed}/{name}", body=page.encode(), content_type="text/html")
            items += _item(title, text=f"<p>{escape(body)}</p>{paragraphs}", link=link, guid=name)
        url = server.route(f"/{feed}.xml", body=_rss(items, "https://ir.example/"))
        app.add_feed(url, discover=False)
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 2)] * 2
    stored = app.store.get_stories(app.store.story_ids())
    assert [s.extraction_status for s in stored] == ["ok"] * 4
    titles = sorted(s.title for s in app.stories(StoryQuery(limit=None)))
    assert titles == sorted(t for t, _ in _RELEASES.values())
