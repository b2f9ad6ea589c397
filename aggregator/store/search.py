"""Full-text search on both databases: the user's query language (words, "phrases",
prefix*, OR, AND, NOT; nothing else is syntax), turned into an FTS5 MATCH on SQLite and a tsquery
on PostgreSQL; writing and deleting index entries, both indexes given text cut into words
as this module cuts it; folding diacritics the same way on both.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Select,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..errors import ConfigError
from . import tables

_WORD = re.compile(r'"[^"]+"|[^\s"]+')
# Control characters are no text to look for (both indexes read them as spaces); a NUL
# cut FTS5's MATCH string short ("unterminated string") and PostgreSQL refuses it. Nor
# are lone surrogates (what argv holds for bytes that are not UTF-8): SQLite's MATCH
# string could not be encoded (a traceback) while PostgreSQL, given only word characters,
# looked for the rest
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: Words one search may hold (a phrase's words count): PostgreSQL builds a tsquery term
#: by term and a phrase word by word, and 50,000 exceeded its stack depth ("stack depth
#: limit exceeded", read as the database being unavailable); a longer query is pasted
#: text, not a search.
MAX_WORDS = 1000
#: PostgreSQL's longest word (MAXSTRLEN): a longer one is dropped from vectors and
#: queries alike, so ``dns <3,000 x>`` found every story with ``dns`` there, nothing on
#: SQLite.
MAX_WORD_BYTES = 2047


@functools.cache
def _word_chars() -> Any:
    """A word as both indexes cut text into words: a letter or digit, then letters, digits
    and the combining marks inside a word (a Hindi word is one word, its vowel signs in
    it); ``_``, ``'``, ``-``, ``.``, ``@`` and the rest separate words, as in FTS5's
    ``unicode61`` (``a_b``, ``example.com`` and ``CVE-2024-1234`` are several words).
    ``regex`` for its Unicode classes, imported and compiled on first use: every command
    opens the store, few search (~15 ms of start-up)."""
    import regex

    return regex.compile(r"[\p{L}\p{N}][\p{L}\p{N}\p{M}]*")


def _words(body: str) -> list[str]:
    """The words of ``body`` (:func:`_word_chars`)."""
    return _word_chars().findall(body)  # type: ignore[no-any-return]


# Full-width Latin letters and digits (``ＤＮＳ``, ``ＩＰｖ６``: Chinese, Japanese and Korean
# sites write them beside their own script) and half-width katakana: compatibility
# characters both indexes kept as they were, so ``dns`` did not find ``ＤＮＳ``. Not the
# full-width punctuation (a separator to both indexes as it is, and in all CJK text:
# such text keeps its fast path), nor the Latin ligatures (``ﬁ``: tests/test_search_audit
# pins ``ﬁnancial`` as finding only itself).
COMPAT_FORMS = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9f]+")


def fold_forms(text: str) -> str:
    """``text`` with its full-width letters and digits and half-width katakana
    (:data:`COMPAT_FORMS`) as NFKC has them (``ＤＮＳ`` -> ``DNS``, ``ｶﾞ`` -> ``ガ``), the
    rest as it is: both indexes and their queries read text through it
    (:func:`pg_index_text`, :func:`fts5_index_text`)."""
    if text.isascii() or not COMPAT_FORMS.search(text):
        return text
    return COMPAT_FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


def pg_index_text(text: str) -> str:
    """PostgreSQL: ``text`` as the words FTS5 cuts it into (folded by
    :func:`fold_diacritics`), one space apart, for ``to_tsvector`` and
    ``phraseto_tsquery``. PostgreSQL's own parser keeps a host, an e-mail address, a URL,
    a version or a signed number as one token (``example.com``, ``-2024`` in
    ``CVE-2024-1234``), so ``example`` or ``2024`` found those stories on SQLite only;
    given the words, both databases index the same ones (store migration 14)."""
    return " ".join(_words(fold_diacritics(fold_forms(text))))


def fts5_index_text(text: str) -> str:
    """SQLite: ``text`` for the FTS5 index and its queries, every character that is not
    ASCII, a letter, a digit or a mark (:func:`_word_chars`) made a space. FTS5's
    ``unicode61`` knows Unicode 6.1 only: a character assigned since (most emoji in use,
    ``₽``, ``₿``) or a private-use one is a letter to it, so ``🧵Thread`` or ``100₽`` was
    one word on SQLite, and ``thread`` or ``100`` found the story on PostgreSQL only
    (whose index is given the words, :func:`pg_index_text`). ASCII is left as it is:
    both cut it alike, and a query's FTS5 string stays what it was."""
    if text.isascii():
        return text
    text = fold_forms(text)
    if not _MAYBE_NOT_IN_WORDS.search(text):
        return text
    return _not_in_words().sub(" ", text)  # type: ignore[no-any-return]


