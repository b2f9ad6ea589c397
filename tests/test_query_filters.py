"""The query filters a demanding user leans on, through the real store (SQLite and
PostgreSQL), the real CLI in-process and a real ``serve``: ``--feed`` by id, by the URL
spelled another way, by a part of the URL, with ``%`` and ``_`` taken literally; paging
with ``--offset`` over stories that share a date; ``feed_id`` in story JSON and CSV to
join ``feeds list``; ``topics`` counting what ``stories -t`` lists; every unknown topic
named at once; and ``serve``'s index listing only the taxonomy's topics."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from dbfixtures import fresh_pg_url
from readonly import BACKENDS, refuse_writes
from test_cli_read_audit import story
from test_learning_cli import env, run, seed_stories  # noqa: F401  (env: fixture)
from test_store import check

from aggregator.app import App, make_app
from aggregator.config import REPO_MODELS_DIR, Settings
from aggregator.serve import FeedServer
from aggregator.store import SqlStore, open_store, search
from aggregator.taxonomy import Taxonomy
from aggregator.types import FeedSource, StoryQuery, StoryRecord

NOW = datetime.now(UTC).replace(microsecond=0)
T = TypeVar("T")
#: One date shared by many stories: a page boundary falls between equals.
SAME = NOW - timedelta(hours=2)


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's environment on ``db_url``: the data directory in tmp_path, an empty
    feeds file; the data directory is returned (SQLite keeps its file there)."""
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_MODELS_DIR", raising=False)
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("AGGREGATOR_DATABASE_URL", db_url)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
def app(cli: Path) -> Iterator[App]:
    """An App on the CLI's store, to seed it through the real write path."""
    with make_app(Settings.from_env()) as a:
        yield a


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = open_store(db_url)
    s.sync_topics([("DNS", None), ("Cybersecurity", None)])
    try:
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def _read_only_store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fill: Callable[[SqlStore], T],
) -> Iterator[tuple[SqlStore, T]]:
    """A store of its own on ``request.param``'s database, set up as ``store`` sets one up
    and filled by ``fill``, then refusing writes (readonly.py): the tests of the module
    share it, and one that wrote to it would fail rather than change another's."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("shared") / "data" / "aggregator.db"
            url = f"sqlite:///{path.as_posix()}"
        else:
            url = stack.enter_context(fresh_pg_url(request.getfixturevalue("_pg_databases")))
        s = open_store(url)
        stack.callback(s.close)
        s.sync_topics([("DNS", None), ("Cybersecurity", None)])
        made = fill(s)
        refuse_writes(s.engine)
        yield s, made


def add(st: SqlStore, url: str, name: str | None, records: Sequence[StoryRecord]) -> list[int]:
    """A feed subscribed with its stories, as a first poll stores them; their ids."""
    feed, _ = st.add_feed(FeedSource(url=url, name=name), NOW)
    return [int(i) for i in st.save_update(check(feed.id, at=NOW), list(records)).new]


def ids(st: SqlStore, **query: object) -> list[int]:
    return [s.id for s in st.stories(StoryQuery(**query))]  # type: ignore[arg-type]


# --- --feed --------------------------------------------------------------------------------


def _feeds(store: SqlStore) -> dict[str, list[int]]:
    """Feeds whose names, titles and URLs overlap in the ways that went wrong: a name with
    a digit in it, a path under another feed's, a password, ``%`` and ``_``, a name in
    letters beyond ASCII."""
    return {
        "alpha": add(store, "https://Alpha.example/feed/", "Alpha News", [story("a1", "KSK")]),
        "comments": add(
            store, "https://alpha.example/feed/comments", "Alpha talk", [story("c1", "Re: KSK")]
        ),
        "private": add(
            store, "https://ann:hunter2@members.example/feed", "Club", [story("p1", "Members")]
        ),
        "digits": add(store, "https://digits.example/rss", "Top 1 of 2", [story("d1", "Ten")]),
        "percent": add(store, "https://deals.example/feed", "100% Deals", [story("s1", "Sale")]),
        "umlaut": add(store, "https://netz.example/feed", "ÜBERSICHT Netz", [story("u1", "Netz")]),
    }


@pytest.fixture(scope="module", params=BACKENDS)
def _feeds_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqlStore, dict[str, list[int]]]]:
    """``_feeds``' store, made once per database for the --feed tests, which only read it
    (25 tests on each database: the store and its six feeds were made for each)."""
    with _read_only_store(request, tmp_path_factory, _feeds) as made:
        yield made


@pytest.fixture
def feeds_store(_feeds_store: tuple[SqlStore, dict[str, list[int]]]) -> SqlStore:
    return _feeds_store[0]


@pytest.fixture
def feeds(_feeds_store: tuple[SqlStore, dict[str, list[int]]]) -> dict[str, list[int]]:
    return _feeds_store[1]


def test_a_feed_id_matches_that_feed_and_nothing_else(
    feeds_store: SqlStore, feeds: dict[str, list[int]]
) -> None:
    """`feeds list` shows ids and `feeds remove 3` takes one, but `--feed 3` was a
    substring of names and titles: the feed with id 1 was never found by it, "Top 1 of
    2" was found by `--feed 1` and `--feed 2`."""
    feed_of = {s.id: s.feed_id for s in feeds_store.stories(StoryQuery(limit=None))}
    for name, stories in feeds.items():
        assert ids(feeds_store, feeds=(str(feed_of[stories[0]]),)) == stories, name
    assert ids(feeds_store, feeds=("999",)) == []  # no such feed: no stories, not a name match
    assert ids(feeds_store, feeds=("9" * 5000,)) == []  # past any id (and int()'s digit limit)


