"""Audit of story identity and deduplication against what real feeds do: link variants
that must meet in one canonical URL and those that must stay apart, guid quirks, the
order of a document, the same guid in two feeds, an item republished with a new date,
values too long for PostgreSQL's index, and near-duplicate clusters that must not form
(issues of a numbered series sharing a boilerplate paragraph, texts without words) or
that should (mobile and AMP copies of one article). Pure functions, and through the
real App, a local HTTP server and real SQLite and PostgreSQL databases."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote, urlsplit

import pytest
from clockedapp import Clock, _make_app, any_app, app, clock
from httpserver import LocalServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.app import App
from aggregator.dedupe import canonicalize_url, story_drafts
from aggregator.neardup import hamming, series_apart, simhash
from aggregator.parse import parse_feed
from aggregator.store.writes import NEAR_DUP_MAX_DISTANCE
from aggregator.types import ParsedEntry, ParsedFeed, StoryQuery, UpdateResult

# the fixtures (clockedapp); Clock and _make_app still importable from here
__all__ = ["Clock", "_make_app", "any_app", "app", "clock"]

# --- canonical URLs ---------------------------------------------------------------------------

ARTICLE = "https://news.example.com/2026/03/registry-signs-every-zone"

#: Spellings of one article as feeds, newsletters and social networks hand them out: each
#: must give the same canonical URL (the cross-feed cluster key and, without a guid, the
#: story's identity).
SAME = [
    ("plain", ARTICLE),
    ("facebook-click-id", f"{ARTICLE}?fbclid=IwAR2xYz"),
    ("google-ads-click-ids", f"{ARTICLE}?gclid=Cj0K&gbraid=0AA&wbraid=Cj8"),
    ("mailchimp", f"{ARTICLE}?mc_cid=4f1e&mc_eid=9a2b"),
    ("hubspot", f"{ARTICLE}?_hsenc=p2ANqtz&_hsmi=2&__hstc=1.2.3"),
    (
        "feedburner",
        f"{ARTICLE}?utm_source=feedburner&utm_medium=feed"
        "&utm_campaign=Feed%3A+example+%28Example+News%29",
    ),
    ("matomo-and-piwik", f"{ARTICLE}?pk_campaign=rss&mtm_source=feed&piwik_kwd=x"),
    ("google-analytics-linker", f"{ARTICLE}?_ga=2.1234&_gl=1*abc"),
    ("uppercase-scheme-and-host", "HTTPS://NEWS.Example.COM/2026/03/registry-signs-every-zone"),
    ("default-port", "https://news.example.com:443/2026/03/registry-signs-every-zone"),
    (
        "default-port-leading-zero",
        "https://news.example.com:0443/2026/03/registry-signs-every-zone",
    ),
    ("empty-port", "https://news.example.com:/2026/03/registry-signs-every-zone"),
    ("trailing-dot-host", "https://news.example.com./2026/03/registry-signs-every-zone"),
    ("empty-query", f"{ARTICLE}?"),
    ("empty-pairs", f"{ARTICLE}?&&"),
    ("fragment", f"{ARTICLE}#comments"),
    ("empty-fragment", f"{ARTICLE}#"),
    (
        "percent-encoded-unreserved",
        "https://news.example.com/2026/03/registry%2Dsigns%2devery-zone",
    ),
    ("dot-segments", "https://news.example.com/2026/04/../03/./registry-signs-every-zone"),
    ("surrounding-whitespace", f"\n  {ARTICLE}\t"),
    ("google-redirect", f"https://www.google.com/url?q={quote(ARTICLE, safe='')}&sa=D"),
    ("facebook-redirect", f"https://l.facebook.com/l.php?u={quote(ARTICLE, safe='')}&h=AT3"),
    (
        "outlook-safelinks",
        f"https://nam12.safelinks.protection.outlook.com/?url={quote(ARTICLE, safe='')}&data=05",
    ),
    ("tracking-after-redirect", f"https://l.facebook.com/l.php?u={quote(ARTICLE + '?fbclid=1')}"),
]


@pytest.mark.parametrize("url", [u for _, u in SAME], ids=[i for i, _ in SAME])
def test_spellings_of_one_link_give_one_canonical_url(url: str) -> None:
    assert canonicalize_url(url) == ARTICLE


def test_percent_encoding_case_and_idn_hosts_meet() -> None:
    assert canonicalize_url("https://example.com/a%2fb?q=%3d") == canonicalize_url(
        "https://example.com/a%2Fb?q=%3D"
    )
    forms = {
        "https://Bücher.example/a",
        "https://BÜCHER.EXAMPLE/a",
        "https://xn--bcher-kva.example/a",
        "https://bücher.example./a",
        "https://bu\u0308cher.example/a",  # "ü" decomposed (NFD), as some CMSs write it
    }
    assert {canonicalize_url(u) for u in forms} == {"https://xn--bcher-kva.example/a"}


#: Links that look alike but stay apart, and why. Merging two different pages hides a
#: story; keeping two spellings of one page apart shows it twice, and SimHash usually
#: joins them anyway. Every rule here is also part of the stored ``v1:link:`` keys:
#: changing one re-keys the stories a store holds (dedupe.py's "Must not").
APART = [
    # "ref" names a git branch, a referral programme's page or a section as often as a
    # tracker; only the unambiguous tracking names are dropped.
    ("ref", "https://example.com/s?ref=main", "https://example.com/s?ref=dev"),
    # /a, /a/ and /a/index.html are different resources to HTTP; servers that serve one
    # page at all three are common, but so are those that do not.
    ("trailing-slash", "https://example.com/a", "https://example.com/a/"),
    ("index-html", "https://example.com/a/", "https://example.com/a/index.html"),
    # A mobile host or an AMP path is a CMS convention, not a rule: m.example.com may be
    # a different site, /amp/ a real section. Their copies cluster by SimHash (below).
    ("mobile-host", "https://m.example.com/a", "https://example.com/a"),
    ("www-host", "https://www.example.com/a", "https://example.com/a"),
    ("amp-path", "https://example.com/a/amp/", "https://example.com/a/"),
    ("amp-query", "https://example.com/a?amp=1", "https://example.com/a"),
    # http and https stay apart in keys and URLs (every stored key has its scheme); the
    # store takes a stored scheme_twin for the same story instead.
    ("scheme", "http://example.com/a", "https://example.com/a"),
    # Userinfo is part of the authority (another account's view of a page).
    ("userinfo", "https://reader@example.com/a", "https://example.com/a"),
    # A #! route is a page of a single-page app; other fragments are dropped.
    ("hashbang", "https://example.com/#!/story/1", "https://example.com/#!/story/2"),
    ("path-case", "https://example.com/A", "https://example.com/a"),
]


@pytest.mark.parametrize(("a", "b"), [c[1:] for c in APART], ids=[c[0] for c in APART])
def test_look_alike_links_stay_apart(a: str, b: str) -> None:
    assert canonicalize_url(a) != canonicalize_url(b)


@pytest.mark.parametrize("dot", ["\u3002", "\uff0e", "\uff61"], ids=["ideographic", "fw", "hw"])
def test_an_idn_full_stop_ending_a_host_is_the_root_like_a_dot(dot: str) -> None:
    """The IDNA codec reads "。", "．" and "｡" as dots (UTS #46), so a host written with
    one at the end came out ending in ".", and a second pass gave another URL: the
    canonical form was not a fixed point, so a stored canonical URL did not match the
    same link met again in canonical form."""
    for host in (f"example.com{dot}", f"bücher.example{dot}"):
        once = canonicalize_url(f"https://{host}/a")
        assert canonicalize_url(once) == once
        assert not (urlsplit(once).hostname or "").endswith(".")
    assert canonicalize_url(f"https://example.com{dot}/a") == "https://example.com/a"


@pytest.mark.parametrize(
    "wrapped",
    [
        "https:///x",  # no host
        "http://[::1",  # unbalanced IPv6 bracket
        "https://",  # nothing after the scheme
    ],
)
def test_a_redirector_whose_target_is_no_url_stays_as_it_is(wrapped: str) -> None:
    """Unwrapping took any text starting "http(s)://" as the target, so a wrapper around
    garbage became the garbage: no http(s) URL with a host at all, and one "https://"
    key shared by every such link."""
    for wrapper in (
        f"https://l.facebook.com/l.php?u={quote(wrapped, safe='')}",
        f"https://www.google.com/url?q={quote(wrapped, safe='')}",
    ):
        canonical = canonicalize_url(wrapper)
        parts = urlsplit(canonical)
        assert parts.scheme == "https" and parts.hostname in ("l.facebook.com", "www.google.com")
        assert canonicalize_url(canonical) == canonical


_PIECES = [
    *("a", "B", "0", "-", "~", "_", ".", "..", "/", "//", "?", "#", "#!", "&", "=", "+", "@"),
    *(":", ";", ",", "'", "*", "!", "$", "[", "]", "\\", " ", "\t", "\n", "\x00", "\x7f"),
    *("%", "%2", "%2e", "%2E", "%2F", "%2f", "%41", "%7e", "%zz", "%00", "%C3%A9", "%E2%82"),
    *("é", "ü", "ß", "\u3002", "\uff0e", "€", "\ud800", "\u200b", "\ufeff"),
    *("utm_source=x", "UTM_Medium=y", "fbclid=1", "gclid=2", "mc_eid=3", "_hsenc=4", "ref=5"),
    *("url=", "u=", "q=", "https://", "http://", "HTTP://", "https%3A%2F%2F", "javascript:"),
    *("l.facebook.com/l.php", "www.google.com/url", "href.li/?", "news.google.com/?url="),
]
_HOSTS = [
    *("example.com", "EXAMPLE.com.", "example.com..", "bücher.example", "BÜCHER.example."),
    *("faß.de", "example.com\u3002", "xn--bcher-kva.example", "[::1]", "[2001:DB8::1]:80"),
    *("[::1", "a..b", "user:pw@example.com", "@example.com", "example.com:0443"),
    *("example.com:", "example.com:99999", "example.com:x", "l.facebook.com", "www.google.com"),
    *("news.google.com", "href.li", "x.safelinks.protection.outlook.com", "ｅｘａｍｐｌｅ.com", ""),
]
_SCHEMES = ["http://", "https://", "HTTPS://", "hTtP://", " https://", "https:/", "ftp://", ""]
_URLISH = st.builds(
    lambda scheme, host, parts: scheme + host + "".join(parts),
    st.sampled_from(_SCHEMES),
    st.sampled_from(_HOSTS),
    st.lists(st.sampled_from(_PIECES), max_size=20),
)
_ANY_TEXT = st.one_of(_URLISH, st.text(max_size=80))


def _wrapped(url: str) -> str:
    return "https://l.facebook.com/l.php?u=" + quote(url, safe="", errors="surrogatepass")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_ANY_TEXT, _ANY_TEXT.map(_wrapped)))
def test_canonical_urls_are_fixed_points_and_only_http(text: str) -> None:
    """Never raises; canonicalising twice changes nothing; and whatever it changes comes
    out as an http(s) URL with a host (anything else is returned stripped, unchanged)."""
    once = canonicalize_url(text)
    assert canonicalize_url(once) == once
    if once != text.strip():
        parts = urlsplit(once)
        assert parts.scheme in ("http", "https") and parts.hostname, (text, once)
        assert once.startswith(parts.scheme + "://")  # lower case, as scheme_twin reads it


_TRACKERS = st.sampled_from(
    [
        *("utm_source", "UTM_Campaign", "utm_content", "fbclid", "gclid", "dclid", "msclkid"),
        *("mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "mkt_tok"),
        *("pk_campaign", "mtm_kwd", "_ga", "_gl", "igshid", "yclid", "twclid", "ttclid"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_TRACKERS, st.text(max_size=8)), min_size=1, max_size=4),
    st.sampled_from(["", "?id=7", "?id=7&page=2"]),
    st.sampled_from(["", "#top", "#!/route"]),
)
def test_tracking_parameters_never_change_a_canonical_url(
    trackers: list[tuple[str, str]], query: str, fragment: str
) -> None:
    base = f"https://example.com/a{query}{fragment}"
    extra = "&".join(f"{k}={quote(v, errors='surrogatepass')}" for k, v in trackers)
    path, _, frag = base.partition("#")
    tracked = f"{path}{'&' if '?' in path else '?'}{extra}" + (f"#{frag}" if frag else "")
    assert canonicalize_url(tracked) == canonicalize_url(base)


# --- identity within a document ---------------------------------------------------------------

FEED = "https://feeds.example.org/audit"
HOME = "https://site.example/"
_DAYS = [None, datetime(2026, 11, 6, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC)]
_LINKS = [
    *(None, None, HOME, "https://site.example/a", "https://site.example/a?utm_source=rss"),
    *("HTTPS://SITE.example/a#comments", "http://site.example/a", "https://site.example/b"),
    *("https://l.facebook.com/l.php?u=https%3A%2F%2Fsite.example%2Fb", FEED),
]
_ENTRIES = st.builds(
    ParsedEntry,
    guid=st.sampled_from([None, None, "g1", "g2", "https://site.example/a", HOME]),
    link=st.sampled_from(_LINKS),
    title=st.sampled_from(["Weekly Threat Report #41", "Weekly Threat Report #42", ""]),
    summary=st.sampled_from([None, "Boilerplate.", "<p>Boilerplate.</p>", "Other."]),
    content=st.sampled_from([None, "Full text."]),
    author=st.sampled_from([None, "Ana"]),
    published=st.sampled_from(_DAYS),
    updated=st.sampled_from(_DAYS),
    enclosures=st.sampled_from(
        [
            (),
            ("https://cdn.site.example/1.mp3",),
            ("https://cdn.site.example/1.mp3?utm_source=rss",),
            ("https://cdn.site.example/2.mp3", "https://cdn.site.example/1.mp3"),
        ]
    ),
    categories=st.sampled_from([(), ("DNS",)]),
)


def _feed(entries: list[ParsedEntry] | tuple[ParsedEntry, ...]) -> ParsedFeed:
    return ParsedFeed(url=FEED, version="rss20", title="x", link=HOME, entries=tuple(entries))


@settings(max_examples=400, deadline=None)
@given(st.lists(_ENTRIES, max_size=9), st.randoms(use_true_random=False))
def test_drafts_do_not_depend_on_the_order_of_the_document(
    entries: list[ParsedEntry], rnd: random.Random
) -> None:
    """Keys are unique (two drafts with one key would fail the feed's write on the
    store's unique index every poll), and another order of the same entries, spelled
    with other tracking parameters or letter case, gives the same drafts."""
    drafts = story_drafts(_feed(entries))
    assert len({d.key for d in drafts}) == len(drafts)
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert set(story_drafts(_feed(shuffled))) == set(drafts)
    assert all(
        d.canonical_url is None or canonicalize_url(d.canonical_url) == d.canonical_url
        for d in drafts
    )


def _rss(items: str, link: str = HOME) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>{link}</link><description>d</description>{items}</channel></rss>"
    ).encode()


def _item(
    title: str,
    *,
    link: str | None = None,
    guid: str | None = None,
    permalink: bool = False,
    text: str | None = None,
    day: int | None = None,
) -> str:
    parts = [f"<title>{escape(title)}</title>"]
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="{str(permalink).lower()}">{escape(guid)}</guid>')
    if day is not None:
        parts.append(f"<pubDate>{day:02d} Nov 2026 10:00:00 GMT</pubDate>")
    if text is None:  # texts far apart in SimHash unless a test gives them
        text = " ".join(f"{title.lower().replace(' ', '')}{i}" for i in range(30))
    parts.append(f"<description>{text}</description>")
    return f"<item>{''.join(parts)}</item>"


def test_whitespace_around_a_guid_is_not_part_of_it() -> None:
    plain = story_drafts(parse_feed(_rss(_item("A", guid="tag:site.example,2026:1")), FEED))
    padded = story_drafts(
        parse_feed(_rss(_item("A", guid="\n    tag:site.example,2026:1\n  ")), FEED)
    )
    assert [d.key for d in padded] == [d.key for d in plain] == ["v1:guid:tag:site.example,2026:1"]


def test_a_url_guid_that_is_no_permalink_is_the_identity_as_given() -> None:
    """isPermaLink="false" says the guid is no link: it is the key exactly as written
    (not canonicalised: keys are stored, and a guid is an opaque string to RSS 2.0),
    and the item's own link stays the cross-feed URL."""
    guid = "https://site.example/?p=41&utm_source=rss"
    (d,) = story_drafts(
        parse_feed(_rss(_item("A", guid=guid, link="https://site.example/a?fbclid=1")), FEED)
    )
    assert d.key == f"v1:guid:{guid}"
    assert d.canonical_url == "https://site.example/a"
    # and a permalink guid doubles as the link when there is none
    (p,) = story_drafts(
        parse_feed(_rss(_item("A", guid="https://site.example/b?gclid=2", permalink=True)), FEED)
    )
    assert p.key == "v1:guid:https://site.example/b?gclid=2"
    assert p.canonical_url == "https://site.example/b"


# --- through the App ---------------------------------------------------------------------------


def _poll(app: App, clock: Clock, hours: float = 2) -> list[UpdateResult]:
    results = list(app.update_due(all_feeds=True))
    clock.t += timedelta(hours=hours)
    return results


def _titles(app: App) -> list[str]:
    return sorted(s.title for s in app.stories(StoryQuery(limit=None)))


def test_the_same_guid_in_two_feeds_is_not_one_story(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """Keys are per feed: two feeds numbering their items 1, 2, ... keep all of them,
    while the one article both feeds carry (same guid, same link) is one cluster."""
    shared = "https://wire.example/2026/registry-signs-every-zone"
    one = _item("Registry signs every zone", guid="1", link=shared) + _item(
        "Resolver outage in Europe", guid="2", link="https://a.example/outage"
    )
    two = _item("Registry signs every zone", guid="1", link=shared) + _item(
        "New gTLD round opens", guid="2", link="https://b.example/gtld"
    )
    app.add_feed(server.route("/one", body=_rss(one, "https://a.example/")), discover=False)
    app.add_feed(server.route("/two", body=_rss(two, "https://b.example/")), discover=False)
    assert all(r.status == "ok" for r in _poll(app, clock))
    assert _titles(app) == [
        "New gTLD round opens",
        "Registry signs every zone",
        "Resolver outage in Europe",
    ]
    (story,) = [s for s in app.stories(StoryQuery(limit=None)) if s.canonical_url == shared]
    assert [s.canonical_url for s in app.also_covered(story)] == [shared]


def test_an_item_republished_with_a_new_date_is_not_new(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """Feeds re-date old items (a CMS re-save, a "bump" to the top): the same guid and
    text is the same story, neither new nor updated, whatever its place in the list."""
    old = _item("Registry signs every zone", guid="tag:x,2026:7", link=ARTICLE, day=3)
    other = _item("Resolver outage", guid="tag:x,2026:8", link="https://a.example/o", day=5)
    url = server.route("/feed", body=_rss(old + other))
    app.add_feed(url, discover=False)
    (first,) = _poll(app, clock)
    assert first.new == 2
    bumped = old.replace("03 Nov 2026", "19 Nov 2026")
    server.route("/feed", body=_rss(other + bumped))
    (again,) = _poll(app, clock)
    assert (again.status, again.new, again.updated) == ("ok", 0, 0)
    assert _titles(app) == ["Registry signs every zone", "Resolver outage"]


def _long(n: int) -> str:
    return secrets.token_hex(n // 2 + 1)[:n]  # random: PostgreSQL cannot compress it


@pytest.mark.parametrize("source", ["guid", "link-without-guid"])
def test_a_key_of_several_kilobytes_is_stored_on_both_backends(
    any_app: App,
    server: LocalServer,
    clock: Clock,
    source: str,
    db_url: str,
    request: pytest.FixtureRequest,
) -> None:
    """A guid (or, without one, a link) is the story's key, and the key is in the unique
    index (feed_id, key). PostgreSQL refuses a B-tree entry over 2,704 bytes, so one item
    with a 3,000-byte guid failed its feed's whole update, on every poll; SQLite took it.
    (Migration 15 makes the canonical URL's index a hash index; a unique index cannot be
    one: migration 16 makes it unique by the key's digest.)"""
    token = _long(3000)
    if source == "guid":
        long_item = _item("Long", guid=f"tag:site.example,2026:{token}")
    else:
        long_item = _item("Long", link=f"https://site.example/a?t={token}")
    body = _rss(long_item + _item("Short", guid="s1", link="https://site.example/s"))
    any_app.add_feed(server.route("/long", body=body), discover=False)
    (result,) = _poll(any_app, clock)
    assert result.status == "ok", result.error
    assert _titles(any_app) == ["Long", "Short"]
    (again,) = _poll(any_app, clock)
    assert again.status in ("ok", "unchanged") and again.new == 0


# --- near duplicates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "apart"),
    [
        ("Weekly Threat Report #41", "Weekly Threat Report #42", True),
        ("ICANN Board Meeting Minutes – 12 March", "ICANN Board Meeting Minutes – 19 March", True),
        ("CVE-2026-1234 in OpenSSL", "CVE-2026-1235 in OpenSSL", True),
        ("Domain Name Industry Brief Q1 2026", "Domain Name Industry Brief Q2 2026", True),
        ("Report ＃４１", "Report #42", True),  # full-width digits are digits
        ("第53次中国互联网络发展状况统计报告", "第54次中国互联网络发展状况统计报告", True),
        ("Отчёт об угрозах №41", "Отчёт об угрозах №42", True),
        ("Report #41", "Report #041", False),  # the same number
        ("Weekly Threat Report #41", "weekly threat report 41!", False),  # one title
        ("Weekly Threat Report #41", "Weekly Threat Report #41", False),
        ("Weekly Threat Report", "Weekly Threat Report #42", False),  # a copy may drop it
        ("Registry adds 3 TLDs", "Registry adds three TLDs", False),  # reworded: not judged
        ("ICANN80 opens in Kigali", "ICANN 80 opens in Kigali", False),
        ("Registry signs every zone", "Resolver outage in Europe", False),  # no numbers
        ("", "", False),
    ],
)
def test_series_apart(a: str, b: str, apart: bool) -> None:
    assert series_apart(a, b) is apart
    assert series_apart(b, a) is apart


#: The same paragraph under every issue of a series (what a feed without full text
#: carries when the report itself is a PDF or behind a login)
MINUTES = (
    "The Board met to consider the items on its consent agenda and main agenda. Present "
    "were the voting Board members, the liaisons, and the ICANN organisation staff who "
    "support the Board. The Board approved the minutes of its previous meeting, adopted "
    "the resolutions on the consent agenda without discussion, and discussed each item on "
    "the main agenda in turn, hearing reports from the relevant committees. The "
    "resolutions adopted by the Board, with the rationale for each, are published on the "
    "ICANN website together with the preliminary report of the meeting. Members of the "
    "community who wish to comment on any resolution may do so through the public comment "
    "process described on the website. The next meeting of the Board is scheduled as "
    "listed in the calendar of Board meetings, and its agenda will be published in advance "
    "in accordance with the Bylaws."
)
REPORT = (
    "Each week our research team summarises the threats observed by our sensors across "
    "the network: phishing campaigns impersonating banks and parcel services, malware "
    "command and control domains, newly registered lookalike domains, and abuse reported "
    "to registrars and hosting providers. The report lists the top targeted brands, the "
    "registrars and top-level domains most used by attackers, the hosting networks that "
    "took longest to act, and the indicators our customers should block. Subscribers can "
    "download the full dataset, including every domain name, IP address and URL, from the "
    "customer portal in CSV and STIX formats. Researchers and journalists may request "
    "access to the archive of earlier reports. Questions about the methodology, the data "
    "sources or a listing can be sent to the research team, who answer within two working "
    "days. Our sensors cover resolvers, mail gateways and web proxies in more than forty "
    "countries, and every indicator is checked by an analyst before it is published. "
    "Earlier reports remain available in the archive, and the indicators of each report "
    "stay in the dataset for ninety days after it is published."
)
SERIES = [
    pytest.param(
        "ICANN Board Meeting Minutes – 12 March",
        "ICANN Board Meeting Minutes – 19 March",
        MINUTES,
        id="minutes",
    ),
    pytest.param("Weekly Threat Report #43", "Weekly Threat Report #44", REPORT, id="report"),
]


@pytest.mark.parametrize(("first", "second", "text"), SERIES)
def test_issues_of_a_series_in_two_feeds_are_two_stories(
    any_app: App, server: LocalServer, clock: Clock, first: str, second: str, text: str
) -> None:
    """A site's main feed has last week's issue, its topic feed this week's: the same
    boilerplate paragraph under titles that differ in a number is a SimHash match (a
    few bits apart), and this week's issue was hidden under last week's."""
    fp = [simhash(f"{title}\n{text}") for title in (first, second)]
    assert hamming(*fp) <= NEAR_DUP_MAX_DISTANCE  # the premise: a near-duplicate by SimHash
    main = _item(first, link="https://site.example/1", guid="m1", text=text)
    app = any_app
    app.add_feed(server.route("/main", body=_rss(main)), discover=False)
    _poll(app, clock, hours=24 * 7)
    topic = _item(second, link="https://site.example/2", guid="t1", text=text)
    app.add_feed(server.route("/topic", body=_rss(topic)), discover=False)
    _poll(app, clock)
    assert _titles(app) == sorted([first, second])


def test_one_story_in_two_feeds_still_clusters_by_text(
    app: App, server: LocalServer, clock: Clock
) -> None:
    """The control: the same title and text at two URLs (a syndicated copy) is one
    cluster, and so are the mobile and AMP copies of an article (their URLs stay apart,
    see APART; their text meets)."""
    title = "ICANN Board Meeting Minutes – 12 March"
    copies = {
        "/wire": "https://wire.example/icann-minutes-12-march",
        "/mobile": "https://m.site.example/minutes/12-march",
        "/amp": "https://site.example/minutes/12-march/amp/",
    }
    for path, link in copies.items():
        body = _rss(_item(title, link=link, guid=path, text=MINUTES), f"https://{path[1:]}.x/")
        app.add_feed(server.route(path, body=body), discover=False)
    _poll(app, clock)
    (story,) = app.stories(StoryQuery(limit=None))
    assert len(app.also_covered(story)) == 2


def test_texts_without_words_cluster_nothing(
    any_app: App, server: LocalServer, clock: Clock
) -> None:
    """simhash() is 0 for a text without words (emoji, punctuation: a social feed's
    "🎉" post, whose title is its text). Stored as a fingerprint, 0 is a near-duplicate
    of every other 0: such posts of unrelated feeds became one cluster and all but one
    were hidden. Migration 4 already stores no fingerprint for them."""
    assert simhash("🎉\n🎉") == simhash("👀\n👀") == 0
    for path, post in (("/a", "🎉"), ("/b", "👀"), ("/c", "…")):
        item = f"<item><guid>{path}</guid><description>{post}</description></item>"
        any_app.add_feed(
            server.route(path, body=_rss(item, f"https://{path[1:]}.x/")), discover=False
        )
    _poll(any_app, clock)
    assert len(any_app.stories(StoryQuery(limit=None))) == 3
