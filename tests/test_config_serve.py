"""Settings, feeds.yaml / OPML loading, and the merged-feed HTTP server."""

from __future__ import annotations

import gzip
import json
import re
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from test_store import check

from aggregator.app import App, make_app
from aggregator.cli import main
from aggregator.config import Settings, parse_when
from aggregator.errors import ConfigError
from aggregator.export import render
from aggregator.feedlist import load_feeds, parse_feeds_yaml, parse_opml, to_opml
from aggregator.serve import GZIP_MIN_BYTES, FeedServer, accepts_gzip
from aggregator.types import (
    FeedCheck,
    FeedSource,
    Prediction,
    StoryDraft,
    StoryQuery,
    StoryRecord,
    TopicScore,
)


def test_settings_precedence(tmp_path: Path) -> None:
    env = {
        "AGGREGATOR_DATA_DIR": "/env/data",
        "AGGREGATOR_TIMEOUT": "5",
        "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1",
    }
    s = Settings.from_env(env)
    assert (s.data_dir, s.timeout_s, s.allow_private_addresses) == (Path("/env/data"), 5.0, True)
    assert s.url == "sqlite:////env/data/aggregator.db"
    limits = {"AGGREGATOR_PARSE_TIMEOUT": "30", "AGGREGATOR_EXTRACT_TIMEOUT": "5.5"}
    s2 = Settings.from_env(limits)
    assert (s2.parse_timeout_s, s2.extract_timeout_s) == (30.0, 5.5)
    s = Settings.from_env(env, data_dir=tmp_path)  # a flag beats the environment
    assert s.data_dir == tmp_path
    assert (
        Settings.from_env({"AGGREGATOR_DATABASE_URL": "postgresql://x/y"}).url == "postgresql://x/y"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGGREGATOR_TIMEOUT": "soon"}, "AGGREGATOR_TIMEOUT: expected a number of seconds"),
        (
            {"AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "perhaps"},
            "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES: expected a boolean",
        ),
        ({"AGGREGATOR_PER_HOST": "0"}, "AGGREGATOR_PER_HOST must be between 1 and 64"),
        ({"AGGREGATOR_PARSE_TIMEOUT": "0"}, "AGGREGATOR_PARSE_TIMEOUT must be a positive"),
    ],
    ids=["timeout", "bool", "per-host", "parse-timeout"],
)
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_feeds_yaml() -> None:
    sources = parse_feeds_yaml(
        "feeds:\n"
        "  - url: https://a.example/feed\n    name: A\n    topics: [DNS]\n    interval: 30\n"
        "  - https://b.example/rss\n"
        "  - url: https://c.example/feed\n    enabled: false\n"
    )
    assert sources[0] == FeedSource(
        url="https://a.example/feed", name="A", topics=("DNS",), interval=timedelta(minutes=30)
    )
    assert sources[1].url == "https://b.example/rss"
    assert sources[2].enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds:\n  - name: x\n", "feed #1: 'url' is required"),
        ("feeds:\n  - url: ftp://x/feed\n", "only http"),
        ("feeds:\n  - url: https://x/f\n    interval: soon\n", "minutes"),
        ("feeds:\n  - url: https://x/f\n    colour: red\n", "unknown field"),
        ("feeds:\n  - url: https://x/f\n  - url: https://x/f\n", "listed twice"),
        ("feeds: {url: 1}\n", "expected a list"),
        ("feeds: [\n", "not valid YAML"),
    ],
    ids=["no-url", "scheme", "interval", "unknown-field", "duplicate", "not-list", "yaml"],
)
def test_bad_feeds_yaml(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_feeds_yaml(text)


def test_opml_round_trip(tmp_path: Path) -> None:
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="Security"><outline text="Krebs" xmlUrl="https://krebsonsecurity.com/feed/"/></outline>'
        '<outline title="RIPE Labs" text="x" xmlUrl="https://labs.ripe.net/rss/"/>'
        '<outline text="no url"/><outline text="bad" xmlUrl="javascript:alert(1)"/>'
        "</body></opml>"
    )
    sources = parse_opml(opml)
    assert [(s.url, s.name) for s in sources] == [
        ("https://krebsonsecurity.com/feed/", "Krebs"),
        ("https://labs.ripe.net/rss/", "RIPE Labs"),
    ]
    path = tmp_path / "feeds.opml"
    path.write_text(to_opml(sources))
    assert load_feeds(path) == sources
    with pytest.raises(ConfigError, match="not valid OPML"):
        parse_opml("<opml><body>")
    with pytest.raises(ConfigError, match="not found"):
        load_feeds(tmp_path / "missing.yaml")


