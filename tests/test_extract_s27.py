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


def test_a_stopped_extraction_keeps_the_pages_it_finished(
    tmp_path: Path, server: LocalServer, pages: _SecondPageHangs
) -> None:
    """A stop (the daemon's SIGTERM, Ctrl-C on `aggregator extract`) threw away the
    pages already fetched and extracted: nothing was written, and the next run fetched
    them all again. The finished ones are written; the rest stay waiting, untouched."""
    url = _two_story_feed(server, pages)
    stop = threading.Event()
    threading.Thread(target=lambda: pages.second.wait(30) and stop.set(), daemon=True).start()
    with make_app(_settings(tmp_path)) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [2]
        done = app.extract_waiting(stop=stop)
        assert stop.is_set()
        stories = app.stories(StoryQuery(limit=None))
    assert (done.tried, done.extracted, done.failed, done.left) == (1, 1, 0, 1)
    got = sorted((st.extraction_status, st.extraction_error, bool(st.full_text)) for st in stories)
    assert got == [("ok", None, True), ("pending", None, False)]


def test_ctrl_c_on_extract_stores_what_it_extracted_and_exits_130(
    tmp_path: Path, server: LocalServer, pages: _SecondPageHangs
) -> None:
    """Ctrl-C on `aggregator extract` ended it with no word, whatever it had extracted
    lost. Now: the pages done are stored, the summary says so, one line on stderr says
    it was interrupted, exit 130 (as `poll`)."""
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
    assert " ".join(out.split()).startswith("extracted 1 of 1 stories"), out
    statuses = db_rows(
        tmp_path / "data" / "aggregator.db",
        "SELECT extraction_status FROM story ORDER BY extraction_status",
    )
    assert statuses == [("ok",), ("pending",)]


def _refresh_page(content: str, quote: str = '"') -> bytes:
    return (
        "<html><head><title>Redirecting</title>"
        f"<meta http-equiv={quote}Refresh{quote} content={quote}{content}{quote}>"
        "</head><body><p>Redirecting you to the article...</p></body></html>"
    ).encode()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("0; url={target}", id="url="),
        pytest.param("0;URL='{target}'", id="quoted"),
        pytest.param("1, {target}", id="comma-no-url="),
    ],
)
def test_a_page_that_refreshes_to_the_article_gives_the_article(
    tmp_path: Path, server: LocalServer, content: str
) -> None:
    """A link to an interstitial page that sends the browser on with ``<meta
    http-equiv="refresh" content="0; url=...">`` (a tracker, a consent or "you are
    leaving" page, a site moved without HTTP redirects): browsers go on to the article;
    the extractor read the interstitial's two lines, and the story failed with "no
    article text found on the page"."""
    target = server.route("/real/article", body=article_page().encode(), content_type="text/html")
    page = {"body": _refresh_page(content.format(target="/real/article"))}
    results, stories = poll(tmp_path, server, [page])
    assert results == [("ok", 1)]
    story = stories["s0"]
    assert story.extraction_status == "ok", story.extraction_error
    assert story.full_text and "signed with DNSSEC" in story.full_text
    assert len(server.requests_for("/real/article")) == 1, target


@pytest.mark.parametrize(
    "head",
    [
        pytest.param('<meta http-equiv="refresh" content="600; url=/">', id="later"),
        pytest.param(
            '<noscript><meta http-equiv="refresh" content="0; url=/"></noscript>', id="noscript"
        ),
    ],
)
def test_an_article_page_refreshing_later_or_without_scripts_is_read_as_it_is(
    tmp_path: Path, server: LocalServer, head: str
) -> None:
    """News sites' article pages often reload to their front page after minutes idle
    (``content="600; url=/"``), and some send script-less clients to a "turn JavaScript
    on" page from a ``<noscript>``: neither is a redirect, and the article is read."""
    home = server.route("/", body=b"<html><body>front</body></html>", content_type="text/html")
    page = {"body": article_page(head=head).encode()}
    results, stories = poll(tmp_path, server, [page])
    assert results == [("ok", 1)]
    assert stories["s0"].extraction_status == "ok", stories["s0"].extraction_error
    assert not server.requests_for("/"), home


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
