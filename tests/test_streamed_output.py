"""Every story of a big store, written in bounded memory: ``Store.iter_stories`` reads the
matches a chunk at a time, ``stories --limit 0`` (JSON, CSV) and ``export`` write them as
they come. The bytes are those of the whole-list path, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_export_safety import STORIES as DIRTY
from test_export_safety import story as dirty_story
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_store import check, draft, pred

from aggregator.app import App, make_app
from aggregator.cli.common import write_streamed
from aggregator.config import Settings
from aggregator.export import outline, render, write_feed
from aggregator.exporting import ExportFormat
from aggregator.store import SqlStore, Store
from aggregator.types import FeedSource, Story, StoryQuery, StoryRecord, TopicScore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def populate(store: Store) -> None:
    """Two feeds, 26 stories: copies across feeds (clusters), equal dates (ties broken
    by id), undated stories (sorted by first seen), topics, searchable words, a link
    shared by several stories, non-ASCII text."""
    a, _ = store.add_feed(FeedSource(url="https://a.example/feed", name="Alpha"), T0)
    b, _ = store.add_feed(FeedSource(url="https://b.example/feed", name="Beta"), T0)

    def rec(i: int, feed: str, link: str | None) -> StoryRecord:
        topics = [("DNS", 0.9)] if i % 2 else [("Cybersecurity", 0.7)]
        if i % 3 == 0:
            topics.append(("IPv4 Markets", 0.55))
        d = draft(
            f"{feed}{i}",
            f"Story {i} {'résolveur' if i % 4 == 0 else 'registry'}",
            link=link,
            summary=f"<p>{'resolver outage' if i % 3 else 'market news'} number {i}</p>",
            published=None if i % 7 == 0 else T0 + timedelta(hours=i // 2),  # ties
            h=f"h{feed}{i}",
        )
        return StoryRecord(draft=d, prediction=pred(*topics))

    store.save_update(
        check(a.id), [rec(i, "a", f"https://n.example/{i}" if i % 5 else None) for i in range(16)]
    )
    # Feed B: copies of some of A's stories (same link: one cluster), and its own.
    copies = [rec(i, "b", f"https://n.example/{i}") for i in (1, 2, 3, 6)]
    own = [rec(i, "b", "https://shared.example/") for i in range(20, 26)]
    store.save_update(check(b.id, at=T0 + timedelta(minutes=5)), copies + own)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore(db_url)
    s.sync_topics([("DNS", None), ("Cybersecurity", None), ("IPv4 Markets", None)])
    populate(s)
    yield s
    s.close()


QUERIES = {
    "all": StoryQuery(limit=None),
    "topic": StoryQuery(topics=("DNS",), limit=None),
    "two-topics": StoryQuery(topics=("DNS", "IPv4 Markets"), limit=None),
    "feed": StoryQuery(feeds=("Beta",), limit=None),
    "search": StoryQuery(text="resolver", limit=None),
    "since": StoryQuery(since=T0 + timedelta(hours=3), limit=None),
    "topic-feed-until": StoryQuery(
        topics=("Cybersecurity",), feeds=("beta",), until=T0 + timedelta(hours=9), limit=None
    ),
    "search-since": StoryQuery(text="registry", since=T0 + timedelta(hours=2), limit=None),
    "page": StoryQuery(limit=7, offset=3),
}


def test_iter_stories_yields_what_stories_returns(store: SqlStore) -> None:
    for name, q in QUERIES.items():
        expected = store.stories(q)
        assert expected, f"{name} should match something"
        for chunk in (1, 3, 500):  # across chunk boundaries, and one chunk
            assert list(store.iter_stories(q, chunk=chunk)) == expected, (name, chunk)
        assert store.matching_ids(q) == [s.id for s in expected], name


def test_iter_stories_skips_a_story_deleted_meanwhile(store: SqlStore) -> None:
    from aggregator.errors import NotFoundError

    with pytest.raises(NotFoundError):  # an unknown topic: at once, not at the first next()
        store.iter_stories(StoryQuery(topics=("Nope",), limit=None))

    everything = store.stories(StoryQuery(limit=None))
    it = store.iter_stories(StoryQuery(limit=None), chunk=2)
    first = [next(it), next(it)]
    store.remove_feed("https://b.example/feed", NOW)  # B's own stories go
    rest = list(it)
    assert [s.id for s in first + rest] == [
        s.id for s in everything if s in first or s.feed_url != "https://b.example/feed"
    ]
    # the rest read as they are now: A's copies of B's stories no longer count B
    now = {s.id: s for s in store.stories(StoryQuery(limit=None))}
    assert rest == [now[s.id] for s in rest]
    assert any(s.sources == 2 for s in everything) and all(s.sources == 1 for s in rest)


# --- export: the streamed document is render()'s, byte for byte --------------------------


def _stories_sets() -> dict[str, list[Story]]:
    base = dirty_story()
    shared = "https://site.example/same"
    many = [
        replace(
            base,
            id=10 + i,
            key=f"v1:guid:n{i}",
            title=f'Ünïcödé {i} <&> "quoted" ]]> 東京',
            link=shared if i % 3 == 0 else (None if i % 4 == 1 else f"https://s.example/{i}"),
            canonical_url=None if i % 5 == 0 else "https://s.example/c",
            author=None if i % 2 else f"Ann {i}",
            published=None if i % 6 == 0 else datetime(2026, 11, 1 + i, 9, tzinfo=UTC),
            topics=() if i % 3 == 1 else (TopicScore(topic="DNS", score=0.123456),),
            summary=None if i % 3 == 2 else f"<b>sum {i}</b>\x01",
            content="x" * 5000 if i == 4 else None,
            full_text="para one\n\npara\x0b two" if i == 5 else None,
        )
        for i in range(13)
    ]
    return {
        "dirty": DIRTY,
        "mixed": many,
        "authors-later": [replace(s, author=None) for s in many[:5]] + many[5:],
        "no-authors": [replace(s, author=None) for s in many],
        "one": many[:1],
        "none": [],
    }


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
@pytest.mark.parametrize("which", list(_stories_sets()))
@pytest.mark.parametrize("urls", [False, True])
def test_streamed_feed_is_render_byte_for_byte(fmt: str, which: str, urls: bool) -> None:
    stories = _stories_sets()[which]
    title = "Export — ünïcode <&>\x02"
    self_url = "https://x.example/feed?a=1&b=2" if urls else None
    home_url = "https://x.example/" if urls else None
    kw = {"title": title, "updated": NOW, "self_url": self_url, "home_url": home_url}
    expected = render(stories, fmt, **kw)  # type: ignore[arg-type]
    for batch in (1, 2, 100):
        parts: list[str] = []
        facts = outline(stories)
        write_feed(stories, fmt, parts.append, outline=facts, batch=batch, **kw)  # type: ignore[arg-type]
        assert "".join(parts) == expected, (fmt, which, batch)


# --- through the app and the command line, on both backends --------------------------------


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    s = Settings.from_env({}, data_dir=tmp_path / "data", database_url=db_url)
    (tmp_path / "data").mkdir()
    with make_app(s, now=lambda: NOW) as a:
        populate(a.store)
        yield a


def test_app_export_to_writes_what_export_returns(app: App) -> None:
    queries = (StoryQuery(limit=None), StoryQuery(topics=("dns",), limit=None), QUERIES["page"])
    formats: tuple[ExportFormat, ...] = ("atom", "rss", "json")
    for fmt in formats:
        for q in queries:
            parts: list[str] = []
            app.export_to(parts.append, q, fmt, chunk=2)
            assert "".join(parts) == app.export(q, fmt), (fmt, q)


def test_cli_streams_every_story_as_the_listed_path_writes_them(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On SQLite (the store's part is tested on both backends above)."""
    s = Settings.from_env({}, data_dir=env / "data")
    (env / "data").mkdir()
    with make_app(s, now=lambda: NOW) as a:
        populate(a.store)
        count = len(a.stories(StoryQuery(limit=None)))
    db: tuple[str, ...] = ()
    for fmt in ("json", "csv"):
        for extra in ((), ("--topic", "dns")):
            code, streamed, err = run(capsys, *db, "stories", "-n", "0", "--format", fmt, *extra)
            assert (code, err) == (0, "")
            # a limit above the number of stories: the same stories, through stories()
            code, listed, _ = run(capsys, *db, "stories", "-n", "1000", "--format", fmt, *extra)
            assert code == 0 and streamed == listed and len(streamed) > 100
    code, out, _ = run(capsys, *db, "stories", "-n", "0", "--format", "json", "-q", "nothing")
    assert (code, out) == (0, "[]\n")
    assert len(json.loads(run(capsys, *db, "stories", "-n", "0", "--format", "json")[1])) == count

    for fmt in ("atom", "json"):
        code, stdout, _ = run(capsys, *db, "export", "--format", fmt, "-n", "0")
        target = env / "out" / f"all.{fmt}"
        code2, _, err = run(capsys, *db, "export", "--format", fmt, "-n", "0", "-o", str(target))
        assert (code, code2, err) == (0, 0, f"wrote {target}\n")
        assert target.read_text(encoding="utf-8") == stdout
        assert stdout.startswith("<?xml" if fmt != "json" else "{") and len(stdout) > 1000
        assert not (env / "out" / f"all.{fmt}.tmp").exists()


def test_failed_export_leaves_the_file_as_it_was(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = env / "all.atom"
    target.write_text("the previous export\n")
    code, out, err = run(capsys, "export", "-n", "0", "--topic", "no-such-topic", "-o", str(target))
    assert (code != 0, out) == (True, "") and "unknown topic" in err
    assert target.read_text() == "the previous export\n"
    assert sorted(p.name for p in env.iterdir() if p.name.startswith("all")) == ["all.atom"]

    def half_then_fail(write: object) -> None:  # a failure after part of the document
        assert callable(write)
        write("<?xml half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_streamed(half_then_fail, target)
    assert target.read_text() == "the previous export\n"
    assert not (env / "all.atom.tmp").exists()