# What may need cutting, found by the standard library at C speed: a character that is
# neither ASCII nor a word character (``str.isalnum``, Unicode 14) nor Latin-1 or General
# Punctuation, which FTS5 knows as separators (or as the letters and numbers we keep) as
# it is. Most text beyond ASCII (curly quotes, dashes, accented letters) has none, and
# skips the ``regex`` pass: 4 kB of such text took ~70 µs, a poll's main thread ~2 s.
_MAYBE_NOT_IN_WORDS = re.compile(r"[^\x00-\x7f\w\u00a0-\u00bf\u00d7\u00f7\u2000-\u206f]")


@functools.cache
def _not_in_words() -> Any:
    """A run of characters that are neither ASCII nor in a word (:func:`_word_chars`)."""
    import regex

    return regex.compile(r"[^\x00-\x7f\p{L}\p{N}\p{M}]+")


class Term(NamedTuple):
    """One term of a search: a word or a phrase (``body``), a prefix search or not, and
    whether it is excluded (``NOT term``)."""

    body: str
    prefix: bool = False
    negated: bool = False


def search_terms(user_query: str) -> list[list[Term]]:
    """What a user types, read once for both backends so that a search means the same on
    SQLite and PostgreSQL: OR-ed groups of AND-ed terms. A term is a word or a "quoted
    phrase"; ``term*`` is a prefix search; ``OR`` between terms, ``AND`` (what a space
    means anyway) and ``NOT term`` (the stories without it) are operators when written in
    capitals; every other character is text, not syntax (``ipv4-market``, ``-fined``,
    ``example.com``, ``C++``), control characters spaces. A query with no word in it, a
    group of only excluded terms, more than :data:`MAX_WORDS` words or a word longer than
    PostgreSQL indexes is a ConfigError (bad input)."""
    groups: list[list[Term]] = [[]]
    negate = False
    for tok in _WORD.findall(_CONTROL.sub(" ", user_query)):
        if tok == "OR":
            if groups[-1]:
                groups.append([])
            negate = False
            continue
        if tok == "AND":
            continue
        if tok == "NOT":
            negate = True
            continue
        prefix = tok.endswith("*") and len(tok) > 1
        body = tok.strip('"').rstrip("*").replace('"', "")
        if _words(body):
            groups[-1].append(Term(body, prefix, negate))
        negate = False
    found = [g for g in groups if g]
    if not found:
        raise ConfigError(f"search {_shown(user_query)} has no words to look for")
    if any(all(t.negated for t in g) for g in found):
        raise ConfigError(
            f"search {_shown(user_query)}: NOT leaves out the stories with a word; it "
            "needs a word to look for as well (`ransomware NOT lockbit`)"
        )
    words = [w for group in found for t in group for w in _words(t.body)]
    if len(words) > MAX_WORDS:
        raise ConfigError(
            f"search {_shown(user_query)} has {len(words):,} words to look for; at most "
            f"{MAX_WORDS:,} are allowed"
        )
    longest = max(words, key=lambda w: len(w.encode()))
    if len(longest.encode()) > MAX_WORD_BYTES:
        raise ConfigError(
            f"search {_shown(user_query)} has a word of {len(longest):,} characters; "
            f"a word to look for is at most {MAX_WORD_BYTES:,} bytes long"
        )
    # A term or a group given twice means what it means once (AND and OR are idempotent)
    # and only costs: ranked, `the` written 1,000 times took SQLite's bm25 175 s and
    # PostgreSQL's ts_rank_cd 115 s over 2,000 stories.
    return [list(g) for g in dict.fromkeys(tuple(dict.fromkeys(g)) for g in found)]