def test_repo_feeds_yaml_is_valid() -> None:
    sources = load_feeds(Path(__file__).resolve().parents[1] / "feeds.yaml")
    assert len(sources) >= 25
    assert all(s.url.startswith("https://") for s in sources)


def test_serve_merged_feeds_with_conditional_get(tmp_path: Path) -> None:
    s = Settings.from_env({}, data_dir=tmp_path)
    with make_app(s) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed", name="A"), app.now())
        drafts = [
            ("1", "Root zone KSK rollover", "DNS"),
            ("2", "Registrar fined for abuse", "Domain Names"),
        ]
        recs = [
            StoryRecord(
                draft=StoryDraft(
                    key=k,
                    guid=k,
                    link=f"https://a.example/{k}",
                    canonical_url=None,
                    title=t,
                    author=None,
                    published=None,
                    updated=None,
                    summary="<p>x &amp; y</p>",
                    content=None,
                    categories=(),
                    content_hash=k,
                ),
                prediction=Prediction(
                    topics=(TopicScore(topic=topic, score=0.9),), model_version="t"
                ),
            )
            for k, t, topic in drafts
        ]
        now = app.now()
        app.store.save_update(
            FeedCheck(
                feed_id=feed.id,
                at=now,
                outcome="ok",
                next_check=now,
                status="active",
                error_count=0,
                first_error_at=None,
                last_error=None,
                success=True,
            ),
            recs,
        )
        with FeedServer(app) as srv:
            body = urllib.request.urlopen(srv.url + "/feed.atom?topic=DNS").read()
            d = feedparser.parse(body)
            assert not d.bozo
            assert [e.title for e in d.entries] == ["Root zone KSK rollover"]
            resp = urllib.request.urlopen(srv.url + "/topics/Domain%20Names.rss")
            etag = resp.headers["ETag"]
            assert [e.title for e in feedparser.parse(resp.read()).entries] == [
                "Registrar fined for abuse"
            ]
            req = urllib.request.Request(
                srv.url + "/topics/Domain%20Names.rss", headers={"If-None-Match": etag}
            )
            with pytest.raises(urllib.error.HTTPError) as e304:
                urllib.request.urlopen(req)
            assert e304.value.code == 304
            e304.value.close()  # its response, and the socket it reads
            assert (
                b'"version": "https://jsonfeed.org/version/1.1"'
                in urllib.request.urlopen(srv.url + "/feed.json").read()
            )
            # gzip for a client that accepts it, with its own ETag; either ETag gets a 304
            plain = urllib.request.urlopen(srv.url + "/feed.atom")
            plain_body = plain.read()
            assert len(plain_body) >= GZIP_MIN_BYTES
            assert plain.headers["Content-Encoding"] is None
            assert plain.headers["Vary"] == "Accept-Encoding"
            req = urllib.request.Request(
                srv.url + "/feed.atom", headers={"Accept-Encoding": "br;q=1.0, gzip;q=0.8"}
            )
            zipped = urllib.request.urlopen(req)
            assert zipped.headers["Content-Encoding"] == "gzip"
            assert zipped.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'
            assert gzip.decompress(zipped.read()) == plain_body
            for tag in (plain.headers["ETag"], zipped.headers["ETag"], "*"):
                req = urllib.request.Request(
                    srv.url + "/feed.atom",
                    headers={"Accept-Encoding": "gzip", "If-None-Match": tag},
                )
                with pytest.raises(urllib.error.HTTPError) as again:
                    urllib.request.urlopen(req)
                assert again.value.code == 304
                again.value.close()
            with pytest.raises(urllib.error.HTTPError) as bad:
                urllib.request.urlopen(srv.url + "/feed.atom?topic=Gardening")
            assert bad.value.code == 404  # no such topic: no such feed
            bad.value.close()
            assert b"Domain Names" in urllib.request.urlopen(srv.url + "/").read()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2026, 11, 21, 12, tzinfo=UTC)),
        ("24h", datetime(2026, 11, 27, 12, tzinfo=UTC)),
        ("30m", datetime(2026, 11, 28, 11, 30, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 14, 12, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00+02:00", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("", None),
    ],
    ids=["days", "hours", "minutes", "weeks", "date", "offset", "empty"],
)
def test_parse_when(text: str, expected: datetime | None) -> None:
    assert parse_when(text, now=datetime(2026, 11, 28, 12, tzinfo=UTC)) == expected


