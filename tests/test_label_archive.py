"""Labels are kept until withdrawn, even across `feeds remove`: the labels of a removed
feed's stories wait in the label archive, and come back onto the stories when the feed
is added again and its stories return (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from test_learning_cli import env, run, seed_stories  # noqa: F401  (env: fixture)
from test_prune import _archive as archive_rss
from test_store import check, draft, pred, store  # noqa: F401  (store: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryQuery, StoryRecord

T1 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
FEED = "https://a.example/feed"


def _save(st, feed_id: int, key: str, *topics: tuple[str, float], at: datetime = T1) -> int:  # type: ignore[no-untyped-def]
    rec = StoryRecord(
        draft=draft(key, f"Story {key} about resolvers", link=f"https://a.example/{key}"),
        prediction=pred(*topics),
    )
    (sid,) = st.save_update(check(feed_id, at=at), [rec]).new
    return int(sid)


def _topics(st, story_id: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    (story,) = st.get_stories([story_id])
    return {t.topic: t.source for t in story.topics}


def _archive(st) -> list[tuple[str, list[str], list[str]]]:  # type: ignore[no-untyped-def]
    return [
        (ls.story.link, list(ls.positive), list(ls.negative))
        for ls in st.labelled_stories()
        if ls.story.id < 0
    ]


def test_labels_come_back_with_their_story_when_the_feed_is_added_again(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    feed = store.get_feed(FEED)
    one = _save(store, feed.id, "one", ("Cybersecurity", 0.9))
    two = _save(store, feed.id, "two", ("Cybersecurity", 0.9))
    _save(store, feed.id, "three", ("Cybersecurity", 0.9))
    store.add_labels(one, ["DNS"], ["Cybersecurity"], T1)
    store.add_labels(two, [], ["DNS"], T1)
    assert store.remove_feed(FEED, T1) == 2
    assert len(_archive(store)) == 2

    later = T1 + timedelta(days=3)
    again, created = store.add_feed(FeedSource(url=FEED), later)
    assert created
    # the model now gives both stories Cybersecurity and IPv4 Markets
    back = _save(store, again.id, "one", ("Cybersecurity", 0.9), ("IPv4 Markets", 0.8), at=later)
    assert _topics(store, back) == {"DNS": "user", "IPv4 Markets": "model"}
    assert store.story_labels(back) == (("DNS",), ("Cybersecurity",))
    # the archive gave it up: training reads the label once, from the story
    assert _archive(store) == [("https://a.example/two", [], ["DNS"])]
    assert [ls.story.id for ls in store.labelled_stories()] == [back, -2]

    # a story the archive has no label for is the model's alone; "two" comes back later
    fresh = _save(store, again.id, "four", ("DNS", 0.9), at=later)
    assert _topics(store, fresh) == {"DNS": "model"}
    back2 = _save(store, again.id, "two", ("DNS", 0.7), ("Cybersecurity", 0.6), at=later)
    assert _topics(store, back2) == {"Cybersecurity": "model"}
    assert store.story_labels(back2) == ((), ("DNS",))
    assert _archive(store) == []
    # and the topic filter sees the user's DNS
    assert [s.id for s in store.stories(StoryQuery(topics=("DNS",)))] == [fresh, back]


def test_only_the_same_feed_gets_them_and_unknown_topics_stay_archived(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    feed = store.get_feed(FEED)
    sid = _save(store, feed.id, "one", ("DNS", 0.9))
    store.add_labels(sid, ["Cybersecurity"], [], T1)
    store.remove_feed(FEED, T1)
    with store.engine.begin() as c:  # a label of a topic the taxonomy has dropped since
        c.execute(
            text("UPDATE label_archive SET positive = :p"),
            {"p": '["Cybersecurity", "Retired Topic"]'},
        )

    # another feed with a story at the same link: not the removed feed's story
    other = store.get_feed("https://b.example/feed")
    elsewhere = _save(store, other.id, "one", ("DNS", 0.9))
    assert store.story_labels(elsewhere) == ((), ())
    assert len(_archive(store)) == 1

    again, _ = store.add_feed(FeedSource(url=FEED), T1)
    back = _save(store, again.id, "one", ("DNS", 0.9))
    assert store.story_labels(back) == (("Cybersecurity",), ())
    assert _archive(store) == [("https://a.example/one", ["Retired Topic"], [])]


def test_a_private_feed_added_again_gets_its_labels_back(db_url: str) -> None:
    """The archive keeps the feed URL without its password; the feed comes back with it."""
    url = "https://ann:hunter2@members.example/feed"
    st = open_store(db_url)
    try:
        st.sync_topics([("DNS", None)])
        feed, _ = st.add_feed(FeedSource(url=url), T1)
        sid = _save(st, feed.id, "one")
        st.add_labels(sid, ["DNS"], [], T1)
        st.remove_feed(url, T1)
        again, _ = st.add_feed(FeedSource(url=url), T1)
        back = _save(st, again.id, "one")
        assert st.story_labels(back) == (("DNS",), ())
    finally:
        st.close()


def test_migration_10_indexes_the_archive_by_feed_url(db_url: str) -> None:
    st = open_store(db_url)
    with st.engine.begin() as c:  # a version-9 database
        c.execute(text("DROP INDEX ix_label_archive_feed_url"))
        c.execute(text("DELETE FROM schema_version WHERE version = 10"))
    st.close()
    st = open_store(db_url)
    try:
        with st.engine.connect() as c:
            names = {ix["name"] for ix in inspect(c).get_indexes("label_archive")}
            assert "ix_label_archive_feed_url" in names
            done = set(c.execute(text("SELECT version FROM schema_version")).scalars())
            assert 10 in done
    finally:
        st.close()


def test_remove_then_add_through_the_app_and_a_real_server(tmp_path: Path, server) -> None:  # type: ignore[no-untyped-def]
    """The user's path: poll, label, `feeds remove`, `feeds add`, poll: the stories are
    stored anew, and the labelled one carries the user's labels again."""
    s = Settings.from_env(
        {}, data_dir=tmp_path, allow_private_addresses=True, extract=False, timeout_s=3
    )
    url = server.route("/feed", body=archive_rss("a", "b"))
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True)] == [2]
        story = next(st for st in app.stories(StoryQuery()) if st.link.endswith("/a"))
        app.label(story.id, ["IPv4 Markets"], ["DNS"])
        assert app.remove_feed(url) == 1
        assert app.stories(StoryQuery()) == []

        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True)] == [2]
        back = next(st for st in app.stories(StoryQuery()) if st.link.endswith("/a"))
        assert app.story_labels(back.id) == (("IPv4 Markets",), ("DNS",))
        topics = {t.topic: t.source for t in back.topics}
        assert topics.get("IPv4 Markets") == "user" and "DNS" not in topics
        assert [ls.story.id for ls in app.labelled()] == [back.id]