@pytest.mark.parametrize(
    ("ref", "feed"),
    [
        ("https://alpha.example/feed/", "alpha"),
        ("http://alpha.example/feed/", "alpha"),
        ("https://ALPHA.EXAMPLE/feed", "alpha"),
        ("https://alpha.example:443/feed", "alpha"),
        ("https://someone:x@alpha.example/feed/", "alpha"),
        ("https://members.example/feed", "private"),
        ("http://members.example/feed/", "private"),
        ("https://ann:***@members.example/feed", "private"),
        ("https://ann@Members.Example/feed", "private"),
    ],
    ids=[
        "host-lowercase",
        "http",
        "host-case-no-slash",
        "default-port",
        "with-credentials",
        "private-without",
        "private-http-slash",
        "private-as-listed",
        "private-user-only",
    ],
)
def test_a_feed_url_spelled_another_way_matches_that_feed(
    feeds_store: SqlStore, feeds: dict[str, list[int]], ref: str, feed: str
) -> None:
    """What `feedlist.feed_key` treats as one subscription is one `--feed`: http for
    https, the host's case, a trailing slash, credentials or none. Only the host's case
    of the stored URL was forgiven by nothing; and a URL naming one feed is that feed,
    not every feed whose URL starts with it (the comments feed under it)."""
    assert ids(feeds_store, feeds=(ref,)) == feeds[feed]


def test_a_feed_moved_by_a_redirect_matches_by_the_url_subscribed(store: SqlStore) -> None:
    """feeds.yaml keeps the URL subscribed after a permanent redirect is adopted; `feeds
    remove` takes it, and so does `--feed`."""
    (sid,) = add(store, "https://old.example/feed", None, [story("m1", "Moved")])
    feed = store.get_feed("https://old.example/feed")
    store.save_update(check(feed.id, url="https://new.example/feed"), [])
    assert store.get_feed(feed.id).url == "https://new.example/feed"
    assert ids(store, feeds=("http://old.example/feed/",)) == [sid]
    assert ids(store, feeds=("https://new.example/feed",)) == [sid]


