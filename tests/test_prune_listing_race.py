"""A feed's document listing an old story again while a prune runs: the prune read the
listings before its batches, and deleted the story its feed had just listed again (it
came back as new at the document's next change). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from test_prune import NOW, OLD, _save
from test_store import check, store  # noqa: F401  (store: fixture)

from aggregator.dedupe import listing_digest
from aggregator.store.rows import chunks


def test_a_story_listed_again_while_the_prune_runs_is_kept(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    a = store.get_feed("https://a.example/feed")
    old = [_save(store, a.id, k, at=OLD) for k in ("x", "y")]
    store.save_update(check(a.id, at=NOW, listed=(listing_digest("z"),)), [])

    def poll_meanwhile(items: list[Any], n: int) -> Iterator[Any]:
        # after the prune chose its stories, before its first batch: a poll of feed A
        # finds "x" listed again in the document
        store.save_update(check(a.id, at=NOW, listed=(listing_digest("x"),)), [])
        yield from chunks(items, n)

    monkeypatch.setattr("aggregator.store.retention.chunks", poll_meanwhile)
    assert store.prune_stories(NOW - timedelta(days=180), 0) == 1
    assert [s.id for s in store.get_stories(old)] == [old[0]]