def test_feeds_remove_says_the_labels_will_return(env: Path, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (sid, *_) = seed_stories(env / "data", classify=False)
    code, _, err = run(capsys, "label", str(sid), "+DNS")
    assert code == 0, err
    code, out, err = run(capsys, "feeds", "remove", "https://news.example/feed")
    assert code == 0, err
    said = " ".join(out.split())
    assert "the labels of 1 story are kept for training" in said
    assert "return to their stories if you add the feed again" in said


def test_on_postgresql_a_poll_write_and_feeds_remove_take_turns(pg_url: str) -> None:
    """`feeds remove` reads the labels to archive, then deletes the stories. A poll
    committing in between (restoring archived labels onto returning stories) had its
    labels deleted unarchived. Each now waits for the other on the feed's row: shown here
    with a second connection holding the row as either side would."""
    import threading

    from sqlalchemy import create_engine

    st = open_store(pg_url)
    other = create_engine(pg_url)
    try:
        st.sync_topics([("DNS", None)])
        feed, _ = st.add_feed(FeedSource(url=FEED), T1)
        sid = _save(st, feed.id, "one")
        st.add_labels(sid, ["DNS"], [], T1)

        done: list[object] = []
        with other.begin() as c:  # a poll of the feed, mid-transaction
            c.execute(text("SELECT url FROM feed WHERE id = :i FOR NO KEY UPDATE"), {"i": feed.id})
            remover = threading.Thread(target=lambda: done.append(st.remove_feed(FEED, T1)))
            remover.start()
            remover.join(0.5)
            assert remover.is_alive()  # waits for the poll to commit
        remover.join(10)
        assert done == [1]

        feed, _ = st.add_feed(FeedSource(url=FEED), T1)
        failed = write_during_removal(other, feed.id, lambda: _save(st, feed.id, "two"))
        assert [type(e).__name__ for e in failed] == ["NotFoundError"]
        assert st.stories(StoryQuery()) == []
    finally:
        other.dispose()
        st.close()


def write_during_removal(
    other: Engine, feed_id: int, write: Callable[[], object]
) -> list[BaseException]:
    """Run ``write`` on a thread while ``other`` holds the feed's row as `feeds remove`
    does mid-transaction; check that it waits, then delete the feed and return what the
    write raised once the removal committed."""
    import threading

    failed: list[BaseException] = []

    def run() -> None:
        try:
            write()
        except BaseException as e:
            failed.append(e)

    with other.begin() as c:
        c.execute(text("SELECT id FROM feed WHERE id = :i FOR UPDATE"), {"i": feed_id})
        writer = threading.Thread(target=run)
        writer.start()
        writer.join(0.5)
        assert writer.is_alive()  # waits for the removal
        c.execute(text("DELETE FROM feed WHERE id = :i"), {"i": feed_id})
    writer.join(10)
    return failed


def test_a_group_write_gives_labels_back_only_to_their_feed(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The poll writes several feeds in one transaction, asking the archive once which of
    their URLs it holds labels for: the returning feed's story gets its labels back, a
    story of another feed in the same group with the same link does not, and each feed's
    fetch-log row counts its own stories."""
    feed = store.get_feed(FEED)
    one = _save(store, feed.id, "one", ("Cybersecurity", 0.9))
    store.add_labels(one, ["DNS"], [], T1)
    assert store.remove_feed(FEED, T1) == 1

    later = T1 + timedelta(days=1)
    again, _ = store.add_feed(FeedSource(url=FEED), later)
    other = store.get_feed("https://b.example/feed")

    def rec(key: str) -> StoryRecord:
        return StoryRecord(
            draft=draft(key, f"Story {key} about resolvers", link="https://a.example/one"),
            prediction=pred(("Cybersecurity", 0.9)),
        )

    first, second, third = store.save_updates(
        [
            (check(other.id, at=later), [rec("one"), rec("b-two")]),
            (check(again.id, at=later), [rec("one")]),
            (check(other.id, at=later + timedelta(minutes=5)), []),
        ]
    )
    (back,) = second.new
    assert _topics(store, back) == {"DNS": "user", "Cybersecurity": "model"}
    assert all(_topics(store, sid) == {"Cybersecurity": "model"} for sid in first.new)
    assert _archive(store) == []
    assert [(e.new, e.updated) for e in store.fetch_log(other.id)] == [(0, 0), (2, 0)]
    assert [(e.new, e.updated) for e in store.fetch_log(again.id)] == [(1, 0)]
    assert third.new == ()


def test_stories_sharing_a_link_each_get_their_own_labels_back(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A feed linking every item to its home page: the link names no one story, so an
    archived label goes back to the story with its title too (matched by link alone,
    both stories' labels went onto one of them). One whose story has not returned waits
    in the archive; a story whose link is its own gets its labels with an edited title."""
    feed = store.get_feed(FEED)
    home = "https://a.example/"

    def rec(key: str, title: str, link: str = home) -> StoryRecord:
        return StoryRecord(draft=draft(key, title, link=link), prediction=pred(("DNS", 0.9)))

    one, two, own = store.save_update(
        check(feed.id, at=T1),
        [
            rec("one", "Episode 1: resolvers"),
            rec("two", "Episode 2: registries"),
            rec("own", "Root zone news", "https://a.example/own"),
        ],
    ).new
    store.add_labels(one, ["Cybersecurity"], [], T1)
    store.add_labels(two, ["IPv4 Markets"], [], T1)
    store.add_labels(own, [], ["DNS"], T1)
    assert store.remove_feed(FEED, T1) == 3

    later = T1 + timedelta(days=1)
    again, _ = store.add_feed(FeedSource(url=FEED), later)
    back_two, back_own = store.save_update(
        check(again.id, at=later),
        [
            rec("two", "Episode 2: registries"),
            rec("own", "Root zone news (updated)", "https://a.example/own"),
        ],
    ).new
    assert store.story_labels(back_two) == (("IPv4 Markets",), ())
    assert store.story_labels(back_own) == ((), ("DNS",))
    assert _archive(store) == [(home, ["Cybersecurity"], [])]
    (back_one,) = store.save_update(
        check(again.id, at=later), [rec("one", "Episode 1: resolvers")]
    ).new
    assert store.story_labels(back_one) == (("Cybersecurity",), ())
    assert _archive(store) == []


def test_a_renamed_topics_archived_labels_come_back_under_its_new_name(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A topic renamed (its old name kept among its aliases) while a removed feed's labels
    wait in the archive: they move to the new name with the stored ones, and come back
    with their story. Left under the old name, no topic matched them: they stayed in
    the archive and the story came back unlabelled. Where the story has a label under
    the new name too, that one wins, as for stored labels."""
    feed = store.get_feed(FEED)
    one = _save(store, feed.id, "one", ("DNS", 0.9))
    two = _save(store, feed.id, "two", ("DNS", 0.9))
    store.add_labels(one, ["Cybersecurity"], ["DNS"], T1)
    store.add_labels(two, ["Cybersecurity"], [], T1)
    assert store.remove_feed(FEED, T1) == 2
    store.sync_topics([("Security", None), ("IPv4 Markets", None), ("DNS", None)])
    with store.engine.begin() as c:  # "two" was labelled -Security as well
        c.execute(
            text("UPDATE label_archive SET negative = '[\"Security\"]' WHERE link LIKE '%two'")
        )

    def renamed(name: str) -> str | None:
        return "Security" if name == "Cybersecurity" else None

    store.sync_topics([("Security", None), ("IPv4 Markets", None), ("DNS", None)], renamed)
    assert _archive(store) == [
        ("https://a.example/one", ["Security"], ["DNS"]),
        ("https://a.example/two", [], ["Security"]),
    ]
    later = T1 + timedelta(days=1)
    again, _ = store.add_feed(FeedSource(url=FEED), later)
    back = _save(store, again.id, "one", ("DNS", 0.9), at=later)
    back2 = _save(store, again.id, "two", ("DNS", 0.9), at=later)
    assert store.story_labels(back) == (("Security",), ("DNS",))
    assert store.story_labels(back2) == ((), ("Security",))
    assert _archive(store) == []
