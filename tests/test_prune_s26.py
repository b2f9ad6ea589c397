"""Session 26: story retention and the install overview, on SQLite and PostgreSQL stores
filled through the real poll of feeds served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_store import T0, check, draft

from aggregator.app import App, make_app
from aggregator.config import Settings, parse_span
from aggregator.errors import ConfigError
from aggregator.types import StoryQuery, StoryRecord


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def _rss(*items: tuple[str, str, int]) -> bytes:
    """(guid, title, day of September 2025) per item."""
    body = "".join(
        f"<item><title>{title}</title><guid>{g}</guid>"
        f"<link>http://example.org/{g}</link><description>{title} body text</description>"
        f"<pubDate>Mon, {day:02d} Sep 2025 08:00:00 GMT</pubDate></item>"
        for g, title, day in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
        f"<link>http://example.org/</link>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock, db_url: str) -> Iterator[App]:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        database_url=db_url,
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
    )
    with make_app(s, now=clock) as a:
        yield a


@pytest.mark.parametrize("text", ["6m", "6M", "90m", " 1.5m "])
def test_a_retention_in_minutes_is_refused_not_read_as_months(text: str) -> None:
    """`m` is minutes where `--since` reads it (30m); as a retention, `6m` read as six
    minutes deleted every story older than that, where a user meant six months."""
    with pytest.raises(ConfigError, match=r"--older-than: .* minutes or months"):
        parse_span(text)
    with pytest.raises(ConfigError, match="AGGREGATOR_RETENTION"):
        Settings.from_env({"AGGREGATOR_RETENTION": text})


def test_prune_older_than_6m_deletes_nothing(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    with make_app(Settings.from_env({}, data_dir=env / "data")) as a:
        a.store.upsert_feeds([], now)
        feed = a.add_feed("https://a.example/feed", discover=False).feed
        for i in range(5):
            rec = StoryRecord(
                draft=draft(f"s{i}", f"Story {i}", published=now - timedelta(days=10))
            )
            a.store.save_update(check(feed.id, at=now - timedelta(days=10)), [rec])
    code, _, err = run(capsys, "prune", "--older-than", "6m", "--keep", "0")
    assert code == 2 and "minutes or months" in err and "Traceback" not in err
    with make_app(Settings.from_env({}, data_dir=env / "data")) as a:
        assert a.story_count() == 5


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param("[]", id="a-list"),
        pytest.param("null", id="null"),
        pytest.param({"cv": [0.9]}, id="cv-a-list"),
        pytest.param({"cv": {"micro": 0.9, "macro": "high"}}, id="f1s-not-objects"),
    ],
)
def test_status_with_a_manifest_of_another_shape_is_a_clear_answer(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    manifest: str | dict[str, object],
) -> None:
    """A manifest that is JSON but not the object `train` writes (edited, or written by
    something else) was a traceback (AttributeError) from `status`, which reads it
    without loading the model; `classify` says the model cannot be used."""
    import json
    import shutil

    shipped = Path(__file__).parent.parent / "models" / "classifier"
    mine = env / "data" / "models" / "classifier"
    shutil.copytree(shipped, mine)
    if isinstance(manifest, dict):  # the shipped manifest with its scores replaced
        data = json.loads((mine / "manifest.json").read_text(encoding="utf-8"))
        data["scores"] = manifest
        text = json.dumps(data)
    else:
        text = manifest
    (mine / "manifest.json").write_text(text, encoding="utf-8")
    for fmt in ("table", "json"):
        code, out, err = run(capsys, "status", "--format", fmt)
        assert code == 0, err
        assert "Traceback" not in err
    model = json.loads(out)["model"]
    assert model["yours"] is True
    if isinstance(manifest, dict):  # the model is usable: only its scores are unknown
        assert model["error"] is None and model["version"]
        assert model["cv_micro_f1"] is None
    else:
        assert "manifest" in model["error"]


def test_the_status_counts_are_of_one_moment(db_url: str) -> None:
    """`status` reads its counts in several statements; on PostgreSQL each took its own
    snapshot (READ COMMITTED), so a poll committing meanwhile gave a total that the counts
    by extraction state and by model did not add up to. One snapshot now, as on SQLite."""
    from sqlalchemy import event

    from aggregator.store import open_store
    from aggregator.types import FeedSource

    st = open_store(db_url)
    try:
        feed, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T0)
        st.save_update(check(feed.id), [StoryRecord(draft=draft("k0", "Zero"))])
        n = 0

        def poll_meanwhile(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            nonlocal n
            if "extraction_status" in statement and "GROUP BY" in statement and n < 2:
                n += 1  # a poll commits between the total and the counts by state
                rec = StoryRecord(draft=draft(f"k{n}", f"Story {n}"), extraction_status="ok")
                st.save_update(check(feed.id), [rec])

        event.listen(st.engine, "before_cursor_execute", poll_meanwhile)
        try:
            s = st.summary(T0 + timedelta(minutes=1))
        finally:
            event.remove(st.engine, "before_cursor_execute", poll_meanwhile)
        assert n >= 1
        assert sum(s.extraction.values()) == s.stories == sum(s.tagged_by.values())
        assert s.stories == 1
    finally:
        st.close()


def test_a_document_cut_short_does_not_let_prune_delete_what_it_lists(
    app: App,
    clock: Clock,
    server,  # type: ignore[no-untyped-def]
) -> None:
    """A feed's document cut short (a server's script dying mid-output: a complete HTTP
    answer of half a feed) is read as far as it goes, not well-formed. Its listing
    replaced the whole one, so the next prune deleted every story past the cut, and the
    feed's next whole document brought them all back as new. Such a document adds to the
    listing; the next whole one replaces it."""
    items = [(g, f"Story {g} about resolvers", i + 1) for i, g in enumerate("abcde")]
    whole = _rss(*items)
    url = server.route("/a", body=whole)
    app.add_feed(url, discover=False)
    assert [r.new for r in app.update_due(all_feeds=True)] == [5]
    clock.advance(days=400)
    server.route("/a", body=whole[: whole.index(b"<item><title>Story c")])
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 0)]
    assert app.prune(timedelta(days=180), keep_per_feed=0) == 0
    clock.advance(days=1)
    server.route("/a", body=whole + b"\n")
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 0)]
    assert app.store.story_count() == 5
    # a whole document that no longer lists "a" and "b": they go
    clock.advance(days=1)
    server.route("/a", body=_rss(*items[2:]))
    list(app.update_due(all_feeds=True))
    assert app.prune(timedelta(days=180), keep_per_feed=0) == 2


def test_the_entry_a_document_is_cut_in_is_not_stored(
    app: App,
    clock: Clock,
    server,  # type: ignore[no-untyped-def]
) -> None:
    """Cut short inside an item, the loose parser gave that item as far as it went (here
    with no guid, link or title): it was stored as a new story, "(untitled)", keyed by its
    text, and stayed. The entry the cut falls in is left out; the whole document brings
    it."""
    items = [(g, f"Story {g} about resolvers", i + 1) for i, g in enumerate("abcde")]
    whole = _rss(*items)
    url = server.route("/a", body=whole[: whole.index(b"<item><title>Story c") + 30])
    app.add_feed(url, discover=False)
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 2)]
    clock.advance(days=1)
    server.route("/a", body=whole)
    assert [(r.status, r.new) for r in app.update_due(all_feeds=True)] == [("ok", 3)]
    titles = sorted(s.title for s in app.stories(StoryQuery(limit=None)))
    assert titles == [f"Story {g} about resolvers" for g in "abcde"]
