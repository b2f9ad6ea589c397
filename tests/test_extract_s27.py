"""Article extraction, hunted in session 27 for what a demanding user would call wrong:
each test is a bug that was, against the real parts (a local HTTP server, a SQLite
store, the worker processes, the real CLI in a subprocess)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer, Request
from test_daemon_audit import daemon_env, db_rows
from test_extract_pipeline import ARTICLE, TITLE, article_page, poll

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery


class _SecondPageHangs:
    """Route bodies for article pages: the first page asked for is served, every later
    one hangs (until :meth:`release`). ``second`` is set once a second page is asked
    for: with one connection in all (``max_connections``), a page is held from its
    request until a worker has extracted it, so by then the first page's text is
    extracted and waits to be written."""

    def __init__(self) -> None:
        self.second = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._served = 0

    def __call__(self, request: Request) -> bytes:
        with self._lock:
            self._served += 1
            first = self._served == 1
        if first:
            return article_page().encode()
        self.second.set()
        self._released.wait(30)
        return b""

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def pages() -> Iterator[_SecondPageHangs]:
    p = _SecondPageHangs()
    yield p
    p.release()


def _two_story_feed(server: LocalServer, pages: _SecondPageHangs) -> str:
    items = ""
    for name in ("a", "b"):
        link = server.route(f"/page/{name}", body=pages, content_type="text/html")
        items += (
            f"<item><title>{name} {TITLE}</title><link>{link}</link><guid>{name}</guid>"
            "<description>Teaser.</description></item>"
        )
    return server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
            "</channel></rss>"
        ).encode(),
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, workers=1, max_connections=1
    )


def test_ctrl_c_on_extract_stores_what_it_extracted_and_exits_130(
    tmp_path: Path, server: LocalServer, pages: _SecondPageHangs
) -> None:
    """Ctrl-C on `aggregator extract` (as the daemon's SIGTERM during its extraction of
    stored stories) threw away the pages already fetched and extracted: nothing was
    written, the command ended with no word, and the next run fetched them all again.
    Now the pages done are stored, the summary says so, one line on stderr says it was
    interrupted, exit 130 (as `poll`); the pages not done still wait, untouched."""
    url = _two_story_feed(server, pages)
    env = {**daemon_env(tmp_path, []), "AGGREGATOR_WORKERS": "1", "AGGREGATOR_MAX_CONNECTIONS": "1"}
    with make_app(_settings(tmp_path / "data")) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "extract"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pages.second.wait(60), "the second page was never asked for"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "extract interrupted" in err
    assert " ".join(out.split()).startswith("extracted 1 of 1 story;"), out
    statuses = db_rows(
        tmp_path / "data" / "aggregator.db",
        "SELECT extraction_status, extraction_error, full_text IS NOT NULL FROM story"
        " ORDER BY extraction_status",
    )
    assert statuses == [("ok", None, 1), ("pending", None, 0)]


def _refresh_page(content: str) -> bytes:
    return (
        "<html><head><title>Redirecting</title>"
        f'<meta http-equiv="Refresh" content="{content}">'
        "</head><body><p>Redirecting you to the article...</p></body></html>"
    ).encode()


def test_a_page_that_refreshes_to_the_article_gives_the_article(
    tmp_path: Path, server: LocalServer
) -> None:
    """A link to an interstitial page that sends the browser on with ``<meta
    http-equiv="refresh" content="0; url=...">`` (a tracker, a consent or "you are
    leaving" page, a site moved without HTTP redirects): browsers go on to the article;
    the extractor read the interstitial's two lines, and the story failed with "no
    article text found on the page"."""
    contents = ["0; url=/real/0", "0;URL='/real/1'", "1, /real/2"]  # as browsers read them
    for i in range(len(contents)):
        server.route(f"/real/{i}", body=article_page().encode(), content_type="text/html")
    results, stories = poll(tmp_path, server, [{"body": _refresh_page(c)} for c in contents])
    assert results == [("ok", 3)]
    for i in range(len(contents)):
        story = stories[f"s{i}"]
        assert story.extraction_status == "ok", (contents[i], story.extraction_error)
        assert story.full_text and "signed with DNSSEC" in story.full_text
        assert len(server.requests_for(f"/real/{i}")) == 1


def test_an_article_page_refreshing_later_or_without_scripts_is_read_as_it_is(
    tmp_path: Path, server: LocalServer
) -> None:
    """News sites' article pages often reload to their front page after minutes idle
    (``content="600; url=/"``), and some send script-less clients to a "turn JavaScript
    on" page from a ``<noscript>``: neither is a redirect, and the article is read."""
    server.route("/", body=b"<html><body>front</body></html>", content_type="text/html")
    heads = [
        '<meta http-equiv="refresh" content="600; url=/">',
        '<noscript><meta http-equiv="refresh" content="0; url=/"></noscript>',
    ]
    results, stories = poll(
        tmp_path, server, [{"body": article_page(head=h).encode()} for h in heads]
    )
    assert results == [("ok", 2)]
    for key in ("s0", "s1"):
        assert stories[key].extraction_status == "ok", stories[key].extraction_error
    assert not server.requests_for("/")


ADVISORY = (
    "Registry Security Advisory [2 December 2026]\n"
    "=============================================\n\n"
    "Registry finishes DNSSEC signing of all zones (Severity: Low)\n"
    "==============================================================\n\n"
    + textwrap.fill(ARTICLE, 72)
    + "\n\nThe last laggards were moved over the weekend without incident.\n"
)


def test_an_article_served_as_plain_text_is_read(tmp_path: Path, server: LocalServer) -> None:
    """Security advisories (OpenSSL's, many vendors'), RFCs and mailing-list posts are
    served as ``text/plain``: the story failed "not an HTML page (text/plain)", where a
    browser shows the text. The text is the article, its wrapped lines joined into
    paragraphs; one that is HTML after all (a misconfigured server) is read as a page."""
    pages = [
        {"body": ADVISORY.encode(), "content_type": "text/plain; charset=utf-8"},
        {"body": article_page().encode(), "content_type": "text/plain"},
    ]
    results, stories = poll(tmp_path, server, pages)
    assert results == [("ok", 2)]
    for key in ("s0", "s1"):
        story = stories[key]
        assert story.extraction_status == "ok", story.extraction_error
        assert story.full_text and "signed with DNSSEC" in story.full_text
        assert "<" not in story.full_text
    lines = (stories["s0"].full_text or "").splitlines()
    assert lines[0] == "Registry Security Advisory [2 December 2026] " + "=" * 45
    assert " ".join(ARTICLE.split()) in lines
    assert lines[-1] == "The last laggards were moved over the weekend without incident."


def _today_feed(server: LocalServer, guid: str, title: str, published: str) -> str:
    """A feed listing one item, today's, linking to the page that shows it ("/today")."""
    link = server.url("/today")
    return server.route(
        "/daily.xml",
        body=(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>'
            f"<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>"
            f"<pubDate>{published}</pubDate><description>Teaser.</description></item>"
            "</channel></rss>"
        ).encode(),
    )


def test_extracting_a_stored_story_does_not_take_its_own_feeds_older_text(
    tmp_path: Path, server: LocalServer
) -> None:
    """A feed that links each day's item to one page ("/today"): a story stored without
    its page (`poll --no-extract`, or deferred: its host stalled, the feed's budget ran
    out) was given, by `aggregator extract` or the daemon's drain, the text an earlier
    day's story of the same feed had got from that page, as if it were another feed's
    copy of the article; the page was not even fetched. A poll never takes its own
    feed's texts; neither does a later extraction now."""
    monday = "The registry signed every zone on Monday. " * 8
    tuesday = "The registry said resolvers validated every signed zone on Tuesday. " * 8
    page = server.route("/today", body=article_page(monday).encode(), content_type="text/html")
    settings = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(settings) as app:
        url = _today_feed(server, "d1", TITLE, "Mon, 30 Nov 2026 08:00:00 GMT")
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True)] == [1]
        server.route("/today", body=article_page(tuesday).encode(), content_type="text/html")
        _today_feed(server, "d2", f"Tuesday: {TITLE}", "Tue, 01 Dec 2026 08:00:00 GMT")
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [1]
        done = app.extract_waiting()
        stories = {st.title: st for st in app.stories(StoryQuery(limit=None))}
    assert (done.tried, done.extracted) == (1, 1)
    assert "on Monday" in (stories[TITLE].full_text or "")
    second = stories[f"Tuesday: {TITLE}"]
    assert second.full_text and "on Tuesday" in second.full_text, second.full_text
    assert len(server.requests_for("/today")) == 2, page
