"""Article extraction as a user meets it, end to end through a real poll: what a link
that is not a web page costs (audited in session 10)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_extract_pipeline import TITLE, article_page

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery


def rss(server: LocalServer, links: list[str]) -> str:
    items = "".join(
        f"<item><title>s{i} {TITLE}</title><link>{link}</link><guid>g{i}</guid>"
        "<description>Teaser.</description></item>"
        for i, link in enumerate(links)
    )
    return server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
            "</channel></rss>"
        ).encode(),
    )


MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("options", "media"),
    [
        pytest.param(  # would take 50 s to arrive: the fetch timed out instead
            {
                "body": b"%PDF-1.7\n" + b"x" * 1000,
                "content_type": "application/pdf",
                "dribble": 0.05,
            },
            "application/pdf",
            id="slow-pdf",
        ),
        pytest.param(  # no Content-Length: read up to the cap, then "body too large"
            {"body": b"ID3" + b"\x00" * (2 * MIB), "content_type": "audio/mpeg", "chunked": True},
            "audio/mpeg",
            id="podcast-mp3",
        ),
        pytest.param(  # refused by its Content-Length as "body too large"
            {"body": b"\xff\xd8\xff\xe0" + b"\x01" * (2 * MIB), "content_type": "image/jpeg"},
            "image/jpeg",
            id="large-jpeg",
        ),
    ],
)
def test_a_link_to_a_file_is_refused_by_its_type_before_its_body_is_read(
    tmp_path: Path, server: LocalServer, options: dict[str, object], media: str
) -> None:
    """A story linking a PDF, an mp3 or an image had its whole body downloaded (up to
    the 10 MiB cap, or until the 20 s deadline) before extraction refused it by its type;
    a file past the cap was recorded as "body too large" instead. The type is checked
    on the response's headers now: the story records why, at no cost to the others."""
    bad = server.route("/file", **options)
    good = server.route("/page", body=article_page().encode(), content_type="text/html")
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        workers=1,
        timeout_s=3,
        max_body_bytes=MIB,
    )
    with make_app(settings) as app:
        app.add_feed(rss(server, [bad, good]), discover=False)
        started = time.monotonic()
        assert [(r.status, r.new, r.extracted) for r in app.update_due(all_feeds=True)] == [
            ("ok", 2, 1)
        ]
        elapsed = time.monotonic() - started
        stories = {s.title.split()[0]: s for s in app.stories(StoryQuery(limit=None))}
    assert elapsed < 2.5
    file, page = stories["s0"], stories["s1"]
    assert file.extraction_status == "failed" and file.full_text is None
    assert file.extraction_error == f"page fetch failed: not an HTML page ({media})"
    assert page.extraction_status == "ok" and page.full_text