#: ``--sort relevance`` ranks by at most this many of a search's terms: ranking costs
#: each match about its number of terms (PostgreSQL's ts_rank_cd ~33 µs a term, so 1,000
#: distinct words OR-ed took 95 s over 2,000 stories, and a request to ``serve`` could
#: hold the database for hours at 300,000), and a long search ranks no better by all of
#: them.
RANK_TERMS = 8


def rank_terms(user_query: str) -> list[Term] | None:
    """The terms relevance ranks the matches of a search with more than
    :data:`RANK_TERMS` terms to find by: its first ``RANK_TERMS`` (not excluded), OR-ed,
    so that a match with none of them ranks last. None: the search has no more, and is
    its own ranking query."""
    wanted = dict.fromkeys(
        Term(t.body, t.prefix) for g in search_terms(user_query) for t in g if not t.negated
    )
    return list(wanted)[:RANK_TERMS] if len(wanted) > RANK_TERMS else None


def _shown(user_query: str) -> str:
    """The query as an error message quotes it: on one line, cut short."""
    shown = repr(user_query)
    return shown if len(shown) <= 60 else shown[:50] + f"... ({len(user_query):,} characters)"


def fts5_query(user_query: str) -> str:
    """Turn what a user types into a safe FTS5 query: every term quoted, in the characters
    the index holds (:func:`fts5_index_text`; so '-', ':' and '.' in 'ipv4-market' or
    'example.com' are not syntax), AND-ed, ``term*`` kept as a prefix search, ``OR`` kept
    as an operator (FTS5's AND binds tighter, as in tsquery), each excluded term after its
    group's others as ``NOT "term"`` (FTS5's NOT needs a left operand and binds tightest:
    ``a b NOT c`` is a, b and not c)."""

    return _fts5_match(search_terms(user_query))


def _fts5_match(groups: list[list[Term]]) -> str:
    """The FTS5 query of OR-ed ``groups`` of AND-ed terms (see :func:`fts5_query`)."""

    def quoted(t: Term) -> str:
        return f'"{fts5_index_text(t.body)}"' + ("*" if t.prefix else "")

    return " OR ".join(
        " ".join(quoted(t) for t in group if not t.negated)
        + "".join(f" NOT {quoted(t)}" for t in group if t.negated)
        for group in groups
    )


def pg_tsquery(user_query: str) -> ColumnElement[Any]:
    """The tsquery of the same terms as :func:`fts5_query`: a phrase through
    ``phraseto_tsquery``, a prefix as its words followed by each other with ``:*`` on the
    last (``websearch_to_tsquery`` has no prefix search and reads ``-word`` as NOT, so the
    two backends answered differently). The words passed to ``to_tsquery`` are word
    characters only, quoted: nothing a user types is tsquery syntax."""
    return _pg_tsquery(search_terms(user_query))


