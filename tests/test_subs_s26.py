"""Session 26 hunt: subscription management (OPML as other tools save it, the export
and import round trip, feeds.yaml, `feeds add|remove`), through real files, a real SQLite
database, the real CLI and a real local HTTP server."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_feeds_subscriptions import fetcher_for, page
from test_learning_cli import env, run  # noqa: F401  (fixture)
from test_store import T0, check, draft, pred, store  # noqa: F401  (store: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.discover import find_feed
from aggregator.errors import ConfigError
from aggregator.feedlist import load_feed_list, read_opml
from aggregator.types import FeedSource, StoryRecord


def _rss(title: str, guid: str = "g1") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://news.example/</link><item><title>Registry changes its DNS policy</title>"
        f"<link>http://news.example/{guid}</link><guid>{guid}</guid>"
        "<description>The registry changed its DNS policy.</description>"
        "</item></channel></rss>"
    ).encode()


def _listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, err = run(capsys, "feeds", "list", "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


@pytest.mark.parametrize("declared", ["ISO-8859-1", "windows-1252", "US-ASCII", "UTF-16"])
def test_a_utf8_byte_order_mark_wins_over_the_declared_encoding(
    tmp_path: Path, declared: str
) -> None:
    """An OPML saved as UTF-8 with a byte-order mark (Notepad's "UTF-8") that still
    declares the encoding it was first written in: the mark says how the bytes are
    encoded (XML 1.0 Appendix F, as libxml2 and browsers read it), yet the file was read
    as the declared encoding, and every accented name and folder came in garbled ("CafÃ©
    Crème") without a word."""
    text = (
        f'<?xml version="1.0" encoding="{declared}"?>\n'
        '<opml version="1.0"><body><outline text="Cuisine française">'
        '<outline type="rss" text="Café Crème" xmlUrl="https://a.example/f"/>'
        "</outline></body></opml>"
    )
    raw = b"\xef\xbb\xbf" + text.encode("utf-8")
    listing = read_opml(raw)
    assert [(s.name, s.topics) for s in listing.sources] == [("Café Crème", ("Cuisine française",))]
    path = tmp_path / "feedly.opml"
    path.write_bytes(raw)
    assert load_feed_list(path).sources == listing.sources


def test_an_unnamed_feed_exported_and_imported_into_a_fresh_data_dir_stays_unnamed(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README promises an export imported into a fresh data directory gives the same
    names. A feed you never named was exported under its own title as its name, and the
    import took that for a name you gave: the moved feed kept its old title for ever
    (in `feeds list`, stories' `feed_title` and the merged feeds) when the site retitled."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = server.route("/f.xml", body=_rss("Example News"), content_type="application/rss+xml")
    named = server.route("/g.xml", body=_rss("Other", "g2"), content_type="application/rss+xml")
    assert run(capsys, "feeds", "add", "--no-discover", url)[0] == 0
    assert run(capsys, "feeds", "add", "--no-discover", "--name", "Mine", named)[0] == 0
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    code, exported, err = run(capsys, "feeds", "export")
    assert code == 0, err
    # other readers still see the feed's title until they fetch it
    assert 'text="Example News"' in exported
    (env / "feeds.opml").write_text(exported)
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(env / "fresh"))
    code, out, err = run(capsys, "feeds", "import", str(env / "feeds.opml"))
    assert (code, out.strip()) == (0, "2 added, 0 updated, 0 unchanged, 0 skipped"), err
    assert [(r["url"], r["name"]) for r in _listed(capsys)] == [(url, None), (named, "Mine")]
    server.route("/f.xml", body=_rss("Example News, renamed"), content_type="application/rss+xml")
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    rows = _listed(capsys)
    assert [(r["name"], r["title"]) for r in rows] == [
        (None, "Example News, renamed"),
        ("Mine", "Other"),
    ]
    # and back into the data directory it came from: nothing changes
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(env / "data"))
    code, out, err = run(capsys, "feeds", "import", str(env / "feeds.opml"))
    assert (code, out.strip()) == (0, "0 added, 0 updated, 2 unchanged, 0 skipped"), err


@pytest.mark.parametrize("how", ["feeds add", "feeds.yaml"])
@pytest.mark.parametrize(
    "again",
    ["http://a.example/feed", "https://A.example/feed/", "https://u:pw@a.example:443/feed"],
    ids=["http", "host-case-slash", "login-port"],
)
def test_labels_come_back_when_the_feed_is_added_again_spelled_another_way(
    store,  # noqa: F811
    again: str,
    how: str,
) -> None:  # type: ignore[no-untyped-def]
    """`feeds remove` promises the labels "return to their stories if you add the feed
    again"; added again as the same feed spelled another way (http or https, host case, a
    trailing slash, a login: one subscription by ``feed_key``), as a site's page or
    another feeds.yaml writes it, its returning stories came back without them, which
    stayed in the archive for ever, matched by the exact URL only."""
    feed = store.get_feed("https://a.example/feed")
    first = _archive_save(store, feed.id, "one")
    store.add_labels(first, ["DNS"], ["Cybersecurity"], T0)
    assert store.remove_feed("https://a.example/feed", T0) == 1
    later = T0 + timedelta(days=3)
    if how == "feeds add":
        readded, created = store.add_feed(FeedSource(url=again), later)
        assert created
    else:
        assert store.upsert_feeds([FeedSource(url=again)], later) == (1, 0)
        readded = store.get_feed(again)
    back = _archive_save(store, readded.id, "one", at=later)
    assert store.story_labels(back) == (("DNS",), ("Cybersecurity",))
    assert [ls.story.id for ls in store.labelled_stories()] == [back]


def _archive_save(st, feed_id: int, key: str, at: datetime = T0) -> int:  # type: ignore[no-untyped-def]
    rec = StoryRecord(
        draft=draft(key, f"Story {key} about resolvers", link=f"https://a.example/{key}"),
        prediction=pred(("DNS", 0.4)),
    )
    (sid,) = st.save_update(check(feed_id, at=at), [rec]).new
    return int(sid)


@pytest.mark.parametrize("href", ["#", "", ".", "/blog/", "http://127.0.0.1/blog"])
def test_a_feed_link_to_the_page_itself_is_not_taken_for_its_feed(
    server: LocalServer, href: str
) -> None:
    """Themes write a placeholder feed link (``href="#"``, the page's own address): the
    page just read is HTML, yet `feeds add` subscribed to it ("added: …/blog/ (found on
    …/blog/)"), and the subscription failed at every poll. The page's other links and
    the usual feed paths are tried instead."""
    href = href.replace("http://127.0.0.1", server.url("").rstrip("/"))
    blog = server.route(
        "/blog/",
        body=page(f'<link rel="alternate" type="application/rss+xml" href="{href}">'),
        content_type="text/html",
    )
    feed = server.route("/blog/feed", body=_rss("Blog"), content_type="application/rss+xml")
    found = find_feed(blog, fetcher_for(server))
    assert (found.url, found.found_from) == (feed, blog)


@pytest.mark.parametrize("depth", [5, 9])
@pytest.mark.parametrize("field", ["name", "interval"])
def test_a_billion_laughs_feeds_yaml_is_a_quick_short_error(
    tmp_path: Path, field: str, depth: int
) -> None:
    """YAML aliases nest a list in itself billions of times in a few hundred bytes (the
    loader shares them, which is cheap); the error for such a `name:` or `interval:`
    printed the whole value: `poll`, `feeds list` and the daemon's sync ran out of memory
    on a 434-byte file (9 levels), and 5 levels made a 4 MB error line."""
    levels = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth)]
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: https://a.example/f\n    {field}: [{', '.join(levels)}]\n")
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        load_feed_list(path)
    assert time.monotonic() - started < 5
    message = str(e.value)
    assert message.startswith(f"{path}:2: feed #1: '{field}'") and "[['lol'" in message
    assert len(message) - len(str(path)) < 300


