"""Full-text search on both databases: the user's query language (words, "phrases",
-exclusions, prefix*), turned into an FTS5 MATCH on SQLite and a tsquery on PostgreSQL;
writing and deleting index entries; folding diacritics the same way on both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, bindparam, column, func, literal_column, select, table, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..errors import ConfigError
from . import tables

_WORD = re.compile(r'"[^"]+"|[^\s"]+')
_LEXEME = re.compile(r"\w+")


def search_terms(user_query: str) -> list[list[tuple[str, bool]]]:
    """What a user types, read once for both backends so that a search means the same on
    SQLite and PostgreSQL: OR-ed groups of AND-ed ``(text, prefix)`` terms. A term is a
    word or a "quoted phrase"; ``term*`` is a prefix search and ``OR`` between terms an
    operator; every other character is text, not syntax (``ipv4-market``, ``-fined``,
    ``example.com``, ``C++``). A query with no word in it is a ConfigError (bad input)."""
    groups: list[list[tuple[str, bool]]] = [[]]
    for tok in _WORD.findall(user_query):
        if tok == "OR":
            if groups[-1]:
                groups.append([])
            continue
        prefix = tok.endswith("*") and len(tok) > 1
        body = tok.strip('"').rstrip("*").replace('"', "")
        if _LEXEME.search(body):
            groups[-1].append((body, prefix))
    found = [g for g in groups if g]
    if not found:
        raise ConfigError(f"search {user_query!r} has no words to look for")
    return found


def fts5_query(user_query: str) -> str:
    """Turn what a user types into a safe FTS5 query: every term quoted (so '-', ':' and
    '.' in 'ipv4-market' or 'example.com' are not syntax), AND-ed, ``term*`` kept as a
    prefix search, ``OR`` kept as an operator (FTS5's AND binds tighter, as in tsquery)."""
    return " OR ".join(
        " ".join(f'"{body}"' + ("*" if prefix else "") for body, prefix in group)
        for group in search_terms(user_query)
    )


def pg_tsquery(user_query: str) -> ColumnElement[Any]:
    """The tsquery of the same terms as :func:`fts5_query`: a phrase through
    ``phraseto_tsquery``, a prefix as its words followed by each other with ``:*`` on the
    last (``websearch_to_tsquery`` has no prefix search and reads ``-word`` as NOT, so the
    two backends answered differently). The words passed to ``to_tsquery`` are word
    characters only, quoted: nothing a user types is tsquery syntax."""

    def term(body: str, prefix: bool) -> ColumnElement[Any]:
        body = fold_diacritics(body)
        if not prefix:
            return func.phraseto_tsquery(SEARCH_CONFIG, body)
        words = " <-> ".join(f"'{w}'" for w in _LEXEME.findall(body))
        return func.to_tsquery(SEARCH_CONFIG, words + ":*")

    def all_of(group: list[tuple[str, bool]]) -> ColumnElement[Any]:
        q = term(*group[0])
        for t in group[1:]:
            q = q.op("&&")(term(*t))
        return q

    groups = search_terms(user_query)
    q = all_of(groups[0])
    for group in groups[1:]:
        q = q.op("||")(all_of(group))
    return q


# PostgreSQL: how much of a story's body goes into its search vector (a tsvector holds
# at most 1 MB)
PG_SEARCH_BODY_MAX = 400_000


#: PostgreSQL's text search configuration for stories (store migration 11): ``english``
#: (its parser and Snowball stemmer) without a stop-word list. SQLite's FTS5 index, with
#: the Porter stemmer, keeps every word: with ``english``'s stop words a search for
#: ``who`` (the health agency) or ``it`` found nothing on PostgreSQL.
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
    conn: Connection, items: Sequence[tuple[int, str, str]], *, config: str = SEARCH_CONFIG
) -> None:
    """(story id, title, plain-text body) for each story written; executemany."""
    if not items:
        return
    if conn.dialect.name == "sqlite":
        conn.execute(
            text("DELETE FROM story_fts WHERE rowid = :id"), [{"id": i} for i, _, _ in items]
        )
        conn.execute(
            text("INSERT INTO story_fts (rowid, title, body) VALUES (:id, :t, :b)"),
            [{"id": i, "t": t, "b": b} for i, t, b in items],
        )
    else:
        story = table("story", column("id"), column("search"))
        vector = pg_search_vector(
            bindparam("t", type_=Text), bindparam("b", type_=Text), config=config
        )
        conn.execute(
            update(story).where(story.c.id == bindparam("sid")).values(search=vector),
            [
                {"sid": i, "t": fold_diacritics(t), "b": fold_diacritics(b[:PG_SEARCH_BODY_MAX])}
                for i, t, b in items
            ],
        )


def delete_search_index(conn: Connection, story_ids: list[int]) -> None:
    if conn.dialect.name == "sqlite" and story_ids:
        conn.execute(
            text("DELETE FROM story_fts WHERE rowid IN (" + ",".join(map(str, story_ids)) + ")")
        )


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
