"""`aggregator status`: the install at a glance, from the store's counts (SQLite and
PostgreSQL) and the model's manifest and evaluation history, through the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from test_learning_cli import env, run, seed_stories  # noqa: F401  (env: fixture)
from test_store import T0, check, draft

from aggregator.store import open_store
from aggregator.types import CATEGORIES_ONLY, FeedSource, Prediction, StoryRecord


def test_the_store_summary_counts_what_it_holds(db_url: str) -> None:
    st = open_store(db_url)
    try:
        st.sync_topics([("DNS", None)])
        ok, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T0)
        bad, _ = st.add_feed(FeedSource(url="https://b.example/feed"), T0)
        gone, _ = st.add_feed(FeedSource(url="https://c.example/feed"), T0)
        st.upsert_feeds([FeedSource(url="https://d.example/feed", enabled=False)], T0)
        records = [
            StoryRecord(draft=draft("k1", "One"), extraction_status="ok", full_text="Text."),
            StoryRecord(draft=draft("k2", "Two"), extraction_status="pending"),
            StoryRecord(draft=draft("k3", "Three"), extraction_status="failed"),
            StoryRecord(draft=draft("k4", "Four"), extraction_status="skipped"),
        ]
        ids = st.save_update(check(ok.id, at=T0 - timedelta(days=2)), records[:1]).new
        ids += st.save_update(check(ok.id), records[1:]).new
        st.save_checks([check(bad.id, outcome="error", status="error", error_count=3)])
        (gone_story,) = st.save_update(check(gone.id), [StoryRecord(draft=draft("g", "G"))]).new
        st.add_labels(ids[0], ["DNS"], [], T0)
        st.add_labels(gone_story, [], ["DNS"], T0)
        st.remove_feed(gone.url, T0)  # its labelled story goes to the archive
        st.claim_due(T0 + timedelta(days=1), owner="host:1:abc", lease=timedelta(minutes=15))

        s = st.summary(T0 + timedelta(minutes=1))
        assert s.backend == db_url.split(":")[0].split("+")[0]
        assert s.schema_version >= 13 and s.size_bytes and s.size_bytes > 0
        assert s.feeds == {"active": 1, "error": 1, "off": 1}
        assert s.leases == {"host:1:abc": 2}
        assert s.stories == 4 and s.new_last_day == 3
        assert s.extraction == {"ok": 1, "pending": 1, "failed": 1, "skipped": 1}
        assert (s.labelled_stories, s.archived_stories) == (1, 1)
        assert s.tagged_by == {"": 4}  # stored with no prediction
        assert s.last_check is not None
    finally:
        st.close()


def test_status_through_the_cli(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_stories(env / "data")
    code, out, err = run(capsys, "status")
    assert code == 0, err
    text = " ".join(out.split())
    assert "SQLite, schema" in text and "stories 6; 6 new in the last 24 hours" in text
    assert "shipped, clf-" in text and "training examples (cross-validated)" in text
    assert "`aggregator evaluate` measures it" in text

    gold = env / "gold.jsonl"
    gold.write_text(
        json.dumps({"title": "DNSSEC signing outage", "text": "Resolvers failed.", "topics": []})
        + "\n",
        encoding="utf-8",
    )
    assert run(capsys, "evaluate", str(gold))[0] == 0
    code, out, err = run(capsys, "status", "--format", "json")
    assert code == 0, err
    status = json.loads(out)
    assert status["stories"]["total"] == 6
    assert status["database"]["backend"] == "sqlite" and status["database"]["schema_version"]
    model = status["model"]
    assert model["yours"] is False and model["trained"] is None
    assert model["version"].startswith("clf-") and 0 < model["cv_micro_f1"] <= 1
    assert model["evaluated"]["data"].startswith("gold.jsonl")
    # a gold file of off-topic stories only: F1 is undefined (session 24: was 0)
    assert model["evaluated"]["micro_f1"] is None
    assert status["feeds"]["by_status"] == {"active": 1}
    assert status["stories"]["tagged_by"] == {model["version"]: 6}
    assert "not yet tagged" not in text and "another model" not in text


def test_status_counts_the_stories_the_model_in_use_has_not_tagged(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Stories stored while no model loaded carry only their feed categories' topics
    until `train` re-tags them: status said nothing of them."""
    first, second, third, *_ = seed_stories(env / "data")
    st = open_store(f"sqlite:///{env / 'data' / 'aggregator.db'}")
    try:
        st.set_predictions(
            [
                (first, Prediction(topics=(), model_version=CATEGORIES_ONLY)),
                (second, Prediction(topics=(), model_version=CATEGORIES_ONLY)),
                (third, Prediction(topics=(), model_version="clf-older")),
            ]
        )
    finally:
        st.close()
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert (
        "stories 6; 6 new in the last 24 hours; 2 not yet tagged by a model and 1 tagged by "
        "another model: `aggregator train` tags them with this one"
    ) in " ".join(out.split())
    status = json.loads(run(capsys, "status", "--format", "json")[1])
    assert status["stories"]["tagged_by"] == {
        CATEGORIES_ONLY: 2,
        "clf-older": 1,
        status["model"]["version"]: 3,
    }


def test_status_points_at_the_feeds_that_need_a_look(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A failing feed is counted, and status says where to see which one and why."""
    seed_stories(env / "data")
    assert "feeds show" not in " ".join(run(capsys, "status")[1].split())
    st = open_store(f"sqlite:///{env / 'data' / 'aggregator.db'}")
    try:
        (feed,) = st.feeds()
        failed = check(
            feed.id,
            outcome="error",
            status="error",
            error_count=1,
            first_error_at=T0,
            last_error="HTTP 500 Internal Server Error",
            success=False,
        )
        st.save_checks([failed])
    finally:
        st.close()
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert (
        "feeds 1: 1 failing (`aggregator feeds list --status error`, then `feeds show ID`)"
        in " ".join(out.split())
    )