def test_parse_when_refuses_prose() -> None:
    with pytest.raises(ConfigError, match="7d, 24h"):
        parse_when("last tuesday")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP, deflate", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *;q=1", False),
        ("*", True),
        ("*;q=0", False),
        ("x-gzip", True),
        ("identity", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


# --- stable bodies, overflowing spans, link schemes ------------------------------------------


def _store_stories(
    app: App,
    feed_url: str,
    stories: list[tuple[str, str | None, str]],
    *,
    day: int = 27,
    name: str = "A",
    canonical: bool = False,
) -> None:
    """``(key, link, title)`` rows saved straight through the store, as an older version
    (or a hand) may have written them: no parser in between to refuse a link.
    ``canonical``: each link is its row's canonical URL too (a copy of it in another feed
    joins its cluster)."""
    feed, _ = app.store.add_feed(FeedSource(url=feed_url, name=name), app.now())
    recs = [
        StoryRecord(
            draft=StoryDraft(
                key=key,
                guid=key,
                link=link,
                canonical_url=link if canonical else None,
                title=title,
                author=None,
                published=datetime(2026, 11, day, 9, i, tzinfo=UTC),
                updated=None,
                summary="<p>x</p>",
                content=None,
                categories=(),
                content_hash=key,
            ),
            prediction=Prediction(topics=(TopicScore(topic="DNS", score=0.9),), model_version="t"),
        )
        for i, (key, link, title) in enumerate(stories)
    ]
    app.store.save_update(check(feed.id, at=app.now()), recs)


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_conditional_get_holds_across_seconds(tmp_path: Path, fmt: str) -> None:
    """The body depends on the stories only (RSS's lastBuildDate once was the clock), so a
    reader's If-None-Match still gets a 304 a second later."""
    with make_app(Settings.from_env({}, data_dir=tmp_path)) as app:
        _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
        with FeedServer(app) as srv:
            first = urllib.request.urlopen(f"{srv.url}/feed.{fmt}")
            body = first.read()
            time.sleep(1.1)
            req = urllib.request.Request(
                f"{srv.url}/feed.{fmt}", headers={"If-None-Match": first.headers["ETag"]}
            )
            with pytest.raises(urllib.error.HTTPError) as again:
                urllib.request.urlopen(req)
            assert again.value.code == 304
            again.value.close()  # its response, and the socket it reads
    if fmt == "rss":
        assert b"<lastBuildDate>Fri, 27 Nov 2026 09:00:00 GMT</lastBuildDate>" in body


def test_export_twice_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    with make_app(Settings.from_env()) as app:
        _store_stories(app, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
    formats = ("rss", "atom", "json")
    outputs: dict[str, list[str]] = {fmt: [] for fmt in formats}
    for attempt in range(2):
        if attempt:
            time.sleep(1.1)  # one wait past a second for the three formats, not one each
        for fmt in formats:
            with pytest.raises(SystemExit) as done:
                main(["export", "--format", fmt])
            assert done.value.code == 0
            outputs[fmt].append(capsys.readouterr().out)
    for fmt in formats:
        assert outputs[fmt][0] == outputs[fmt][1], fmt
        assert "https://a.example/1" in outputs[fmt][0]


def test_export_offset_writes_the_page_stories_offset_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``export --offset`` skips stories as ``stories --offset`` does (and as ``serve``'s
    ``?offset=``): the same stories, newest first; a negative offset is bad input."""
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    with make_app(Settings.from_env()) as app:
        _store_stories(
            app,
            "https://a.example/feed",
            [(str(i), f"https://a.example/{i}", f"Story {i}") for i in range(5)],
        )

    def cli(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as done:
            main(list(args))
        return int(done.value.code or 0), capsys.readouterr().out

    code, out = cli("export", "--format", "json", "--limit", "2", "--offset", "2")
    assert code == 0
    exported = [i["title"] for i in json.loads(out)["items"]]
    code, out = cli("stories", "--format", "json", "--limit", "2", "--offset", "2")
    assert exported == [s["title"] for s in json.loads(out)] == ["Story 2", "Story 1"]
    assert cli("export", "--offset", "-1")[0] == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("999999999d", "--since 999999999d is too far back"),
        ("99999999999d", "too far back"),
        ("999999999w", "too far back"),
        ("9" * 400 + "m", "too far back"),  # float("9" * 400) is inf
        ("3000000d", "too far back"),  # a valid timedelta, but before year 1
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
    ids=["days", "more-days", "weeks", "infinite", "before-year-1", "iso-before-year-1"],
)
def test_parse_when_refuses_spans_out_of_range(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_when(value)
    with pytest.raises(ConfigError, match=r"^--until "):
        parse_when(value, option="--until")
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert parse_when("5000d", now=now) == now - timedelta(days=5000)


def test_serve_answers_400_to_a_span_out_of_range(tmp_path: Path) -> None:
    with make_app(Settings.from_env({}, data_dir=tmp_path)) as app, FeedServer(app) as srv:
        for query, message in [
            ("since=999999999d", b"since 999999999d is too far back\n"),
            ("since=0001-01-01T00:00%2B01:00", b"since 0001-01-01T00:00+01:00 is out of range\n"),
        ]:
            with pytest.raises(urllib.error.HTTPError) as bad:
                urllib.request.urlopen(f"{srv.url}/feed.atom?{query}")
            assert (bad.value.code, bad.value.read()) == (400, message)
        assert urllib.request.urlopen(srv.url + "/feed.atom?since=7d").status == 200


BAD_LINKS = [
    "javascript:alert(1)",
    "JavaScript:alert(2)",
    " javascript:alert(3)",
    "java\tscript:alert(4)",
    "data:text/html,<script>alert(5)</script>",
    "vbscript:msgbox(6)",
    "//evil.example/7",
    "https:///no-host",
]


def test_export_writes_only_http_links(tmp_path: Path) -> None:
    """Links already in the database (an older version, a hand) are checked again on the
    way out: a story keeps its place, without the link."""
    with make_app(Settings.from_env({}, data_dir=tmp_path)) as app:
        rows: list[tuple[str, str | None, str]] = [
            (f"bad{i}", link, f"Story {i}") for i, link in enumerate(BAD_LINKS)
        ]
        _store_stories(app, "https://a.example/feed", [*rows, ("ok", "https://a.example/ok", "OK")])
        _store_stories(app, "javascript:alert(9)", [("f", "https://b.example/f", "From F")], day=26)
        documents = {
            fmt: app.export(StoryQuery(limit=None), fmt, self_url="javascript:alert(10)")
            for fmt in ("atom", "rss", "json")
        }
    for fmt, doc in documents.items():
        if fmt == "json":  # the extension's "feed" is the stored URL, data and not a link
            data = json.loads(doc)
            assert {i["_aggregator"].pop("feed") for i in data["items"]} == {
                "https://a.example/feed",
                "javascript:alert(9)",
            }
            doc = json.dumps(data)
        for needle in ("script:", "data:", "evil.example", "no-host"):
            assert needle not in doc.lower(), (fmt, needle)
        assert "https://a.example/ok" in doc
        assert "https://b.example/f" in doc
        assert all(f"Story {i}" in doc for i in range(len(BAD_LINKS))), fmt
    atom = feedparser.parse(documents["atom"])
    assert not atom.bozo
    links = {e.title: [link.href for link in e.get("links", [])] for e in atom.entries}
    assert links["Story 0"] == []
    assert links["OK"] == ["https://a.example/ok"]
    rss = feedparser.parse(documents["rss"])
    assert not rss.bozo
    assert {e.title: e.get("link") for e in rss.entries}["Story 0"] is None
    items = {i["title"]: i for i in json.loads(documents["json"])["items"]}
    assert "url" not in items["Story 0"]
    assert items["Story 0"]["id"].startswith("urn:aggregator:story:")
    assert "feed_url" not in json.loads(documents["json"])
    rendered = render(
        [], "rss", title="t", updated=datetime(2026, 1, 1, tzinfo=UTC), home_url="data:x,y"
    )
    assert "data:" not in rendered
    assert "<link>urn:aggregator</link>" in rendered
