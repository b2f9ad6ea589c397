"""Extreme but plausible values through the whole poll pipeline, on SQLite and on the real
PostgreSQL: feeds generated on a local HTTP server, polled through the real App, read
back through the real CLI (``stories``, ``show``, ``export``).

Each test pins a value whose size or shape passed on one backend and not the other, made
a whole feed fail for one entry, or took time growing with the square of its length:

- an RSS author (``<author>``, ``dc:creator``, ``managingEditor``) of 100 kB: feedparser's
  e-mail pattern, retried from every position of a run of letters, took ~60 s on one
  value, so the feed's parse timed out on every poll;
- a JSON Feed number of more than 4,300 digits (an item ``id``): Python's integer
  conversion limit made ``json.loads`` refuse the document, and the whole feed was lost;
- a word glued to an emoji, a currency sign or a private-use character (``🧵Thread``,
  ``100₽``): SQLite's FTS5 (Unicode 6.1 tables) read them as one word with it, so
  ``-q thread`` found the story on PostgreSQL only;
- a date with a year of five digits, a Unix time or an offset of a day or more, or one
  of which feedparser read only the year (``2024/06/15``): feedparser made another date
  of it (``10000-01-01`` was 2010-11-01), where the JSON Feed reader found none.

One feed holding values at every such extreme (a 150,000-character title, 5,000
categories, 1 MB of content...) is polled and read back whole on both backends too.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpserver import LocalServer
from hypothesis import given, settings
from hypothesis import strategies as st
from test_learning_cli import run
from test_pg_parity import Backend, one_backend

from aggregator.app import make_app
from aggregator.config import Settings

AT = datetime(2025, 6, 15, 8, 0, tzinfo=UTC)


def _rss(items: str, *, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Extreme</title>'
        f"<link>https://site.example/</link>{channel}{items}</channel></rss>"
    ).encode()


def _item(guid: str, title: str, extra: str = "") -> str:
    return (
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>https://site.example/{guid}</link><description>About {guid}.</description>"
        f"{extra}</item>"
    )


def _poll_one(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> tuple[Backend, str, int, str | None]:
    """``url`` polled once into a fresh backend: (backend, status, new stories, error)."""
    b = one_backend(db_url, tmp_path, monkeypatch)
    (b.home / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n", encoding="utf-8")
    (result,) = b.poll(AT)
    return b, result.status, result.new, result.error


def _stories(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    code, out, err = run(capsys, "stories", "--format", "json", "--limit", "0", *argv)
    assert code == 0, err
    found: list[dict[str, object]] = json.loads(out)
    return found


# --- search: words glued to what FTS5 counts as a letter --------------------------------------

GLUED = [
    # (title, a word of it to search for)
    ("🧵Thread on DNSSEC key rollovers", "thread"),  # U+1F9F5: Unicode 10
    ("AI🤖news about registrars", "news"),  # U+1F916: Unicode 8
    ("Registry fee of 100₽ waived", "100"),  # U+20BD: Unicode 7
    ("Bitcoin ₿250k domain sale", "250k"),  # U+20BF: Unicode 10
    ("Private\ue000use area characters", "private"),  # private use: a letter to FTS5
]


def test_a_word_glued_to_an_emoji_or_a_symbol_is_found_on_both(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: LocalServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """FTS5's unicode61 tokenizer knows Unicode 6.1: a character assigned since (most
    emoji people use, ₽, ₿) or a private-use one is a letter to it, so ``🧵Thread`` was
    one word on SQLite, and ``-q thread`` found the story only on PostgreSQL, whose index
    is given the words as search.py cuts them. SQLite's index is given the same words."""
    items = "".join(_item(f"g{i}", title) for i, (title, _) in enumerate(GLUED))
    url = server.route("/glued.xml", body=_rss(items), content_type="application/rss+xml")
    _, status, new, error = _poll_one(db_url, tmp_path, monkeypatch, url)
    assert (status, new, error) == ("ok", len(GLUED), None)
    for title, word in GLUED:
        for query in (word, f"{word[:3]}*", title.split()[0]):
            found = [s["title"] for s in _stories(capsys, "-q", query)]
            assert found == [title], (query, found)


