"""``serve`` and ``export`` as a feed reader and a script meet them: a database that
cannot answer (503, and the server keeps serving), Atom entries without a link, and
``export -o`` into a named pipe or through a symbolic link."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, text
from test_config_serve import _store_stories
from test_export_safety import story
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.export import ATOM_NS, render
from aggregator.serve import FeedServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A = f"{{{ATOM_NS}}}"


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _pg_connections(db_url: str, allow: bool) -> None:
    """PostgreSQL refusing (and dropping) connections to the test's database, as while
    it restarts; or taking them again."""
    base, name = db_url.rsplit("/", 1)
    engine = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
            if not allow:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": name},
                )
    finally:
        engine.dispose()


@pytest.mark.parametrize("warm", [False, True], ids=["first-request", "after-a-200"])
def test_a_database_that_cannot_answer_gets_503_and_the_server_keeps_serving(
    db_url: str, tmp_path: Path, warm: bool
) -> None:
    """SQLite locked by another process, PostgreSQL refusing connections (a restart): a
    503 with Retry-After, not a 400 blaming the reader's URL (nor, for the index page, a
    dropped connection); once the database is back the same server answers 200."""
    sqlite = db_url.startswith("sqlite")
    url = db_url + "?timeout=0.2" if sqlite else db_url
    s = Settings.from_env({"AGGREGATOR_DATABASE_URL": url}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a:
        _store_stories(a, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
        with FeedServer(a) as srv:
            if warm:
                assert _get(srv.url + "/feed.atom")[0] == 200
            lock = (
                sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
                if sqlite
                else None
            )
            try:
                if lock is not None:
                    # Another process's exclusive lock; WAL lets it in only while no
                    # other connection (the server's idle ones too) is open.
                    a.store.engine.dispose()
                    lock.execute("PRAGMA locking_mode=EXCLUSIVE")
                    lock.execute("BEGIN EXCLUSIVE")
                else:
                    _pg_connections(db_url, allow=False)
                for path in ("/feed.atom?topic=DNS", "/topics/DNS.json", "/"):
                    code, headers, body = _get(srv.url + path)
                    assert (code, body) == (
                        503,
                        b"the database is unavailable; try again shortly\n",
                    ), path
                    assert headers["Retry-After"] == "30"
            finally:
                if lock is not None:
                    lock.close()  # ends the exclusive transaction
                else:
                    _pg_connections(db_url, allow=True)
            code, _, body = _get(srv.url + "/feed.atom")
            assert code == 200 and b"KSK" in body
            # bad input is still the request's fault; a NUL in ?feed= never reaches the
            # database (feeds are matched in Python): no feed has it, an empty feed
            assert _get(srv.url + "/feed.atom?feed=%00")[0] == 200
            # ... and a topic the taxonomy lacks is none there is: 404, not 400
            assert _get(srv.url + "/feed.atom?topic=Gardening")[0] == 404


@pytest.mark.parametrize(
    ("summary", "content", "full_text"),
    [("<p>Only a description</p>", None, None), (None, "<p>Short content</p>", None)],
    ids=["summary-only", "short-content-only"],
)
def test_atom_entry_without_a_link_has_content(
    summary: str | None, content: str | None, full_text: str | None
) -> None:
    """RFC 4287 §4.1.1.1: an entry with no alternate link must have atom:content. A
    link-less RSS item (only a guid and a description) gave an entry with a summary and
    nothing else, which validators refuse."""
    s = story(
        key="v2:guid:abc",
        link=None,
        canonical_url=None,
        title="No link",
        author="Ann",
        feed_title="Feed",
        feed_url="https://feed.example/rss",
        categories=(),
        topics=(),
        summary=summary,
        content=content,
        full_text=full_text,
    )
    root = etree.fromstring(render([s], "atom", title="t", updated=NOW).encode())
    (entry,) = root.findall(f"{A}entry")
    assert entry.find(f"{A}link[@rel='alternate']") is None
    assert entry.findtext(f"{A}content") == (summary or content)
    # an entry with a link is written as before: its summary alone
    linked = story(link="https://site.example/a", summary=summary, content=content)
    root = etree.fromstring(render([linked], "atom", title="t", updated=NOW).encode())
    assert root.find(f"{A}entry/{A}content") is None


def test_export_into_a_named_pipe_writes_the_pipe(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``export -o PIPE`` (or ``-o /dev/stdout``): the document goes to the reader on the
    pipe. It was written to ``PIPE.tmp`` and renamed over the pipe, which became a
    regular file (as root, ``-o /dev/stdout`` replaced /dev/stdout itself)."""
    pipe = env / "feed.pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        code, out, err = run(capsys, "export", "--format", "json", "-o", str(pipe))
        assert stat.S_ISFIFO(pipe.stat().st_mode), "the pipe was replaced by a file"
        got = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert (code, out, err) == (0, "", f"wrote {pipe}\n")
    assert got.startswith('{\n  "version": "https://jsonfeed.org/version/1.1"')
    assert not (env / "feed.pipe.tmp").exists()