def _pg_tsquery(groups: list[list[Term]]) -> ColumnElement[Any]:
    """The tsquery of OR-ed ``groups`` of AND-ed terms (see :func:`pg_tsquery`)."""

    def term(t: Term) -> ColumnElement[Any]:
        q: ColumnElement[Any]
        words = _words(fold_diacritics(fold_forms(t.body)))
        if not t.prefix:
            q = func.phraseto_tsquery(SEARCH_CONFIG, pg_index_text(t.body))
        else:
            q = func.to_tsquery(SEARCH_CONFIG, " <-> ".join(f"'{w}'" for w in words) + ":*")
        if len(words) > 1:
            q = _in_one_field(q)
        return func.tsquery_not(q) if t.negated else q  # !! q

    def joined(op: str, parts: list[ColumnElement[Any]]) -> ColumnElement[Any]:
        # a balanced tree: nested one by one, 1,000 terms exceeded Python's recursion
        # limit compiling the statement (and 50,000 crashed the interpreter)
        while len(parts) > 1:
            pairs = [a.op(op)(b) for a, b in zip(parts[::2], parts[1::2], strict=False)]
            parts = pairs + parts[len(pairs) * 2 :]
        return parts[0]

    return joined("||", [joined("&&", [term(t) for t in group]) for group in groups])


# a lexeme of a tsquery's text ('word', quotes doubled inside) and its prefix mark
_TSQUERY_LEXEME = r"('(?:[^']|'')*')(?::(\*))?"


def _in_one_field(q: ColumnElement[Any]) -> ColumnElement[Any]:
    """PostgreSQL: the phrase ``q`` found within the title (weight A) or within the body
    (B), never across them, as FTS5 matches a phrase within one column: the vector is
    title || body, which puts the body's first word right after the title's last, so
    ``"lock abuse"`` found a story titled "... registry lock" whose text began "Abuse"
    on PostgreSQL only. The lexemes are word characters (``pg_index_text``), so the
    weights are written into the query's text and it is read back as it stands."""

    def weighted(weight: str) -> ColumnElement[Any]:
        as_text = cast(q, Text)
        return cast(func.regexp_replace(as_text, _TSQUERY_LEXEME, rf"\1:\2{weight}", "g"), TSQUERY)

    return weighted("A").op("||")(weighted("B"))


# PostgreSQL: how much of a story's body goes into its search vector (a tsvector holds
# at most 1 MB; see pg_index_texts for the cut by size)
PG_SEARCH_BODY_MAX = 400_000
#: The size a story's vector is kept within: PostgreSQL's largest tsvector is 1 MB - 1
#: (1,048,575 bytes), and the estimate (``_fit``) leaves ~48 KB for what it cannot see
#: (a word that PostgreSQL's lower-casing makes longer).
PG_VECTOR_BUDGET = 1_000_000


def pg_index_texts(title: str, body: str) -> tuple[str, str]:
    """PostgreSQL: a story's title and body as :func:`pg_index_text` gives them to its
    search vector, the body's first :data:`PG_SEARCH_BODY_MAX` characters, and both cut
    (title first, then body) to the words a vector of :data:`PG_VECTOR_BUDGET` bytes
    holds. 400,000 characters were thought to fit 1 MB, but a character of Chinese is
    three bytes and each distinct word costs ~9 bytes more: a long Chinese article made a
    vector of 1.2 MB ("string is too long for tsvector"), and its feed's poll was lost on
    PostgreSQL while SQLite stored it (and a title, never cut, could do the same). A
    search still finds what the first 1 MB of a story's words hold."""
    title_words, room = _fit(pg_index_text(title).split(" "), PG_VECTOR_BUDGET)
    body_words, _ = _fit(pg_index_text(body[:PG_SEARCH_BODY_MAX]).split(" "), room)
    return " ".join(title_words), " ".join(body_words)


