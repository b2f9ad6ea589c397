"""URL canonicalisation, story identity and near-duplicate keys."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from clockedapp import Clock
from httpserver import LocalServer
from hypothesis import given, provisional, settings
from hypothesis import strategies as st

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.dedupe import (
    canonicalize_url,
    content_hash,
    scheme_twin,
    story_drafts,
)
from aggregator.neardup import SIMHASH_VERSION, hamming, simhash, title_key
from aggregator.parse import parse_feed
from aggregator.types import ParsedEntry, ParsedFeed, StoryQuery

FEEDS = Path(__file__).parent / "data" / "feeds"
FEED_URL = "https://feeds.example.org/"

# --- canonicalize_url -----------------------------------------------------------------------

CASES = [
    ("lowercase-scheme-host", "HTTPS://News.Example.COM/Path/A", "https://news.example.com/Path/A"),
    ("default-port-http", "http://example.com:80/a", "http://example.com/a"),
    ("default-port-https", "https://example.com:443/a", "https://example.com/a"),
    ("other-port-kept", "https://example.com:8443/a", "https://example.com:8443/a"),
    ("port-leading-zeros", "http://example.com:0080/a", "http://example.com/a"),
    ("empty-path", "https://example.com", "https://example.com/"),
    ("trailing-dot-host", "https://example.com./a", "https://example.com/a"),
    ("fragment-dropped", "https://example.com/a#section-2", "https://example.com/a"),
    ("hashbang-kept", "https://example.com/#!/story/9", "https://example.com/#!/story/9"),
    ("utm", "https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
    ("utm-case", "https://example.com/a?UTM_Campaign=x&id=3", "https://example.com/a?id=3"),
    ("fbclid-gclid", "https://example.com/a?fbclid=1&gclid=2&p=3", "https://example.com/a?p=3"),
    ("mailchimp", "https://example.com/a?mc_cid=1&mc_eid=2", "https://example.com/a"),
    ("hubspot", "https://example.com/a?_hsenc=1&_hsmi=2&__hstc=3", "https://example.com/a"),
    ("misc-tracking", "https://example.com/a?igshid=1&yclid=2&ref_src=3", "https://example.com/a"),
    ("encoded-tracking-key", "https://example.com/a?%75tm_source=x", "https://example.com/a"),
    ("at-internet", "https://example.fr/a.html?xtor=RSS-3208&p=2", "https://example.fr/a.html?p=2"),
    ("webtrends", "https://example.com/a?WT.mc_id=rss&wt.tsrc=x", "https://example.com/a"),
    ("comscore", "https://example.com/a?ns_mchannel=rss&ns_source=feed", "https://example.com/a"),
    (
        "yahoo-consent",
        "https://example.com/a?guccounter=1&guce_referrer=x",
        "https://example.com/a",
    ),
    ("sorted-query", "https://example.com/s?b=2&a=1&c=3", "https://example.com/s?a=1&b=2&c=3"),
    ("repeated-keys", "https://example.com/s?t=b&t=a", "https://example.com/s?t=a&t=b"),
    ("empty-pairs", "https://example.com/s?&a=1&&", "https://example.com/s?a=1"),
    ("empty-query", "https://example.com/s?", "https://example.com/s"),
    ("ref-kept", "https://example.com/s?ref=main", "https://example.com/s?ref=main"),
    ("plus-kept", "https://example.com/s?q=a+b", "https://example.com/s?q=a+b"),
    ("pct-unreserved", "https://example.com/%7Euser/%41%62c", "https://example.com/~user/Abc"),
    ("pct-uppercase", "https://example.com/a%2fb?q=%3d", "https://example.com/a%2Fb?q=%3D"),
    ("pct-lone", "https://example.com/100%/x", "https://example.com/100%25/x"),
    ("space-encoded", "https://example.com/a b", "https://example.com/a%20b"),
    ("unicode-path", "https://example.com/café", "https://example.com/caf%C3%A9"),
    ("idn-host", "https://Bücher.example/a", "https://xn--bcher-kva.example/a"),
    # IDNA 2008, as DENIC registers it and browsers resolve it: faß.de is not fass.de
    ("idna-2008-sharp-s", "https://faß.de/a", "https://xn--fa-hia.de/a"),
    ("idna-2008-final-sigma", "https://βόλος.gr/a", "https://xn--nxasmm1c.gr/a"),
    ("idna-2003-symbol", "https://☃.net/a", "https://xn--n3h.net/a"),  # refused by 2008
    ("dot-segments", "https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("trailing-slash-kept", "https://example.com/a/", "https://example.com/a/"),
    ("index-html-kept", "https://example.com/a/index.html", "https://example.com/a/index.html"),
    ("whitespace", "  https://example.com/a \n", "https://example.com/a"),
    ("ipv6", "http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
    (
        "google-news",
        "https://news.google.com/news/url?sa=t&url=https://example.com/story%3Fid%3D4",
        "https://example.com/story?id=4",
    ),
    (
        "google-url",
        "https://www.google.com/url?q=https%3A%2F%2Fexample.com%2Fa%3Futm_source%3Dx&sa=D",
        "https://example.com/a",
    ),
    (
        "google-search-kept",
        "https://www.google.com/search?q=dns",
        "https://www.google.com/search?q=dns",
    ),
    (
        "facebook",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2Fb&h=AT0",
        "https://example.com/b",
    ),
    (
        "nested",
        "https://l.facebook.com/l.php?u="
        "https%3A%2F%2Fwww.google.com%2Furl%3Fq%3Dhttps%253A%252F%252Fexample.com%252Fc",
        "https://example.com/c",
    ),
    (
        "linkedin-share-kept",
        "https://www.linkedin.com/sharing/share-offsite/?url=https://example.com/a",
        "https://www.linkedin.com/sharing/share-offsite/?url=https://example.com/a",
    ),
    (
        "safelinks",
        "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fexample.com%2Fd&data=0",
        "https://example.com/d",
    ),
    (
        "non-http-target-kept",
        "https://l.facebook.com/l.php?u=javascript:x",
        "https://l.facebook.com/l.php?u=javascript:x",
    ),
    ("tco-kept", "https://t.co/AbCdEf123", "https://t.co/AbCdEf123"),
    (
        "feedproxy-kept",
        "http://feedproxy.google.com/~r/Example/~3/AbC/story",
        "http://feedproxy.google.com/~r/Example/~3/AbC/story",
    ),
    ("mailto-unchanged", "mailto:someone@example.com", "mailto:someone@example.com"),
    ("relative-unchanged", "/just/a/path?utm_source=x", "/just/a/path?utm_source=x"),
    ("garbage-unchanged", "not a url at all", "not a url at all"),
    ("bad-ipv6-unchanged", "http://[::1/a", "http://[::1/a"),
    ("bad-port-unchanged", "http://example.com:http/a", "http://example.com:http/a"),
    ("empty", "", ""),
]


@pytest.mark.parametrize(("url", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_canonicalize_url(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected
    assert canonicalize_url(expected) == expected


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key.startswith("utm_") or key in {"fbclid", "gclid", "mc_cid", "mc_eid", "igshid"}


TRACKING = st.sampled_from(
    ["utm_source", "UTM_MEDIUM", "utm_campaign", "fbclid", "gclid", "mc_cid", "mc_eid", "igshid"]
)
URLS = provisional.urls()


@settings(max_examples=300)
@given(URLS)
def test_idempotent_on_urls(url: str) -> None:
    once = canonicalize_url(url)
    assert canonicalize_url(once) == once


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_never_raises_and_idempotent_on_any_text(text: str) -> None:
    once = canonicalize_url(text)
    assert canonicalize_url(once) == once


@settings(max_examples=300)
@given(st.from_regex(r"\Ahttps?://[a-zA-Z0-9.\-\[\]:@%]{0,30}[/?#][ -~]{0,40}\Z"))
def test_idempotent_on_url_like_text(text: str) -> None:
    once = canonicalize_url(text)
    assert canonicalize_url(once) == once


@settings(max_examples=200)
@given(URLS, st.lists(st.tuples(TRACKING, st.text(max_size=10)), min_size=1, max_size=4))
def test_tracking_params_never_survive(url: str, tracking: list[tuple[str, str]]) -> None:
    base, _, fragment = url.partition("#")
    query = "&".join(f"{key}={value}" for key, value in tracking)
    tracked = f"{base}{'&' if '?' in base else '?'}{query}" + (f"#{fragment}" if fragment else "")
    canonical = canonicalize_url(tracked)
    keys = [key for key, _ in parse_qsl(urlsplit(canonical).query, keep_blank_values=True)]
    assert not any(_is_tracking(key) for key in keys)


# --- identity -------------------------------------------------------------------------------


def drafts_of(name: str) -> list:  # type: ignore[type-arg]
    path = FEEDS / name
    return story_drafts(parse_feed(path.read_bytes(), FEED_URL + name))


def test_keys_follow_guid_then_link_then_hash() -> None:
    keys = [d.key for d in drafts_of("rss20.xml")]
    assert keys[:3] == [
        "v1:guid:domaindesk-1001",
        "v1:guid:domaindesk-1002",
        "v1:guid:https://archive.example.com/2019/first-round.html",
    ]
    assert keys[3].startswith("v1:hash:") and len(keys[3]) == len("v1:hash:") + 40
    # RSS 0.91 has no guids: the canonical link (tracking parameters removed) identifies.
    assert [d.key for d in drafts_of("rss091.xml")] == [
        "v1:link:https://zonefile.example.org/notes/maintenance-window",
        "v1:link:https://zonefile.example.org/notes/cache-sizes",
    ]


def test_repeated_link_falls_back_to_hash_and_duplicates_collapse() -> None:
    drafts = drafts_of("repeated_link.xml")
    titles = [d.title for d in drafts]
    assert titles == [
        "Bulletin 12: transfer lock changes",
        "Bulletin 11: WHOIS field cleanup",
        "Bulletin 10: homepage link",
        "Bulletin 9: a real permalink",  # twice in the document, same text: one story
    ]
    kinds = [d.key.split(":")[1] for d in drafts]
    # 12 and 11 share one link with different text; 10 links to the feed's home page.
    assert kinds == ["hash", "hash", "hash", "link"]
    assert drafts[3].key == "v1:link:https://bulletins.example.com/b/9"
    # A link refused as identity is no cluster key either (the store clusters by it), but
    # the link itself is kept.
    assert [d.canonical_url for d in drafts] == [
        None,
        None,
        None,
        "https://bulletins.example.com/b/9",
    ]
    assert drafts[0].link and drafts[0].link.startswith("https://bulletins.example.com/latest")


def test_repeated_guid_falls_back_to_link_then_hash() -> None:
    drafts = drafts_of("repeated_guid.xml")
    assert [d.key for d in drafts][:3] == [
        "v1:link:https://advisories.example.net/a/3",  # guid is the feed's own URL
        "v1:link:https://advisories.example.net/a/2",  # guid "advisory" shared, texts differ
        "v1:link:https://advisories.example.net/a/1",
    ]
    # Guid and link both shared with different text: only the content can tell them apart.
    assert [d.key.split(":")[1] for d in drafts[3:]] == ["hash", "hash"]
    assert drafts[3].key != drafts[4].key
    assert drafts[1].guid == "advisory"  # the guid itself is kept, just not as the key


@pytest.mark.parametrize(
    "name", ["rss20.xml", "atom10.xml", "jsonfeed11.json", "repeated_link.xml", "hostile.xml"]
)
def test_reparsing_gives_the_same_keys(name: str) -> None:
    first, second = drafts_of(name), drafts_of(name)
    assert [(d.key, d.content_hash) for d in first] == [(d.key, d.content_hash) for d in second]
    assert len({d.key for d in first}) == len(first)


def _entry(**kw: object) -> ParsedEntry:
    values: dict[str, object] = {"guid": None, "link": None, "title": "t"} | kw
    return ParsedEntry(**values)  # type: ignore[arg-type]


def test_guid_equal_to_home_page_is_not_an_identity() -> None:
    feed = ParsedFeed(
        url="https://feeds.example.org/x",
        version="rss20",
        title="x",
        link="https://site.example.com/",
        entries=(_entry(guid="https://SITE.example.com", link="https://site.example.com/p/1"),),
    )
    assert story_drafts(feed)[0].key == "v1:link:https://site.example.com/p/1"


def test_guid_identified_entries_linking_the_home_page_have_no_cluster_url() -> None:
    feed = ParsedFeed(
        url="https://feeds.example.org/x",
        version="rss20",
        title="x",
        link="https://site.example.com/",
        entries=(
            _entry(guid="ep1", link="https://site.example.com/", title="Episode 1"),
            _entry(guid="ep2", link="https://site.example.com/p/2", title="Episode 2"),
        ),
    )
    drafts = story_drafts(feed)
    assert [d.key for d in drafts] == ["v1:guid:ep1", "v1:guid:ep2"]
    assert [d.canonical_url for d in drafts] == [None, "https://site.example.com/p/2"]


def test_same_link_with_the_same_text_stays_a_cluster_key() -> None:
    # Two guids for one item (a publisher re-posting it): the link still identifies the
    # item, so both drafts carry it and the store folds them into one cluster.
    feed = ParsedFeed(
        url=FEED_URL,
        version="rss20",
        title="x",
        link=None,
        entries=(
            _entry(guid="a", link="https://site.example.com/p/1", summary="same"),
            _entry(guid="b", link="https://site.example.com/p/1", summary="same"),
        ),
    )
    assert [d.canonical_url for d in story_drafts(feed)] == ["https://site.example.com/p/1"] * 2


def test_same_guid_and_same_text_collapse() -> None:
    entry = _entry(guid="g1", summary="same")
    feed = ParsedFeed(url=FEED_URL, version="rss20", title="x", link=None, entries=(entry, entry))
    assert [d.key for d in story_drafts(feed)] == ["v1:guid:g1"]


def test_content_hash_is_pinned_and_ignores_markup() -> None:
    # Pinned: changing this value re-keys every hash-identified story already stored.
    assert content_hash("Title", "<p>Sum &amp; mary</p>", None) == (
        "241dc93c6a164bc92521c01163ce458769a200be"  # sha1("Title␟Sum & mary␟")
    )
    assert content_hash("Title", "<p>Sum &amp; mary</p>", None) == content_hash(
        "Title", "<div>Sum\n&amp;   mary</div>", ""
    )
    assert content_hash("Title", "Sum & mary", None) != content_hash("Title", "Sum & Mary", None)
    assert content_hash("A", "B", None) != content_hash("A B", None, None)


# --- near duplicates ------------------------------------------------------------------------

ARTICLE = (
    "The registry said every second-level zone is now signed with DNSSEC, completing a project "
    "that began three years ago with a single pilot zone. Engineers moved the keys into hardware "
    "security modules and rolled the key signing key twice as a rehearsal before the switch. "
    "Validation rates among resolvers climbed from about a third to just over half."
)


def test_simhash_is_close_for_near_duplicates_and_far_otherwise() -> None:
    edited = ARTICLE.replace("three years", "3 years").upper() + " Updated at 10:00."
    unrelated = (
        "Phishing reports involving new generic top-level domains fell for the second quarter in "
        "a row while reports involving long-established domains stayed roughly flat overall."
    )
    assert hamming(simhash(ARTICLE), simhash(ARTICLE)) == 0
    assert hamming(simhash(ARTICLE), simhash(edited)) <= 12
    assert hamming(simhash(ARTICLE), simhash(unrelated)) >= 20
    assert simhash("") == 0 and simhash("  ...  ") == 0
    assert 0 < simhash("one two") < 2**64


_M64 = (1 << 64) - 1


def _splitmix(x: int) -> int:
    x ^= x >> 30
    x = x * 0xBF58476D1CE4E5B9 & _M64
    x ^= x >> 27
    x = x * 0x94D049BB133111EB & _M64
    return x ^ x >> 31


def _rotl(x: int, r: int) -> int:
    return (x << r | x >> (64 - r)) & _M64


def _textbook_simhash(text: str) -> int:
    """Charikar's SimHash, scheme 2, written the slow, obvious way: one vote per bit per
    shingle; a shingle's hash mixes its words' hashes (CRC-32 spread by SplitMix64)."""
    words = re.findall(r"\w+", text.casefold())
    size = min(3, len(words))
    word_hash = [_splitmix(zlib.crc32(w.encode("utf-8", "surrogatepass"))) for w in words]
    votes = [0] * 64
    for i in range(len(words) - size + 1):
        value = 0
        for j in range(size):
            value ^= _rotl(word_hash[i + j], 21 * j) if j else word_hash[i]
        value = _splitmix(value)
        for bit in range(64):
            votes[bit] += 1 if value >> bit & 1 else -1
    return sum(1 << bit for bit in range(64) if votes[bit] > 0) if words else 0


@pytest.mark.parametrize(
    "text", [ARTICLE, "one", "one two", "a b c d", "x " * 50, "", "lone \ud800 surrogate"]
)
def test_simhash_matches_the_textbook_algorithm(text: str) -> None:
    assert simhash(text) == _textbook_simhash(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_simhash_matches_the_textbook_algorithm_on_any_text(text: str) -> None:
    # multi-byte characters, combining marks, digits and underscores inside words, and
    # lone surrogates (JSON Feed's "\\ud800" decodes to one)
    assert simhash(text) == _textbook_simhash(text)


def test_simhash_is_pinned() -> None:
    # Pinned: stored fingerprints must stay comparable across releases. Changing this value
    # means a new SIMHASH_VERSION and a store migration (scheme 1 gave 0x31598C00C8080010).
    assert SIMHASH_VERSION == 2
    assert simhash("registry signs every zone") == simhash("Registry signs every zone!")
    assert simhash("registry signs every zone") == 0x010216230180A028


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("Registry Signs  Every Zone!", "registry signs every zone"),
        ("Café — prices in €", "cafe prices in"),
        ("ＤＮＳ　ｒｅｐｏｒｔ", "dns report"),
        ("foo_bar-baz", "foo bar baz"),
        ("", ""),
    ],
)
def test_title_key(title: str, key: str) -> None:
    assert title_key(title) == key


def test_hamming() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(2**64 - 1, 0) == 64


# --- identity and clusters through the App ----------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[App]:
    s = Settings.from_env(
        {},
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
        timeout_s=3,
        workers=1,  # a few small feeds: a second worker process only cost its start
    )
    with make_app(s, now=clock) as a:
        yield a


def _rss(items: str, link: str = "http://example.org/") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>{link}</link>'
        f"{items}</channel></rss>"
    ).encode()


def _item(title: str, link: str, guid: str | None = None) -> str:
    words = " ".join(f"{title.lower()}{i}" for i in range(30))  # texts far apart (SimHash)
    guid_el = f"<guid isPermaLink='false'>{guid}</guid>" if guid else ""
    return (
        f"<item><title>{title}</title><link>{link}</link>{guid_el}"
        f"<description>Unique text for {title}: {words}</description></item>"
    )


def _poll(app: App, clock: Clock) -> None:
    results = list(app.update_due(all_feeds=True))
    assert all(r.status in ("ok", "unchanged") for r in results), results
    clock.t += timedelta(hours=2)


def _titles(app: App, **query: Any) -> list[str]:
    return sorted(s.title for s in app.stories(StoryQuery(limit=None, **query)))


def test_stories_sharing_a_link_all_stay_visible(
    app: App, server: LocalServer, clock: Clock
) -> None:
    home = "http://podcast.example/"
    # every item links the channel's home page (podcasts, status pages, job boards) ...
    podcast = _rss("".join(_item(f"Episode{i}", home, guid=f"ep{i}") for i in range(3)), home)
    # ... or one "latest" URL that is not the home page, with and without guids
    latest = "http://status.example/latest"
    status = _rss(
        _item("Outage", latest) + _item("Maintenance", latest) + _item("Resolved", latest, "r1"),
        "http://status.example/",
    )
    app.add_feed(server.route("/podcast", body=podcast), discover=False)
    app.add_feed(server.route("/status", body=status), discover=False)
    _poll(app, clock)

    everything = [f"Episode{i}" for i in range(3)] + ["Maintenance", "Outage", "Resolved"]
    assert _titles(app) == sorted(everything)
    assert _titles(app, feeds=(server.url("/podcast"),)) == ["Episode0", "Episode1", "Episode2"]
    assert _titles(app, text="Maintenance") == ["Maintenance"]
    for story in app.stories(StoryQuery(limit=None)):
        assert story.canonical_url is None and story.link in (home, latest)
        assert app.also_covered(story) == []
    assert app.export(StoryQuery(limit=None), "json").count('"title"') >= len(everything)

    # a later poll adds one more item with the same link: the stored ones are untouched
    server.route(
        "/status", body=status.replace(b"<item>", _item("Update", latest).encode() + b"<item>", 1)
    )
    _poll(app, clock)
    assert _titles(app) == sorted([*everything, "Update"])


def test_a_rotating_guid_with_a_stable_link_is_shown_once(
    app: App, server: LocalServer, clock: Clock
) -> None:
    url = server.route("/feed", body=_rss(_item("Rotating", "http://example.org/a", "g0")))
    app.add_feed(url, discover=False)
    for i in range(1, 4):
        _poll(app, clock)
        server.route("/feed", body=_rss(_item("Rotating", "http://example.org/a", f"g{i}")))
    (story,) = app.stories(StoryQuery(limit=None))
    assert story.title == "Rotating" and story.canonical_url == "http://example.org/a"
    assert len(app.also_covered(story)) == 2  # stored three times, shown once


def test_one_article_linked_from_two_feeds_is_one_cluster(
    app: App, server: LocalServer, clock: Clock
) -> None:
    article = "https://news.example.com/story-1"
    first = _item("Registry", f"{article}?utm_source=rss", "a1") + _item("Other", "http://a/2")
    second = _item("Resolver", f"{article}?utm_medium=feed", "b1")
    app.add_feed(server.route("/one", body=_rss(first, "http://a/")), discover=False)
    app.add_feed(server.route("/two", body=_rss(second, "http://b/")), discover=False)
    _poll(app, clock)
    visible = app.stories(StoryQuery(limit=None))
    assert len(visible) == 2 and "Other" in {s.title for s in visible}
    (shared,) = [s for s in visible if s.title != "Other"]
    assert shared.canonical_url == article
    assert [s.canonical_url for s in app.also_covered(shared)] == [article]


# --- scheme_twin ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "twin"),
    [
        ("v1:guid:http://example.org/?p=1", "v1:guid:https://example.org/?p=1"),
        ("v1:guid:https://example.org/?p=1", "v1:guid:http://example.org/?p=1"),
        ("v1:link:http://example.org/a", "v1:link:https://example.org/a"),
        ("v1:link:https://example.org/a", "v1:link:http://example.org/a"),
        ("http://example.org/a", "https://example.org/a"),
        ("https://example.org/a", "http://example.org/a"),
        ("http://example.org:443/a", "https://example.org:443/a"),  # only the swap
        ("v1:guid:tag:example.org,2026:1", None),
        ("v1:guid:HTTP://example.org/a", None),  # guids are as given: no case folding
        ("v1:guid:ftp://example.org/a", None),
        ("v1:hash:http", None),
        ("v2:guid:http://example.org/a", None),  # another scheme version is not ours
        ("v1:guid:http://", None),
        ("http://", None),
        ("", None),
    ],
    ids=lambda v: (v or "empty") if isinstance(v, str) else "none",
)
def test_scheme_twin(value: str, twin: str | None) -> None:
    assert scheme_twin(value) == twin
    if twin is not None:
        assert scheme_twin(twin) == value


def test_importing_dedupe_stays_light() -> None:
    """The store imports dedupe (scheme_twin) and neardup's title rules; numpy loads
    only with simhash."""
    import subprocess
    import sys

    code = (
        "import sys; from aggregator.dedupe import scheme_twin; "
        "from aggregator.neardup import series_apart; assert series_apart('a 1', 'a 2'); "
        "assert 'numpy' not in sys.modules; "
        "from aggregator.neardup import simhash; assert simhash('a b c d') != 0; "
        "assert 'numpy' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
