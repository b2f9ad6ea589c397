"""User labels are kept forever: removing a feed archives its labelled stories for
training, a labelled story's feed categories still teach the topics its labels leave
open, and labels of a topic the taxonomy dropped are skipped, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_learning_cli import STORIES, env, seed_stories  # noqa: F401  (env: fixture)

from aggregator.app import make_app
from aggregator.config import Settings

FEED = "https://news.example/feed"


def _settings(env: Path) -> Settings:  # noqa: F811
    return Settings.from_env({}, data_dir=env / "data")


def test_removing_a_feed_keeps_its_labels_for_training(env: Path) -> None:  # noqa: F811
    ids = seed_stories(env / "data")
    with make_app(_settings(env)) as app:
        app.label(ids[0], ["DNS Security"], ["Cybersecurity"])
        app.label(ids[4], [], ["Cybersecurity"])  # the football story: a negative only
        before = {e.doc.title: e for e in app.learning.examples() if e.source == "user"}
        assert app.remove_feed(FEED) == 2
        assert app.feeds() == [] and app.store.story_ids() == []
        kept = app.labelled()
        assert [(ls.positive, ls.negative) for ls in kept] == [
            (("DNS Security",), ("Cybersecurity",)),
            ((), ("Cybersecurity",)),
        ]
        assert all(ls.story.id < 0 and ls.story.feed_url == FEED for ls in kept)
        after = {e.doc.title: e for e in app.learning.examples() if e.source == "user"}
        # training reads the same text and the same judgements as before the removal
        assert after.keys() == before.keys() == {STORIES[0][0], STORIES[4][0]}
        for title, e in before.items():
            a = after[title]
            assert (a.doc.summary, a.doc.text, a.topics, a.negative) == (
                e.doc.summary,
                e.doc.text,
                e.topics,
                e.negative,
            )
        # the archived story's feed categories count too (story 0's "dns" is DNS)
        cats = [e for e in app.learning.examples() if e.source == "feed-category"]
        assert [(e.doc.title, e.topics) for e in cats] == [(STORIES[0][0], ("DNS",))]


def test_labelled_story_keeps_its_feed_categories_for_other_topics(env: Path) -> None:  # noqa: F811
    ids = seed_stories(env / "data")
    with make_app(_settings(env)) as app:

        def examples_of(title: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
            return [
                (e.source, e.topics, e.negative)
                for e in app.learning.examples()
                if e.doc.title == title and e.source != "seed"
            ]

        title = STORIES[0][0]  # feed category "dns" maps to DNS
        assert examples_of(title) == [("feed-category", ("DNS",), ())]
        app.label(ids[0], ["DNS Security"], [])
        assert examples_of(title) == [
            ("user", ("DNS Security",), ()),
            ("feed-category", ("DNS",), ()),
        ]
        app.label(ids[0], [], ["DNS"])  # the user overrules the feed's category
        assert examples_of(title) == [("user", ("DNS Security",), ("DNS",))]


def test_labels_of_a_topic_gone_from_the_taxonomy_are_skipped(
    env: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = seed_stories(env / "data")
    with make_app(_settings(env)) as app:
        app.label(ids[1], ["Cybercrime"], [])
        # the topic as a later taxonomy without it leaves it: a row in the store only
        app.store.sync_topics([("Retired Topic", None)])
        app.store.add_labels(ids[1], ["Retired Topic"], [], app.now())
        app.store.add_labels(ids[3], ["Retired Topic"], [], app.now())
        with caplog.at_level("WARNING"):
            examples = [e for e in app.learning.examples() if e.source == "user"]
        assert [(e.doc.title, e.topics) for e in examples] == [(STORIES[1][0], ("Cybercrime",))]
        assert "Retired Topic" in caplog.text
        assert len(app.labelled()) == 2  # kept in the database all the same


def test_feed_categories_teach_from_the_newest_stories_only(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`train` reads the newest CATEGORY_STORIES stories for feed-category examples, not
    the whole store (gigabytes of text at 300,000 stories)."""
    from aggregator import learning

    seed_stories(env / "data")
    with make_app(_settings(env)) as app:

        def taught() -> list[str]:
            cats = [e for e in app.learning.examples() if e.source == "feed-category"]
            return sorted(t for e in cats for t in e.topics)

        every = taught()
        assert "DNS" in every and "New TLDs" in every
        monkeypatch.setattr(learning, "CATEGORY_STORIES", 1)  # the newest: the gTLD round
        assert taught() == ["New TLDs"]
