"""Review: feeds.yaml sync of a respelled URL for a feed whose URL a permanent redirect
moved (``source_url`` set): it is the same feed, found once, and stays where it moved."""

from __future__ import annotations

from datetime import timedelta

from test_store import T0, check, store  # noqa: F401  (store: fixture)

from aggregator.types import FeedSource


def test_respelled_subscription_of_a_moved_feed_is_not_added_again(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    store.upsert_feeds([FeedSource(url="http://old.example/feed")], T0)
    feed = store.get_feed("http://old.example/feed")
    store.save_update(check(feed.id, url="https://www.example.com/feed"), [])
    assert store.get_feed(feed.id).url == "https://www.example.com/feed"

    # the user fixes the scheme of the subscription in feeds.yaml
    later = T0 + timedelta(hours=1)
    sources = [FeedSource(url="https://old.example/feed")]
    added, _ = store.upsert_feeds(sources, later)
    assert added == 0
    assert [f.url for f in store.feeds() if "example.com" in f.url] == [
        "https://www.example.com/feed"
    ]
    assert store.upsert_feeds(sources, later) == (0, 0)


def test_respelled_subscription_does_not_undo_an_adopted_redirect(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    store.upsert_feeds([FeedSource(url="http://x.example/feed")], T0)
    feed = store.get_feed("http://x.example/feed")
    store.save_update(check(feed.id, url="https://x.example/feed"), [])

    # the file now spells the subscription with a trailing slash
    later = T0 + timedelta(hours=1)
    sources = [FeedSource(url="http://x.example/feed/")]
    store.upsert_feeds(sources, later)
    assert store.get_feed(feed.id).url == "https://x.example/feed"  # not moved back
    assert store.upsert_feeds(sources, later) == (0, 0)  # and found as is next time
    assert store.get_feed("http://x.example/feed/").id == feed.id


def test_a_respelled_feed_with_new_settings_counts_once(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """`feeds import` prints "N updated, M unchanged" from this count: a feed respelled
    and renamed is one updated feed, not two (and not -1 unchanged)."""
    renamed = [
        FeedSource(url="http://A.example/feed/", name="Alpha renamed"),
        FeedSource(url="https://b.example/feed", name="Beta"),
    ]
    assert store.upsert_feeds(renamed, T0) == (0, 1)
    assert store.get_feed("http://A.example/feed/").name == "Alpha renamed"
