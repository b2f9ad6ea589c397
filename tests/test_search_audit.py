"""Full-text search audit: the same query finds the same stories on SQLite (FTS5) and
PostgreSQL (tsvector), and no query is a crash or a database error (bad input is one
ConfigError). Real stores, real databases; stories written as the poll writes them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_cli_errors import Aggregator, aggregator, assert_one_clear_line  # noqa: F401  (aggregator: fixture)
from test_config_serve import _store_stories
from test_serve_audit import NOW, _get
from test_store import T0, check, draft

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.serve import FeedServer
from aggregator.store import Store, open_store
from aggregator.types import ExtractionUpdate, FeedSource, StoryQuery, StoryRecord

TITLES = [
    "O'Reilly publishes a book; don't panic",  # 0
    "The ipv4-market is hot at example.com",  # 1
    "CVE-2024-1234 exploited",  # 2
    "TLS 1.3 deployment and RFC 9110 semantics",  # 3
    "camelCase JavaScript and NASA ALLCAPS",  # 4
    "Café in Straße with İstanbul office",  # 5
    "ﬁnancial ligature",  # 6
    "日本語のニュース and 中文新闻",  # 7
    "مرحبا بالعالم and שלום עולם",  # 8
    "Emoji 🎉 party",  # 9
    "snake_case variable_name",  # 10
    "C++ compiler released",  # 11
    "#hashtag trend and @handle mention",  # 12
    "Runners running domains",  # 13
    "the of and who it",  # 14
    "NEAR title body words",  # 15
    "plain cafe strasse istanbul financial",  # 16
    "हिन्दी समाचार",  # 17
    "Привет мир",  # 18
    "नीतियाँ और साइबर सुरक्षा",  # 19
]

# (query, indexes of TITLES found): what both backends answer
SAME: list[tuple[str, list[int]]] = [
    ("O'Reilly", [0]),
    ("reilly", [0]),
    ("don't", [0]),
    ("ipv4-market", [1]),
    ("example.com", [1]),
    ("CVE-2024-1234", [2]),
    ("TLS 1.3", [3]),
    ("RFC 9110", [3]),
    ("camelcase", [4]),
    ("nasa", [4]),
    ("cafe", [5, 16]),
    ("CAFÉ", [5, 16]),
    ("Straße", [5]),  # ß is not folded to ss by either index (see the report)
    ("İstanbul", [5, 16]),
    ("ﬁnancial", [6]),
    ("日本語のニュース", [7]),
    ("日本*", [7]),
    ("مرحبا", [8]),
    ("שלום", [8]),
    ("🎉 party", [9]),
    ("snake_case", [10]),
    ("case", [10]),
    ("snake_c*", [10]),
    ("a_b*", [0]),  # "a book"
    ("publ_a*", []),  # the words publ then a*: PostgreSQL read publ* a* ("publishes a")
    ("C++", [11]),
    ("#hashtag", [12]),
    ("@handle", [12]),
    ("run", [13]),
    ("domain", [13]),
    ("the of and", [14]),
    ("who", [14]),
    ("NEAR(title body)", [15]),  # words, not FTS5's NEAR
    ("NEAR(body title)", []),
    ("title:near", []),
    ("domain OR cafe", [5, 13, 16]),
    ("OR domain", [13]),
    ("domain OR", [13]),
    ("domain OR OR cafe", [5, 13, 16]),
    ("domain or cafe", []),  # lowercase or is a word
    ("-running", [13]),  # a word, not an exclusion
    ("regist*", []),
    ("run*", [13]),
    ('"unclosed domain', []),
    ('"runners running" "domains"', [13]),
    ("(domain OR cafe)", [5, 13, 16]),
    ("^domain +running domain: domain^", [13]),
    ("{title}", [15]),
    ("हिन्दी", [17]),
    ("हिन्*", [17]),  # the vowel signs are in the word on both
    ("हिन्दी*", [17]),
    ("Прив*", [18]),
    # a vowel sign is part of its word on both: "नीति" is not the start of "नीतियाँ", and
    # neither "सु" nor "स" is a word of "सुरक्षा" (FTS5 cut them at the marks before
    # store migration 19, so the phrase of their pieces found words they begin)
    ("नीति", []),
    ("नीति*", [19]),
    ("सुरक्षा", [19]),
    ("सु", []),
    ("स", []),
    ("सु*", [19]),
    ("साइबर सुरक्षा", [19]),
    ("domain\x00", [13]),  # control characters are spaces
    ("\x1bdomain\x7f", [13]),
    ("dom\x00ain", []),
    # AND (what a space means) and NOT (leave out) are operators in capitals
    ("domain AND running", [13]),
    ("domain NOT cafe", [13]),
    ("domain NOT running", []),
    ("cafe NOT straße", [16]),
    ("cafe NOT strass*", [5]),
    ('cafe NOT "plain cafe"', [5]),
    ("cafe NOT office OR domain", [13, 16]),
    ("domain OR cafe NOT istanbul", [13]),
    ("domain not", []),  # lowercase not is a word
    ("domain and running", []),  # and so is lowercase and
    ("domain NOT", [13]),  # NOT before nothing leaves nothing out
]

NOTHING_BUT_NOT = ["NOT domain", "NOT domain NOT cafe", "domain OR NOT cafe"]

NO_WORDS = ["*", '""', '"" ""', "OR", "🎉", "_", "\x00", "-", "'", "\u0301", "\x1b\x7f"]


def _store(url: str) -> Store:
    st = open_store(url)
    st.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
    feed = st.get_feed("https://a.example/feed")
    st.save_update(
        check(feed.id),
        [StoryRecord(draft=draft(str(i), t, h=f"h{i}")) for i, t in enumerate(TITLES)],
    )
    return st


def _found(st: Store, typed: str) -> list[str]:
    return sorted(s.title for s in st.stories(StoryQuery(text=typed, limit=None)))


def test_a_search_finds_the_same_stories_on_both_backends(db_url: str) -> None:
    st = _store(db_url)
    try:
        wrong = {
            q: got for q, want in SAME if (got := _found(st, q)) != sorted(TITLES[i] for i in want)
        }
        assert wrong == {}
    finally:
        st.close()


def test_a_query_without_words_is_bad_input(db_url: str) -> None:
    st = _store(db_url)
    try:
        for typed in NO_WORDS:
            with pytest.raises(ConfigError, match="has no words to look for"):
                st.stories(StoryQuery(text=typed))
        for typed in NOTHING_BUT_NOT:
            with pytest.raises(ConfigError, match="needs a word to look for as well"):
                st.stories(StoryQuery(text=typed))
    finally:
        st.close()


def test_long_queries_work_up_to_a_limit_and_are_bad_input_past_it(db_url: str) -> None:
    """1,000 words (AND, OR, prefixes, phrases) are looked for on both: PostgreSQL's
    query nested them one in another and raised RecursionError compiling it (50,000
    crashed the interpreter, a 50,000-word phrase exceeded the server's stack depth and
    was read as the database being unavailable). Past 1,000 words, or a word longer than
    PostgreSQL indexes (which it dropped, so ``domain <3,000 x>`` found every story
    with ``domain`` there and none on SQLite), the search is one ConfigError."""
    st = _store(db_url)
    try:
        assert _found(st, "domain " * 1000) == [TITLES[13]]
        assert _found(st, " OR ".join(["nasa", *(f"w{i}" for i in range(999))])) == [TITLES[4]]
        assert _found(st, " ".join(["run*", *(f"w{i}*" for i in range(999))])) == []
        assert _found(st, '"' + "x " * 1000 + '"') == []
        assert _found(st, "domain OR " + "notawordhere " * 769) == [TITLES[13]]  # 10,007 chars
        for typed in ["domain " * 1001, "x " * 50_000, '"' + "x " * 50_000 + '"']:
            with pytest.raises(ConfigError, match="at most 1,000 are allowed"):
                st.stories(StoryQuery(text=typed))
        assert _found(st, "domain " + "x" * 2047) == []
        for typed in ["domain " + "x" * 3000, "x" * 10_000]:
            with pytest.raises(ConfigError, match=r"a word of [0-9,]+ characters"):
                st.stories(StoryQuery(text=typed))
    finally:
        st.close()


# Differences that only a change to what PostgreSQL's vectors hold can remove: its parser
# keeps a host, an e-mail address, a URL, a version or a signed number as one lexeme,
# where FTS5 indexes the words and numbers in it (which is what a reader looks for).
INDEX_SIDE: list[tuple[str, list[int]]] = [
    ("example", [1]),  # in example.com
    ("com", [1]),
    ("2024", [2]),  # in CVE-2024-1234 ("-2024" on PostgreSQL)
    ("example.c*", [1]),
]


def test_words_inside_hosts_and_numbers_are_found_on_sqlite(sqlite_url: str) -> None:
    st = _store(sqlite_url)
    try:
        assert {q: _found(st, q) for q, _ in INDEX_SIDE} == {
            q: [TITLES[i] for i in want] for q, want in INDEX_SIDE
        }
    finally:
        st.close()


@pytest.mark.postgres
def test_words_inside_hosts_and_numbers_are_found_on_postgresql(pg_url: str) -> None:
    st = _store(pg_url)
    try:
        assert {q: _found(st, q) for q, _ in INDEX_SIDE} == {
            q: [TITLES[i] for i in want] for q, want in INDEX_SIDE
        }
    finally:
        st.close()


def test_text_in_the_title_summary_or_full_text_is_found_until_deleted(db_url: str) -> None:
    """A word only in the title, only in the summary (HTML), only in the full text saved
    with the story or extracted later: each story is found by it; once pruned or its
    feed removed, it is not."""
    st = open_store(db_url)
    try:
        st.upsert_feeds(
            [FeedSource(url="https://a.example/feed"), FeedSource(url="https://b.example/feed")],
            T0,
        )
        a, b = st.get_feed("https://a.example/feed"), st.get_feed("https://b.example/feed")
        old = T0 - timedelta(days=400)
        saved = st.save_update(
            check(a.id, at=old),
            [
                StoryRecord(draft=draft("t", "Quokka in the title", h="t", published=old)),
                StoryRecord(
                    draft=draft(
                        "s", "Second", summary="<p>a <b>wombat</b></p>", h="s", published=old
                    )
                ),
                StoryRecord(
                    draft=draft("f", "Third", h="f", published=old),
                    full_text="the numbat article",
                    extraction_status="ok",
                ),
                StoryRecord(draft=draft("e", "Fourth", h="e", published=old)),
            ],
        )
        later = saved.new[3]
        st.save_extractions([ExtractionUpdate(story_id=later, status="ok", full_text="a bilby")])
        st.save_update(check(b.id), [StoryRecord(draft=draft("b", "Echidna news", h="b"))])
        for word, title in [
            ("quokka", "Quokka in the title"),
            ("wombat", "Second"),
            ("numbat", "Third"),
            ("bilby", "Fourth"),
            ("echidna", "Echidna news"),
        ]:
            assert _found(st, word) == [title], word

        # a later document of feed A lists only a newer story: the old four may go
        st.save_update(check(a.id), [StoryRecord(draft=draft("n", "Newer", h="n"))])
        assert st.prune_stories(T0 - timedelta(days=30), 1) == 4
        for word in ["quokka", "wombat", "numbat", "bilby"]:
            assert _found(st, word) == [], word
        st.remove_feed(b.url, T0)
        assert _found(st, "echidna") == []
    finally:
        st.close()


def test_the_cli_says_what_is_wrong_with_a_search_in_one_line(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    for typed, says in [
        ("_", "has no words to look for"),
        ("w " * 1001, "at most 1,000 are allowed"),
    ]:
        assert_one_clear_line(aggregator(tmp_path, "stories", "-q", typed), says)


def test_serve_answers_a_nul_in_a_search_and_400_for_a_search_without_words(
    db_url: str, tmp_path: Path
) -> None:
    """``?q=KSK%00`` was a raw database error as a 400 ("unterminated string" from
    SQLite, "cannot contain NUL (0x00) bytes" from PostgreSQL); a NUL is a space."""
    s = Settings.from_env({"AGGREGATOR_DATABASE_URL": db_url}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: NOW) as a:
        _store_stories(a, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
        with FeedServer(a) as srv:
            code, _, body = _get(srv.url + "/feed.atom?q=KSK%00")
            assert code == 200 and b"KSK" in body
            code, _, body = _get(srv.url + "/feed.atom?q=%00")
            assert code == 400 and b"has no words to look for" in body


STEMS = ["Clear skies ahead", "Dying embers, fairly lit", "Ideally the news is important"]


@pytest.mark.postgres
def test_both_backends_stem_words_alike(sqlite_url: str, pg_url: str) -> None:
    """Porter (FTS5) and Snowball english (PostgreSQL until store migration 14) differed:
    ``sky``, ``die`` and ``fair`` found skies, dying and fairly on PostgreSQL only, ``new``
    found news on SQLite only. Either answer would do for this test; the two must be the
    same."""
    found = {}
    for url in (sqlite_url, pg_url):
        st = open_store(url)
        try:
            st.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
            feed = st.get_feed("https://a.example/feed")
            st.save_update(
                check(feed.id),
                [StoryRecord(draft=draft(str(i), t, h=f"h{i}")) for i, t in enumerate(STEMS)],
            )
            found[url] = {q: _found(st, q) for q in ["sky", "die", "fair", "new", "run"]}
        finally:
            st.close()
    assert found[sqlite_url] == found[pg_url]


@pytest.mark.postgres
def test_migration_14_rebuilds_an_older_stores_vectors_by_words_and_porter(pg_url: str) -> None:
    """A store at schema 13 holds vectors of PostgreSQL's own tokens (``example.com`` one
    lexeme) stemmed by Snowball english; migration 14 switches the stemmer to Porter and
    rebuilds every vector from the words, so ``example`` and ``new`` find what they find
    on SQLite."""
    from sqlalchemy import text

    from aggregator.store.search import SEARCH_CONFIG, SEARCH_DICT, fold_diacritics

    st = _store(pg_url)
    feed = st.get_feed("https://a.example/feed")
    st.save_update(check(feed.id), [StoryRecord(draft=draft("n", STEMS[2], h="hn"))])
    with st.engine.begin() as c:  # what a version-13 store holds
        c.execute(text(f"ALTER TEXT SEARCH DICTIONARY {SEARCH_DICT} (Language = english)"))
        for sid, title in c.execute(text("SELECT id, title FROM story")).all():
            c.execute(
                text(
                    "UPDATE story SET search = setweight(to_tsvector(CAST(:cfg AS regconfig), "
                    ":t), 'A') WHERE id = :id"
                ),
                {"cfg": SEARCH_CONFIG, "t": fold_diacritics(title), "id": sid},
            )
        c.execute(text("DELETE FROM schema_version WHERE version = 14"))
    st.close()
    st = open_store(pg_url)
    try:
        assert _found(st, "example") == [TITLES[1]]
        assert _found(st, "2024") == [TITLES[2]]
        assert _found(st, "new") == [STEMS[2]]  # Porter: news -> new, as FTS5 stems
        assert _found(st, "example.com") == [TITLES[1]]  # a phrase of its words
        assert _found(st, "example.c*") == [TITLES[1]]
    finally:
        st.close()


def test_migration_19_makes_an_older_sqlite_index_keep_marks_in_words(sqlite_url: str) -> None:
    """A store at schema 18 holds an FTS5 index that cuts words at combining marks;
    migration 19 makes the index again with them in the words, every story still found,
    and a search then finds what it finds on PostgreSQL."""
    from sqlalchemy import text

    st = _store(sqlite_url)
    with st.engine.begin() as c:  # what a version-18 store holds
        rows = c.execute(text("SELECT rowid, title, body FROM story_fts")).all()
        c.execute(text("DROP TABLE story_fts"))
        c.execute(
            text(
                "CREATE VIRTUAL TABLE story_fts USING fts5(title, body, "
                "tokenize = 'porter unicode61 remove_diacritics 2')"
            )
        )
        c.execute(
            text("INSERT INTO story_fts (rowid, title, body) VALUES (:r, :t, :b)"),
            [{"r": r, "t": t, "b": b} for r, t, b in rows],
        )
        c.execute(text("DELETE FROM schema_version WHERE version = 19"))
    assert _found(st, "नीति") == [TITLES[19]]  # the pieces of नीतियाँ, before migration 19
    st.close()
    st = open_store(sqlite_url)
    try:
        assert _found(st, "नीति") == []
        assert _found(st, "नीति*") == [TITLES[19]]
        assert _found(st, "सु") == []
        for title in TITLES:  # every story is still found by its own title
            assert title in _found(st, f'"{title}"')
        with st.engine.connect() as c:
            made = c.execute(text("SELECT sql FROM sqlite_master WHERE name = 'story_fts'"))
            assert "categories 'L* N* Co M*'" in made.scalar()
    finally:
        st.close()


def test_a_phrase_matches_within_the_title_or_within_the_text_never_across(
    db_url: str,
) -> None:
    """A phrase is words next to each other in one field: FTS5 never matches one across
    its columns, and PostgreSQL's vector (title || body) put the body's first word right
    after the title's last, so ``"lock abuse"`` found a story titled "... registry lock"
    whose text began "Abuse ..." there only."""
    st = open_store(db_url)
    try:
        st.upsert_feeds([FeedSource(url="https://a.example/feed")], T0)
        feed = st.get_feed("https://a.example/feed")
        st.save_update(
            check(feed.id),
            [
                StoryRecord(
                    draft=draft(
                        "1", "Registrars offer registry lock", summary="Abuse reports rise again."
                    )
                )
            ],
        )
        title = ["Registrars offer registry lock"]
        found = {
            q: _found(st, q)
            for q in (
                '"registry lock"',
                '"abuse reports"',
                '"lock abuse"',
                '"lock abu*"',
                "lock-abuse",
                'registry NOT "lock abuse"',
                '"registry lock" OR "lock abuse"',
            )
        }
        assert found == {
            '"registry lock"': title,
            '"abuse reports"': title,
            '"lock abuse"': [],
            '"lock abu*"': [],
            "lock-abuse": [],
            'registry NOT "lock abuse"': title,
            '"registry lock" OR "lock abuse"': title,
        }
    finally:
        st.close()
