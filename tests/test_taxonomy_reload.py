"""taxonomy.yaml edited while a long-running process runs: `serve` and the daemon read it
once, so a topic added stayed "unknown" to `serve` (and a rename was not carried over)
until they were restarted. ``App.refresh_taxonomy`` reads it again when it changed: at
each request of `serve` and each cycle of the daemon. Through the real App, HTTP server
and store, with the tiny taxonomy and model of test_taxonomy_changes."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from test_taxonomy_changes import OFF, POL, QUANTUM, edit_taxonomy, env, open_app, shipped, store

from aggregator.daemon import Stopper, run_daemon
from aggregator.serve import FeedServer

__all__ = ["env", "shipped"]


def _titles(base: str, topic: str) -> list[str] | int:
    """The titles of the topic's JSON Feed, or the HTTP status that refused it."""
    url = f"{base}/topics/{urllib.parse.quote(topic, safe='')}.json"
    try:
        with urllib.request.urlopen(url) as r:
            return [i["title"] for i in json.loads(r.read())["items"]]
    except urllib.error.HTTPError as e:
        return e.code


def test_serve_answers_for_a_topic_added_while_it_runs(env: Path) -> None:
    (story,) = store([OFF])
    with open_app() as serving, FeedServer(serving) as srv:
        assert _titles(srv.url, QUANTUM["name"]) == 404  # unknown, rightly
        edit_taxonomy(env, "add")
        with open_app() as app:
            app.label(story, [QUANTUM["name"]], [])
        assert _titles(srv.url, QUANTUM["name"]) == [OFF[0]]
        assert serving.taxonomy.get(QUANTUM["id"]) is not None


def test_serve_lists_a_renamed_topic_under_its_new_name(env: Path) -> None:
    (pol,) = store([POL])
    with open_app() as app:
        app.label(pol, ["Policy & Regulation"], [])
    with open_app() as serving, FeedServer(serving) as srv:
        assert _titles(srv.url, "Policy & Regulation") == [POL[0]]
        edit_taxonomy(env, "rename")
        assert _titles(srv.url, "Regulation") == [POL[0]]  # the labels moved with it
        # the old name is among the topic's aliases: a reader subscribed to the old
        # URL keeps getting the topic's stories (it answered 400 before aliases named
        # topics)
        assert _titles(srv.url, "Policy & Regulation") == [POL[0]]


def test_a_broken_edit_is_said_once_and_the_topics_so_far_stay(
    env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_app() as app:
        before = app.taxonomy
        assert app.refresh_taxonomy() is False  # unchanged: nothing read
        path = env / "models" / "taxonomy.yaml"
        good = path.read_text(encoding="utf-8")
        with caplog.at_level(logging.WARNING):
            path.write_text("version: 1\ntopics: [unclosed\n", encoding="utf-8")
            assert app.refresh_taxonomy() is False
            assert app.refresh_taxonomy() is False
        assert caplog.text.count("does not load") == 1, caplog.text
        assert app.taxonomy is before
        path.write_text(good.replace("Vulnerabilities,", "Flaws,"), encoding="utf-8")
        assert app.refresh_taxonomy() is True
        assert app.taxonomy.get("security").description.startswith("Flaws,")  # type: ignore[union-attr]


def test_the_daemon_takes_up_an_edit_at_its_next_cycle(env: Path) -> None:
    with open_app() as daemon:
        assert daemon.taxonomy.get(QUANTUM["id"]) is None
        edit_taxonomy(env, "add")
        assert run_daemon(daemon, stopper=Stopper(), max_cycles=1, max_sleep=0.01) == 1
        assert daemon.taxonomy.get(QUANTUM["id"]) is not None
        assert QUANTUM["name"] in {t.name for t in daemon.store.topics()}  # synced
