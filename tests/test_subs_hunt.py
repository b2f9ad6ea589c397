"""Hunt: subscription management as a user migrating hundreds of feeds meets it:
`feeds add` of a feed already here, OPML import into a store that has some of its feeds,
and OPML entries that cannot be imported."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_feeds_subscriptions import fetcher_for, page
from test_learning_cli import env, run  # noqa: F401  (fixture)
from test_store import check

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.discover import find_feed
from aggregator.errors import ConfigError
from aggregator.feedlist import load_feed_list, read_opml
from aggregator.types import FeedSource

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def _rss(title: str) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        "<link>http://news.example/</link><item><title>Registry news</title>"
        "<link>http://news.example/a</link><guid>g1</guid>"
        "<description>The registry changed its policy.</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "given",
    ["http://old.example/feed", "https://old.example/feed", "http://OLD.example/feed/"],
)
def test_adding_the_url_a_moved_feed_was_subscribed_under_adds_no_second_feed(
    tmp_path: Path, given: str
) -> None:
    """A feed a permanent redirect moved is found by the URL it was subscribed under,
    spelled as it may be, as `feeds import` and the feeds.yaml sync find it: `feeds add
    --no-discover` of the old URL added a second feed, polling the old address."""
    with make_app(Settings.from_env({}, data_dir=tmp_path / "data")) as app:
        app.store.upsert_feeds([FeedSource(url="http://old.example/feed")], app.now())
        feed = app.store.get_feed("http://old.example/feed")
        app.store.save_update(check(feed.id, url="https://www.example.com/feed"), [])
        added = app.add_feed(given, discover=False)
        assert not added.created and added.feed.id == feed.id
        assert [f.url for f in app.feeds()] == ["https://www.example.com/feed"]


def test_importing_a_feeds_own_title_back_names_nothing(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """OPML names a feed by its own title (Feedly, Inoreader, our export of a feed never
    renamed): imported into the store that has the feed, the title became the feed's
    name, the round trip said "1 updated", and the name stayed when the feed retitled."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    url = server.route("/f.xml", body=_rss("Example News"), content_type="application/rss+xml")
    assert run(capsys, "feeds", "add", "--no-discover", url)[0] == 0
    assert run(capsys, "feeds", "add", "--no-discover", "--name", "Mine", url + "?b")[0] == 0
    server.route("/f.xml?b", body=_rss("Other News"), content_type="application/rss+xml")
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--format", "json")
    assert code == 0, err
    code, exported, _ = run(capsys, "feeds", "export")
    (env / "back.opml").write_text(exported)
    code, out, _ = run(capsys, "feeds", "import", str(env / "back.opml"))
    assert out.strip() == "0 added, 0 updated, 2 unchanged, 0 skipped"
    feedly = (
        f'<opml version="1.0"><body><outline text="Tech">'
        f'<outline type="rss" text="Example News" title="Example News" xmlUrl="{url}"/>'
        f'<outline type="rss" text="Other News" title="Other News" xmlUrl="{url}?b"/>'
        "</outline></body></opml>"
    )
    (env / "feedly.opml").write_text(feedly)
    code, out, _ = run(capsys, "feeds", "import", str(env / "feedly.opml"))
    assert out.strip() == "0 added, 2 updated, 0 unchanged, 0 skipped"  # the folder
    rows = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert [(r["name"], r["topics"]) for r in rows] == [(None, ["Tech"]), ("Mine", ["Tech"])]


@pytest.mark.parametrize(
    "outline",
    [
        '<outline type="rss" text="Blog" xmlUrl="" htmlUrl="https://blog.example/"/>',
        '<outline text="Blog" htmlUrl="https://blog.example/"/>',
    ],
    ids=["empty-xmlUrl", "htmlUrl-only"],
)
def test_an_outline_with_only_the_sites_address_is_skipped_with_why(outline: str) -> None:
    """An outline naming a site but no feed (a reader that lost the feed's URL, or
    wrote it empty) was read as an empty folder: not imported, yet "0 skipped"."""
    listing = read_opml(f'<opml version="2.0"><body>{outline}</body></opml>')
    assert listing.sources == ()
    (why,) = listing.skipped
    assert why.startswith("Blog: no xmlUrl") and "feeds add https://blog.example/" in why


