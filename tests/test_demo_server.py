"""The offline demo server: {{BASE}} substitution, content types, conditional GET, 404s,
and the integrity of the bundled demo data it serves (every feed parses, every link lands)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.utils import format_datetime
from http.client import HTTPResponse
from pathlib import Path

import feedparser
import pytest

from aggregator.demo_server import BASE_TOKEN, DEMO_ROOT, LAST_MODIFIED, DemoServer

FEEDS = {
    "circlenet.xml": "application/rss+xml",
    "registryrow.atom": "application/atom+xml",
    "addressledger.rdf": "application/rdf+xml",
    "lantern.json": "application/feed+json",
    "govwire.xml": "application/rss+xml",
}


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with DemoServer() as server:
        yield server


def get(url: str, **headers: str) -> HTTPResponse:
    """urlopen that returns 3xx/4xx responses instead of raising them."""
    request = urllib.request.Request(url, headers=headers)
    try:
        response: HTTPResponse = urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as e:
        e.read()
        return e  # type: ignore[return-value]  # HTTPError is a response too
    return response


def test_binds_loopback_on_a_random_port(demo: DemoServer) -> None:
    assert demo.base_url.startswith("http://127.0.0.1:")
    assert not demo.base_url.endswith(":0")


def test_base_token_is_replaced_with_own_origin(demo: DemoServer) -> None:
    raw = (DEMO_ROOT / "feeds" / "govwire.xml").read_bytes()
    assert BASE_TOKEN.encode() in raw
    body = get(demo.url("/feeds/govwire.xml")).read()
    assert BASE_TOKEN.encode() not in body
    assert f"<link>{demo.base_url}/pages/".encode() in body


@pytest.mark.parametrize(("name", "media_type"), FEEDS.items(), ids=list(FEEDS))
def test_feed_content_types(demo: DemoServer, name: str, media_type: str) -> None:
    response = get(demo.url(f"/feeds/{name}"))
    assert response.status == 200
    assert response.headers["Content-Type"] == f"{media_type}; charset=utf-8"


def test_page_content_type_and_query_ignored(demo: DemoServer) -> None:
    # The JSON feed links one story with utm_* parameters; the same page must be served.
    plain = get(demo.url("/pages/fast-flux-phishing-dynamic-dns.html"))
    tracked = get(demo.url("/pages/fast-flux-phishing-dynamic-dns.html?utm_source=x&utm_medium=y"))
    assert plain.headers["Content-Type"] == "text/html; charset=utf-8"
    assert tracked.status == plain.status == 200
    assert tracked.headers["ETag"] == plain.headers["ETag"]


def test_validators_are_strong_and_stable(demo: DemoServer) -> None:
    first = get(demo.url("/feeds/circlenet.xml"))
    second = get(demo.url("/feeds/circlenet.xml"))
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert second.headers["ETag"] == etag
    assert first.headers["Last-Modified"] == format_datetime(LAST_MODIFIED, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "{etag}"}, 304),
        ({"If-None-Match": 'W/"other", {etag}'}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"stale"'}, 200),
        ({"If-Modified-Since": "{last_modified}"}, 304),
        ({"If-Modified-Since": "Wed, 01 Jan 2031 00:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Sat, 14 Jun 2025 08:00:00 GMT"}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        # If-None-Match takes precedence over If-Modified-Since (RFC 9110 section 13.2.2).
        ({"If-None-Match": '"stale"', "If-Modified-Since": "{last_modified}"}, 200),
    ],
    ids=[
        "inm-match",
        "inm-list",
        "inm-star",
        "inm-stale",
        "ims-equal",
        "ims-later",
        "ims-earlier",
        "ims-garbage",
        "inm-wins",
    ],
)
def test_conditional_get(demo: DemoServer, headers: dict[str, str], status: int) -> None:
    url = demo.url("/feeds/lantern.json")
    fresh = get(url)
    values = {"etag": fresh.headers["ETag"], "last_modified": fresh.headers["Last-Modified"]}
    response = get(url, **{k: v.format(**values) for k, v in headers.items()})
    assert response.status == status
    if status == 304:
        assert response.read() == b""
        assert response.headers["ETag"] == fresh.headers["ETag"]


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/missing.xml",
        "/pages/no-such-story.html",
        "/pages/",
        "/../pyproject.toml",
        "/%2e%2e/%2e%2e/pyproject.toml",
        "/pages/..%2f..%2fdemo_server.py",
    ],
)
def test_missing_and_escaping_paths_are_404(demo: DemoServer, path: str) -> None:
    assert get(demo.base_url + path).status == 404


def test_head_has_headers_but_no_body(demo: DemoServer) -> None:
    request = urllib.request.Request(demo.url("/feeds/circlenet.xml"), method="HEAD")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["ETag"]
        assert int(response.headers["Content-Length"]) > 0
        assert response.read() == b""


def test_start_stop_and_restart() -> None:
    server = DemoServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        assert get(server.url("/feeds/govwire.xml")).status == 200
    with server:  # a stopped server can be started again, on a fresh port
        assert get(server.url("/feeds/govwire.xml")).status == 200


def test_fixed_port(demo: DemoServer) -> None:
    port = int(demo.base_url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="in use"):  # already taken by the module fixture
        DemoServer(port=port).start()


# --- the demo data itself -------------------------------------------------------------


def entry_links(demo: DemoServer, name: str) -> list[str]:
    response = get(demo.url(f"/feeds/{name}"))
    body = response.read()
    if name.endswith(".json"):
        return [item["url"] for item in json.loads(body)["items"]]
    parsed = feedparser.parse(
        body,
        response_headers={
            "content-type": response.headers["Content-Type"],
            "content-location": demo.url(f"/feeds/{name}"),
        },
    )
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [entry.link for entry in parsed.entries]


def test_every_demo_link_resolves_and_matches_expected(demo: DemoServer) -> None:
    expected = json.loads((DEMO_ROOT / "expected.json").read_text(encoding="utf-8"))
    seen: dict[str, set[str]] = {}
    names = {f.name: f for f in sorted((DEMO_ROOT / "feeds").iterdir())}
    assert set(names) == set(FEEDS)
    for name in names:
        for link in entry_links(demo, name):
            # Relative links (Atom xml:base, RSS 1.0 against the feed URL) end up absolute.
            assert link.startswith(demo.base_url + "/pages/"), link
            assert get(link).status == 200, link
            slug = link.split("/pages/", 1)[1].split(".html", 1)[0]
            seen.setdefault(slug, set()).add(name)
    assert set(seen) == set(expected)
    assert all(len(seen[slug]) == len(story["feeds"]) for slug, story in expected.items())


def test_demo_feeds_yaml_points_at_served_feeds(demo: DemoServer) -> None:
    import yaml

    text = demo.feeds_yaml()
    assert BASE_TOKEN not in text
    feeds = yaml.safe_load(text)["feeds"]
    assert len(feeds) == len(FEEDS)
    for feed in feeds:
        assert get(feed["url"]).status == 200


def test_serves_other_roots(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "x.json").write_text('{"home": "{{BASE}}/"}', encoding="utf-8")
    with DemoServer(tmp_path) as server:
        response = get(server.url("/feeds/x.json"))
        assert json.loads(response.read()) == {"home": server.base_url + "/"}
        assert response.headers["Content-Type"] == "application/feed+json; charset=utf-8"
