"""An entry id made from a story's key is an IRI: a guid with spaces ("Weekly update
12", as podcast and notice feeds write them) made Atom ids and JSON Feed ids that
strict readers refused (RFC 3987 §2.2 has no space). Such characters are now escaped;
every id that was valid keeps its spelling."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from httpserver import LocalServer
from test_output_export import app  # noqa: F401  (fixture)

from aggregator.app import App
from aggregator.types import StoryQuery

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Notices</title><link>https://notices.example/</link>
<item><guid isPermaLink="false">Weekly update 12 &lt;draft&gt;</guid><title>Weekly</title>
<description>The twelfth weekly update.</description></item>
<item><guid isPermaLink="false">Ünïcode-ok:1</guid><title>Unicode</title>
<description>A guid an IRI may hold as it is.</description></item>
</channel></rss>""".encode()

ATOM = "{http://www.w3.org/2005/Atom}"


def test_entry_ids_from_keys_are_valid_iris(app: App, server: LocalServer) -> None:  # noqa: F811
    app.add_feed(server.route("/n.xml", body=RSS), discover=False)
    list(app.update_due(all_feeds=True))
    atom = ET.fromstring(app.export(StoryQuery(), "atom"))
    ids = {e.findtext(f"{ATOM}title"): e.findtext(f"{ATOM}id") for e in atom.iter(f"{ATOM}entry")}
    assert ids["Weekly"] is not None and ids["Weekly"].endswith(
        ":v1:guid:Weekly%20update%2012%20%3Cdraft%3E"
    )
    assert ids["Unicode"] is not None and ids["Unicode"].endswith(":v1:guid:Ünïcode-ok:1")
    feed = json.loads(app.export(StoryQuery(), "json"))
    assert {item["id"] for item in feed["items"]} == set(ids.values())
    for value in ids.values():
        assert value is not None and not any(c in value for c in ' <>"{}|\\^`')