def test_an_older_sqlite_search_index_is_written_again_with_the_words(sqlite_url: str) -> None:
    """A database indexed before ``search.fts5_index_text`` holds ``🧵thread`` as one
    word: its stories are found by ``thread`` once the index is written again."""
    from contextlib import closing

    from sqlalchemy import create_engine, text
    from test_store import T0, check, draft

    from aggregator.store import open_store
    from aggregator.types import FeedSource, StoryQuery, StoryRecord

    title = GLUED[0][0]
    with closing(open_store(sqlite_url)) as st:
        feed, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T0)
        st.save_update(check(feed.id), [StoryRecord(draft=draft("g", title))])
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # the index as an older version wrote it, and its schema
        conn.execute(text("UPDATE story_fts SET title = :t"), {"t": title})
        conn.execute(text("DELETE FROM schema_version WHERE version = 17"))  # its migration
    engine.dispose()
    with closing(open_store(sqlite_url)) as st:
        assert [s.title for s in st.stories(StoryQuery(text="thread"))] == [title]


# --- RSS authors: feedparser's e-mail pattern was quadratic -----------------------------------

FEEDPARSER_EMAIL = (  # feedparser 6.0, mixin._sync_author_detail, as written there
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"
    r"(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
LONG_AUTHORS = {
    "letters": "A" * 100_000,  # a base64 blob, say: one run of an address's characters
    "dotted": "a." * 50_000,
    "ats": "@" * 100_000,
    "pairs": "a@" * 50_000,
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "feedparser"])
@pytest.mark.parametrize("shape", list(LONG_AUTHORS))
def test_a_100_kb_rss_author_is_read_in_linear_time(shape: str, fast: bool) -> None:
    """feedparser looks for an e-mail address in every RSS author (``<author>``,
    ``dc:creator``, ``managingEditor``) with a pattern retried from every position of a
    run of the characters an address may hold: ~60 s for 100,000 letters, so a feed
    with such an author timed out in its parse worker on every poll. The fast path
    replays the same pattern, and ``_rss_author``'s "email (Name)" pattern was quadratic
    in the ``@`` signs. Each document here is read in well under a second now."""
    from aggregator.parse import parse_feed

    author = LONG_AUTHORS[shape]
    body = _rss(
        _item("a", "By author", f"<author>{author}</author>")
        + _item("c", "By creator", f"<dc:creator>{author}</dc:creator>"),
        channel=f"<managingEditor>{author}</managingEditor>",
    )
    started = time.monotonic()
    feed = parse_feed(body, "https://site.example/feed", fast=fast, now=AT)
    assert time.monotonic() - started < 5  # was minutes; ~0.1 s
    assert [e.author for e in feed.entries] == [author, author]


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="aZ9_-.+@[]?=s ()<>;&", max_size=40))
def test_the_linear_author_searches_find_what_the_quadratic_patterns_found(text: str) -> None:
    """The same answers as the patterns they replace, on short strings where those are
    cheap: feedparser's e-mail search (same match, same groups) and ``_rss_author``'s
    ``email (Name)``."""
    from aggregator.parse import AUTHOR_EMAIL, _rss_author

    new, old = AUTHOR_EMAIL.search(text), re.search(FEEDPARSER_EMAIL, text)
    assert (new and (new.span(), new.groups())) == (old and (old.span(), old.groups()))
    for author in (text, text.replace("s", "\n"), f"a@b{text})"):
        stripped = author.strip()
        match = re.match(r"^\s*\S+@\S+\s*\((.+)\)\s*$", stripped)
        name = " ".join((match.group(1) if match else stripped).split())
        assert _rss_author(author) == (name if stripped else None)


# --- JSON Feed: numbers past Python's integer conversion limit -------------------------------