ATOM_PREFIXED = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<atom:feed xmlns:atom="http://www.w3.org/2005/Atom"><atom:title>News</atom:title>'
    b"<atom:id>urn:x</atom:id><atom:updated>2026-11-30T00:00:00Z</atom:updated></atom:feed>"
)


@pytest.mark.parametrize("content_type", ["application/atom+xml", "text/html; charset=utf-8"])
def test_an_atom_feed_with_a_prefixed_root_is_a_feed(
    server: LocalServer, content_type: str
) -> None:
    """Atom written with a namespace prefix (``<atom:feed>``, as XSLT and some Java
    generators write it) was refused by `feeds add` as "neither a feed nor a web page
    (application/atom+xml)", and served as text/html it was taken for a page."""
    url = server.route("/atom", body=ATOM_PREFIXED, content_type=content_type)
    found = find_feed(url, fetcher_for(server))
    assert found.url == url and found.found_from is None


def test_a_feeds_file_in_opml_says_which_entries_it_leaves_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With OPML as the feeds file (`--feeds subscriptions.opml`), the entries that
    cannot be feeds were dropped at every sync without a word, where `feeds import` of
    the same file lists each with why (and feeds.yaml refuses such an entry)."""
    path = tmp_path / "subscriptions.opml"
    path.write_text(
        '<opml version="2.0"><body>'
        '<outline text="Good" type="rss" xmlUrl="https://a.example/feed"/>'
        '<outline text="Bad" type="rss" xmlUrl="javascript:alert(1)"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(settings) as app, caplog.at_level(logging.WARNING, logger="aggregator.app"):
        assert app.sync_feeds(path) == (1, 0)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"{path}: skipped Bad: only http(s) URLs are supported")


def test_a_feed_linked_only_in_the_body_is_found(server: LocalServer) -> None:
    """A page whose CMS writes its <link rel="alternate"> into the body (a plugin, a
    theme's footer) was "an HTML page that links to no feed" after six probes, where
    Miniflux and feedparser-based readers find it."""
    feed = server.route("/news/export.php", body=RSS, content_type="application/rss+xml")
    site = server.route(
        "/",
        body=b"<!doctype html><html><head><title>Site</title></head><body><p>Hello</p>"
        b'<link rel="alternate" type="application/rss+xml" href="/news/export.php">'
        b"</body></html>",
        content_type="text/html; charset=utf-8",
    )
    found = find_feed(site, fetcher_for(server))
    assert (found.url, found.found_from) == (feed, site)
    assert [r.path for r in server.requests] == ["/"]


_UTF16_PAGE = (
    '\n<!doctype html><html lang="fr"><head><meta charset="utf-16"><title>Café</title>'
    '<link rel="alternate" type="application/rss+xml" title="Café » Flux" href="/fil/rss.php">'
    "</head><body><p>Élan</p></body></html>"
)


@pytest.mark.parametrize(
    ("encoding", "bom", "content_type"),
    [
        ("utf-16-le", True, "text/html"),
        ("utf-16-be", True, "text/html; charset=utf-16"),
        ("utf-16-le", True, "text/html; charset=iso-8859-1"),  # the BOM wins, as in browsers
        ("utf-16-le", False, "text/html; charset=utf-16"),
        ("utf-16-le", False, "text/html; charset=UTF-16LE"),
        ("utf-16-be", False, "text/html; charset=utf-16be"),
        ("utf-16-be", False, "text/html; charset=utf-16"),
        ("utf-16-le", False, "text/html"),
        ("utf-16-be", False, None),
    ],
)
def test_a_utf16_page_s_feed_link_is_found(
    server: LocalServer, encoding: str, bom: bool, content_type: str | None
) -> None:
    """A UTF-16 page (Windows tools save HTML so), with a byte-order mark or without,
    its charset in the Content-Type or not: its <link rel="alternate"> was read as
    UTF-8, every other byte a NUL, and the page "linked to no feed"."""
    feed = server.route("/fil/rss.php", body=RSS, content_type="application/rss+xml")
    body = ("\ufeff" if bom else "") + _UTF16_PAGE
    site = server.route("/", body=body.encode(encoding), content_type=content_type)
    found = find_feed(site, fetcher_for(server))
    assert (found.url, found.found_from) == (feed, site)
    assert [r.path for r in server.requests] == ["/"]


def test_feeds_add_finds_the_feed_of_a_utf16_page(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    feed = server.route("/fil/rss.php", body=RSS, content_type="application/rss+xml")
    site = server.route(
        "/", body=_UTF16_PAGE.encode("utf-16"), content_type="text/html; charset=utf-16"
    )
    code, out, err = run(capsys, "feeds", "add", site)
    assert code == 0, err
    assert out.startswith(f"added: {feed} (found on {site})")


@pytest.mark.parametrize("kind", ["text/xml", "application/xml"])
def test_a_feed_announced_as_plain_xml_is_found_once_it_proves_a_feed(
    server: LocalServer, kind: str
) -> None:
    """Older sites announce their RSS as text/xml or application/xml (a CGI path no
    probe guesses): the page "linked to no feed". Such a link is taken once its
    document proves to be a feed, as an RDF one is; other XML is not."""
    server.route("/sitemap.xml", body=b'<?xml version="1.0"?><urlset/>', content_type=kind)
    feed = server.route("/cgi-bin/news.cgi", body=RSS, content_type=kind)
    site = server.route(
        "/",
        body=page(
            f'<link rel="alternate" type="{kind}" title="Sitemap" href="/sitemap.xml">',
            f'<link rel="alternate" type="{kind}" title="RSS" href="/cgi-bin/news.cgi">',
        ),
        content_type="text/html; charset=utf-8",
    )
    found = find_feed(site, fetcher_for(server))
    assert (found.url, found.found_from) == (feed, site)


def test_removing_an_id_no_feed_has_says_so(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`feeds remove 99` said "no feed with URL 99", as if the id had been taken for a
    URL; `feeds show 99` and `feeds enable 99` say "no feed 99"."""
    code, _, err = run(capsys, "feeds", "remove", "99")
    assert code == 2 and err.strip() == "not found: no feed 99"


def test_a_name_given_to_a_feed_already_present_is_not_dropped_silently(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`feeds add URL --name X` of a feed already there said "already present" and left
    its name as it was, without a word: the user took the feed for renamed."""
    assert run(capsys, "feeds", "add", "--no-discover", "https://a.example/feed")[0] == 0
    code, out, err = run(
        capsys, "feeds", "add", "--no-discover", "--name", "Alpha", "http://A.example/feed/"
    )
    assert code == 0 and out.strip() == "already present: https://a.example/feed"
    assert "--name" in err and "Alpha" in err
    (row,) = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert row["name"] is None


def test_importing_our_own_opml_restores_the_settings_it_carries(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An export carries a feed's interval and `enabled: false` (aggregator:
    attributes); imported back into a store that has the feed (a backup restored after
    a mistaken `feeds enable`), they were ignored as if OPML could not carry them:
    "1 unchanged", the feed still polled. A file silent on them keeps the feed's."""
    assert run(capsys, "feeds", "add", "--no-discover", "https://a.example/feed")[0] == 0
    assert run(capsys, "feeds", "add", "--no-discover", "https://b.example/feed")[0] == 0
    backup = env / "backup.opml"
    backup.write_text(
        '<opml xmlns:aggregator="urn:aggregator:opml" version="2.0"><body>'
        '<outline type="rss" text="https://a.example/feed" xmlUrl="https://a.example/feed"'
        ' aggregator:interval="120" aggregator:enabled="false"/>'
        '<outline type="rss" text="https://b.example/feed" xmlUrl="https://b.example/feed"/>'
        "</body></opml>"
    )
    code, out, _ = run(capsys, "feeds", "import", str(backup))
    assert code == 0 and out.strip() == "0 added, 1 updated, 1 unchanged, 0 skipped"
    rows = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert [(r["enabled"], r["interval"]) for r in rows] == [(False, 120), (True, None)]


def test_a_sites_feed_is_added_beside_a_subscription_to_the_site_page(
    env: Path,  # noqa: F811
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A site's page subscribed as if it were its feed (an OPML whose xmlUrl is the
    site, `--no-discover`) fails every poll; `feeds add SITE` to put it right found the
    feed, then matched the page's URL to that subscription and said "already present"
    without adding the feed."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    feed = server.route("/feed.xml", body=RSS, content_type="application/rss+xml")
    site = server.route(
        "/",
        body=page('<link rel="alternate" type="application/rss+xml" href="/feed.xml">'),
        content_type="text/html; charset=utf-8",
    )
    assert run(capsys, "feeds", "add", "--no-discover", site)[0] == 0
    code, out, err = run(capsys, "feeds", "add", site)
    assert code == 0 and out.strip() == f"added: {feed} (found on {site})", err
    rows = json.loads(run(capsys, "feeds", "list", "--format", "json")[1])
    assert [r["url"] for r in rows] == [site, feed]


def test_an_imported_interval_outside_the_bounds_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sync of feeds.yaml says when an interval is clamped to the schedule's bounds
    (`interval: 1m` quietly meant every 5 minutes); `feeds import` of the same file
    clamped it without a word."""
    path = tmp_path / "mine.yaml"
    path.write_text("feeds:\n  - url: https://a.example/feed\n    name: Often\n    interval: 1m\n")
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(settings) as app, caplog.at_level(logging.WARNING, logger="aggregator.app"):
        assert app.import_feeds(load_feed_list(path), origin=str(path)) == (1, 0)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: feed Often: interval 1 min is below the schedule's floor, so it is "
        "polled every 5 min"
    ]


@pytest.mark.parametrize("encoding", ["x-mac-roman", "ANSI"])
def test_an_opml_declaring_an_unknown_encoding_is_one_clear_error(
    tmp_path: Path, encoding: str
) -> None:
    """A declared encoding Python does not know (Windows tools write "ANSI", old Mac
    ones "x-mac-roman") ended `feeds import` in a LookupError traceback."""
    path = tmp_path / "subscriptions.opml"
    path.write_bytes(
        f'<?xml version="1.0" encoding="{encoding}"?>\n<opml version="1.0"><body>'
        '<outline text="A" xmlUrl="https://a.example/f"/></body></opml>\n'.encode()
    )
    with pytest.raises(ConfigError, match=f"{path}: cannot read it as {encoding}"):
        load_feed_list(path)


def test_the_documents_checked_for_a_feed_are_bounded(server: LocalServer) -> None:
    """Links announced as RDF or plain XML are fetched to see whether they are feeds,
    one at a time: a page announcing dozens (sitemaps, RDF metadata) cost a request,
    and up to a timeout, each."""
    links = [
        f'<link rel="alternate" type="application/xml" href="/sitemap{i}.xml">' for i in range(30)
    ]
    site = server.route("/", body=page(*links), content_type="text/html; charset=utf-8")
    with pytest.raises(ConfigError, match="links to no feed"):
        find_feed(site, fetcher_for(server))
    checked = [r for r in server.requests if r.path.startswith("/sitemap")]
    assert len(checked) == 8


def test_a_feed_listed_twice_keeps_the_name_only_the_second_gives() -> None:
    """A feed listed in two folders is merged into the first entry, its topics added;
    a name only the second entry gave was dropped with it."""
    listing = read_opml(
        '<opml version="2.0"><body>'
        '<outline text="A"><outline type="rss" xmlUrl="https://a.example/feed"'
        ' text="https://a.example/feed"/></outline>'
        '<outline text="B"><outline type="rss" xmlUrl="http://A.example/feed/"'
        ' text="Alpha News"/></outline>'
        "</body></opml>"
    )
    (src,) = listing.sources
    assert (src.url, src.name, src.topics) == ("https://a.example/feed", "Alpha News", ("A", "B"))
