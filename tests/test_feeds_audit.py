"""Audit of subscription management as a demanding user meets it, through the real CLI
on real files, a real SQLite database and a real local HTTP server: feeds.yaml edits
and mistakes, OPML as other tools write it (and as hostile files do), the export and
import round trip into a fresh data directory, and `feeds add|remove|enable|list`."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import env, run  # noqa: F401  (fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.feedlist import load_feed_list, parse_feeds_yaml, read_opml
from aggregator.types import Feed


def _rss(title: str, guid: str = "g1") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://news.example/</link><item><title>Registry changes its DNS policy</title>"
        f"<link>http://news.example/{guid}</link><guid>{guid}</guid>"
        "<description>The registry changed its DNS policy.</description>"
        "</item></channel></rss>"
    ).encode()


def _stored(data_dir: Path) -> list[Feed]:
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        return app.feeds()


def _listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, err = run(capsys, "feeds", "list", "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


# --------------------------------------------------------------------------- feeds.yaml


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "feeds:\n  - url: https://a.example/f\nfeeds:\n  - url: https://b.example/f\n",
            r"t\.yaml:3: 'feeds' is given twice \(first on line 1\)",
            id="feeds-appended-again",
        ),
        pytest.param(
            "feeds:\n  - url: https://a.example/f\n    name: A\n    name: B\n",
            r"t\.yaml:4: 'name' is given twice \(first on line 3\)",
            id="field-twice",
        ),
    ],
)
def test_a_key_given_twice_is_an_error_not_the_last_one_silently(text: str, message: str) -> None:
    """YAML forbids a mapping key twice, yet PyYAML kept the last: a second `feeds:`
    appended to the file dropped every feed listed above it from the sync."""
    with pytest.raises(ConfigError, match=message):
        parse_feeds_yaml(text, origin="t.yaml")


def test_merge_keys_still_share_settings() -> None:
    """A `<<: *anchor` merge is not a key given twice: its keys give way to the entry's."""
    text = (
        "feeds:\n  - &base {url: 'https://a.example/f', interval: 30, topics: [DNS]}\n"
        "  - {<<: *base, url: 'https://b.example/f', interval: 2h}\n"
    )
    a, b = parse_feeds_yaml(text)
    assert (b.url, b.interval, b.topics) == ("https://b.example/f", timedelta(hours=2), ("DNS",))
    assert a.interval == timedelta(minutes=30)


def test_errors_name_the_line_of_the_entry(tmp_path: Path) -> None:
    """In a file of 10,000 feeds "feed #7412" is hard to find; the line is not."""
    lines = ["# my feeds\r", "feeds:\r"]
    lines += [f"  - url: https://h{i}.example/feed\r\n    name: F{i}\r" for i in range(7411)]
    lines += ["  - name: no url\r", "    interval: 30\r"]
    path = tmp_path / "feeds.yaml"
    path.write_bytes(("\ufeff" + "\n".join(lines) + "\n").encode())  # BOM and CRLF too
    with pytest.raises(ConfigError, match=rf"feeds\.yaml:{2 + 2 * 7411 + 1}: feed #7412: 'url'"):
        load_feed_list(path)
    with pytest.raises(
        ConfigError, match=r"t:5: feed #3: .* listed twice, first as feed #1 on line 2"
    ):
        parse_feeds_yaml(
            "feeds:\n  - https://a.example/f\n  - https://b.example/f\n\n  - https://A.example/f/\n",
            origin="t",
        )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            b"feeds:\n\t- url: https://a.example/f\n",
            r"^f\.yaml:2: not valid YAML: found character that cannot start any token "
            r"\(column 1; YAML indents with spaces, not tabs\)$",
            id="tab",
        ),
        pytest.param(
            b"feeds:\r\n  - url: https://a.example/f\r\n   name: x\r\n",
            r"^f\.yaml:3: not valid YAML: did not find expected '-' indicator \(column 4\), "
            r"while parsing a block collection from line 2$",
            id="indent-crlf",
        ),
        pytest.param(
            b"feeds:\n  - url: https://a.example/f\n    name: Caf\xe9 Tech\n",
            r"^f\.yaml:3: not UTF-8 text \(byte 0xe9 at column 14\): save it as UTF-8$",
            id="latin-1",
        ),
    ],
)
def test_syntax_and_encoding_errors_name_the_line(tmp_path: Path, raw: bytes, message: str) -> None:
    """PyYAML's own text (`in "<unicode string>", line 2, column 1`, a context line
    first) named no file; a Latin-1 byte gave "not UTF-8 text" and nothing to look for."""
    path = tmp_path / "f.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_feed_list(path)
    assert re.match(message, str(info.value).replace(str(tmp_path) + "/", "")), info.value