def test_a_json_feed_number_of_5000_digits_loses_no_item(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: LocalServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Python refuses to convert an integer of more than 4,300 digits (CVE-2020-10735),
    and ``json.loads`` converts every number it reads: one item's ``id`` (or any number
    in the document) of 5,000 digits was "not a feed: invalid JSON: Exceeds the limit",
    and the whole feed failed on every poll. Such a number is read as its digits; an id
    that is one is the item's guid, as a shorter one is, and a number too large for a
    float (1e400) or not one (NaN) is no id."""
    digits = "9" * 5000
    body = (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "Numbers", "items": ['
        f'{{"id": {digits}, "title": "Huge id", "url": "https://site.example/huge",'
        f' "attachments": [{{"url": "https://site.example/a.mp3", "size_in_bytes": {digits}}}]}},'
        '{"id": 1e400, "title": "Float past the largest", "url": "https://site.example/inf"},'
        '{"id": NaN, "title": "Not a number", "url": "https://site.example/nan"},'
        '{"id": -0.0, "title": "Negative zero", "url": "https://site.example/zero"},'
        '{"id": 12.0, "title": "Twelve", "url": "https://site.example/twelve"}]}'
    ).encode()
    url = server.route("/numbers.json", body=body, content_type="application/feed+json")
    _, status, new, error = _poll_one(db_url, tmp_path, monkeypatch, url)
    assert (status, new, error) == ("ok", 5, None)
    found = {s["title"]: s for s in _stories(capsys)}
    assert set(found) == {
        "Huge id",
        "Float past the largest",
        "Not a number",
        "Negative zero",
        "Twelve",
    }
    huge = found["Huge id"]["id"]
    code, out, err = run(capsys, "show", str(huge), "--format", "json")
    assert (code, json.loads(out)["title"]) == (0, "Huge id"), err
    with make_app(Settings.from_env()) as app:
        assert app.story(int(str(huge))).guid == digits


def test_json_feed_ids_written_as_numbers_are_their_digits() -> None:
    from aggregator.parse import parse_feed

    items = ", ".join(
        f'{{"id": {n}, "title": "t{i}"}}'
        for i, n in enumerate(["12", "12.0", "1.2e1", "-0", "1e400", "NaN", "9" * 4301, "0.5"])
    )
    feed = parse_feed(f'{{"items": [{items}]}}'.encode(), "https://site.example/f.json", now=AT)
    assert [e.guid for e in feed.entries] == ["12", "12", "12", "0", None, None, "9" * 4301, "0.5"]


# --- one feed of extreme values, polled and read back whole ----------------------------------


def test_a_feed_of_extreme_values_is_polled_and_read_back_whole_on_both(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: LocalServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every value at a size a real feed may reach (a 100 kB feed title and author, a
    title of 150,000 characters, 1 MB of content, 5,000 categories and some of 10 kB,
    1,000 enclosures, a ttl of 10³⁰ minutes, emoji, NUL and lone surrogates as
    character references) is stored on both backends and comes back whole through
    ``stories``, ``show`` and every export format."""
    from aggregator.parse import parse_feed

    long_title = "Long " + "word " * 30_000
    content = "<p>" + "lorem ipsum dolor sit amet " * 40_000 + "</p>"
    categories = [f"cat{i}" for i in range(5000)] + [f"{i}" + "c" * 10_000 for i in range(20)]
    items = [
        _item("author", "Author", f"<dc:creator>{'A' * 100_000}</dc:creator>"),
        _item("title", long_title),
        _item("content", "Content", f"<content:encoded><![CDATA[{content}]]></content:encoded>"),
        _item("cats", "Categories", "".join(f"<category>{c}</category>" for c in categories)),
        _item(
            "encl",
            "Enclosures",
            "".join(f"<enclosure url='https://cdn.example/{i}.mp3'/>" for i in range(1000)),
        ),
        _item("emoji", "Emoji 🦀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 &#0;&#xd800;story 😀"),
    ]
    body = _rss(
        "".join(items),
        channel=f"<ttl>{10**30}</ttl><description>{'F' * 100_000}</description>",
    ).replace(b"<title>Extreme</title>", b"<title>" + b"T" * 100_000 + b"</title>")
    url = server.route("/extreme.xml", body=body, content_type="application/rss+xml")
    started = time.monotonic()
    _, status, new, error = _poll_one(db_url, tmp_path, monkeypatch, url)
    assert (status, new, error) == ("ok", len(items), None)
    assert time.monotonic() - started < 45  # the author alone took ~60 s to parse

    found = {s["title"]: s for s in _stories(capsys)}
    assert set(found) == {
        "Author",
        long_title.strip(),
        "Content",
        "Categories",
        "Enclosures",
        "Emoji 🦀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \ufffdstory 😀",
    }
    assert {s["feed_title"] for s in found.values()} == {"T" * 100_000}
    code, out, err = run(capsys, "stories", "--format", "csv", "--limit", "0")
    assert code == 0 and out.count("\n") > len(items), err
    shown = {}
    for title, s in found.items():
        code, out, err = run(capsys, "show", str(s["id"]), "--format", "json")
        assert code == 0, err
        shown[title] = json.loads(out)
    assert shown["Author"]["author"] == "A" * 100_000
    assert shown["Categories"]["categories"] == categories
    for fmt in ("atom", "rss", "json"):
        code, out, err = run(capsys, "export", "--format", fmt, "--limit", "0")
        assert code == 0, err
        if fmt == "json":
            assert len(json.loads(out)["items"]) == len(items)
        else:  # well-formed: no "recovered" warning, every entry
            doc = parse_feed(out.encode(), "https://reader.example/", fast=False, now=AT)
            assert (doc.warnings, len(doc.entries)) == ((), len(items))


# --- dates feedparser's last resort turned into other dates ----------------------------------