def test_export_through_a_symbolic_link_keeps_the_link(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``-o ~/feed.atom`` where that is a link to the web server's copy: the copy is
    replaced, the link stays (the rename replaced the link with a file of its own)."""
    served = env / "www" / "feed.atom"
    served.parent.mkdir()
    served.write_text("old\n")
    link = env / "feed.atom"
    link.symlink_to(served)
    code, _, err = run(capsys, "export", "-o", str(link))
    assert (code, err) == (0, f"wrote {link}\n")
    assert link.is_symlink()
    assert served.read_text().startswith("<?xml")
    assert sorted(p.name for p in served.parent.iterdir()) == ["feed.atom"]


def test_until_bounds_a_served_feed_as_it_bounds_stories(tmp_path: Path) -> None:
    """``?until=`` as `stories --until` reads it (serve ignored it, README said so); a
    ``since`` not before ``until`` is bad input, as on the command line."""
    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a:
        _store_stories(
            a, "https://a.example/feed", [("1", "https://a.example/1", "Old KSK")], day=20
        )
        _store_stories(
            a, "https://b.example/feed", [("2", "https://b.example/2", "New KSK")], day=27
        )
        with FeedServer(a) as srv:
            code, _, body = _get(srv.url + "/feed.json?until=2026-11-25")
            assert code == 200
            assert [i["title"] for i in json.loads(body)["items"]] == ["Old KSK"]
            code, _, body = _get(srv.url + "/feed.json?since=3d&until=7d")
            assert code == 400 and b"since is not before until" in body
            assert _get(srv.url + "/feed.json?until=whenever")[0] == 400


def test_a_served_feed_pages_back_through_its_stories(tmp_path: Path) -> None:
    """``?offset=`` skips stories as `stories --offset` does, and each page links to the
    others (RFC 5005 §3): Atom and RSS with first / previous / next links, JSON Feed with
    ``next_url``; a reader following them meets every story once. Every page is one feed:
    the Atom id and JSON Feed's ``feed_url`` are the first page's URL."""
    titles = [f"Story {i}" for i in range(7)]
    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a:
        _store_stories(
            a,
            "https://a.example/feed",
            [(f"k{i}", f"https://a.example/{i}", t) for i, t in enumerate(titles)],
        )
        newest_first = titles[::-1]
        with FeedServer(a) as srv:
            subscribed = srv.url + "/topics/DNS.json?feed=a%2Eexample&limit=3"
            url, seen, pages = subscribed, [], 0
            while url:
                code, _, body = _get(url)
                assert code == 200
                doc = json.loads(body)
                assert doc["feed_url"] == subscribed  # as the reader wrote it
                seen += [i["title"] for i in doc["items"]]
                url, pages = doc.get("next_url"), pages + 1
            assert (seen, pages) == (newest_first, 3)

            code, _, body = _get(srv.url + "/feed.atom?topic=DNS&limit=3&offset=3")
            feed = etree.fromstring(body)
            links = {link.get("rel"): link.get("href") for link in feed.iter(A + "link")}
            base = srv.url + "/feed.atom?topic=DNS&limit=3"
            assert {r: links.get(r) for r in ("first", "previous", "next")} == {
                "first": base,
                "previous": base,
                "next": base + "&offset=6",
            }
            assert feed.findtext(A + "id") == base
            assert [e.findtext(A + "title") for e in feed.iter(A + "entry")] == newest_first[3:6]

            code, _, body = _get(srv.url + "/feed.rss?limit=3&offset=6")  # the last page
            channel = etree.fromstring(body).find("channel")
            rels = {link.get("rel") for link in channel.iter(A + "link")}
            assert rels == {"self", "first", "previous"}
            assert [i.findtext("title") for i in channel.iter("item")] == newest_first[6:]

            code, _, body = _get(srv.url + "/feed.atom?limit=10")  # one page: not paged
            rels = {link.get("rel") for link in etree.fromstring(body).iter(A + "link")}
            assert "next" not in rels and "first" not in rels
            for bad in ("-1", "x", "100001"):
                code, _, body = _get(srv.url + f"/feed.json?offset={bad}")
                assert code == 400 and b"offset must be a whole number" in body


# Query values as feed readers, scripts and scanners send them: full-text syntax broken
# every way (quotes, operators, columns, NEAR, prefixes), dates and numbers out of any
# range, control characters, other scripts, very long values.
_VALUES = [
    *("", "DNS", "dns*", '"', '"unbalanced', "AND", "OR OR", "NEAR(a b", "*", "^title"),
    *("title:dns", "-dns", "(", ")", "a:b:c", "'", "NOT", "\x00", "\x7f", "ü", "🙂", "%"),
    *("_", "\\", "a" * 5000, "1e9", "-1", "0", "99999999999999999999", "7d", "24h", "0d"),
    *("2026-11-25", "2026-13-45", "9999-12-31", "0001-01-01", "whenever", "NaN", "inf"),
    *("Domain Names", "dns", "Nope", "https://a.example/feed", "a%2Eexample", "1"),
]
_PARAMS = ["topic", "feed", "q", "since", "until", "limit", "offset", "format", "x"]
_PATHS = ["/feed.atom", "/feed.rss", "/feed.json", "/topics/DNS.atom", "/topics/Nope.json"]


def test_any_query_is_served_or_refused_never_a_server_error(tmp_path: Path) -> None:
    """Whatever the query string: 200 with a well-formed feed (or 304), or a 4xx naming
    the problem; never a 500 (a full-text syntax error reaching the database was one
    way there) and the server keeps serving."""
    from urllib.parse import quote

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a:
        _store_stories(a, "https://a.example/feed", [("1", "https://a.example/1", "DNS KSK")])
        with FeedServer(a) as srv:

            @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(
                st.sampled_from(_PATHS),
                st.lists(st.tuples(st.sampled_from(_PARAMS), st.sampled_from(_VALUES)), max_size=4),
            )
            def check(path: str, query: list[tuple[str, str]]) -> None:
                qs = "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
                code, _, body = _get(srv.url + path + ("?" + qs if qs else ""))
                assert code in (200, 400, 404), (code, path, query, body[:300])
                if code == 200 and path.endswith(".json"):
                    json.loads(body)
                elif code == 200:
                    etree.fromstring(body)

            check()
            assert _get(srv.url + "/feed.json")[0] == 200


def test_a_method_other_than_get_is_answered_405_with_the_allowed_ones(tmp_path: Path) -> None:
    """POST, PUT, PATCH, DELETE: 405 naming the allowed methods (they were 501, which says
    the server does not know the method at all); OPTIONS lists them; a method nobody
    defined stays 501. A request body is never read, so an answer to a request with one
    ends its connection (a GET with a body made the request pipelined after it go
    unanswered)."""
    import http.client

    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a, FeedServer(a) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW", "GET"):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request(method, "/feed.atom", body=b"x=1" * 1000)
                r = conn.getresponse()
                body = r.read()
                if method == "GET":
                    assert r.status == 200 and r.getheader("Connection") == "close"
                    continue
                if method == "OPTIONS":
                    assert r.status == 200 and body == b""
                elif method == "BREW":
                    assert r.status == 501
                    continue
                else:
                    assert r.status == 405 and b"feeds are read with GET" in body
                assert r.getheader("Allow") == "GET, HEAD, OPTIONS"
                assert r.getheader("Connection") == "close"
            finally:
                conn.close()
        # Without a body, a connection serves request after request, as before.
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            for method in ("OPTIONS", "POST", "GET"):
                conn.request(method, "/feed.atom")
                r = conn.getresponse()
                r.read()
                assert r.getheader("Connection") is None, method
            assert r.status == 200
        finally:
            conn.close()


def _raw_get(url: str, target: bytes) -> tuple[int, bytes]:
    """A GET of ``target`` sent byte for byte, as curl sends a URL typed with letters
    beyond ASCII (http.client and urllib refuse to)."""
    import http.client
    import socket

    host, _, port = url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = http.client.HTTPResponse(sock)
        r.begin()
        return r.status, r.read()


def test_a_request_target_with_letters_beyond_ascii_is_read_as_its_self_link_says(
    tmp_path: Path,
) -> None:
    """A client that sends UTF-8 unescaped (curl given ``?q=Göran``): the parameters and
    the topic in the path are read as UTF-8, as the self link escapes them. They were read
    as Latin-1, so ``q`` searched for "GÃ¶ran" and found nothing, while the feed's own
    self link (``q=G%C3%B6ran``) named the search for "Göran"."""
    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a:
        _store_stories(
            a,
            "https://a.example/feed",
            [("1", "https://a.example/1", "Göran on DNS"), ("2", "https://a.example/2", "KSK")],
        )
        with FeedServer(a) as srv:
            code, body = _raw_get(srv.url, "/topics/DNS.json?q=Göran".encode())
            assert code == 200, body
            doc = json.loads(body)
            assert doc["title"] == "aggregator — DNS — “Göran”"
            assert [i["title"] for i in doc["items"]] == ["Göran on DNS"]
            assert doc["feed_url"] == "http://x/topics/DNS.json?q=G%C3%B6ran"
            # the self link, followed, is the same feed
            code, _, escaped = _get(srv.url + "/topics/DNS.json?q=G%C3%B6ran")
            assert code == 200 and json.loads(escaped)["items"] == doc["items"]
            code, body = _raw_get(srv.url, "/topics/Göran.json".encode())
            assert code == 404 and "unknown topic 'Göran'".encode() in body, body