def _fit(words: list[str], budget: int) -> tuple[list[str], int]:
    """The first of ``words`` whose tsvector is surely within ``budget`` bytes, and the
    budget left. A vector holds each distinct lexeme (at most the lower-cased word: the
    stemmer only shortens) with a 4-byte entry, a byte of alignment and a 2-byte count,
    and 2 bytes per position, at most 256 positions a lexeme; so every word costs at
    most its bytes + 9. Texts within that bound (nearly all) are not looked at further."""
    if words == [""]:
        return [], budget
    bound = sum(map(len, words)) * 4 + 9 * len(words)  # UTF-8: at most 4 bytes a character
    if bound <= budget:
        return words, budget - bound
    used = 0
    seen: dict[str, int] = {}
    for i, word in enumerate(words):
        lexeme = word.lower()
        n = seen.get(lexeme, 0)
        cost = len(lexeme.encode()) + 9 if n == 0 else (2 if n < 256 else 0)
        if used + cost > budget:
            return words[:i], budget - used
        seen[lexeme] = n + 1
        used += cost
    return words, budget - used


#: PostgreSQL's text search configuration for stories (store migration 11): ``english``
#: without a stop-word list, stemming with Porter's stemmer (migration 14), as SQLite's
#: FTS5 index does. FTS5 keeps every word: with ``english``'s stop words a search for
#: ``who`` (the health agency) or ``it`` found nothing on PostgreSQL; and with Snowball's
#: ``english`` stemmer ``sky`` found "skies" there only, ``new`` "news" on SQLite only.
SEARCH_CONFIG = "aggregator_english"
SEARCH_DICT = "aggregator_english_stem"
#: The token types ``english`` stems (the rest, numbers, hosts, URLs, go to ``simple``).
STEMMED_TOKENS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part"


def _latin(c: str) -> bool:
    return c < "\u0250" or "\u1e00" <= c < "\u1f00"


def fold_diacritics(text: str) -> str:
    """``text`` with the diacritics of Latin letters removed (``Göran`` -> ``Goran``,
    ``Telefónica`` -> ``Telefonica``), as SQLite's ``unicode61 remove_diacritics 2``
    tokenizer folds them in the FTS5 index; other scripts are left alone (``й`` stays
    ``й``, as it does there). PostgreSQL folds nothing by itself (``unaccent`` is an
    extension a server may lack), so both the stored vectors and the queries are folded
    here, and a search means the same on both backends."""
    if text.isascii():
        return text
    out: list[str] = []
    base = ""
    for c in unicodedata.normalize("NFD", text):
        if unicodedata.combining(c):
            if _latin(base):
                continue  # a diacritic on a Latin letter
        else:
            base = c
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out))


def pg_search_vector(title: Any, body: Any, config: str = SEARCH_CONFIG) -> ColumnElement[Any]:
    """PostgreSQL: a story's search vector, its title weighted A and its body B (both
    folded by :func:`fold_diacritics` before they are bound)."""
    cfg: ColumnElement[Any] = literal_column(f"'{config}'")
    return func.setweight(func.to_tsvector(cfg, title), literal_column("'A'")).op("||")(
        func.setweight(func.to_tsvector(cfg, body), literal_column("'B'"))
    )


def write_search_index(
    conn: Connection,
    items: Sequence[tuple[int, str, str]],
    *,
    config: str = SEARCH_CONFIG,
    new: bool = False,
) -> None:
    """(story id, title, plain-text body) for each story written; executemany. ``new``:
    the stories were inserted in this transaction, so SQLite's index has no entry of
    theirs to replace (story ids are never given twice, and a story's entry goes with
    it: :func:`delete_search_index`)."""
    if not items:
        return
    if conn.dialect.name == "sqlite":
        if not new:
            conn.execute(
                text("DELETE FROM story_fts WHERE rowid = :id"), [{"id": i} for i, _, _ in items]
            )
        conn.execute(
            text("INSERT INTO story_fts (rowid, title, body) VALUES (:id, :t, :b)"),
            [{"id": i, "t": fts5_index_text(t), "b": fts5_index_text(b)} for i, t, b in items],
        )
    else:
        story = table("story", column("id"), column("search"))
        vector = pg_search_vector(
            bindparam("t", type_=Text), bindparam("b", type_=Text), config=config
        )
        conn.execute(
            update(story).where(story.c.id == bindparam("sid")).values(search=vector),
            [
                {"sid": i, "t": title, "b": body}
                for i, t, b in items
                for title, body in [pg_index_texts(t, b)]
            ],
        )


