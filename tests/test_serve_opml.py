"""``serve``'s ``/topics.opml`` (every topic's feed, for a reader to import at once) and
its index page's ``<link rel="alternate">`` (feed autodiscovery): read back by our own
OPML import and ``feeds add`` discovery, and each feed it names fetched from the server.
Real sockets and real HTTP requests."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_serve_proxy import PUBLIC, _request, app, clock  # noqa: F401  (app, clock: fixtures)

from aggregator.app import App
from aggregator.feedlist import read_opml
from aggregator.serve import FeedServer


def test_topics_opml_names_every_topic_feed_and_each_one_answers(
    app: App,  # noqa: F811
) -> None:
    with FeedServer(app) as srv:
        host, port = srv.httpd.server_address[:2]
        code, head, body = _request(srv, "/topics.opml")
        assert code == 200 and head["Content-Type"] == "text/x-opml; charset=utf-8"
        feeds = read_opml(body, origin="topics.opml")
        assert not feeds.skipped
        sources = list(feeds.sources)
        names = [t.name for t in app.taxonomy.topics]
        assert [s.name for s in sources] == ["All stories", *names]
        assert all(s.topics == ("aggregator",) for s in sources)  # one folder in a reader
        base = f"http://{host}:{port}"
        assert sources[0].url == f"{base}/feed.atom"
        # every URL absolute and served: "Policy & Regulation" escaped in its path
        for s in sources:
            assert s.url.startswith(f"{base}/") and " " not in s.url, s.url
            split = urlsplit(s.url)
            code, _, feed = _request(srv, split.path)
            parsed = feedparser.parse(feed)
            assert code == 200 and not parsed.bozo, s.url
        dns = next(s for s in sources if s.name == "DNS")
        (_, _, feed) = _request(srv, urlsplit(dns.url).path)
        assert [e.title for e in feedparser.parse(feed).entries] == ["Glue", "KSK rollover"]

        code, _, body = _request(srv, "/topics.opml?format=json")
        urls = [s.url for s in read_opml(body).sources]
        assert urls[0] == f"{base}/feed.json" and all(u.endswith(".json") for u in urls)
        code, _, feed = _request(srv, urlsplit(urls[1]).path)
        assert code == 200 and "items" in json.loads(feed)

        code, _, body = _request(srv, "/topics.opml?format=xml")
        assert code == 400 and b"atom, rss or json" in body


def test_topics_opml_is_cached_like_the_feeds_and_follows_the_public_url(
    app: App,  # noqa: F811
) -> None:
    with FeedServer(app, base_url=PUBLIC) as srv:
        code, head, body = _request(srv, "/topics.opml", ("Host", "127.0.0.1:8080"))
        assert code == 200 and head["ETag"] and "127.0.0.1" not in body.decode()
        assert all(s.url.startswith(PUBLIC) for s in read_opml(body).sources)
        code, _, empty = _request(srv, "/topics.opml", ("If-None-Match", head["ETag"]))
        assert code == 304 and empty == b""
        code, zipped, _ = _request(srv, "/topics.opml", ("Accept-Encoding", "gzip"))
        assert code == 200 and zipped["Content-Encoding"] == "gzip"
        code, headed, nothing = _request(srv, "/topics.opml", method="HEAD")
        assert code == 200 and nothing == b"" and headed["ETag"] == head["ETag"]


def test_a_reader_given_the_server_finds_and_imports_its_feeds(
    app: App,  # noqa: F811
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another install subscribes: `feeds add` of the server's own address finds the
    merged feed through the index page's <link rel="alternate">, and `feeds import` of
    /topics.opml adds every topic's feed."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    with FeedServer(app) as srv:
        host, port = srv.httpd.server_address[:2]
        base = f"http://{host}:{port}"
        code, out, err = run(capsys, "feeds", "add", f"{base}/")
        assert code == 0 and f"{base}/feed.atom" in out, err
        _, _, body = _request(srv, "/topics.opml")
        (env / "topics.opml").write_bytes(body)
        code, out, err = run(capsys, "feeds", "import", str(env / "topics.opml"))
        assert code == 0, err
        code, out, err = run(capsys, "feeds", "list", "--format", "json")
        urls = {f["url"] for f in json.loads(out)}
        assert f"{base}/topics/DNS.atom" in urls and f"{base}/feed.atom" in urls
        assert len(urls) == 1 + len(app.taxonomy.topics)
        code, out, err = run(capsys, "poll", "--quiet", "--no-extract")
        assert code == 0, err
        code, out, err = run(capsys, "stories", "--format", "json", "-f", f"{base}/feed.atom")
        assert sorted(s["title"] for s in json.loads(out)) == ["Glue", "KSK rollover"]
