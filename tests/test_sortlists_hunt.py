"""The newest list orders and reading lists, as a demanding user meets them: serve's
validators on a page by relevance, a named list's options in any text argv holds, and
an order given to a named list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from test_cli_read_audit import story
from test_config_serve import _store_stories
from test_learning_cli import run
from test_query_filters import cli  # noqa: F401  (cli: fixture)
from test_reading_lists import new, save
from test_serve_proxy import NOW, STORED, Clock, _request, clock  # noqa: F401  (clock: fixture)

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer
from aggregator.types import FeedSource


def test_a_page_by_relevance_reranked_by_stories_stored_off_it_is_not_answered_304(
    tmp_path: Path,
    clock: Clock,  # noqa: F811
) -> None:
    """bm25 (SQLite) weighs a word by how few stories hold it: stories stored off a page
    by ``sort=relevance`` change its order, and which stories it holds, while none on
    it was stored since. Its Last-Modified stayed put, so If-Modified-Since got a 304
    for a page now holding another story; like a page by sources it has none (the
    ETag validates it)."""
    with (
        make_app(Settings.from_env({}, data_dir=tmp_path), now=clock) as app,
        FeedServer(app) as srv,
    ):
        _store_stories(
            app,
            "https://a.example/feed",
            [
                ("x", "https://a.example/x", "alpha alpha alpha beta"),
                ("y", "https://a.example/y", "alpha beta beta beta"),
            ],
        )
        path = "/feed.atom?q=alpha%20beta&sort=relevance&limit=1"
        status, headers, body = _request(srv, path)
        assert status == 200 and b"beta beta beta" in body
        before = headers["Last-Modified"] or STORED  # what it said, or would have said
        clock.at = NOW + timedelta(hours=1)
        # twenty stories with "beta" alone: none matches, and beta weighs less now
        _store_stories(
            app,
            "https://b.example/feed",
            [(f"b{i}", f"https://b.example/{i}", f"beta filler{i}") for i in range(20)],
            day=20,
        )
        status, headers, body = _request(srv, path, ("If-Modified-Since", before))
        assert status == 200 and b"alpha alpha alpha" in body
        assert headers["Last-Modified"] is None
        status, _, _ = _request(srv, path, ("If-None-Match", headers["ETag"]))
        assert status == 304
        # by date, the first page keeps its Last-Modified
        status, headers, _ = _request(srv, "/feed.atom?q=alpha%20beta&limit=1")
        assert headers["Last-Modified"] is not None


@pytest.fixture
def app(cli: Path) -> Iterator[App]:  # noqa: F811
    with make_app(Settings.from_env()) as a:
        yield a


def test_a_named_list_keeps_options_in_bytes_that_are_not_utf8(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """argv holds a lone surrogate for each byte that is not UTF-8 (`-q $'one \\xff'`):
    the search reads it as a space, but keeping the options for the list wrote it as it
    was, a UnicodeEncodeError traceback on both databases after the stories were
    shown (exit 1, left new). They are kept as every text is (U+FFFD), and the same
    options given again are the same, no note."""
    save(app, "https://a.example/feed", [story("1", "One"), story("2", "Two")])
    for options in (["-q", "one \udcff"], ["-f", "a.example\udcff"]):
        name = options[0]
        code, out, err = run(
            capsys, "stories", "--new", "--format", "json", "--cursor", name, *options
        )
        assert code == 0 and "Traceback" not in err, err
        listed = [s["title"] for s in json.loads(out)]
        assert listed == (["One"] if name == "-q" else []), listed
        save(app, "https://a.example/feed", [story(f"{name}3", "One more")])
        code, out, err = run(
            capsys, "stories", "--new", "--format", "json", "--cursor", name, *options
        )
        assert code == 0 and not err, err  # the same options: no note
        listed = [s["title"] for s in json.loads(out)]
        assert listed == (["One more"] if name == "-q" else []), listed
    code, out, _ = run(capsys, "status", "--format", "json")
    assert json.loads(out)["reading_list_filters"] == {
        "-q": {"q": "one \ufffd"},
        "-f": {"feed": ["a.example\ufffd"]},
    }


def test_sort_by_date_given_to_a_named_list_is_read_by(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list kept with `--sort sources`, then given `--sort date`: other options, so it
    reads by those from then on, and says so. `--sort date` was the flag's default, taken
    for no option at all: the list went on by sources, its title saying so."""
    same = "https://news.example/outage"
    save(app, "https://a.example/feed", [story("old", "Old")])
    assert new(capsys, "--cursor", "s", "-t", "DNS", "--sort", "sources") == ["Old"]
    save(app, "https://a.example/feed", [story("1", "Covered", canonical=same)])
    save(app, "https://b.example/feed", [story("2", "Covered", link="https://b/2", canonical=same)])
    save(app, "https://a.example/feed", [story("3", "Newest alone")])
    code, out, err = run(
        capsys, "stories", "--new", "--format", "json", "--cursor", "s", "--sort", "date"
    )
    assert code == 0 and [s["title"] for s in json.loads(out)] == ["Newest alone", "Covered"]
    assert "now reads every story (it read -t DNS --sort sources)" in err, err
    code, out, _ = run(capsys, "status", "--format", "json")
    assert json.loads(out)["reading_list_filters"] == {"s": {}}
    # given as kept, the default order is no new option: no note
    assert new(capsys, "--cursor", "s", "--sort", "date") == []
    assert new(capsys, "--cursor", "s", "--sort", "sources") == []
    code, _, err = run(capsys, "stories", "--new", "--cursor", "s", "--sort", "sources")
    assert code == 0 and not err, err


