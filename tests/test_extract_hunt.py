"""Extraction of article pages, hunted for what a demanding user would call wrong: each
test is a bug that was, against the real parts (a local HTTP server, a SQLite store)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from httpserver import LocalServer
from test_extract_pipeline import article_page
from test_extraction_audit import rss

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import Story, StoryQuery

HEADLINES = [
    (
        "Registry finishes DNSSEC signing of all zones",
        "The registry said every zone under the country domain is now signed with DNSSEC "
        "after two years of work by its engineers and the registrars.",
    ),
    (
        "Cloud provider opens datacenter in Madrid region",
        "The cloud provider opened its new datacenter in the Madrid region with three "
        "availability zones for customers in Spain and Portugal.",
    ),
    (
        "Router vendor patches critical firmware flaw",
        "The router vendor released patches for a critical firmware flaw that let attackers "
        "take over home gateways remotely without credentials.",
    ),
]


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)


def _poll_feed(tmp_path: Path, feed: str) -> list[Story]:
    with make_app(_settings(tmp_path)) as app:
        app.add_feed(feed, discover=False)
        assert [r.status for r in app.update_due(all_feeds=True)] == ["ok"]
        return app.stories(StoryQuery(limit=None))


def _home_page() -> bytes:
    """A site's front page: every headline with its first paragraph, in one article."""
    sections = "".join(f"<h2>{t}</h2><p>{p} {p}</p>" for t, p in HEADLINES)
    return (
        "<html><head><title>News</title></head><body><main><article>"
        f"{sections}</article></main></body></html>"
    ).encode()


def _headlines_feed(server: LocalServer, links: list[str], home: str | None = None) -> str:
    """A feed of the three HEADLINES, each linking to ``links[i]`` (``home``: the
    channel's link), with a teaser for text; its URL."""
    items = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid isPermaLink='false'>g{i}</guid>"
        f"<description>Teaser {i}.</description></item>"
        for i, ((t, _), link) in enumerate(zip(HEADLINES, links, strict=True))
    )
    channel = f"<link>{home}</link>" if home else ""
    return server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"{channel}{items}</channel></rss>"
        ).encode(),
    )


def test_items_that_all_link_to_the_home_page_do_not_take_its_text(
    tmp_path: Path, server: LocalServer
) -> None:
    """A feed whose items all link to the site's front page (podcasts, status pages,
    small blogs' feeds) had that page fetched once per story, and every story whose title
    the front page mentions took the whole page as its article: each story then read as
    every other one, and was tagged with their topics (a firmware flaw tagged "DNS" and
    "Cloud Computing"). Such a link does not name the story (dedupe does not take it as
    its identity either): the feed's text stands and the page is not fetched."""
    home = server.route("/", body=_home_page(), content_type="text/html")
    feed = _headlines_feed(server, [home] * len(HEADLINES), home=home)
    stories = _poll_feed(tmp_path, feed)
    assert len(stories) == 3
    assert server.requests_for("/") == []
    for story in stories:
        assert story.full_text is None
        assert story.extraction_status == "skipped", story.extraction_error


def test_items_sharing_one_link_that_is_not_the_home_page_are_not_extracted(
    tmp_path: Path, server: LocalServer
) -> None:
    """The same with a "latest news" page every item links to, which is not the feed's
    home page."""
    latest = server.route("/latest", body=_home_page(), content_type="text/html")
    feed = _headlines_feed(server, [latest] * len(HEADLINES))
    stories = _poll_feed(tmp_path, feed)
    assert len(stories) == 3
    assert server.requests_for("/latest") == []
    assert {s.extraction_status for s in stories} == {"skipped"}


