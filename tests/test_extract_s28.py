"""Session 28: full-text extraction and search, found by a demanding user's use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_extract_pipeline import ARTICLE, TITLE, article_page

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.store import Store
from aggregator.store.search import SEARCH_CONFIG
from aggregator.types import StoryQuery

# A site's footer under every item of its feed: ~900 characters, longer than the article
FOOTER = " ".join(
    f"Footer sentence {word} of the newsletter: subscribe to our {word} digest for more."
    for word in (
        [
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
)


def _teaser_feed(server: LocalServer, n: int) -> str:
    items = ""
    for i in range(n):
        link = server.route(f"/page/{i}", body=article_page().encode(), content_type="text/html")
        items += (
            f"<item><title>s{i} {TITLE}</title><link>{link}</link><guid>g{i}</guid>"
            f"<description>Teaser {i} of the story. {FOOTER}</description></item>"
        )
    return server.route(
        "/feed",
        body=(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
            "</channel></rss>"
        ).encode(),
    )


def test_a_story_extracted_alone_has_its_feeds_footer_left_out(
    tmp_path: Path, server: LocalServer
) -> None:
    """A story taken up alone by `extract` (``--limit 1``, or the only one of its feed
    still waiting) had the feed's footer counted as its own text (the footer is told by
    the feed's other stories): its article, longer than the teaser but not than teaser
    and footer together, was ``skipped`` where a poll or a run over the whole feed takes
    it."""
    url = _teaser_feed(server, 3)
    assert len(FOOTER) > len(ARTICLE) * 2  # the page's text is shorter than the footer
    s = Settings.from_env({}, data_dir=tmp_path, allow_private_addresses=True, workers=1)
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        assert [r.new for r in app.update_due(all_feeds=True, extract=False)] == [3]
        done = app.extract_waiting(limit=1)
        assert (done.tried, done.extracted) == (1, 1)
        done = app.extract_waiting(limit=1)
        assert (done.tried, done.extracted) == (1, 1)
        statuses = sorted(st.extraction_status for st in app.stories(StoryQuery(limit=None)))
        assert statuses == ["ok", "ok", "pending"]


_HOLDER = """
import sys
from aggregator.store import open_store
st = open_store(sys.argv[1])
with st.claim_extractions(int(sys.argv[2])) as (stories, _):
    print(" ".join(str(s.id) for s in stories), flush=True)
    sys.stdin.readline()
st.close()
"""


def _pending_stories(url: str, n: int) -> list[int]:
    from test_store import T0, check, draft

    from aggregator.store import open_store
    from aggregator.types import FeedSource, StoryRecord

    st = open_store(url)
    try:
        st.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
        feed = st.get_feed("https://a.example/feed")
        records = [
            StoryRecord(
                draft=draft(str(i), f"Story {i}", link=f"https://a.example/{i}"),
                extraction_status="pending",
            )
            for i in range(n)
        ]
        st.save_update(check(feed.id), records)
        return sorted(s.id for s in st.waiting_extractions(n)[0])
    finally:
        st.close()


def test_sqlite_extraction_claims_keep_two_processes_off_one_story(tmp_path: Path) -> None:
    """`aggregator extract` while the daemon runs on the same SQLite file: each took the
    same newest waiting stories (a claim held on PostgreSQL only), and every page was
    fetched twice. Another process's claim now passes its stories over on SQLite too,
    and a process that dies lets go of them."""
    import subprocess
    import sys

    from aggregator.store import open_store

    url = f"sqlite:///{tmp_path / 'a.db'}"
    ids = _pending_stories(url, 5)
    assert len(ids) == 5
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *sys.path])}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        held = sorted(int(i) for i in holder.stdout.readline().split())
        assert held == ids[-2:]  # newest first
        st = open_store(url)
        try:
            with st.claim_extractions(10) as (stories, _):
                assert sorted(s.id for s in stories) == ids[:3]
                with st.claim_extractions(10) as (again, _):  # one process's two runs too
                    assert again == []
            holder.kill()  # dies holding its claim: the claim goes with it
            holder.wait(10)
            with st.claim_extractions(10) as (stories, _):
                assert sorted(s.id for s in stories) == ids
        finally:
            st.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


COMPAT_TITLES = [
    "ＤＮＳ outage hits Ｃｌｏｕｄ provider",
    "ｶﾞｲﾄﾞ of the Ｔｏｋｙｏ ｒｅｇｉｓｔｒｙ",
    "Plain DNS resolver news",
]


def _titled(url: str, titles: list[str]) -> Store:
    from test_store import T0, check, draft

    from aggregator.store import open_store
    from aggregator.types import FeedSource, StoryRecord

    st = open_store(url)
    st.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
    feed = st.get_feed("https://a.example/feed")
    st.save_update(
        check(feed.id),
        [StoryRecord(draft=draft(str(i), t, summary="body")) for i, t in enumerate(titles)],
    )
    return st


def _found(st: Store, typed: str) -> list[int]:
    return sorted(
        COMPAT_TITLES.index(s.title) for s in st.stories(StoryQuery(text=typed, limit=None))
    )


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("dns", [0, 2]),
        ("ＤＮＳ", [0, 2]),
        ("cloud", [0]),
        ("Ｃｌｏ*", [0]),
        ("ＤＮＳ＂ｏｕｔａｇｅ", [0]),  # a full-width quote is no syntax either
        ("tokyo registry", [1]),
        ('"Tokyo registry"', [1]),
        ("reg*", [1]),
        ("ガイド", [1]),
        ("ｶﾞｲﾄﾞ", [1]),
    ],
    ids=[
        "dns",
        "fullwidth-dns",
        "cloud",
        "fullwidth-prefix",
        "fullwidth-quote",
        "words",
        "phrase",
        "prefix",
        "katakana",
        "halfwidth-katakana",
    ],
)
def test_full_width_letters_are_searched_as_plain_ones(
    db_url: str, typed: str, found: list[int]
) -> None:
    """``ＤＮＳ`` (Chinese, Japanese and Korean sites write Latin full-width) and ``ｶﾞｲﾄﾞ``
    (half-width katakana) were indexed as they stand on both databases: ``dns`` or
    ``ガイド`` did not find those stories, and ``ＤＮＳ`` found only them."""
    st = _titled(db_url, COMPAT_TITLES)
    try:
        assert _found(st, typed) == found
    finally:
        st.close()


def test_migration_27_folds_the_index_entries_written_before(db_url: str) -> None:
    from sqlalchemy import text

    from aggregator.store import open_store

    st = _titled(db_url, COMPAT_TITLES)
    with st.engine.begin() as c:  # what a version-26 store holds: the forms as they are
        if st.dialect == "sqlite":
            c.execute(
                text(
                    "UPDATE story_fts SET title = "
                    "(SELECT title FROM story WHERE id = story_fts.rowid)"
                )
            )
        else:
            c.execute(
                text(
                    "UPDATE story SET search = setweight(to_tsvector("
                    f"'{SEARCH_CONFIG}', title), 'A')"
                )
            )
        c.execute(text("DELETE FROM schema_version WHERE version = 27"))
    assert _found(st, "ｒｅｇｉｓｔｒｙ") == []  # the old entry: not found by the folded query
    st.close()
    st = open_store(db_url)
    try:
        assert _found(st, "dns") == [0, 2]
        assert _found(st, "ｒｅｇｉｓｔｒｙ") == _found(st, "registry") == [1]
    finally:
        st.close()
