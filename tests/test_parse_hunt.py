"""Parsing and exporting bugs found in the parse hunt: each test is a user-visible failure
that was fixed (JSON Feed input, dates, the exporter's round trip)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aggregator.parse import parse_feed

URL = "https://feeds.example.org/feed.json"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def json_feed(*items: dict[str, object], **doc: object) -> bytes:
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "T", **doc, "items": list(items)}
    ).encode()


# --- JSON Feed --------------------------------------------------------------------------------


def test_json_content_text_is_kept_when_content_html_sanitises_to_nothing() -> None:
    # A video post: its HTML is only the embed (an iframe, which the sanitiser drops), its
    # text the description. The story had no text at all and was titled "(untitled)".
    item = {
        "id": "1",
        "url": "https://video.example/1",
        "content_html": '<iframe src="https://www.youtube.com/embed/x"></iframe>',
        "content_text": "Watch our launch video: the new release explained.",
    }
    (entry,) = parse_feed(json_feed(item), URL, now=NOW).entries
    assert entry.content == "<p>Watch our launch video: the new release explained.</p>"
    assert entry.title == "Watch our launch video: the new release explained."