def test_several_feeds_give_the_stories_of_any_of_them(
    feeds_store: SqlStore, feeds: dict[str, list[int]]
) -> None:
    """`--feed A --feed B` (and `?feed=A&feed=B`): the stories of either, newest first,
    each once though two refs name its feed; a ref that names no feed adds none."""
    feed_of = {s.id: s.feed_id for s in feeds_store.stories(StoryQuery(limit=None))}
    alpha_id = str(feed_of[feeds["alpha"][0]])
    want = sorted(feeds["alpha"] + feeds["percent"] + feeds["umlaut"], reverse=True)
    refs = (alpha_id, "100%", "https://alpha.example/feed/", "übersicht", "999", "nowhere")
    assert sorted(ids(feeds_store, feeds=refs, limit=None), reverse=True) == want
    assert len(ids(feeds_store, feeds=refs, limit=None)) == len(want)
    assert ids(feeds_store, feeds=("999", "nowhere")) == []
    assert ids(feeds_store, feeds=()) == ids(feeds_store)  # no feed named: no filter


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("alpha.example", ["alpha", "comments"]),
        ("ALPHA.example/feed/COMM", ["comments"]),
        ("members.example", ["private"]),
        ("alpha news", ["alpha"]),
        ("übersicht", ["umlaut"]),
        ("%", ["percent"]),
        ("100%", ["percent"]),
        ("_", []),
        ("a_pha", []),
        ("100\\%", []),
        ("\\", []),
        ("hunter2", []),
        ("ann", []),
        ("club", ["private"]),
    ],
    ids=[
        "host",
        "path-part-any-case",
        "host-of-private",
        "name",
        "name-beyond-ascii",
        "percent-alone",
        "percent-in-name",
        "underscore-alone",
        "underscore-inside",
        "escaped-percent",
        "backslash",
        "password",
        "user-name",
        "private-by-name",
    ],
)
def test_a_feed_by_part_of_its_name_title_or_url(
    feeds_store: SqlStore, feeds: dict[str, list[int]], ref: str, expected: list[str]
) -> None:
    """The help says URL, name or title; a part of the URL matched nothing. `%` matched
    every named feed and `_` any character (the database's LIKE wildcards), a backslash
    escaped on PostgreSQL only; SQLite's lower() folded no letter beyond ASCII. The URL
    is matched without its credentials: `serve`'s `?feed=` must not tell a password."""
    want = sorted(i for name in expected for i in feeds[name])
    assert sorted(ids(feeds_store, feeds=(ref,), limit=None)) == want


def test_serve_feed_parameter_takes_an_id_and_a_literal_percent(app: App) -> None:
    """`serve` resolves `?feed=` as the CLI does (one store method for both)."""
    add(app.store, "https://alpha.example/feed", "Alpha", [story("a", "Alpha story")])
    add(app.store, "https://deals.example/feed", "100% Deals", [story("d", "Deals story")])
    (deals,) = [f for f in app.feeds() if f.name == "100% Deals"]
    with FeedServer(app) as srv:
        for param, expected in [(str(deals.id), ["Deals story"]), ("%25", ["Deals story"])]:
            code, body = _get(f"{srv.url}/feed.json?feed={param}")
            assert code == 200, body
            assert [i["title"] for i in json.loads(body)["items"]] == expected, param
        code, body = _get(f"{srv.url}/feed.json?feed=")  # a form's empty field
        assert code == 200 and len(json.loads(body)["items"]) == 2, body
        code, body = _get(f"{srv.url}/feed.json?feed=alpha&feed={deals.id}&feed=&limit=1")
        doc = json.loads(body)
        assert code == 200 and [i["title"] for i in doc["items"]] == ["Deals story"], body
        assert "feed=alpha&feed=" in doc["next_url"]  # the next page keeps both feeds
        code, body = _get(doc["next_url"])
        assert code == 200 and [i["title"] for i in json.loads(body)["items"]] == ["Alpha story"]


# --- --offset ------------------------------------------------------------------------------


def _many(store: SqlStore) -> list[int]:
    """2,100 stories in two feeds, 300 to a date (so pages end between equals), the
    newest half of them tagged DNS; every 6th of feed A's has a copy in feed B. Enough
    that SQLite looks for a filtered page among the newest stories (``_recent_page``)."""
    a: list[StoryRecord] = []
    b: list[StoryRecord] = []
    for i in range(1800):
        link = f"https://a.example/{i}"
        when = SAME - timedelta(days=6 - i // 300)
        topics = [("DNS", 0.9)] if i >= 900 else [("Cybersecurity", 0.8)]
        a.append(
            story(
                f"a{i}", f"Root zone {i}", published=when, link=link, canonical=link, topics=topics
            )
        )
        if i % 6 == 0:
            b.append(story(f"b{i}", f"Root zone {i}", published=when, canonical=link))
    out: list[int] = []
    for url, name, records in [
        ("https://a.example/feed", "Alpha", a),
        ("https://b.example/feed", "Bravo", b),
    ]:
        feed, _ = store.add_feed(FeedSource(url=url, name=name), NOW)
        for start in range(0, len(records), 500):
            out += store.save_update(check(feed.id, at=NOW), records[start : start + 500]).new
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def _many_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqlStore, list[int]]]:
    """``_many``'s store, made once per database for the tests that only read it."""
    with _read_only_store(request, tmp_path_factory, _many) as made:
        yield made