def test_a_name_yaml_reads_as_a_number_says_to_quote_it() -> None:
    for value, shown in (("2600", "2600"), ("yes", "True")):
        with pytest.raises(ConfigError, match=rf"'name' must be a string, got {shown}.*quote it"):
            parse_feeds_yaml(f"- url: https://a.example/f\n  name: {value}\n")
    assert parse_feeds_yaml("- url: https://a.example/f\n  name: '2600'\n")[0].name == "2600"
    # no field is a date: one is its text (test_feeds_yaml_values)
    assert parse_feeds_yaml("- url: https://a.example/f\n  name: 2026-01-01\n")[0].name == (
        "2026-01-01"
    )


def test_a_malformed_ipv6_url_is_a_clear_error_everywhere(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unclosed `[` raised a bare ValueError from urlsplit: a traceback from every
    sync, from `feeds add`, from `feeds remove` and from `feeds import`."""
    with pytest.raises(ConfigError, match=r"feed #1: 'http://\[::1/f' is not a valid URL"):
        parse_feeds_yaml("feeds:\n  - 'http://[::1/f'\n")
    listing = read_opml(
        '<opml><body><outline text="v6" xmlUrl="http://[::1/f"/>'
        '<outline text="ok" xmlUrl="https://ok.example/f"/></body></opml>'
    )
    assert [s.url for s in listing.sources] == ["https://ok.example/f"]
    assert listing.skipped[0].startswith("v6: 'http://[::1/f' is not a valid URL")
    code, _, err = run(capsys, "feeds", "add", "--no-discover", "http://[::1/f")
    assert code == 2 and "not a valid URL" in err, err
    code, _, err = run(capsys, "feeds", "remove", "http://[::1/f")
    assert code == 2 and "no feed" in err, err


def test_a_new_password_in_feeds_yaml_updates_the_feed(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Changing a private feed's password in feeds.yaml made a second feed: the old one
    kept being polled with the old password (and failing), both listed as `ann:***@…`."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = server.route("/members.xml", body=_rss("Members"))
    feeds_yaml = env / "feeds.yaml"
    feeds_yaml.write_text(f"feeds:\n  - url: {url.replace('://', '://ann:old@')}\n")
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    feeds_yaml.write_text(f"feeds:\n  - url: {url.replace('://', '://ann:new@')}\n")
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    (feed,) = _stored(env / "data")
    assert feed.url == url.replace("://", "://ann:new@") and feed.stories == 1
    sent = server.requests_for("/members.xml")[-1].headers["authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")) == b"ann:new"
    # `feeds add` with another password finds the feed and says how to change it
    new = url.replace("://", "://ann:newer@")
    code, out, err = run(capsys, "feeds", "add", "--no-discover", new)
    assert code == 0 and out.startswith("already present: "), err
    assert "another password" in err and "feeds.yaml" in err and "newer" not in out + err
    # the same password twice is one feed, a different user another
    with pytest.raises(ConfigError, match=r"listed twice, first as feed #1 on line 2 \(with"):
        parse_feeds_yaml("feeds:\n  - https://ann:a@h.example/f\n  - https://ann:b@h.example/f\n")
    assert len(parse_feeds_yaml("- https://ann:a@h.example/f\n- https://bob:a@h.example/f\n")) == 2


def test_topics_are_cleaned_as_opml_topics_are() -> None:
    """Blank and repeated topics were kept from feeds.yaml (and dropped by an OPML round
    trip, so the next import reported the feed as updated)."""
    (src,) = parse_feeds_yaml(
        "- url: https://a.example/f\n  topics: [DNS, ' ', DNS, ' Security ']\n"
    )
    assert src.topics == ("DNS", "Security")


# --------------------------------------------------------------------------- OPML import

ENTITIES = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.1"><head><title>Blogroll</title></head><body>
  <outline text="Actualit&eacute;s&nbsp;DNS">
    <outline type="rss" text="L&rsquo;Afnic &amp; co" xmlUrl="https://afnic.example/rss"/>
  </outline>
</body></opml>"""


def test_html_entities_in_titles_do_not_refuse_the_whole_file() -> None:
    """Hand-written and PHP-made OPML files use HTML's named entities; expat knows only
    XML's five, so one `&eacute;` refused the whole import."""
    (src,) = read_opml(ENTITIES.encode()).sources
    assert src.name == "L\u2019Afnic & co" and src.topics == ("Actualit\u00e9s\u00a0DNS",)
    with pytest.raises(ConfigError, match="undefined entity"):  # not an HTML entity
        read_opml('<opml><body><outline text="&bogus;" xmlUrl="https://a/f"/></body></opml>')
    dtd = '<!DOCTYPE opml [<!ENTITY x "X">]><opml><body><outline text="&x;&eacute;"'
    with pytest.raises(ConfigError, match="undefined entity"):  # a DTD's file stays strict
        read_opml(dtd + ' xmlUrl="https://a/f"/></body></opml>')


def test_a_bare_ampersand_does_not_refuse_the_whole_file() -> None:
    """podStation, Podverse and hand-written files leave ``&`` unescaped in URLs and
    titles: one refused the whole import ("not well-formed (invalid token)"). Escaped
    ampersands and references stay as they were; other damage is still an error."""
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="Rutherford & Fry"'
        ' type="rss" xmlUrl="https://a.example/?format=raw&feedname=1&amp;x=&#49;"/>'
        '<outline text="Caf&eacute; &amp; R&D" xmlUrl="https://b.example/f"/></body></opml>'
    )
    for text in (opml, opml.encode()):
        sources = read_opml(text).sources
        assert [(s.url, s.name) for s in sources] == [
            ("https://a.example/?format=raw&feedname=1&x=1", "Rutherford & Fry"),
            ("https://b.example/f", "Caf\u00e9 & R&D"),
        ]
    with pytest.raises(ConfigError, match="not well-formed"):
        read_opml('<opml><body><outline text="A & B" xmlUrl="https://a/f"<//></body></opml>')