MISREAD_DATES = [
    "10000-01-01T00:00:00Z",  # was 2010-11-01
    "12345-06-07",  # was 2012-12-10
    "1718431200",  # a Unix time: was 2017-07-03
    "1718431200000",  # in milliseconds: was 2017-07-03
    "2025-06-15T06:00:00+99:99",  # was 2025-06-11T01:21
    "2025-06-15T06:00:00-24:00",  # was 2025-06-16T06:00
    "Sun, 15 Jun 2025 06:00:00 +9999",  # was 2025-06-11T01:21
    "Sun, 15 Jun 2025 06:00:00 +2400",  # was 2025-06-14T06:00
    # only the year read, the month taken from the clock: the 1st of this month in 2024
    "2024/13/45",  # no such month or day
    "2024/06",  # no day
    "2024年6月",
]
READ_DATES = [  # and what is read as before
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ("2025-06-15T06:00:00+14:00", datetime(2025, 6, 14, 16, 0, tzinfo=UTC)),
    ("Sun, 15 Jun 2025 06:00:00 -2330", datetime(2025, 6, 16, 5, 30, tzinfo=UTC)),
    ("20250615", datetime(2025, 6, 15, tzinfo=UTC)),
    ("2025-06-15 06:00:00", datetime(2025, 6, 15, 6, 0, tzinfo=UTC)),
    ("2025", datetime(2025, 1, 1, tzinfo=UTC)),  # a year alone is read by W3C-DTF's rules
    # year, month and day with "/" or "." between (or 年月日): feedparser read only the year
    ("2024/06/15 06:00:00", datetime(2024, 6, 15, 6, 0, tzinfo=UTC)),
    ("2024.06.15", datetime(2024, 6, 15, tzinfo=UTC)),
    ("2024年6月15日", datetime(2024, 6, 15, tzinfo=UTC)),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "feedparser"])
def test_a_date_feedparser_would_misread_is_no_date(fast: bool) -> None:
    """feedparser's last resort, its ISO 8601 reader, made another date of what is none:
    a year of five digits, a Unix time, an offset of a day or more, a date of which it
    read only the year and took the month from the clock; the story then
    sorted (and passed ``--since``) as of that date. Such a date is missing, as the
    JSON Feed reader (Python's own parsers) already read it, and the story is dated by
    when it was first seen."""
    from aggregator.parse import parse_feed

    dates = MISREAD_DATES + [text for text, _ in READ_DATES]
    rss = _rss("".join(_item(f"r{i}", "t", f"<pubDate>{d}</pubDate>") for i, d in enumerate(dates)))
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>A</title><id>urn:a</id><updated>2025-06-15T08:00:00Z</updated>"
        + "".join(
            f"<entry><id>urn:a:{i}</id><title>t</title><link href='https://site.example/{i}'/>"
            f"<updated>{d}</updated></entry>"
            for i, d in enumerate(dates)
        )
        + "</feed>"
    ).encode()
    items = [{"id": str(i), "title": "t", "date_published": d} for i, d in enumerate(dates)]
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
    expected = [None] * len(MISREAD_DATES) + [when for _, when in READ_DATES]
    for body in (rss, atom):
        feed = parse_feed(body, "https://site.example/feed", fast=fast, now=AT)
        assert [e.published for e in feed.entries] == expected
    feed = parse_feed(json_feed.encode(), "https://site.example/feed.json", now=AT)
    assert [e.published for e in feed.entries][: len(MISREAD_DATES)] == [None] * len(MISREAD_DATES)


_ALPHABET = st.sampled_from(
    list("ab Z09.-_'")
    + list("’—«»·×÷ªº¹½ ​‍⁠")
    + list("éßğþ")
    + list("жΩ日本語ह्िँ")
    + list("🧵₽₿\ue000")
)


@settings(max_examples=300, deadline=None)
@given(st.text(_ALPHABET, max_size=40))
def test_fts5_index_text_skips_only_what_fts5_already_cuts(text: str) -> None:
    """The fast path of ``fts5_index_text`` (text with nothing FTS5 misreads is left as
    it is) gives FTS5 the same words as cutting every character outside words."""
    import sqlite3

    from aggregator.store.search import _not_in_words, fts5_index_text

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    words = []
    for version in (fts5_index_text(text), _not_in_words().sub(" ", text)):
        db.execute("DELETE FROM t")
        db.execute("INSERT INTO t (rowid, x) VALUES (1, ?)", (version,))
        words.append([r[0] for r in db.execute("SELECT term FROM v ORDER BY offset")])
    assert words[0] == words[1]