@pytest.fixture
def many_store(_many_store: tuple[SqlStore, list[int]]) -> SqlStore:
    return _many_store[0]


@pytest.fixture
def many(_many_store: tuple[SqlStore, list[int]]) -> list[int]:
    return _many_store[1]


#: Every way the store finds a page, by name.
PAGE_QUERIES: dict[str, dict[str, object]] = {
    "all": {},
    "topic": {"topics": ("DNS",)},
    "feed": {"feeds": ("bravo",)},
    "feeds": {"feeds": ("bravo", "alpha")},
    "search": {"text": "root"},
    "since": {"since": SAME - timedelta(days=3)},
    "by-sources": {"order": "sources"},
    "topic-by-sources": {"order": "sources", "topics": ("DNS",)},
    "by-relevance": {"order": "relevance", "text": "root"},
    "feed-by-relevance": {"order": "relevance", "text": "root", "feeds": ("bravo",)},
}


def test_pages_neither_overlap_nor_skip_over_equal_dates(
    many_store: SqlStore, many: list[int]
) -> None:
    """Page after page (`--limit 70 --offset 70k`) is the whole list, in order: ties on
    the date are broken by id, in every way the store finds a page (one store of 2,100
    stories read every way: the queries only read it)."""
    for name, query in PAGE_QUERIES.items():
        whole = ids(many_store, **query, limit=None)
        assert len(whole) > 140, name
        paged: list[int] = []
        for offset in range(0, len(whole) + 70, 70):
            paged += ids(many_store, **query, limit=70, offset=offset)
        assert paged == whole, name
        assert ids(many_store, **query, limit=None, offset=70) == whole[70:], name
        assert (
            many_store.matching_ids(StoryQuery(**query, limit=None, offset=70)) == whole[70:]  # type: ignore[arg-type]
        ), name