def test_a_named_lists_options_reach_no_terminal_as_escape_sequences(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list's kept options are shown where it is read (the table's title, the note) and
    by `status`, from a database others may share: an escape sequence in them (`-q` with
    ESC, which the search reads as a space) went to the terminal as it was, to recolour
    it or retitle its window (OSC). They are shown as a story's title is, without them."""
    save(app, "https://a.example/feed", [story("1", "Zone one")])
    osc = "\x1b]0;owned\x07"
    code, out, err = run(capsys, "stories", "--new", "--cursor", "e", "-q", f"zone\x1b[31m{osc}")
    assert code == 0 and "reading list 'e': -q zone" in out, err
    assert "\x1b" not in out and "\x07" not in out, out
    code, out, err = run(capsys, "stories", "--new", "--cursor", "e", "-q", "zone\x9b2J")
    assert code == 0 and "\x1b" not in err and "\x9b" not in err and "now reads" in err, err
    code, out, _ = run(capsys, "status")
    assert code == 0 and "e read" in out and "\x1b" not in out and "\x9b" not in out, out


def test_a_removed_feeds_id_is_never_given_to_another_feed(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--feed 2` is feed 2 and nothing else, and a named list keeps it: SQLite gave a
    removed newest feed's id to the next feed added (max(rowid) + 1), so a list kept with
    `-f 2` (and serve's `?feed=2`, `feeds show 2`) went on silently with another feed's
    stories. Feed ids, like story ids, are never given twice (PostgreSQL's sequence never
    goes back)."""
    (one,) = save(app, "https://a.example/feed", [story("1", "A one")])
    save(app, "https://b.example/feed", [story("2", "B one", link="https://b.example/1")])
    feed_b = app.store.get_feed("https://b.example/feed").id
    assert new(capsys, "--cursor", "b", "-f", str(feed_b)) == ["B one"]
    code, _, err = run(capsys, "feeds", "remove", str(feed_b))
    assert code == 0, err
    save(app, "https://c.example/feed", [story("3", "C one", link="https://c.example/1")])
    app.store.upsert_feeds([FeedSource(url="https://d.example/feed")], NOW)
    ids = {f.url: f.id for f in app.feeds()}
    assert feed_b not in ids.values() and len(set(ids.values())) == 3, ids
    # not C's story: the list's feed is gone, which it says (test_reading_lists)
    code, out, err = run(capsys, "stories", "--new", "--cursor", "b")
    assert code == 2 and not out and f"-f {feed_b} names no feed now" in err, err
    code, out, _ = run(capsys, "stories", "--format", "json", "-f", str(feed_b))
    assert code == 0 and json.loads(out) == []
    # the newest feed removed: the next one added comes after it all the same
    code, _, err = run(capsys, "feeds", "remove", str(ids["https://d.example/feed"]))
    assert code == 0, err
    (added, _) = app.store.add_feed(FeedSource(url="https://e.example/feed"), NOW)
    assert added.id > ids["https://d.example/feed"] > ids["https://c.example/feed"] > one


def test_the_default_list_named_keeps_no_options_either(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cursor default` names the list `stories --new` reads without one, which keeps
    no options. Named, it kept `-t DNS`: `status` said the default list read by it while
    `stories --new` read every story of it, and `--cursor default` only DNS."""
    cyber = (("Cybersecurity", 0.9),)
    save(
        app, "https://a.example/feed", [story("1", "Dns one"), story("2", "Sec one", topics=cyber)]
    )
    assert new(capsys, "--cursor", "default", "-t", "DNS") == ["Dns one"]
    code, out, _ = run(capsys, "status", "--format", "json")
    assert code == 0 and "default" not in json.loads(out)["reading_list_filters"]
    save(
        app, "https://a.example/feed", [story("3", "Dns two"), story("4", "Sec two", topics=cyber)]
    )
    assert new(capsys, "--cursor", "default") == ["Dns two", "Sec two"]  # as `--new` alone


def test_a_list_whose_kept_options_no_longer_work_says_so(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A topic a list keeps, taken out of the taxonomy since (as its kept options then
    are): `stories --new --cursor dns`, given no topic, answered "unknown topic 'Gone'"
    alone. The error names the list and what it reads by, and how to give it others;
    nothing is read meanwhile."""
    save(app, "https://a.example/feed", [story("1", "Dns one")])
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["Dns one"]
    save(app, "https://a.example/feed", [story("2", "Dns two")])
    with app.store.engine.begin() as c:
        c.execute(
            text("UPDATE read_cursor SET filters = :f WHERE name = 'dns'"),
            {"f": '{"topic": ["Gone"], "since": "7d"}'},
        )
    code, out, err = run(capsys, "stories", "--new", "--cursor", "dns")
    assert code == 2 and not out
    assert "reading list 'dns' reads -t Gone --since 7d: unknown topic 'Gone'" in err, err
    assert "stories --new --cursor dns -t TOPIC" in err
    code, _, err = run(capsys, "stories", "--new", "--cursor", "dns", "-t", "Gone")
    assert code == 2 and "unknown topic 'Gone'" in err and "reads -t Gone --since" not in err
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["Dns two"]  # still new


def test_a_refused_option_prints_no_note_that_the_list_reads_by_it(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """Options a named list refuses replace nothing; yet "now reads -t Nope" was printed
    first, then the error. The note comes once the list reads by them."""
    save(app, "https://a.example/feed", [story("1", "Dns one")])
    assert new(capsys, "--cursor", "dns", "-t", "DNS") == ["Dns one"]
    for bad in (["-t", "Nope"], ["--sort", "relevance"], ["-q", "NOT dns"]):
        code, out, err = run(capsys, "stories", "--new", "--cursor", "dns", *bad)
        assert code == 2 and "now reads" not in err and not out, (bad, err)
    code, _, err = run(capsys, "stories", "--new", "--cursor", "dns", "-t", "Cybersecurity")
    assert code == 0 and "now reads -t Cybersecurity (it read -t DNS)" in err, err
