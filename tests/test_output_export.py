"""Merged feeds as a feed reader sees them: entry ids unique within a document (RFC 4287
§4.2.6, RSS 2.0 guid, JSON Feed ``id``), also when a feed links every item to one page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from httpserver import LocalServer

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# A site whose feed links every item to its home page (it happens: announcements pages,
# some newsletters); the items differ by guid and text, so they are three stories.
SHARED_LINK_RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Notices</title><link>https://notices.example/</link>
<item><guid isPermaLink="false">n1</guid><title>Registry maintenance window</title>
<link>https://notices.example/</link><description>First notice about the window</description>
<pubDate>Thu, 26 Nov 2026 09:00:00 GMT</pubDate></item>
<item><guid isPermaLink="false">n2</guid><title>Root zone KSK rollover scheduled</title>
<link>https://notices.example/</link><description>Second notice, a different one</description>
<pubDate>Fri, 27 Nov 2026 09:00:00 GMT</pubDate></item>
<item><guid isPermaLink="false">n3</guid><title>Own page</title>
<link>https://notices.example/own</link><description>Third, with a page of its own</description>
<pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=3
    )
    with make_app(s, now=lambda: NOW) as a:
        yield a


def test_stories_sharing_a_link_keep_unique_entry_ids(app: App, server: LocalServer) -> None:
    app.add_feed(server.route("/notices.xml", body=SHARED_LINK_RSS), discover=False)
    assert [r.status for r in app.update_due(all_feeds=True)] == ["ok"]
    stories = app.stories(StoryQuery(limit=None))
    assert len(stories) == 3  # not one cluster: the texts differ

    atom = feedparser.parse(app.export(StoryQuery(limit=None), "atom"))
    rss = feedparser.parse(app.export(StoryQuery(limit=None), "rss"))
    doc = json.loads(app.export(StoryQuery(limit=None), "json"))
    for ids in (
        [i["id"] for i in doc["items"]],
        [e.id for e in atom.entries],
        [e.id for e in rss.entries],
    ):
        assert len(ids) == len(set(ids)) == 3, ids
        # A story with a page of its own keeps its link as its id (readers remember it).
        assert "https://notices.example/own" in ids
    urns = sorted(i for i in ids if i.startswith("urn:"))  # the two sharing a link
    # Every item still links to the page it points at.
    assert {e.link for e in atom.entries} == {
        "https://notices.example/",
        "https://notices.example/own",
    }
    # An RSS guid that is not the item's link says so (isPermaLink="false").
    channel = ET.fromstring(app.export(StoryQuery(limit=None), "rss").encode()).find("channel")
    assert channel is not None
    assert sorted((g.text or "", g.get("isPermaLink")) for g in channel.iter("guid")) == [
        ("https://notices.example/own", "true"),
        (urns[0], "false"),
        (urns[1], "false"),
    ]


def test_an_export_is_titled_with_the_taxonomys_spelling_of_its_topic(app: App) -> None:
    """`?topic=dns` (topics match case-insensitively) titled the feed "aggregator — dns"."""
    doc = json.loads(app.export(StoryQuery(topics=("dns", "domain names")), "json"))
    assert doc["title"] == "aggregator — DNS + Domain Names"
