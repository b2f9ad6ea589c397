"""`aggregator extract`: stories a poll stored without their article's text
(`poll --no-extract`) stayed `pending` for ever, since a later poll never goes back to
an unchanged feed. The command fetches and extracts them as a poll would, through a
real local server, and with --failed tries the failed ones again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_cli_read_audit import cli  # noqa: F401  (fixture)
from test_extract_pipeline import ARTICLE, TITLE, article_page
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import StoryQuery

EXTRA = "Validating resolvers at the carrier now reject forged answers for the zone."


def _feed(server: LocalServer) -> str:
    pages = {
        "a": {"body": article_page(ARTICLE + EXTRA).encode()},
        "b": {"body": b"%PDF-1.7 ...", "content_type": "application/pdf"},
    }
    items = ""
    for name, options in pages.items():
        link = server.route(f"/page/{name}", **{"content_type": "text/html", **options})
        items += (
            f"<item><title>{name} {TITLE}</title><link>{link}</link><guid>{name}</guid>"
            "<description>Teaser.</description></item>"
        )
    return server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
            "</channel></rss>"
        ).encode(),
    )


def test_stories_stored_without_extraction_get_their_article_later(
    tmp_path: Path, server: LocalServer
) -> None:
    url = _feed(server)
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [2]
        by = {st.title[0]: st for st in app.stories(StoryQuery(limit=None))}
        assert {k: st.extraction_status for k, st in by.items()} == {"a": "pending", "b": "pending"}
        app.label(by["a"].id, ["Brand Protection"], [])
        # a later poll (the feed unchanged) does not go back to them
        list(app.update_due(all_feeds=True))
        assert not server.requests_for("/page/a")

        done = app.extract_waiting()
        assert (done.tried, done.extracted, done.failed) == (2, 1, 1)
        a, b = app.story(by["a"].id), app.story(by["b"].id)
        assert a.extraction_status == "ok" and a.full_text and EXTRA in a.full_text
        assert b.extraction_status == "failed"
        assert b.extraction_error == "page fetch failed: not an HTML page (application/pdf)"
        # the full text is searchable, the topics come from it, the user's label stays
        assert [st.id for st in app.stories(StoryQuery(text="carrier"))] == [a.id]
        topics = {t.topic: t.source for t in a.topics}
        assert topics.get("Brand Protection") == "user" and topics.get("DNS Security")
        assert a.model_version and a.model_version != "none"

        # nothing waits any more; --failed tries the failed one again
        assert app.extract_waiting().tried == 0
        again = app.extract_waiting(failed=True)
        assert (again.tried, again.failed) == (1, 1)
        assert len(server.requests_for("/page/b")) <= 2  # refused on its headers each time


def test_extract_through_the_cli(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = _feed(server)
    assert run(capsys, "feeds", "add", "--no-discover", url)[0] == 0
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--quiet")
    assert code == 0, err
    code, out, err = run(capsys, "extract", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == {"tried": 2, "extracted": 1, "failed": 1, "left": 0}
    code, out, _ = run(capsys, "extract")
    assert code == 0 and out.strip() == "No stories are waiting for their article's text."
    code, out, _ = run(capsys, "extract", "--failed")
    assert code == 0
    assert " ".join(out.split()).startswith("extracted 0 of 1 story; 1 failed")
    assert run(capsys, "extract", "--limit", "0")[0] == 2


def test_the_daemon_drains_the_backlog_after_its_cycles(
    tmp_path: Path, server: LocalServer
) -> None:
    from aggregator.daemon import Stopper, run_daemon

    url = _feed(server)
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [2]
        assert run_daemon(app, stopper=Stopper(), max_cycles=1, max_sleep=0.01) == 1
        status = {st.title[0]: st.extraction_status for st in app.stories(StoryQuery())}
        assert status == {"a": "ok", "b": "failed"}  # failed ones wait for `extract --failed`


def test_migration_13_indexes_the_waiting_stories(db_url: str) -> None:
    from sqlalchemy import inspect, text

    from aggregator.store import open_store

    st = open_store(db_url)
    with st.engine.begin() as c:  # a version-12 database
        c.execute(text("DROP INDEX ix_story_pending"))
        c.execute(text("DELETE FROM schema_version WHERE version = 13"))
    st.close()
    st = open_store(db_url)
    try:
        with st.engine.connect() as c:
            names = {ix["name"] for ix in inspect(c).get_indexes("story")}
        assert "ix_story_pending" in names
    finally:
        st.close()


def test_aggregator_extract_0_turns_extraction_off_for_poll(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """AGGREGATOR_EXTRACT=0 (a README setting) was ignored by `poll` and `daemon`, which
    extracted unless given --no-extract."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    monkeypatch.setenv("AGGREGATOR_EXTRACT", "0")
    url = _feed(server)
    assert run(capsys, "feeds", "add", "--no-discover", url)[0] == 0
    code, _, err = run(capsys, "poll", "--all", "--quiet")
    assert code == 0, err
    assert not server.requests_for("/page/a")
    code, out, _ = run(capsys, "stories", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2


@pytest.mark.parametrize("limit", [str(2**63), "99999999999999999999"])
def test_a_limit_past_a_64_bit_integer_is_bad_input(
    cli: str | None,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    limit: str,
) -> None:
    """As `stories --limit`: an OverflowError traceback from SQLite's driver, "bigint
    out of range" (exit 1, as if the store had failed) from PostgreSQL's."""
    code, out, err = run(capsys, "extract", "--limit", limit)
    assert (code, out) == (2, "")
    assert err == f"error: --limit {limit} is too large\n"
    code, out, err = run(capsys, "extract", "--limit", str(2**63 - 1))
    assert (code, err) == (0, "") and "No stories are waiting" in out
