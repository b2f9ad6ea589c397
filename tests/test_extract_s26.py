"""Article extraction, hunted in session 26 for what a demanding user would call wrong:
each test is a bug that was, against the real parts (a local HTTP server, a SQLite
store, the worker processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_extract import PAYWALL
from test_extract_hunt import HEADLINES, _headlines_feed, _home_page, _poll_feed
from test_extract_pipeline import ARTICLE, TITLE, article_page, poll

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.extract import NOT_THE_STORY
from aggregator.types import StoryQuery


def _paywall_page(title: str, teaser: str = "") -> bytes:
    """A paywall as news sites serve one: the story's headline, perhaps its first
    sentence, then the subscription notice."""
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{teaser}</p><div class='paywall'><p>{PAYWALL}</p></div></article></body></html>"
    ).encode()


def test_a_paywall_keeping_the_headline_is_not_stored_as_the_article(
    tmp_path: Path, server: LocalServer
) -> None:
    """A paywall or consent page that shows the story's headline above its notice (as
    nearly every paywall does) passed the "does the text mention the story?" check on
    the headline alone: the notice was stored as the story's full text ("ok"), shown and
    classified as the article, and its SimHash clustered the site's paywalled stories
    together. The headline repeated on the page says nothing of its text: the notice is
    refused as the consent page without the headline is."""
    titled = f"s0 {TITLE}"  # the title poll() gives the story linking to /page/0
    pages = [
        {"body": _paywall_page(titled)},
        {"body": _paywall_page(f"s1 {TITLE}", "The registry said on Tuesday.")},
    ]
    results, stories = poll(tmp_path, server, pages)
    assert results == [("ok", 2)]
    for key in ("s0", "s1"):
        story = stories[key]
        assert story.full_text is None, story.full_text
        assert story.extraction_status == "failed"
        assert story.extraction_error == NOT_THE_STORY


def _redirected_headlines(server: LocalServer, targets: list[str]) -> str:
    """A feed of the three HEADLINES whose article links ``/a/i`` redirect to
    ``targets[i]``, each serving the site's front page (every headline with its first
    paragraph); its URL."""
    for target in set(targets):
        server.route(target, body=_home_page(), content_type="text/html")
    links = [server.redirect(f"/a/{i}", server.url(t)) for i, t in enumerate(targets)]
    return _headlines_feed(server, links)


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param(["/en/", "/index.html", "/en-us/index.php"], id="front-page-addresses"),
        pytest.param(["/news/"] * 3, id="one-page-for-all"),
    ],
)
def test_links_redirected_to_one_page_do_not_all_take_its_text(
    tmp_path: Path, server: LocalServer, targets: list[str]
) -> None:
    """A site that redirects its article links to its home page (articles taken down, a
    region or consent redirect) at another address than "/" ("/en/", "/index.html"), or
    all to one section page: every story took that page, which mentions every
    headline, as its article (status ok, the same text for all), and with it the
    topics of the others (a firmware flaw tagged "DNS" and "Cloud Computing"). Only a
    redirect to "/" itself was recognised."""
    feed = _redirected_headlines(server, targets)
    stories = _poll_feed(tmp_path, feed)
    assert len(stories) == 3
    for story in stories:
        assert story.full_text is None, story.title
        assert story.extraction_status == "failed"
        assert story.extraction_error and "redirected to" in story.extraction_error


def test_a_long_article_with_unclosed_tags_is_read_to_its_end(
    tmp_path: Path, server: LocalServer
) -> None:
    """An article whose paragraphs each leave a tag open (``<p><font>``, as old CMSes
    and hand-written pages do) nests one level deeper per paragraph. libxml2 stops
    reading a document at 256 levels by default: past ~125 paragraphs the rest of the
    article was silently dropped, and the truncated text stored as the article ("ok").
    Browsers show it all; so does the extractor now, up to 2,048 levels."""
    paragraphs = "".join(f"<p><font size=2>Paragraph {i}: {ARTICLE[:120]}" for i in range(300))
    page = (
        f"<html><head><title>s0 {TITLE}</title></head><body><article><h1>s0 {TITLE}</h1>"
        f"{paragraphs}<p>The last laggards moved over on Sunday.</p></article></body></html>"
    )
    results, stories = poll(tmp_path, server, [{"body": page.encode()}])
    assert results == [("ok", 1)]
    story = stories["s0"]
    assert story.extraction_status == "ok", story.extraction_error
    assert story.full_text is not None
    assert story.full_text.count("Paragraph ") == 300
    assert "The last laggards moved over on Sunday." in story.full_text


def _atom(title: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Site</title><entry><title>{title}</title>"
        f'<content type="html">&lt;p&gt;{ARTICLE * 2}&lt;/p&gt;</content></entry></feed>'
    ).encode()


@pytest.mark.parametrize(
    "content_type", ["application/atom+xml", "text/xml; charset=utf-8", "application/xml"]
)
def test_a_link_to_a_feed_is_not_read_as_an_article(
    tmp_path: Path, server: LocalServer, content_type: str
) -> None:
    """A story linking to a feed (a directory's "new podcast" item, an entry's own Atom
    document): trafilatura read the Atom document's text with its elements glued
    together ("...of all zonesThe registry said...", the site's title stuck to the
    entry's) and that was stored as the article. A feed is not a web page: refused as
    a PDF or JSON is, with why."""
    page = {"body": _atom(f"s0 {TITLE}"), "content_type": content_type}
    results, stories = poll(tmp_path, server, [page])
    assert results == [("ok", 1)]
    story = stories["s0"]
    assert story.full_text is None, story.full_text
    assert story.extraction_status == "failed"
    assert story.extraction_error and "not an HTML page" in story.extraction_error


def test_one_article_in_two_feeds_redirected_to_its_page_is_read_for_both(
    tmp_path: Path, server: LocalServer
) -> None:
    """Two feeds carrying the same article (a site's main feed and a topic feed), its
    link redirected to its page (http to https, a tracker): `aggregator extract` took the
    two stories' one page for a page every link leads to, and failed both."""
    page = server.route("/final/a", body=article_page().encode(), content_type="text/html")
    link = server.redirect("/a", page)
    settings = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(settings) as app:
        for i in range(2):
            feed = (
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{i}</title>'
                f"<item><title>{TITLE}</title><link>{link}</link><guid>g{i}</guid>"
                "<description>Teaser.</description></item></channel></rss>"
            )
            app.add_feed(server.route(f"/feed{i}", body=feed.encode()), discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [1, 1]
        done = app.extract_waiting()
        assert (done.tried, done.extracted, done.failed) == (2, 2, 0)
        (story,) = app.stories(StoryQuery(limit=None))  # one story, two sources
        for copy in (story, *app.also_covered(story)):
            assert copy.extraction_status == "ok", copy.extraction_error


@pytest.mark.parametrize("content_type", [None, "text/html; charset=utf-8"])
def test_json_served_without_its_type_is_not_read_as_an_article(
    tmp_path: Path, server: LocalServer, content_type: str | None
) -> None:
    """A story linking to a JSON document served with no Content-Type, or as text/html
    (PHP's default): trafilatura read the HTML inside its strings, and the article was
    stored with JSON's escapes as its text ("It\\u2019s \\u201cquoted\\u201d"). Refused
    by its bytes as it is by its type."""
    document = {"id": 12, "body": article_page("It’s “quoted” — " + ARTICLE)}
    page = {"body": json.dumps(document).encode(), "content_type": content_type}
    results, stories = poll(tmp_path, server, [page])
    assert results == [("ok", 1)]
    story = stories["s0"]
    assert story.full_text is None, story.full_text
    assert story.extraction_status == "failed"
    assert story.extraction_error == "not an HTML page (JSON)"


def test_a_page_served_at_every_link_is_no_storys_article(
    tmp_path: Path, server: LocalServer
) -> None:
    """A site serving one page at every article URL, without a redirect (a "page not
    found" answered 200 with the latest headlines, a script-built site's shell page
    with the front page in it): each story took that page, which mentions every
    headline, as its article, the same text for all. Pages of different stories with
    the same text are none of them's article."""
    soft_404 = (
        "<html><head><title>Page not found</title></head><body><main>"
        "<h1>Sorry, we couldn't find that page</h1><p>The page you were looking for may "
        "have moved or no longer exists. Try searching our archive or browse the latest "
        "stories below.</p><h2>Latest news</h2>"
        + "".join(f"<h3>{t}</h3><p>{p}</p>" for t, p in HEADLINES)
        + "</main></body></html>"
    ).encode()
    links = [
        server.route(f"/a/{i}", body=soft_404, content_type="text/html")
        for i in range(len(HEADLINES))
    ]
    stories = _poll_feed(tmp_path, _headlines_feed(server, links))
    assert len(stories) == 3
    for story in stories:
        assert story.full_text is None, story.title
        assert story.extraction_status == "failed"
        assert story.extraction_error and "the same text as" in story.extraction_error