def test_feed_repeated_on_stories_and_export(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    """`-f A -f B`: the stories of either feed, as JSON, a table and CSV, and an export
    titled after both (one `--feed` took one feed: two feeds took two runs and a merge)."""
    add(app.store, "https://a.example/feed", "Alpha", [story("a", "Alpha story")])
    add(app.store, "https://b.example/feed", "Bravo", [story("b", "Bravo story")])
    add(app.store, "https://c.example/feed", "Charlie", [story("c", "Charlie story")])
    code, out, err = run(capsys, "stories", "--format", "json", "-f", "alpha", "--feed", "3")
    assert code == 0 and sorted(s["title"] for s in json.loads(out)) == [
        "Alpha story",
        "Charlie story",
    ], err
    code, out, _ = run(capsys, "stories", "--format", "csv", "-f", "bravo", "-f", "nowhere")
    assert code == 0 and [line.split(",")[5] for line in out.splitlines()[1:]] == ["Bravo story"]
    code, out, _ = run(capsys, "stories", "-f", "bravo", "-f", "charlie", "-f", "")
    assert "Bravo story" in out and "Charlie story" in out and "Alpha story" not in out
    code, out, _ = run(capsys, "stories", "--format", "json", "-f", "", "-f", " ")
    assert len(json.loads(out)) == 3  # an empty ref names no feed: no filter, as without
    code, out, _ = run(capsys, "export", "--format", "json", "-f", "Alpha", "-f", "Bravo")
    doc = json.loads(out)
    assert doc["title"] == "aggregator — feeds Alpha, Bravo"
    assert sorted(i["title"] for i in doc["items"]) == ["Alpha story", "Bravo story"]


def test_a_story_says_how_many_feeds_carried_it(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """`stories` shows one story per cluster; how many feeds carried it is what a reader
    ranks news by (only `show` told, one story at a time). Feeds, not copies: a feed
    carrying the story twice counts once."""
    same = "https://news.example/root-zone"
    add(
        app.store,
        "https://a.example/feed",
        "Alpha",
        [
            story("a1", "Root zone change", canonical=same),
            story("a2", "Root zone change (updated)", link="https://a.example/2", canonical=same),
            story("a3", "Alone", link="https://a.example/3"),
        ],
    )
    for host in ("b", "c"):
        copy = story(
            f"{host}1", "Root zone change", link=f"https://{host}.example/1", canonical=same
        )
        add(app.store, f"https://{host}.example/feed", host.upper(), [copy])
    shown = {s.title: s.sources for s in app.stories(StoryQuery(limit=None))}
    assert shown == {"Root zone change": 3, "Alone": 1}
    # a filter that shows another copy: the same cluster, the same count
    (copy,) = app.stories(StoryQuery(feeds=("c.example",)))
    assert copy.sources == 3
    code, out, _ = run(capsys, "stories", "--format", "json")
    assert code == 0 and {s["title"]: s["sources"] for s in json.loads(out)} == shown
    code, out, _ = run(capsys, "stories", "--format", "csv")
    header, *lines = out.splitlines()
    assert header.endswith(",feed_id,sources") and sorted(line[-2:] for line in lines) == [
        ",1",
        ",3",
    ]
    code, out, _ = run(capsys, "stories")
    assert code == 0 and "3 sources" in out and "1 sources" not in out


def test_sort_by_sources_puts_the_most_carried_first(many_store: SqlStore, many: list[int]) -> None:
    """`--sort sources`: the stories most feeds carried first (here every 6th of feed
    A's, which B carries too), newest first among equals; the filters as by date."""
    by_date = ids(many_store, limit=None)
    by_sources = many_store.stories(StoryQuery(limit=None, order="sources"))
    assert sorted(s.id for s in by_sources) == sorted(by_date)
    counts = [s.sources for s in by_sources]
    assert counts == sorted(counts, reverse=True) and counts[0] == 2 and counts[-1] == 1
    twice = [s.id for s in by_sources if s.sources == 2]
    assert twice == [i for i in by_date if i in set(twice)]  # newest first among equals
    dns = many_store.stories(StoryQuery(topics=("DNS",), limit=10, order="sources"))
    assert [s.sources for s in dns] == [2] * 10
    tagged = set(ids(many_store, topics=("DNS",), limit=None))
    assert [s.id for s in dns] == [i for i in twice if i in tagged][:10]


def test_sort_by_relevance_puts_the_best_match_first(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--sort relevance` with `-q`: a story about the words (in its title) before one
    that mentions them once in a long text, though that one is newer; without `-q`
    there is nothing to rank by, which is bad input."""
    filler = " ".join(f"word{i}" for i in range(300))
    add(
        app.store,
        "https://a.example/feed",
        "Alpha",
        [
            story("about", "Registry outage hits registrars", published=NOW - timedelta(days=2)),
            replace(
                story("mention", "Weekly notes", published=NOW - timedelta(hours=3)),
                text=f"{filler} a registry outage was reported {filler}",
            ),
            story("other", "Root zone news", published=NOW - timedelta(hours=1)),
        ],
    )
    by_date = [s.title for s in app.stories(StoryQuery(text="registry outage"))]
    assert by_date == ["Weekly notes", "Registry outage hits registrars"]
    ranked = app.stories(StoryQuery(text="registry outage", order="relevance"))
    assert [s.title for s in ranked] == ["Registry outage hits registrars", "Weekly notes"]
    code, out, _ = run(
        capsys, "stories", "-q", "registry outage", "--sort", "relevance", "--format", "json"
    )
    assert code == 0 and [s["title"] for s in json.loads(out)] == [s.title for s in ranked]
    code, out, err = run(capsys, "stories", "--sort", "relevance")
    assert code == 2 and "-q" in err and not out
    code, out, err = run(capsys, "stories", "--sort", "size")
    assert code == 2 and "size" in err


def test_a_long_search_ranks_by_its_first_terms(app: App) -> None:
    """Ranking costs each match about its number of terms: `the` written 1,000 times
    took minutes over 2,000 stories on both databases, through one request to `serve`.
    A term given twice counts once, and a search of more than RANK_TERMS terms is ranked
    by its first ones: the same matches as by date, a match with none of them last."""
    filler = [f"word{i}" for i in range(40)]
    add(
        app.store,
        "https://a.example/feed",
        "Alpha",
        [
            story("first", "Registry outage", published=NOW - timedelta(days=3)),
            replace(
                story("late", "Weekly notes", published=NOW - timedelta(hours=1)),
                text=f"the {filler[-1]} was mentioned",
            ),
            story("none", "Root zone news", published=NOW - timedelta(hours=2)),
        ],
    )
    assert search.search_terms("the the registry the") == [
        [search.Term("the"), search.Term("registry")]
    ]
    assert search.search_terms("dns OR dns OR ksk") == [[search.Term("dns")], [search.Term("ksk")]]
    repeated = " ".join(["the"] * 999) + " mentioned"
    ranked = app.stories(StoryQuery(text=repeated, order="relevance"))
    assert [s.title for s in ranked] == ["Weekly notes"]
    # registry, outage, then 40 words: the story with only the last ranks last, though newer
    many = " OR ".join(["registry", "outage", *filler])
    assert search.rank_terms(many) == [
        search.Term(w) for w in ["registry", "outage", *filler][: search.RANK_TERMS]
    ]
    by_date = [s.title for s in app.stories(StoryQuery(text=many))]
    assert by_date == ["Weekly notes", "Registry outage"]
    ranked = app.stories(StoryQuery(text=many, order="relevance"))
    assert [s.title for s in ranked] == ["Registry outage", "Weekly notes"]
    assert [s.title for s in app.stories(StoryQuery(text=many, order="relevance", limit=1))] == [
        "Registry outage"
    ]


def test_export_and_serve_sort_as_stories_does(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export --sort` and serve's `sort=`: a "most covered today" feed, in that order,
    its next page keeping the order; a bad order is bad input (exit 2, HTTP 400)."""
    same = "https://news.example/root-zone"
    add(
        app.store,
        "https://a.example/feed",
        "Alpha",
        [
            story("a1", "Covered twice", canonical=same, published=NOW - timedelta(hours=5)),
            story("a2", "Newest alone", link="https://a.example/2"),
        ],
    )
    copy = story("b1", "Covered twice", link="https://b.example/1", canonical=same)
    add(app.store, "https://b.example/feed", "Bravo", [copy])
    code, out, err = run(capsys, "export", "--format", "json", "--sort", "sources")
    assert code == 0, err
    by_sources = json.loads(out)
    assert [i["title"] for i in by_sources["items"]] == ["Covered twice", "Newest alone"]
    code, out, _ = run(capsys, "export", "--format", "json")
    by_date = json.loads(out)
    assert [i["title"] for i in by_date["items"]] == ["Newest alone", "Covered twice"]
    # another order is another feed, titled so (its id, without --url, is made from it)
    assert by_sources["title"] == "aggregator — most covered first"
    assert by_date["title"] == "aggregator"
    code, out, _ = run(capsys, "export", "--format", "atom", "-q", "alone", "--sort", "relevance")
    assert "<title>aggregator — “alone” — best matches first</title>" in out
    code, date_atom, _ = run(capsys, "export", "--format", "atom", "-q", "alone")
    feed_id = "<id>" + out.split("<id>", 1)[1].split("</id>", 1)[0]
    assert feed_id not in date_atom
    code, _, err = run(capsys, "export", "--sort", "relevance")
    assert code == 2 and "-q" in err
    with FeedServer(app) as srv:
        code, body = _get(f"{srv.url}/feed.json?sort=sources&limit=1")
        doc = json.loads(body)
        assert code == 200 and [i["title"] for i in doc["items"]] == ["Covered twice"], body
        assert "sort=sources" in doc["next_url"]
        code, body = _get(doc["next_url"])
        assert [i["title"] for i in json.loads(body)["items"]] == ["Newest alone"]
        code, body = _get(f"{srv.url}/feed.atom?q=alone&sort=relevance")
        assert code == 200 and b"Newest alone" in body
        for bad in ("sort=size", "sort=relevance"):
            code, body = _get(f"{srv.url}/feed.atom?{bad}")
            assert code == 400 and b"sort" in body, bad


def test_stories_offset_pages_through_the_cli(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    """`stories` had no --offset (StoryQuery had one): a script could read only the
    first page. Pages of 2 of five stories of one date, in JSON and CSV, and streamed
    (`--limit 0`)."""
    add(
        app.store,
        "https://a.example/feed",
        "Alpha",
        [story(str(i), f"Story {i}", published=SAME) for i in range(5)],
    )
    code, out, _ = run(capsys, "stories", "--format", "json", "--limit", "0")
    whole = [s["id"] for s in json.loads(out)]
    assert len(whole) == 5 and whole == sorted(whole, reverse=True)
    pages = []
    for offset in (0, 2, 4, 6):
        code, out, err = run(
            capsys, "stories", "--format", "json", "--limit", "2", "--offset", str(offset)
        )
        assert (code, err) == (0, "")
        pages.append([s["id"] for s in json.loads(out)])
    assert pages == [whole[0:2], whole[2:4], whole[4:], []]
    code, out, _ = run(capsys, "stories", "--format", "json", "--limit", "0", "--offset", "3")
    assert [s["id"] for s in json.loads(out)] == whole[3:]
    code, out, _ = run(capsys, "stories", "--format", "csv", "-n", "1", "--offset", "1")
    assert [int(line.split(",")[0]) for line in out.splitlines()[1:]] == whole[1:2]
    code, out, _ = run(capsys, "stories", "--limit", "1", "--offset", "4")
    assert "Story 0" in out and "Story 1" not in out  # the oldest id of the five


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        ("-1", "--offset must be 0 or more"),
        (str(2**63), f"--offset {2**63} is too large"),
    ],
    ids=["negative", "beyond-any-store"],
)
def test_a_bad_offset_is_bad_input(
    cli: Path, capsys: pytest.CaptureFixture[str], offset: str, message: str
) -> None:
    code, out, err = run(capsys, "stories", "--offset", offset)
    assert (code, out, err) == (2, "", f"error: {message}\n")


# --- feed_id -------------------------------------------------------------------------------


def test_story_output_joins_feeds_list_by_feed_id(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A private feed's stories carry its URL without credentials, `feeds list` shows it
    with `ann:***`: neither string is the other, so nothing joined them. `feed_id`, added
    after the other fields of each story (JSON and CSV), is `feeds list`'s `id`."""
    (sid,) = add(app.store, "https://ann:hunter2@members.example/feed", "Club", [story("p", "M")])
    add(app.store, "https://members.example/feed", "Public", [story("q", "Public")])
    _, out, _ = run(capsys, "feeds", "list", "--format", "json")
    by_id = {f["id"]: f for f in json.loads(out)}
    _, out, _ = run(capsys, "stories", "--format", "json")
    listed = json.loads(out)
    assert all(list(s)[-2:] == ["feed_id", "sources"] for s in listed)
    (mine,) = [s for s in listed if s["id"] == sid]
    assert by_id[mine["feed_id"]]["url"] == "https://ann:***@members.example/feed"
    assert mine["feed"] == "https://members.example/feed"
    _, out, _ = run(capsys, "stories", "--format", "csv")
    header, *rows = out.splitlines()
    assert header.split(",")[-2:] == ["feed_id", "sources"]
    assert {int(r.split(",")[0]): int(r.split(",")[-2]) for r in rows}[sid] == mine["feed_id"]


# --- topics counts -------------------------------------------------------------------------


def test_topics_counts_what_the_topic_listing_shows(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A story three feeds carried is one line of `stories -t DNS` and was three in
    `topics` (DNS 11, the listing 10). A cluster counts once however many copies have
    the topic, and when only a later copy has it."""
    root = "https://a.example/root-zone"
    late = "https://a.example/late"
    add(
        app.store,
        "https://a.example/feed",
        "A",
        [
            story("1", "Root zone", link=root, canonical=root),
            story("2", "Late tag", link=late, canonical=late, topics=[("Cybersecurity", 0.8)]),
            story("3", "Alone"),
        ],
    )
    add(
        app.store,
        "https://b.example/feed",
        "B",
        [
            story("1", "Root zone", link=root + "?b", canonical=root),
            story("2", "Late tag", link=late + "?b", canonical=late),
        ],
    )
    add(
        app.store,
        "https://c.example/feed",
        "C",
        [
            story("1", "Root zone", link=root + "?c", canonical=root),
        ],
    )
    _, out, _ = run(capsys, "topics", "--format", "json")
    counts = {t["topic"]: t["stories"] for t in json.loads(out)}
    for topic in ("DNS", "Cybersecurity"):
        _, out, _ = run(capsys, "stories", "-t", topic, "--format", "json", "--limit", "0")
        assert counts[topic] == len(json.loads(out)), topic
    assert (counts["DNS"], counts["Cybersecurity"]) == (3, 1)


# --- unknown topics ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stories", "export"])
def test_every_unknown_topic_is_named_at_once(
    cli: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`-t Nope -t DNS -t Bad` named Nope alone: fixed, the next run named Bad."""
    code, out, err = run(capsys, command, "-t", "Nope", "-t", "dns", "-t", "Bad")
    assert (code, out) == (2, "")
    assert err == "error: unknown topics 'Nope', 'Bad' (see `aggregator topics`)\n"
    code, out, err = run(capsys, command, "-t", "Nope", "-t", "Nope")
    assert err == "error: unknown topic 'Nope' (see `aggregator topics`)\n"


def test_an_alias_names_its_topic_unless_several_claim_it(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feed-category alias one topic claims names that topic (a renamed topic keeps its
    old name among its aliases, and `-t OldName` answered "unknown topic"); one that
    several topics claim is refused with their names."""
    add(app.store, "https://a.example/feed", "A", [story("1", "KSK", topics=[("DNS", 0.9)])])
    expected = run(capsys, "stories", "-t", "DNS", "--format", "json")
    assert expected[0] == 0 and len(json.loads(expected[1])) == 1
    assert run(capsys, "stories", "-t", "Domain Name System", "--format", "json") == expected
    code, out, err = run(capsys, "stories", "-t", "ransomware", "-t", "Nope")
    assert (code, out) == (2, "")
    assert " ".join(err.split()) == (
        "error: unknown topic 'Nope' (see `aggregator topics`); 'ransomware' is an alias of "
        "several topics (Cyberattack, Threat Intelligence, Malware): name one"
    )


def test_serve_names_every_unknown_topic(app: App) -> None:
    """A topic the taxonomy does not have is a resource that does not exist: 404 (RFC 9110
    §15.5.5), with the body naming every unknown topic (it was 400, which says the request
    itself is malformed). An ambiguous alias and a bad parameter stay 400."""
    with FeedServer(app) as srv:
        code, body = _get(f"{srv.url}/topics/Nope.atom?topic=Bad")
        assert (code, body) == (404, b"unknown topics 'Bad', 'Nope' (see `aggregator topics`)\n")
        for path in ("/feed.json?any_topic=Nope", "/feed.rss?not_topic=Nope"):
            code, body = _get(srv.url + path)
            assert (code, body) == (404, b"unknown topic 'Nope' (see `aggregator topics`)\n")
        code, body = _get(f"{srv.url}/topics/DNS.atom?topic=ransomware")
        assert code == 400 and b"'ransomware' is an alias of several topics" in body, body
        code, body = _get(f"{srv.url}/topics/DNS.atom?since=yesterdayish")
        assert code == 400, body


# --- serve's index -------------------------------------------------------------------------


def test_serve_index_lists_only_the_taxonomys_topics(tmp_path: Path, db_url: str) -> None:
    """A topic taken out of taxonomy.yaml keeps its row in the store: the index page
    listed it, with links that answered 400. `App.topics()` now gives the taxonomy's
    topics in its order, for `topics` and the index alike."""
    url = None if db_url.startswith("sqlite") else db_url
    full = Settings.from_env({}, data_dir=tmp_path / "data", database_url=url)
    with make_app(full) as a:
        add(
            a.store,
            "https://a.example/feed",
            "A",
            [
                story("1", "Remote work", topics=[("Coronavirus", 0.9)]),
                story("2", "KSK", topics=[("DNS", 0.9)]),
            ],
        )
    taxonomy = (REPO_MODELS_DIR / "taxonomy.yaml").read_text(encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    (models / "taxonomy.yaml").write_text(
        taxonomy[: taxonomy.index("  - id: coronavirus")], encoding="utf-8"
    )
    names = [t.name for t in Taxonomy.load(models / "taxonomy.yaml").topics]
    cut = Settings.from_env({}, data_dir=tmp_path / "data", database_url=url, models_dir=models)
    with make_app(cut) as a:
        assert [t.name for t in a.topics()] == names
        with FeedServer(a) as srv:
            code, body = _get(srv.url + "/")
            assert code == 200
            page = body.decode()
            assert "Coronavirus" not in page
            assert "DNS (1)" in page
            links = [part.split('"', 1)[0] for part in page.split('href="')[1:]]
            # the merged feeds (linked and named in <link rel="alternate">), the OPML of
            # every topic's feed, and each topic's three
            assert len(links) == 3 + 3 + 1 + 3 * len(names)
            for link in links:
                assert _get(srv.url + link)[0] == 200, link


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_label_names_every_unknown_topic_at_once(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`label 42 +Nope -Bad` named only the first unknown topic, as `-t` did."""
    (sid, *_) = seed_stories(env / "data", classify=False)
    code, _, err = run(capsys, "label", str(sid), "+DNS", "+Nope", "-Bad", "--forget", "Gone")
    assert code == 2
    assert "unknown topics 'Nope', 'Bad', 'Gone'" in " ".join(err.split())
    code, _, err = run(capsys, "label", str(sid), "+dns")
    assert code == 0, err