def test_aggregator_extract_leaves_the_pages_it_did_not_get_to_waiting(
    tmp_path: Path, server: LocalServer
) -> None:
    """`aggregator extract` over a backlog longer than its article budget marked every
    story it had not got to ``failed`` ("the feed's article pages took over 120 s"),
    none of their pages requested, and the next run said "No stories are waiting": only
    --failed would ever fetch them. A page whose request was never sent was not tried:
    it stays ``pending`` for the next run, which gets to it."""
    pages = [
        server.route(
            f"/slow/{i}", content_type="text/html", delay=2.0, body=article_page().encode()
        )
        for i in range(6)
    ]
    links = [server.url(f"/slow/{i}", host="localhost") for i in range(len(pages))]
    url = rss(server, links)
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        workers=1,
        per_host=2,
        extract_budget_s=3.0,
    )
    with make_app(settings) as app:
        app.add_feed(url, discover=False)
        (r,) = app.update_due(all_feeds=True, extract=False)
        assert r.new == 6
        first = app.extract_waiting()
        # two at a time, 2 s each: the first two are in, the next two were cut in flight
        # (deferred, as a poll defers them: their first try), the rest never asked for
        assert first.left >= 1 and first.tried + first.left == 6
        by_status: dict[str, list[Story]] = {}
        for st in app.stories(StoryQuery(limit=None)):
            by_status.setdefault(st.extraction_status, []).append(st)
        waiting = by_status.get("pending", [])
        assert len(waiting) == first.left
        # at most two pages at a time: at least two were never asked for, untouched
        untouched = [st for st in waiting if st.extraction_error is None]
        assert len(untouched) >= 2
        for st in untouched:
            assert st.link is not None
            assert server.requests_for(urlsplit(st.link).path) == []
        assert "failed" not in by_status
        second = app.extract_waiting()
        assert second.tried >= 1 and second.tried + second.left == first.left


def test_a_host_written_in_punycode_is_stalled_like_any_other(
    tmp_path: Path, server: LocalServer
) -> None:
    """A host that does not answer gets no more article requests for a while; but the
    stall was noted under the host as the fetcher names it ("bücher.invalid") and looked
    up under the link's spelling ("xn--bcher-kva.invalid", as feeds often write the
    hosts of .рф or .de sites), so it never applied: every page of a dead IDN host was
    requested, each costing its deadline. (``.invalid`` never resolves: no answer.)"""
    links = [f"http://xn--bcher-kva.invalid/a/{i}" for i in range(6)]
    url = rss(server, links)
    settings = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, workers=1, per_host=2
    )
    with make_app(settings) as app:
        app.add_feed(url, discover=False)
        (r,) = app.update_due(all_feeds=True)
        assert (r.status, r.new, r.deferred) == ("ok", 6, 4)
        pending = [
            st for st in app.stories(StoryQuery(limit=None)) if st.extraction_status == "pending"
        ]
        assert len(pending) == 4
        assert all(
            "did not answer for another page" in (st.extraction_error or "") for st in pending
        )


def test_a_page_stored_without_extraction_is_not_failed_untried_for_its_hosts_stall(
    tmp_path: Path, server: LocalServer
) -> None:
    """A story stored by `poll --no-extract` is pending "until `aggregator extract`
    fetches its page". But when one of its host's pages timed out in that run, every
    other page of the host was marked ``failed`` ("not fetched: … did not answer for
    another page") on its first try, never requested: only --failed would fetch them.
    Like a poll, that first run defers them, saying why, and the next run is their
    one later try."""
    for i in range(6):
        server.route(f"/dead/{i}", content_type="text/html", hang=True)
    url = rss(server, [server.url(f"/dead/{i}", host="localhost") for i in range(6)])
    settings = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, workers=1, per_host=2, timeout_s=1.0
    )
    with make_app(settings) as app:
        app.add_feed(url, discover=False)
        (r,) = app.update_due(all_feeds=True, extract=False)
        assert r.new == 6
    with make_app(settings) as app:
        first = app.extract_waiting()
        assert (first.tried, first.failed, first.left) == (2, 2, 4)
        stories = app.stories(StoryQuery(limit=None))
        waiting = [st for st in stories if st.extraction_status == "pending"]
        assert len(waiting) == 4
        for st in waiting:
            assert "did not answer for another page" in (st.extraction_error or "")
            assert st.link is not None
            assert server.requests_for(urlsplit(st.link).path) == []
    with make_app(settings) as app:  # the later try: no more waiting after it
        second = app.extract_waiting()
        assert (second.tried, second.failed) == (4, 4)
        assert app.extract_waiting().tried == 0


