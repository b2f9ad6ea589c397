"""PostgreSQL's search finds what SQLite's finds: stop words (``who``, ``it``) are
indexed, diacritics of Latin letters are folded (``goran`` finds ``Göran``), and store
migration 10 -> 11 rebuilds the vectors an older store wrote with ``english``."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from test_store import T0, check, draft

from aggregator.store import open_store
from aggregator.store.search import SEARCH_CONFIG, fold_diacritics
from aggregator.types import FeedSource, StoryQuery, StoryRecord

TITLES = ["WHO warns of pandemic-themed phishing", "Göran Marby leaves ICANN"]


def _found(st, typed: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(s.title for s in st.stories(StoryQuery(text=typed, limit=None)))


@pytest.mark.postgres
def test_migration_11_rebuilds_the_vectors_of_an_older_store(pg_url: str) -> None:
    st = open_store(pg_url)
    st.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
    feed = st.get_feed("https://a.example/feed")
    st.save_update(
        check(feed.id),
        [
            StoryRecord(draft=draft(str(i), title, summary="It reached São Paulo"))
            for i, title in enumerate(TITLES)
        ],
    )
    with st.engine.begin() as c:  # what a version-10 store holds: english, no folding
        c.execute(
            text(
                "UPDATE story SET search = setweight(to_tsvector('english', title), 'A') "
                "|| setweight(to_tsvector('english', coalesce(summary, '')), 'B')"
            )
        )
        c.execute(text(f"DROP TEXT SEARCH CONFIGURATION {SEARCH_CONFIG}"))
        c.execute(text("DROP TEXT SEARCH DICTIONARY aggregator_english_stem"))
        c.execute(text("DELETE FROM schema_version WHERE version = 11"))
    st.close()

    st = open_store(pg_url)
    try:
        assert _found(st, "who") == [TITLES[0]]
        assert _found(st, "goran") == [TITLES[1]]
        assert _found(st, "sao paulo") == TITLES[::-1] and _found(st, "São") == TITLES[::-1]
        assert _found(st, "phishing") == [TITLES[0]]  # and stemming as before
        assert _found(st, "warning") == [TITLES[0]]
    finally:
        st.close()


@pytest.mark.parametrize(
    ("text_in", "folded"),
    [
        ("plain ascii", "plain ascii"),
        ("Göran Telefónica São naïve", "Goran Telefonica Sao naive"),
        ("Łódź Øresund ß", "Łodz Øresund ß"),  # as SQLite's unicode61: no base letter change
        ("Ελλάδα й ё", "Ελλάδα й ё"),  # other scripts keep their marks, as there
    ],
)
def test_fold_diacritics_as_sqlites_tokenizer_does(text_in: str, folded: str) -> None:
    assert fold_diacritics(text_in) == folded


def test_fold_diacritics_agrees_with_sqlite_on_latin_letters() -> None:
    """Every Latin letter with a canonical decomposition folds as FTS5's unicode61
    tokenizer with remove_diacritics 2 folds it, but for the few it leaves as they are
    (ǡ, ǣ, ǯ, ǽ, ǿ and the like, whose decomposition holds a further decomposed
    letter)."""
    import sqlite3
    import unicodedata

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    letters = [
        chr(c)
        for lo, hi in ((0xC0, 0x250), (0x1E00, 0x1F00))
        for c in range(lo, hi)
        if unicodedata.category(chr(c)).startswith("L")
    ]
    db.executemany(
        "INSERT INTO t(rowid, x) VALUES (?, ?)", [(i, f"q{c}q") for i, c in enumerate(letters)]
    )
    sqlite = {doc: term for term, doc, _, _ in db.execute("SELECT * FROM v")}
    case_only = "ßẞŉſ"  # case mappings (ß, long s), not diacritics: PostgreSQL lower()s
    differ = [
        c
        for i, c in enumerate(letters)
        if sqlite[i] != f"q{fold_diacritics(c)}q".lower() and c not in case_only
    ]
    assert set(differ) <= set("ǠǡǢǣǮǯǼǽǾǿẚẛ"), differ  # 10 of 654 here
