"""A feed you named is shown by that name wherever its stories are: `feeds list` put the
name first, but `stories`, `show`, the JSON and CSV and the merged feeds showed the
feed's own title, which is often "Blog" or "RSS" (the reason to name it)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.export import ATOM_NS
from aggregator.types import StoryQuery

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<link>https://blog.example/</link><description>d</description>
<item><title>Root zone KSK rollover</title><link>https://blog.example/ksk</link>
<guid>ksk</guid><pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, extract=False)
    with make_app(s) as a:
        yield a


def test_stories_carry_the_name_you_gave_their_feed(app: App, server: LocalServer) -> None:
    named = server.route("/named.xml", body=RSS)
    plain = server.route("/plain.xml", body=RSS.replace(b"blog.example", b"other.example"))
    app.add_feed(named, name="Verisign Blog", discover=False)
    app.add_feed(plain, discover=False)
    assert {r.status for r in app.update_due(all_feeds=True)} == {"ok"}
    by_feed = {s.feed_url: s for s in app.stories(StoryQuery(limit=None))}
    assert by_feed[named].feed_title == "Verisign Blog"
    assert by_feed[plain].feed_title == "Blog"  # no name: the feed's own title
    doc = json.loads(app.export(StoryQuery(limit=None, feeds=(named,)), "json"))
    assert [i["_aggregator"]["feed_title"] for i in doc["items"]] == ["Verisign Blog"]
    atom = ET.fromstring(app.export(StoryQuery(limit=None, feeds=(named,)), "atom"))
    a = f"{{{ATOM_NS}}}"
    assert atom.findtext(f"{a}entry/{a}source/{a}title") == "Verisign Blog"
