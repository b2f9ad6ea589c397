"""`train` re-tags every stored story with the new model. A daemon polling meanwhile
may store stories that its workers classified with the previous model just before it
was replaced, after `train` read the ids to re-tag: those kept the old model's topics
until the next `train`. Re-tagging now also looks at the stories stored since its first
pass, until none that another model tagged is left."""

from __future__ import annotations

import threading
from contextlib import closing
from pathlib import Path

from test_store import check, draft, pred

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryRecord


def test_stories_stored_during_a_retag_with_the_old_model_are_retagged(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, workers=1)
    old = pred(("DNS", 0.9), version="previous-model")
    with make_app(settings) as app:
        feed, _ = app.store.add_feed(FeedSource(url="http://example.org/rss"), app.now())
        records = [
            StoryRecord(draft=draft(f"k{i}", f"Registry news {i}"), prediction=old)
            for i in range(2000)
        ]
        app.store.save_update(check(feed.id), records)
        version = app.predictor.version
        # Another process (the daemon) stores a story tagged by the previous model as
        # soon as the re-tag's first batch is written: after the re-tag read its ids.
        # (Should the re-tag end first on a very slow machine, the race is run again.)
        for attempt in range(3):
            done = threading.Event()
            outcome: list[tuple[int, int]] = []

            def retag(outcome: list[tuple[int, int]], done: threading.Event) -> None:
                # every story: a second attempt's would be the new model's already
                outcome.append(app.retag(batch=50, every=True))
                done.set()

            worker = threading.Thread(target=retag, args=(outcome, done))
            worker.start()
            with closing(open_store(settings.url)) as daemon:
                first = daemon.story_ids()[0]
                while not done.is_set():
                    if daemon.get_stories([first])[0].model_version == version:
                        break
                late = StoryRecord(draft=draft(f"late{attempt}", "Late news"), prediction=old)
                daemon.save_update(check(feed.id), [late])
                stored_while_running = not done.is_set()
            worker.join()
            if stored_while_running:
                break
        assert stored_while_running, "each re-tag ended before the late story was stored"
        stories = app.store.get_stories(app.store.story_ids())
        assert len(stories) == 2001 + attempt
        assert {s.model_version for s in stories} == {version}
        assert outcome[0][0] >= 2001
