"""Re-tagging looks only at the stories another model (or none) tagged: when `train`
keeps the model in use (nothing new to learn), it re-tagged every stored story anyway,
~6 minutes at 300,000 stories for 0 changes. `train --force` still re-tags them all, and
the re-tag reports its progress (stories looked at, of how many)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_store import check, draft, pred

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.types import FeedSource, StoryRecord


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> App:
    settings = Settings.from_env({}, data_dir=tmp_path, database_url=db_url, workers=1)
    with make_app(settings) as a:
        yield a  # type: ignore[misc]


def _store(app: App, versions: list[str | None]) -> None:
    feed, _ = app.store.add_feed(FeedSource(url="http://example.org/rss"), app.now())
    records = [
        StoryRecord(
            draft=draft(f"k{i}", f"Registry news {i}"),
            prediction=pred(("DNS", 0.9), version=v) if v else None,
        )
        for i, v in enumerate(versions)
    ]
    app.store.save_update(check(feed.id), records)


def test_retag_skips_the_stories_the_model_in_use_tagged(app: App) -> None:
    current = app.predictor.version
    _store(app, [current] * 30 + ["previous-model"] * 7 + [None] * 3)
    calls: list[tuple[int, int]] = []
    seen, _ = app.retag(batch=4, progress=lambda done, total: calls.append((done, total)))
    assert seen == 10
    assert calls[-1] == (10, 10)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    stories = app.store.get_stories(app.store.story_ids())
    assert {s.model_version for s in stories} == {current}
    # nothing left to look at
    assert app.retag() == (0, 0)
    # everything, when asked (train --force)
    calls.clear()
    seen, _ = app.retag(every=True, progress=lambda d, t: calls.append((d, t)))
    assert seen == 40
    assert calls[-1] == (40, 40)