@pytest.mark.parametrize("ref", ["&#65534;", "&#65535;", "&#xFFFE;", "&#xffff;", "&#x0FFFF;"])
def test_a_reference_to_u_fffe_or_u_ffff_costs_only_itself(ref: str) -> None:
    """U+FFFE and U+FFFF are no XML characters either: libxml2 gave up on the page at
    a reference to one, as at "&#27;", and the story lost its whole article ("no article
    text found on the page"). Such a reference becomes a space, as those do."""
    from test_extract_pipeline import ARTICLE, TITLE

    from aggregator.extract import extract_article

    page = article_page(f"{ARTICLE} Then {ref} it ended.").encode()
    article = extract_article(page, "https://news.example/a", "text/html", title=TITLE)
    assert article is not None
    assert "Then it ended." in " ".join(article.text.split())


def test_an_edited_story_has_its_page_extracted_again(tmp_path: Path, server: LocalServer) -> None:
    """ "A poll extracts a story when it is new or its feed text changes": but the text
    already extracted for an article is reused rather than fetched again (meant for
    another feed's copy of it), and that found the edited story's own text, so its page,
    updated with a correction, was never fetched again and the story kept the old
    article. A story's edit fetches its page; reuse is for new stories."""
    from test_extract_pipeline import ARTICLE, TITLE

    page = server.route("/a", content_type="text/html", body=article_page().encode())

    def feed(description: str) -> bytes:
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
            f"<title>{TITLE}</title><link>{page}</link><guid>g</guid>"
            f"<description>{description}</description></item></channel></rss>"
        ).encode()

    url = server.route("/feed", body=feed("Teaser."))
    with make_app(_settings(tmp_path)) as app:
        app.add_feed(url, discover=False)
        assert [(r.new, r.extracted) for r in app.update_due(all_feeds=True)] == [(1, 1)]
        correction = ARTICLE + " UPDATE: the registry corrected the figures. "
        server.route("/a", content_type="text/html", body=article_page(correction).encode())
        server.route("/feed", body=feed("Teaser, updated with a correction."))
        assert [(r.updated, r.extracted) for r in app.update_due(all_feeds=True)] == [(1, 1)]
        (story,) = app.stories(StoryQuery(limit=None))
    assert len(server.requests_for("/a")) == 2
    assert story.extraction_status == "ok"
    assert "the registry corrected the figures" in (story.full_text or "")


def _slow_feed(server: LocalServer, n: int) -> str:
    """A feed of ``n`` stories, each linking to a page the extractor takes long over."""
    body = _slow_page()
    for i in range(n):
        server.route(f"/slow/{i}", content_type="text/html", body=body)
    return rss(server, [server.url(f"/slow/{i}") for i in range(n)])


def _slow_page() -> bytes:
    """A page trafilatura takes seconds over (a table of 100,000 cells)."""
    table = ("<tr>" + "<td>cell text</td>" * 50 + "</tr>") * 2000
    return article_page().replace("<body>", f"<body><table>{table}</table>").encode()


def test_pages_queued_for_the_extractor_do_not_outlast_the_feeds_budget(
    tmp_path: Path, server: LocalServer
) -> None:
    """A feed's pages have the article budget in all, "a page being extracted then is
    let finish". But every page fetched by then was let finish, also those still queued
    for a worker: pages the extractor needs its whole time limit for, fetched at once,
    held their feed for one limit each, in a row (50 such pages, two workers, 15 s:
    over 6 minutes past a 120 s budget). A page still queued then waits for a later try,
    as one not fetched does."""
    url = _slow_feed(server, 8)
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        workers=1,
        per_host=8,
        # half the limit and budget of before (1.5 s, 2 s): the page takes the
        # extractor longer than either, so each still runs to the limit
        extract_timeout_s=0.75,
        extract_budget_s=1.0,
    )
    with make_app(settings) as app:
        app.add_feed(url, discover=False)
        (r,) = app.update_due(all_feeds=True)
        assert (r.status, r.new) == ("ok", 8)
        # one worker, 0.75 s a page at most: no more than two had started by 1 s
        assert r.deferred >= 5
        pending = [
            st for st in app.stories(StoryQuery(limit=None)) if st.extraction_status == "pending"
        ]
        assert len(pending) == r.deferred
        assert all("took over 1 s" in (st.extraction_error or "") for st in pending)


