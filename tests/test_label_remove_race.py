"""A label given while `feeds remove` runs is never lost (PostgreSQL; SQLite's writers
take turns anyway). The removal archives the feed's labels, then deletes its stories: a
label committed in between was deleted with its story, unarchived, and did not come
back when the feed was added again. A label and a removal now take turns on the feed's
row, shown with a second connection holding the row as either side would."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, text
from test_label_archive import FEED, T1, _archive, _save, write_during_removal

from aggregator.store import open_store
from aggregator.types import FeedSource


def test_a_label_waits_for_a_removal_and_then_finds_no_story(pg_url: str) -> None:
    st = open_store(pg_url)
    other = create_engine(pg_url)
    try:
        st.sync_topics([("DNS", None)])
        feed, _ = st.add_feed(FeedSource(url=FEED), T1)
        sid = _save(st, feed.id, "one")
        failed = write_during_removal(other, feed.id, lambda: st.add_labels(sid, ["DNS"], [], T1))
        assert [type(e).__name__ for e in failed] == ["NotFoundError"]
    finally:
        other.dispose()
        st.close()


def test_a_removal_waits_for_a_label_and_archives_it(pg_url: str) -> None:
    st = open_store(pg_url)
    other = create_engine(pg_url)
    try:
        st.sync_topics([("DNS", None)])
        feed, _ = st.add_feed(FeedSource(url=FEED), T1)
        sid = _save(st, feed.id, "one")
        done: list[int] = []
        with other.begin() as c:  # a label, mid-transaction: it holds what add_labels holds
            c.execute(
                text(
                    "SELECT feed.id FROM feed JOIN story ON story.feed_id = feed.id"
                    " WHERE story.id = :s FOR KEY SHARE OF feed"
                ),
                {"s": sid},
            )
            topic = c.execute(text("SELECT id FROM topic WHERE name = 'DNS'")).scalar()
            c.execute(
                text(
                    "INSERT INTO label (story_id, topic_id, value, created)"
                    " VALUES (:s, :t, true, :c)"
                ),
                {"s": sid, "t": topic, "c": T1},
            )
            remover = threading.Thread(target=lambda: done.append(st.remove_feed(FEED, T1)))
            remover.start()
            remover.join(0.5)
            assert remover.is_alive()  # waits for the label to commit
        remover.join(10)
        assert done == [1]
        assert _archive(st) == [("https://a.example/one", ["DNS"], [])]
    finally:
        other.dispose()
        st.close()
