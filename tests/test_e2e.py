"""End to end through the real CLI: a local HTTP server serves the bundled demo feeds and
pages plus broken feeds; poll, query, re-poll (conditional GET) and export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from httpserver import LocalServer

from aggregator.cli import main
from aggregator.parse import parse_feed

DEMO = Path(__file__).resolve().parents[1] / "aggregator" / "demo"
EXPECTED = json.loads((DEMO / "expected.json").read_text(encoding="utf-8"))
FEED_TYPES = {
    ".xml": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
    ".rdf": "application/rdf+xml",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def site() -> Iterator[LocalServer]:
    """The demo sites on a real local server, with ETag / Last-Modified on every feed."""
    with LocalServer(root=DEMO) as s:
        base = s.url("").rstrip("/")
        for f in sorted((DEMO / "feeds").iterdir()):
            body = f.read_text(encoding="utf-8").replace("{{BASE}}", base).encode()
            s.route(
                f"/feeds/{f.name}",
                body=body,
                content_type=FEED_TYPES.get(f.suffix, "application/xml"),
                etag=f'"{f.stem}-v1"',
                last_modified="Sun, 15 Jun 2025 08:00:00 GMT",
            )
        yield s


def demo_feeds_yaml(site: LocalServer) -> str:
    base = site.url("").rstrip("/")
    return (DEMO / "feeds.yaml").read_text(encoding="utf-8").replace("{{BASE}}", base)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    monkeypatch.setenv("AGGREGATOR_TIMEOUT", "2")
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    return tmp_path


def test_poll_query_repoll_export(
    site: LocalServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "feeds.yaml").write_text(demo_feeds_yaml(site), encoding="utf-8")

    code, out, _ = run(capsys, "poll", "--all", "--format", "json")
    assert code == 0
    results = json.loads(out)
    assert len(results) == 5
    assert all(r["status"] == "ok" for r in results), results
    assert sum(r["new"] for r in results) == 43  # 42 stories, one of them in two feeds
    assert sum(r["extracted"] for r in results) >= 8  # the summary-only feed got full text

    code, out, _ = run(capsys, "stories", "--limit", "0", "--format", "json")
    stories = json.loads(out)
    assert len(stories) == 42  # the shared story is shown once
    assert {"id", "title", "link", "feed", "published", "topics"} <= set(stories[0])
    by_slug = {Path(s["link"].split("?")[0]).stem: s for s in stories}
    assert set(by_slug) == set(EXPECTED)

    # topics: every expected (story, topic) pair, queried the way a user would
    pairs = [(slug, t) for slug, info in EXPECTED.items() for t in info["topics"]]
    found = 0
    missed = []
    for topic in sorted({t for _, t in pairs}):
        code, out, _ = run(capsys, "stories", "--topic", topic, "--limit", "0", "--format", "json")
        assert code == 0
        got = {Path(s["link"].split("?")[0]).stem for s in json.loads(out)}
        for slug, t in pairs:
            if t == topic:
                if slug in got:
                    found += 1
                else:
                    missed.append((slug, t))
    assert found / len(pairs) >= 0.8, missed

    # second poll: nothing new, and every feed request was conditional
    site.reset()
    code, out, _ = run(capsys, "poll", "--all", "--format", "json")
    again = json.loads(out)
    assert code == 0
    assert {r["status"] for r in again} == {"not_modified"}
    assert sum(r["new"] for r in again) == 0
    feed_requests = [r for r in site.requests if r.path.startswith("/feeds/")]
    assert len(feed_requests) == 5
    assert all(
        "if-none-match" in r.headers and "if-modified-since" in r.headers for r in feed_requests
    )
    assert not [r for r in site.requests if not r.path.startswith("/feeds/")]  # no page re-fetched

    # export parses back cleanly
    out_file = env / "merged.atom"
    code, _, _ = run(capsys, "export", "--format", "atom", "--limit", "0", "-o", str(out_file))
    assert code == 0
    parsed = feedparser.parse(out_file.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 42
    for fmt in ("rss", "json"):  # feedparser reads RSS; JSON Feed goes through our parser
        code, out, _ = run(capsys, "export", "--format", fmt, "--topic", "Domain Names")
        assert code == 0
        doc = parse_feed(out.encode(), f"http://localhost/feed.{fmt}")
        assert doc.entries
        assert all("Domain Names" in e.categories for e in doc.entries)
        if fmt == "rss":
            assert not feedparser.parse(out.encode()).bozo


def test_broken_feeds_are_recorded_and_others_stored(
    site: LocalServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "not-found": site.route("/bad/404", status=404, body=b"nope"),
        "server-error": site.route("/bad/500", status=500, body=b"oops"),
        "html": site.route(
            "/bad/html",
            body=b"<!doctype html><html><body><p>Hello</p></body></html>",
            content_type="text/html",
        ),
        "broken-xml": site.route(
            "/bad/xml", body=b"<?xml version='1.0'?>\n<rss><channel>&&& <<< </rss"
        ),
        "timeout": site.route("/bad/slow", hang=True),
    }
    good = site.url("/feeds/circlenet.xml")
    # not well-formed, but its items can be recovered: stored, and the problem recorded
    recovered = site.route(
        "/bad/recoverable",
        body=b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>"
        b"<item><title>A & B</title><link>http://h.example/1</link></item></channel>",
    )
    lines = [f"  - url: {u}\n    name: {n}\n" for n, u in bad.items()]
    lines += [f"  - url: {good}\n    name: good\n", f"  - url: {recovered}\n    name: recovered\n"]
    (env / "feeds.yaml").write_text("feeds:\n" + "".join(lines))

    code, out, err = run(capsys, "poll", "--all", "--no-extract", "--quiet")
    assert code == 0  # not every feed failed
    fail_lines = [line for line in err.splitlines() if line.startswith("failed")]
    assert len(fail_lines) == 5, err
    assert any("404" in line for line in fail_lines)
    assert any("500" in line for line in fail_lines)

    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    feeds = {f["name"]: f for f in json.loads(out)}
    assert feeds["good"]["status"] == "active"
    assert feeds["good"]["stories"] == 9
    for name in bad:
        assert feeds[name]["status"] == "error", (name, feeds[name])
        assert feeds[name]["last_error"], name
        assert feeds[name]["stories"] == 0
    assert feeds["recovered"]["status"] == "active"
    assert feeds["recovered"]["stories"] == 1
    assert "not well-formed" in feeds["recovered"]["last_error"]
    assert "404" in feeds["not-found"]["last_error"]
    assert "500" in feeds["server-error"]["last_error"]

    # when every polled feed fails, the exit status says so (feeds dropped from the file
    # stay in the database until removed, so remove them)
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {bad['not-found']}\n")
    for url in [good, recovered, *(u for n, u in bad.items() if n != "not-found")]:
        assert run(capsys, "feeds", "remove", url)[0] == 0
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--quiet")
    assert code == 1
    assert "404" in err


def test_bad_cli_input_is_one_clear_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "feeds.yaml").write_text("feeds:\n  - name: no url here\n")
    code, _, err = run(capsys, "poll")
    assert code == 2
    assert "'url' is required" in err
    assert "Traceback" not in err
    (env / "feeds.yaml").write_text("feeds: []\n")
    code, _, err = run(capsys, "stories", "--topic", "Gardening")
    assert code == 2
    assert "unknown topic" in err
    code, _, err = run(capsys, "stories", "--since", "last tuesday")
    assert code == 2
    assert "7d" in err
    code, _, err = run(capsys, "show", "12345")
    assert code == 2
    assert "no story 12345" in err


def test_feed_text_is_never_rich_markup(
    site: LocalServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    title = "[Webinar] Registry [bold]abuse[/bold] update [/]"
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>[Feed] x</title>'
        f"<link>http://h.example/</link><item><title>{title}</title>"
        "<link>http://h.example/1</link><description>[red]not red[/red]</description>"
        "</item></channel></rss>"
    ).encode()
    url = site.route("/brackets", body=body)
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n")
    assert run(capsys, "poll", "--all", "--no-extract")[0] == 0
    code, out, err = run(capsys, "stories")
    assert code == 0, err
    assert "[Webinar]" in out
    assert "[/bold]" in out  # shown as text, not swallowed as a style
    code, out, err = run(capsys, "show", "1")
    assert code == 0, err
    assert title in out
    assert "[red]not red[/red]" in out


def test_page_charset_from_the_http_header(
    site: LocalServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page whose only charset is in its Content-Type header (no <meta>) is decoded with
    it, not as UTF-8."""
    sentences = [
        "The café owners’ association said the registry’s “quiet period” for new"
        " domain names ends on Monday, after which applications reopen.",
        "Registrars expect a rush of applications from small businesses in the first week.",
        "The registry published its updated pricing table and a list of reserved names.",
        "Trademark holders can still file objections through the usual dispute process.",
        "Analysts said the change follows two years of consultation with the community.",
        "A spokesperson added that technical testing of the new zone had been completed.",
    ]
    body = "".join(
        f"<p>{s} It was paragraph {i} of the notice.</p>" for i, s in enumerate(sentences)
    )
    page = f"<html><body><article><h1>Café registry</h1>{body}</article></body></html>"
    page = page.encode("cp1252")  # é, ’, “, ” as single bytes, which UTF-8 cannot read
    link = site.route("/pages/cp1252", body=page, content_type="text/html; charset=windows-1252")
    feed = site.route(
        "/feeds/one.xml",
        body=(
            "<?xml version='1.0'?><rss version='2.0'><channel><title>One</title>"
            f"<item><title>Registry news</title><link>{link}</link>"
            "<description>Short.</description></item></channel></rss>"
        ).encode(),
    )
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {feed}\n")
    code, out, _ = run(capsys, "poll", "--all", "--format", "json")
    assert code == 0
    code, out, _ = run(capsys, "stories", "--format", "json")
    (story,) = json.loads(out)
    code, out, _ = run(capsys, "show", str(story["id"]), "--format", "json")
    shown = json.loads(out)
    assert shown["extraction_status"] == "ok", shown["extraction_error"]
    text = shown["full_text"]
    assert "café owners’ association" in text and "“quiet period”" in text, text
    assert "\ufffd" not in text


def test_feeds_list_says_due_rather_than_a_past_time() -> None:
    from datetime import UTC, datetime, timedelta

    from aggregator.cli.feeds import _next_check

    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert _next_check(now - timedelta(hours=3), now) == "due"
    assert _next_check(now, now) == "due"
    assert _next_check(now + timedelta(hours=3), now) == "in 3h"
    assert _next_check(None, now) == "—"