def test_labels_come_back_when_a_moved_feed_is_added_again_under_its_old_url(
    store,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    """A feed a permanent redirect moved is removed at its new URL (the archive keeps
    that one); added again under the URL it was subscribed under (feeds.yaml still lists
    it, as `feeds remove` warns), its first poll is redirected there again, yet its
    returning stories came back without their labels, looked for under the old URL only."""
    old, new = "https://a.example/feed", "https://feeds.example.net/a"
    feed = store.get_feed(old)
    store.save_update(check(feed.id, url=new), [])
    assert store.get_feed(feed.id).url == new
    first = _archive_save(store, feed.id, "one")
    store.add_labels(first, ["DNS"], ["Cybersecurity"], T0)
    assert store.remove_feed(new, T0) == 1
    later = T0 + timedelta(days=3)
    assert store.upsert_feeds([FeedSource(url=old)], later) == (1, 0)
    readded = store.get_feed(old)
    # the poll follows the redirect (not adopted yet: seen once)
    rec = StoryRecord(
        draft=draft("one", "Story one about resolvers", link="https://a.example/one"),
        prediction=pred(("DNS", 0.4)),
    )
    (back,) = store.save_update(
        check(readded.id, at=later, redirect_url=new, redirect_count=1), [rec]
    ).new
    assert store.story_labels(back) == (("DNS",), ("Cybersecurity",))
    assert [ls.story.id for ls in store.labelled_stories()] == [back]


@pytest.mark.parametrize(
    ("codec", "bom"),
    [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-16-le", b"")],
    ids=["le-bom", "be-bom", "le-no-bom"],
)
def test_a_utf16_opml_with_a_bare_ampersand_or_an_html_entity_is_read(
    tmp_path: Path, codec: str, bom: bytes
) -> None:
    """Windows tools save OPML as "Unicode" (UTF-16), and podcast directories write
    "News & Politics" and `&nbsp;` unescaped: read as UTF-8 or Latin-1 text is, such a
    file was refused whole ("not well-formed (invalid token)"), where the same file in
    UTF-8 was read."""
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<opml version="1.0"><body><outline text="News & Politics">'
        '<outline type="rss" text="Caf&eacute;&nbsp;Crème" xmlUrl="https://a.example/f?a=1&b=2"/>'
        "</outline></body></opml>"
    )
    path = tmp_path / "podcasts.opml"
    path.write_bytes(bom + text.encode(codec))
    (source,) = load_feed_list(path).sources
    assert (source.url, source.name, source.topics) == (
        "https://a.example/f?a=1&b=2",
        "Café\xa0Crème",
        ("News & Politics",),
    )


@pytest.mark.parametrize("how", ["feeds import", "feeds.yaml"])
def test_a_feed_about_to_move_is_not_added_again_under_its_new_url(
    tmp_path: Path, how: str
) -> None:
    """A feed whose permanent redirect is seen but not yet adopted (it takes a few polls)
    is the feed at the new URL, as `feeds add` knows it ("already present"); an OPML
    from another reader, which already follows the move, or feeds.yaml edited to the new
    URL added it a second time, and the redirect was then never adopted (the URL is
    another feed's): two feeds polled for one for ever."""
    old, new = "https://a.example/feed", "https://feeds.example.net/a"
    with make_app(Settings.from_env({}, data_dir=tmp_path / "data")) as app:
        app.store.upsert_feeds([FeedSource(url=old)], app.now())
        feed = app.store.get_feed(old)
        app.store.save_update(check(feed.id, redirect_url=new, redirect_count=1), [])
        if how == "feeds import":
            listing = read_opml(
                f'<opml><body><outline type="rss" text="A" xmlUrl="{new}"/></body></opml>'
            )
            assert app.import_feeds(listing) == (0, 1)
        else:
            path = tmp_path / "feeds.yaml"
            path.write_text(f"feeds:\n  - url: {new}\n    name: A\n")
            assert app.sync_feeds(path) == (0, 1)
        assert [(f.id, f.name) for f in app.feeds()] == [(feed.id, "A")]


def test_skipped_opml_entries_are_printed_without_terminal_controls(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """XML allows C1 controls (U+009B is a terminal's CSI) and bidi overrides in an
    outline's title: the "skipped" lines printed them raw, so a shared OPML file could
    recolour or rewrite the user's terminal, where every other table filters them."""
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline text="Evil\u009b2J\u202eNews" url="https://news.example/"/>'
        "</body></opml>"
    )
    (env / "hostile.opml").write_text(opml, encoding="utf-8")
    code, _, err = run(capsys, "feeds", "import", str(env / "hostile.opml"))
    assert code == 0, err
    assert "skipped" in err and "EvilNews" in err.replace("2J", "")
    assert "\u009b" not in err and "\u202e" not in err
