"""Re-tagging looks only at the stories another model (or none) tagged: when `train`
keeps the model in use (nothing new to learn), it re-tagged every stored story anyway,
~6 minutes at 300,000 stories for 0 changes. `train --force` still re-tags them all, and
the re-tag reports its progress (stories looked at, of how many). A large re-tag runs in
the worker processes and tags exactly as the App's own model does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_store import check, draft, pred

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.types import FeedSource, StoryRecord

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
TEXTS = [
    ("Registry news", "The registry raised .com wholesale prices for registrars."),
    ("Resolver outage", "A DNSSEC signing error broke resolution for a ccTLD."),
    ("Ransomware gang", "Attackers encrypted a hospital network and demanded bitcoin."),
    ("Address market", "A /16 of IPv4 space sold at a record price per address."),
    ("Council meeting", "The town council discussed the new library opening hours."),
]


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


def _store_texts(app: App, n: int) -> None:
    feed, _ = app.store.add_feed(FeedSource(url="http://example.org/rss"), app.now())
    records = [
        StoryRecord(
            draft=draft(f"k{i}", f"{TEXTS[i % 5][0]} {i}", summary=f"<p>{TEXTS[i % 5][1]}</p>"),
            prediction=pred(("DNS", 0.9), version="previous-model"),
        )
        for i in range(n)
    ]
    app.store.save_update(check(feed.id), records)


def _tags(app: App) -> dict[int, list[tuple[str, float, str]]]:
    return {
        s.id: sorted((t.topic, round(t.score, 6), t.source) for t in s.topics)
        for s in app.store.get_stories(app.store.story_ids())
    }


def _another_model_under_the_same_stamp(models: Path) -> None:
    """The model's files rewritten as another model's (the same weights under another
    version, as a `train` in another process would leave them), the manifest's stamp
    (mtime, size) kept: the App goes on with the model it loaded, a worker starting now
    loads this one."""
    import json
    import os

    from aggregator.manifest import MANIFEST_FILE, artifact_paths, file_sha256
    from aggregator.scoring import load_scorer
    from aggregator.taxonomy import Taxonomy

    manifest_path = artifact_paths(models) / MANIFEST_FILE
    before = manifest_path.stat()
    scorer = load_scorer(models, Taxonomy.load(models / "taxonomy.yaml"))
    assert scorer is not None
    manifest = manifest_path.read_text(encoding="utf-8")
    scorer_path = artifact_paths(models) / json.loads(manifest)["scorer"]["file"]
    old_sha, old_version = file_sha256(scorer_path), scorer.version
    scorer.version = old_version[:4] + "0" * (len(old_version) - 4)  # same length
    assert scorer.version != old_version
    scorer.save(scorer_path)
    manifest = manifest.replace(f'"{old_sha}"', f'"{file_sha256(scorer_path)}"')
    manifest_path.write_text(manifest.replace(f'"{old_version}"', f'"{scorer.version}"'))
    assert manifest_path.stat().st_size == before.st_size
    os.utime(manifest_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_scorer(models, Taxonomy.load(models / "taxonomy.yaml")) is not None


@pytest.mark.parametrize("worker_model", ["loads", "gone", "another"])
def test_a_large_retag_runs_in_the_workers_and_tags_as_the_app_does(
    tmp_path: Path, db_url: str, worker_model: str
) -> None:
    """Plain text and scoring were ~85 % of a re-tag, on one core: batches now go to the
    worker processes. Their tags are the App's model's; a batch a worker cannot classify
    (here: the model's files gone from under it, as a concurrent `train` could leave
    them) is classified in the App's process instead."""
    models = tmp_path / "models"
    shutil.copytree(REPO_MODELS, models, ignore=shutil.ignore_patterns("seeds"))
    settings = Settings.from_env(
        {}, data_dir=tmp_path / "data", database_url=db_url, models_dir=models, workers=2
    )
    with make_app(settings) as app:
        _store_texts(app, 60)
        version = app.predictor.version  # loaded here before the workers start
        if worker_model == "gone":
            shutil.rmtree(models / "classifier")
        elif worker_model == "another":
            _another_model_under_the_same_stamp(models)
        calls: list[tuple[int, int]] = []
        seen, changed = app.retag(
            batch=7, in_workers_from=50, progress=lambda d, t: calls.append((d, t))
        )
        assert (seen, changed) == (60, 60)
        assert app._pool is not None and len(app._pool.pids) == 2  # the workers were used
        assert calls[-1] == (60, 60) and [d for d, _ in calls] == sorted(d for d, _ in calls)
        in_workers = _tags(app)
        assert {s.model_version for s in app.store.get_stories(app.store.story_ids())} == {version}
        # the same stories tagged in this process: not one tag differs
        assert app.retag(every=True, in_workers_from=None) == (60, 0)
        assert _tags(app) == in_workers
        topics = {t for tags in in_workers.values() for t, _, _ in tags}
        assert {"DNS", "IPv4 Markets"} <= topics  # the texts were told apart
        council = [tags for sid, tags in in_workers.items() if (sid - 1) % 5 == 4]
        assert council and not any(council)  # and the off-topic story got none