def test_real_world_opml_shapes() -> None:
    """A feed outline holding outlines (its children were dropped silently), a blank line
    before the XML declaration (PHP), a default namespace, and a `url` outline without
    `type` (dropped without a word: it may be a page, so it is skipped with why)."""
    opml = (
        '\n\n<?xml version="1.0"?>\n<opml xmlns="http://opml.org/spec2" version="2.0"><body>'
        '<outline text="Parent" type="rss" xmlUrl="https://p.example/f">'
        '<outline text="Child" type="rss" xmlUrl="https://c.example/f"/></outline>'
        '<outline text="Maybe" url="https://m.example/"/>'
        '<outline text="A link" type="link" url="https://l.example/"/>'
        "</body></opml>"
    )
    listing = read_opml(opml.encode())
    assert [(s.url, s.name) for s in listing.sources] == [
        ("https://p.example/f", "Parent"),
        ("https://c.example/f", "Child"),
    ]
    (why,) = listing.skipped
    assert why.startswith("Maybe: no xmlUrl")


def test_a_byte_order_mark_before_the_blank_lines_php_prints(tmp_path: Path) -> None:
    """A PHP file saved with a BOM prints it before the blank lines, and the whole file
    was refused ("XML or text declaration not at start of entity") as if they were not
    there to drop."""
    opml = '\n\n<?xml version="1.0"?><opml><body><outline text="Caf\u00e9" xmlUrl="https://a/f"/>'
    opml += "</body></opml>"
    for text in ("\ufeff" + opml, "\ufeff".encode() + opml.encode()):
        (src,) = read_opml(text).sources
        assert (src.url, src.name) == ("https://a/f", "Caf\u00e9")
    path = tmp_path / "feeds.opml"
    path.write_bytes("\ufeff".encode() + opml.encode())
    assert [s.name for s in load_feed_list(path).sources] == ["Caf\u00e9"]


