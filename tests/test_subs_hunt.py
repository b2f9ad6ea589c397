"""Hunt: subscription management as a user migrating hundreds of feeds meets it:
`feeds add` of a feed already here, OPML import into a store that has some of its feeds,
and OPML entries that cannot be imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_store import check

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import FeedSource


@pytest.mark.parametrize(
    "given",
    ["http://old.example/feed", "https://old.example/feed", "http://OLD.example/feed/"],
)
def test_adding_the_url_a_moved_feed_was_subscribed_under_adds_no_second_feed(
    tmp_path: Path, given: str
) -> None:
    """A feed a permanent redirect moved is found by the URL it was subscribed under,
    spelled as it may be, as `feeds import` and the feeds.yaml sync find it: `feeds add
    --no-discover` of the old URL added a second feed, polling the old address."""
    with make_app(Settings.from_env({}, data_dir=tmp_path / "data")) as app:
        app.store.upsert_feeds([FeedSource(url="http://old.example/feed")], app.now())
        feed = app.store.get_feed("http://old.example/feed")
        app.store.save_update(check(feed.id, url="https://www.example.com/feed"), [])
        added = app.add_feed(given, discover=False)
        assert not added.created and added.feed.id == feed.id
        assert [f.url for f in app.feeds()] == ["https://www.example.com/feed"]