def delete_search_index(conn: Connection, story_ids: list[int]) -> None:
    if conn.dialect.name == "sqlite" and story_ids:
        conn.execute(
            text("DELETE FROM story_fts WHERE rowid IN (" + ",".join(map(str, story_ids)) + ")")
        )


def fts5_ranked(user_query: str, title_weight: float) -> Select[Any]:
    """SQLite: (``id``, ``rank``) of every story matching the full-text query, ``rank``
    FTS5's ``bm25`` (lower is better: it is negative) with a title match weighing
    ``title_weight`` times a body match."""
    fts = table("story_fts", column("rowid"))
    bm25 = func.bm25(literal_column("story_fts"), literal(title_weight), literal(1.0))
    few = rank_terms(user_query)
    if few is None:
        match = literal_column("story_fts").op("MATCH")(fts5_query(user_query))
        return select(fts.c.rowid.label("id"), bm25.label("rank")).where(match)
    # bm25 weighs the terms of the MATCH it runs in: the matches of the search, ranked by
    # a second MATCH of the few terms (rank_terms); a match with none of them ranks last
    found = (
        select(fts.c.rowid.label("id"))
        .where(literal_column("story_fts").op("MATCH")(fts5_query(user_query)))
        .subquery("matched")
    )
    ranked = (
        select(fts.c.rowid.label("id"), bm25.label("rank"))
        .where(literal_column("story_fts").op("MATCH")(_fts5_match([[t] for t in few])))
        .subquery("ranked")
    )
    return select(found.c.id, func.coalesce(ranked.c.rank, 0.0).label("rank")).select_from(
        found.outerjoin(ranked, ranked.c.id == found.c.id)
    )


def pg_rank(user_query: str, story: Any, title_weight: float) -> ColumnElement[float]:
    """PostgreSQL: how well ``story`` matches the full-text query (higher is better):
    ``ts_rank_cd`` (words near each other count for more) with a title word (weight A)
    counting ``title_weight`` times a body word (B), divided by 1 + the log of the
    story's length in words, as bm25 also prefers the shorter of two stories."""
    weights: ColumnElement[Any] = literal_column(
        f"'{{0, 0, {1.0 / title_weight:.6f}, 1}}'::float4[]"
    )
    vector: ColumnElement[Any] = literal_column(f"{story.name}.search")
    few = rank_terms(user_query)
    ranking = pg_tsquery(user_query) if few is None else _pg_tsquery([[t] for t in few])
    return func.ts_rank_cd(weights, vector, ranking, literal_column("1"))


def search_filter(
    dialect: str, query: str, story: Any = None, *, min_id: int | None = None
) -> ColumnElement[bool]:
    """A WHERE clause on ``story`` (the story table or an alias of it) matching the
    full-text query. SQLite: the matching ids as a list, only from ``min_id`` on when
    given (the index seeks to it; the list is then a filter, not the plan's lead)."""
    if story is None:
        story = tables.table(tables.StoryRow)
    if dialect == "sqlite":
        fts = table("story_fts", column("rowid"))
        match = literal_column("story_fts").op("MATCH")(fts5_query(query))
        sub = select(fts.c.rowid).where(match)
        if min_id is None:
            return story.c.id.in_(sub)  # type: ignore[no-any-return]
        # "+ 0": a filter on another index's walk, not the plan's lead
        return (story.c.id + 0).in_(sub.where(fts.c.rowid >= min_id))  # type: ignore[no-any-return]
    return literal_column(f"{story.name}.search").bool_op("@@")(pg_tsquery(query))