def test_pages_waiting_for_the_extractor_are_bounded(tmp_path: Path, server: LocalServer) -> None:
    """Pages were fetched as fast as the network allowed and held, bodies and all, until
    a worker took them up: `aggregator extract` over 150 pages of 1 MB with one worker
    grew the process by 250 MB within its budget, and a run of thousands (``--limit``)
    by gigabytes, for pages most of which were then deferred unread. At most as many
    pages as the fetcher has connections are fetched and not yet extracted: fetching
    waits for the extractor."""
    url = _slow_feed(server, 40)
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        workers=1,
        per_host=4,
        max_connections=4,
        extract_timeout_s=0.75,  # half of before (1.5 s, 3 s): the same three turns
        extract_budget_s=1.5,
    )
    with make_app(settings) as app:
        app.add_feed(url, discover=False)
        (r,) = app.update_due(all_feeds=True, extract=False)
        assert r.new == 40
        done = app.extract_waiting()
        assert done.tried + done.left == 40
    fetched = sum(r.path.startswith("/slow/") for r in server.requests)
    # the four held, and those a worker took up (at most three in 1.5 s) had their turn
    assert fetched <= 4 + done.tried + 1


def test_a_failed_story_whose_feed_gives_its_whole_text_is_no_longer_failed(
    tmp_path: Path, server: LocalServer
) -> None:
    """A story whose page failed, then edited by its feed to carry its whole text (no
    page needed any more), stayed ``failed`` with the old error: `status` counted it
    among the failed pages, and `aggregator extract --failed` fetched its page again at
    every run. The edit's outcome (the feed's text stands: ``skipped``) is stored."""
    from test_extract_pipeline import ARTICLE, TITLE

    page = server.route("/gone", content_type="text/html", status=404, body=b"no")

    def feed(description: str) -> bytes:
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
            f"<title>{TITLE}</title><link>{page}</link><guid>g</guid>"
            f"<description>{description}</description></item></channel></rss>"
        ).encode()

    url = server.route("/feed", body=feed("Teaser."))
    with make_app(_settings(tmp_path)) as app:
        app.add_feed(url, discover=False)
        assert [(r.status, r.new, r.error) for r in app.update_due(all_feeds=True)] == [
            ("ok", 1, None)
        ]
        (story,) = app.stories(StoryQuery(limit=None))
        assert story.extraction_status == "failed"
        server.route("/feed", body=feed(ARTICLE * 3))
        assert [r.updated for r in app.update_due(all_feeds=True)] == [1]
        (story,) = app.stories(StoryQuery(limit=None))
        assert (story.extraction_status, story.extraction_error) == ("skipped", None)
        assert app.extract_waiting(failed=True).tried == 0


def test_pages_waiting_for_a_busy_host_do_not_hold_up_other_hosts(
    tmp_path: Path, server: LocalServer
) -> None:
    """The bound on pages held (above) must count pages from their host's turn on: pages
    queued for a busy host (one request at a time there) took every place and another
    host's page waited behind all of them, past the budget."""
    for i in range(6):
        server.route(f"/slow/{i}", content_type="text/html", delay=1.0, body=b"x")
    links = [server.url(f"/slow/{i}", host="localhost") for i in range(6)]
    fast = server.route("/fast", content_type="text/html", body=article_page().encode())
    links.append(fast)  # on 127.0.0.1
    url = rss(server, links)
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        workers=1,
        per_host=1,
        max_connections=2,
        extract_budget_s=2.5,
    )
    with make_app(settings) as app:
        app.add_feed(url, discover=False)
        (r,) = app.update_due(all_feeds=True)
        assert r.new == 7
        by_title = {st.title.split()[0]: st for st in app.stories(StoryQuery(limit=None))}
    story = by_title["s6"]
    assert story.extraction_status == "ok", story.extraction_error


def test_a_link_redirected_to_the_sites_front_page_does_not_take_its_text(
    tmp_path: Path, server: LocalServer
) -> None:
    """An article link that redirects to the site's front page (an article taken down,
    a region or paywall redirect) gave its story the front page's text, which mentions
    every headline: each story read as every other one and took their topics. A page
    that ends on a site's front page is not the story's: its extraction fails, saying
    so, and the feed's text stands."""
    home = server.route("/", body=_home_page(), content_type="text/html")
    feed = _headlines_feed(
        server, [server.redirect(f"/article/{i}", home) for i in range(len(HEADLINES))]
    )
    stories = _poll_feed(tmp_path, feed)
    assert len(stories) == 3
    for story in stories:
        assert story.full_text is None
        assert story.extraction_status == "failed"
        assert "redirected to the site's front page" in (story.extraction_error or "")