def test_hostile_dtds_never_reach_the_network_or_local_files(
    server: LocalServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    dtd = server.route("/evil.dtd", body=f'<!ENTITY x SYSTEM "{secret.as_uri()}">'.encode())
    for doctype in (
        f'<!DOCTYPE opml SYSTEM "{dtd}">',
        f'<!DOCTYPE opml [<!ENTITY % p SYSTEM "{dtd}"> %p;]>',
        f'<!DOCTYPE opml [<!ENTITY e SYSTEM "{secret.as_uri()}">]>',
    ):
        text = f'<?xml version="1.0"?>{doctype}<opml><body><outline text="t"'
        try:
            listing = read_opml(text + ' xmlUrl="https://a.example/f"/></body></opml>')
        except ConfigError:
            continue
        assert "TOP-SECRET" not in repr(listing)
    assert server.requests == []


# --------------------------------------------------------------------------- OPML export


def test_export_and_import_into_a_fresh_data_dir_give_the_same_feeds(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A move to a new machine lost every interval, and turned the feeds you had turned
    off back on (the next poll fetched them); the password went into `text` too, which
    other readers show as the feed's name."""
    (env / "feeds.yaml").write_text(
        "feeds:\n"
        "  - {url: 'https://a.example/f', name: 'A & B <x>', topics: [DNS, Policy & Regulation],"
        " interval: 2h}\n"
        "  - {url: 'https://ann:p%40ss@b.example/f', interval: 90, enabled: false}\n"
        "  - {url: 'https://c.example/f?tags[]=dns&x=1', name: 'Caf\u00e9 \u201cquoted\u201d'}\n"
    )
    code, exported, err = run(capsys, "feeds", "export")
    assert code == 0, err
    assert 'text="https://b.example/f"' in exported and exported.count("p%40ss") == 1
    (env / "feeds.opml").write_text(exported)
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(env / "fresh"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(env / "absent.yaml"))
    code, out, err = run(capsys, "feeds", "import", str(env / "feeds.opml"))
    assert (code, out.strip()) == (0, "3 added, 0 updated, 0 unchanged, 0 skipped"), err

    def settings(data: Path) -> list[tuple[object, ...]]:
        return sorted((f.url, f.name, f.topics, f.interval, f.enabled) for f in _stored(data))

    assert settings(env / "fresh") == settings(env / "data")
    # in a namespace of their own, which other readers ignore (OPML 2.0)
    assert 'xmlns:aggregator="urn:aggregator:opml"' in exported
    assert 'aggregator:interval="120"' in exported and 'aggregator:enabled="false"' in exported


# --------------------------------------------------------------------------- feeds commands


def test_urls_with_brackets_are_printed_not_read_as_markup(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PHP sites put arrays in queries (`?tags[]=dns`): `feeds add` crashed with rich's
    MarkupError after adding the feed, and printed `?x=[red]y` as `?x=y`."""
    for url in ("https://a.example/f?x=[/]", "https://a.example/g?x=[red]y"):
        code, out, err = run(capsys, "feeds", "add", "--no-discover", url)
        assert (code, out.strip()) == (0, f"added: {url}"), err
    code, out, err = run(capsys, "feeds", "enable", "https://a.example/f?x=[/]")
    assert (code, out.strip()) == (0, "enabled: https://a.example/f?x=[/]"), err
    code, out, err = run(capsys, "feeds", "remove", "https://a.example/g?x=[red]y")
    assert (code, out.strip()) == (0, "removed: https://a.example/g?x=[red]y"), err


def test_feeds_list_shows_ids_topics_and_feeds_turned_off(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`feeds remove` and `feeds enable` take an id that nothing showed; a feed turned
    off in feeds.yaml was listed as active and due; the topics feeds.yaml says are
    "shown in feeds list" were not."""
    monkeypatch.setenv("COLUMNS", "120")
    (env / "feeds.yaml").write_text(
        "feeds:\n  - {url: 'https://a.example/f', topics: [DNS], interval: 45}\n"
        "  - {url: 'https://b.example/f', name: Bee, enabled: false}\n"
    )
    rows = {r["url"]: r for r in _listed(capsys)}
    a, b = rows["https://a.example/f"], rows["https://b.example/f"]
    assert (a["topics"], a["interval"], b["topics"], b["interval"]) == (["DNS"], 45, [], None)
    code, out, err = run(capsys, "feeds", "list")
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if "Bee" in line]
    cells = [c.strip() for c in line.split("│")]
    assert cells[1] == str(b["id"]) and cells[3] == "off" and "due" not in line
    code, out, err = run(capsys, "feeds", "list", "--format", "csv")
    by_url = {r["url"]: r for r in csv.DictReader(io.StringIO(out))}
    assert by_url["https://a.example/f"]["topics"] == "DNS"
    assert by_url["https://b.example/f"]["id"] == str(b["id"])

    # --status: only the feeds in that state, as the list shows it ("off" included)
    def listed(*argv: str) -> list[object]:
        code, out, err = run(capsys, "feeds", "list", "--format", "json", *argv)
        assert code == 0, err
        return [r["url"] for r in json.loads(out)]

    assert listed("--status", "off") == ["https://b.example/f"]
    assert listed("--status", "active") == ["https://a.example/f"]
    assert listed("--status", "active", "--status", "off") == list(rows)
    assert listed("--status", "error") == []
    code, out, err = run(capsys, "feeds", "list", "--status", "gone", "--status", "error")
    assert code == 0 and out.strip() == "No feed has the status error or gone.", err
    code, out, err = run(capsys, "feeds", "list", "--status", "failing")
    assert code == 2 and "--status" in err


def test_feeds_list_csv_defuses_formulas_from_feed_titles(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A feed's author chooses its title: `feeds list --format csv` wrote
    `=HYPERLINK(…)` for a spreadsheet to run, where `stories --format csv` defuses it."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = server.route("/f.xml", body=_rss('=HYPERLINK("http://evil.example","x")'))
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n    name: '@me'\n")
    code, out, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    code, out, err = run(capsys, "feeds", "list", "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["title"] == '\'=HYPERLINK("http://evil.example","x")' and row["name"] == "'@me"
    assert _listed(capsys)[0]["title"] == '=HYPERLINK("http://evil.example","x")'  # JSON as is


def test_remove_and_enable_say_when_feeds_yaml_will_undo_them(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`feeds remove` of a feed feeds.yaml lists deleted its stories, and the next sync
    added it back without them, silently; `feeds enable` was undone the same way."""
    (env / "feeds.yaml").write_text(
        "feeds:\n  - https://a.example/f\n  - {url: 'https://b.example/f', enabled: false}\n"
    )
    ids = {r["url"]: r["id"] for r in _listed(capsys)}
    code, out, err = run(capsys, "feeds", "remove", "http://A.example/f/")
    assert code == 0 and out.startswith("removed: https://a.example/f"), err
    assert "still listed in" in err and "feeds.yaml" in err and "adds it back" in err
    code, out, err = run(capsys, "feeds", "enable", str(ids["https://b.example/f"]))
    assert code == 0 and out.startswith("enabled: https://b.example/f"), err
    assert "enabled: false" in err
    (env / "feeds.yaml").write_text("feeds: []\n")
    _listed(capsys)
    code, out, err = run(capsys, "feeds", "remove", "https://b.example/f")
    assert code == 0 and err == "", err


def test_edits_to_feeds_yaml_reach_the_next_sync(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What held, kept so: a rename, a new interval and topics, `enabled: false` and
    back, and the https spelling of a URL reach the database at the next sync; a feed
    taken out of the file keeps its stories (README: until `feeds remove`)."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    a, b = server.route("/a.xml", body=_rss("A", "a1")), server.route("/b.xml", body=_rss("B"))
    feeds_yaml = env / "feeds.yaml"
    feeds_yaml.write_text(f"feeds:\n  - {{url: '{a}', name: Old}}\n  - {b}\n")
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    feeds_yaml.write_text(
        f"feeds:\n  - {{url: '{a}/', name: New, interval: 2h, topics: [DNS], enabled: false}}\n"
    )
    rows = {r["url"]: r for r in _listed(capsys)}
    assert rows[a + "/"]["name"] == "New" and rows[a + "/"]["enabled"] is False
    assert (rows[a + "/"]["interval"], rows[a + "/"]["topics"]) == (120, ["DNS"])
    assert rows[b]["stories"] == 1  # out of the file, not out of the database
    feeds_yaml.write_text(f"feeds:\n  - {{url: '{a}/', name: New}}\n")
    (row,) = [r for r in _listed(capsys) if r["url"] == a + "/"]
    assert row["enabled"] is True and row["status"] == "active" and row["stories"] == 1


def test_feeds_show_tells_why_a_feed_is_quiet(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The fetch log was kept (the newest 50 fetches of each feed) and shown nowhere: a
    user asking why a feed is quiet had the last error only. `feeds show` gives the
    state, the Retry-After, a pending permanent redirect and the fetches."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    monkeypatch.setenv("COLUMNS", "120")
    url = server.route("/f.xml", body=_rss("Registry news"))
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n    name: Registry\n")
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    server.route("/f.xml", status=503, body=b"busy", headers={"Retry-After": "4"})
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    (feed_id,) = [r["id"] for r in _listed(capsys)]

    code, out, err = run(capsys, "feeds", "show", str(feed_id), "--format", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["id"], shown["name"], shown["status"], shown["error_count"]) == (
        feed_id,
        "Registry",
        "error",
        1,
    )
    assert shown["not_before"] is not None and shown["first_error_at"] is not None
    # undated: its date is when it was first seen
    assert (shown["posted_7d"], shown["stories"], shown["redirect"]) == (1, 1, None)
    assert [(e["outcome"], e["http_status"], e["new"]) for e in shown["log"]] == [
        ("error", 503, 0),
        ("ok", 200, 1),
    ]
    assert "503" in shown["log"][0]["error"]
    # the same feed by URL, as `feeds list` shows it, in a table
    code, out, err = run(capsys, "feeds", "show", url, "--log", "1")
    assert code == 0, err
    assert "Registry" in out and "Retry-After" in out and "1 in a row" in out
    assert "latest fetches" in out and out.count("503") >= 2 and " ok " not in out
    code, out, err = run(capsys, "feeds", "show", str(feed_id), "--log", "0")
    assert code == 0 and "latest fetches" not in out, err
    # more than are kept is all of them (past 2**63 it was SQLite's OverflowError)
    for many in ("99999999999999999999", "9223372036854775808"):
        code, out, err = run(
            capsys, "feeds", "show", str(feed_id), "--format", "json", "--log", many
        )
        assert code == 0 and len(json.loads(out)["log"]) == 2, err

    # a permanent redirect not adopted yet: where to, and the rule (once the server's
    # Retry-After has passed: `poll --feed` honours it too)
    until = datetime.fromisoformat(shown["not_before"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05)
    server.route("/g.xml", body=_rss("Registry news"))
    server.redirect("/f.xml", server.url("/g.xml"), status=301)
    code, _, err = run(capsys, "poll", "--feed", str(feed_id), "--no-extract")
    code, out, err = run(capsys, "feeds", "show", str(feed_id), "--format", "json")
    redirect = json.loads(out)["redirect"]
    assert redirect["url"] == server.url("/g.xml") and redirect["seen"] == 1
    code, out, err = run(capsys, "feeds", "show", str(feed_id))
    words = " ".join(out.split())
    assert "moving to" in words and "seen 3 times over at least 1d" in words

    # an id past any integer column: no traceback; a digit not ASCII is no id
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in str(feed_id))
    for missing in ("999", "9" * 30, fullwidth):
        code, out, err = run(capsys, "feeds", "show", missing)
        assert code == 2 and f"not found: no feed {missing}" in err, err
    code, out, err = run(capsys, "feeds", "show", "https://nowhere.example/feed")
    assert code == 2 and "not found" in err
    code, out, err = run(capsys, "feeds", "show", str(feed_id), "--format", "csv")
    assert code == 2 and "table or json" in err
