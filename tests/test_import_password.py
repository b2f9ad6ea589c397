"""`feeds import` of a list giving a known private feed a new password updates the
feed's password, as a feeds.yaml edit does (it kept the stored URL, old password and
all, so the import changed nothing and the feed went on failing)."""

from __future__ import annotations

from pathlib import Path

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.feedlist import load_feed_list


def test_an_import_with_a_new_password_updates_the_feed(tmp_path: Path) -> None:
    with make_app(Settings.from_env({}, data_dir=tmp_path / "data")) as app:
        app.add_feed("https://ann:old@members.example/feed.xml", discover=False)
        listing = tmp_path / "feeds.opml"
        listing.write_text(
            '<?xml version="1.0"?><opml version="2.0"><body>'
            '<outline type="rss" text="Members" xmlUrl="https://ann:new@Members.example/feed.xml/"/>'
            '<outline type="rss" text="Public" xmlUrl="https://public.example/feed.xml"/>'
            "</body></opml>",
            encoding="utf-8",
        )
        assert app.import_feeds(load_feed_list(listing)) == (1, 1)
        urls = sorted(f.url for f in app.feeds())
        # the stored spelling (host case, no trailing slash), the new password
        assert urls == [
            "https://ann:new@members.example/feed.xml",
            "https://public.example/feed.xml",
        ]
        # importing it again changes nothing
        assert app.import_feeds(load_feed_list(listing)) == (0, 0)
