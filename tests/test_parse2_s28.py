"""Feed parsing bugs found in session 28 (second pass): each test is a user-visible failure
that was fixed, checked on the lxml fast path and on feedparser's where the format is XML."""

from __future__ import annotations

import json

import pytest
from test_parse_s27 import NOW, dated_in

from aggregator.dedupe import story_drafts
from aggregator.parse import parse_feed

FEED_URL = "https://feeds.example.org/feed"


def rss_item(item: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"'
        ' xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        "<channel><title>T</title><link>https://blog.example.org/</link>"
        f"<item>{item}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "version",
    [
        "https://jsonfeed.org/version/1.1/",
        "https://jsonfeed.org/version/1/",
        " https://jsonfeed.org/version/1.1 ",
    ],
)
def test_json_feed_version_url_with_a_trailing_slash_is_known(version: str) -> None:
    # "unknown JSON Feed version" was recorded as the feed's warning on every poll
    doc = {"version": version, "title": "T", "items": [{"id": "1", "content_text": "hi"}]}
    parsed = parse_feed(json.dumps(doc).encode(), FEED_URL, now=NOW)
    assert parsed.version == ("json11" if "1.1" in version else "json10")
    assert parsed.warnings == ()


DESCRIPTION = "<p>The whole story: what happened, who said what, and what comes next.</p>"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("order", ["description-first", "itunes-first"])
def test_description_is_the_content_and_itunes_summary_the_summary_in_either_order(
    fast: bool, order: str
) -> None:
    # feedparser files a second summary-like element as content: with <description>
    # first, the short iTunes summary became the story's content and the full text its
    # summary (itunes:summary first, the description was content already)
    parts = [
        f"<description><![CDATA[{DESCRIPTION}]]></description>",
        "<itunes:summary>Short summary</itunes:summary>",
    ]
    if order == "itunes-first":
        parts.reverse()
    body = rss_item("<title>Ep 1</title><link>https://blog.example.org/1</link>" + "".join(parts))
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.summary == "<p>Short summary</p>"
    assert entry.content == DESCRIPTION


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_content_encoded_still_wins_over_a_description_before_itunes_summary(fast: bool) -> None:
    body = rss_item(
        "<title>Ep 2</title><link>https://blog.example.org/2</link>"
        "<description>Teaser</description><itunes:summary>Short summary</itunes:summary>"
        f'<content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<![CDATA[{DESCRIPTION}<p>More.</p>]]></content:encoded>"
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.content == DESCRIPTION + "<p>More.</p>"
    assert entry.summary == "<p>Short summary</p>"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_an_item_titled_only_by_itunes_title_has_that_title(fast: bool) -> None:
    # it was "(untitled)", or its description's first words
    body = rss_item(
        "<itunes:title>Episode 5: Q&amp;A  with\n the team</itunes:title>"
        "<link>https://blog.example.org/5</link><description>Show notes</description>"
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.title == "Episode 5: Q&A with the team"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_the_item_title_wins_over_itunes_title(fast: bool) -> None:
    body = rss_item(
        "<title>Ep. 5 - Full title</title><itunes:title>Episode 5</itunes:title>"
        "<link>https://blog.example.org/5</link>"
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.title == "Ep. 5 - Full title"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_media_content_is_an_enclosure_of_an_item_without_one(fast: bool) -> None:
    body = rss_item(
        "<title>Launch</title><link>https://blog.example.org/launch</link>"
        '<media:group><media:content url="/video/launch-720.mp4" type="video/mp4"/>'
        '<media:content url="https://cdn.example.org/launch-1080.mp4" type="video/mp4"/>'
        '</media:group><media:thumbnail url="https://cdn.example.org/launch.jpg"/>'
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.enclosures == (
        "https://blog.example.org/video/launch-720.mp4",
        "https://cdn.example.org/launch-1080.mp4",
    )


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_an_rss_enclosure_still_comes_alone_before_media_content(fast: bool) -> None:
    # the enclosure is the item's media file, its key when it has no guid or link
    body = rss_item(
        '<title>Ep</title><enclosure url="https://cdn.example.org/ep.mp3" type="audio/mpeg"'
        ' length="1"/><media:content url="https://cdn.example.org/ep-cover.jpg"'
        ' medium="image"/>'
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.enclosures == ("https://cdn.example.org/ep.mp3",)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_episodes_told_apart_only_by_media_content_are_one_story_each(fast: bool) -> None:
    # no guid, no link, one title, one date and no text (a podcast host's "Weekly news
    # roundup"): only their media files tell the episodes apart, given as media:content,
    # and all but one were lost, folded into one story
    episodes = "</item><item>".join(
        "<title>Weekly news roundup</title><pubDate>Fri, 01 Mar 2024 10:00:00 GMT</pubDate>"
        f'<media:content url="https://cdn.example.org/ep{n}.mp3" type="audio/mpeg"/>'
        for n in (1, 2, 3)
    )
    drafts = story_drafts(parse_feed(rss_item(episodes), FEED_URL, fast=fast, now=NOW))
    assert len({d.key for d in drafts}) == 3


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("Fri Mar  1 10:00:00 Europe/Berlin 2024", "2024-03-01T09:00:00+00:00"),
        ("Mon Jul 01 10:00:00 Europe/Berlin 2024", "2024-07-01T08:00:00+00:00"),
        ("Fri Mar 1 10:00 America/New_York 2024", "2024-03-01T15:00:00+00:00"),
        ("Mar 1 10:00:00 America/Argentina/Buenos_Aires 2024", "2024-03-01T13:00:00+00:00"),
    ],
    ids=["cet", "cest", "no-seconds", "three-parts-no-day-name"],
)
@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_an_iana_zone_between_the_time_and_the_year_is_read_at_its_offset(
    value: str, iso: str, form: str
) -> None:
    # Unix date(1) with TZ set to a zone's identifier, and Java's Date.toString() given
    # one, write it there: read as UTC, an hour or more off
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize("form", ["rss-fast", "rss-feedparser", "atom", "json"])
def test_an_unknown_zone_identifier_before_the_year_leaves_the_date_at_utc(form: str) -> None:
    # as a name of no zone is read there (RSS 2.0's "a zone not known is UTC")
    utc = "2024-03-01T10:00:00+00:00"
    assert dated_in(form, "Fri Mar  1 10:00:00 Mars/Olympus_Mons 2024") == (utc, utc)


PHOTO = (
    '<media:content url="https://cdn.example.org/photo.jpg" medium="image">'
    "<media:credit>Jane Doe/Agency</media:credit>"
    "<media:description>Crowds outside the court on Monday.</media:description>"
    "</media:content>"
)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("order", ["photo-last", "photo-first"])
def test_a_photo_caption_is_neither_the_story_text_nor_its_summary(fast: bool, order: str) -> None:
    # news feeds (the New York Times', AP's) give the photo's caption as media:description
    # beside the item's <description>: feedparser made the caption the story's content
    # (photo last) or its summary (photo first)
    parts = [f"<description>{DESCRIPTION[3:-4]}</description>", PHOTO]
    if order == "photo-first":
        parts.reverse()
    body = rss_item(
        "<title>Verdict</title><link>https://blog.example.org/v</link>" + "".join(parts)
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.summary == DESCRIPTION[3:-4]
    assert entry.content is None


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_media_description_is_the_summary_of_an_item_without_text(fast: bool) -> None:
    body = rss_item("<title>Clip</title><link>https://blog.example.org/c</link>" + PHOTO)
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.summary == "<p>Crowds outside the court on Monday.</p>"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
def test_a_photo_caption_is_no_summary_of_an_item_with_only_content_encoded(fast: bool) -> None:
    body = rss_item(
        "<title>Verdict</title><link>https://blog.example.org/v</link>"
        '<content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<![CDATA[{DESCRIPTION}]]></content:encoded>{PHOTO}"
    )
    (entry,) = parse_feed(body, FEED_URL, fast=fast, now=NOW).entries
    assert entry.content == DESCRIPTION
    assert entry.summary is None


@pytest.mark.parametrize("html", ["<p></p>", "<div> </div>", "<p><br></p>", "<script>x()</script>"])
def test_json_feed_content_text_stands_in_for_html_with_no_text(html: str) -> None:
    # a CMS writing an empty paragraph for a post it publishes as text: the story had no
    # text and was "(untitled)", though content_text gave it
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "T",
        "items": [{"id": "1", "content_html": html, "content_text": "Real text of the post"}],
    }
    (entry,) = parse_feed(json.dumps(doc).encode(), FEED_URL, now=NOW).entries
    assert entry.content == "<p>Real text of the post</p>"
    assert entry.title == "Real text of the post"


def test_json_feed_html_with_only_an_image_is_still_the_content() -> None:
    html = '<p><img src="https://blog.example.org/i.jpg"></p>'
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "T",
        "items": [{"id": "1", "content_html": html, "content_text": "A photo"}],
    }
    (entry,) = parse_feed(json.dumps(doc).encode(), FEED_URL, now=NOW).entries
    assert entry.content is not None and "<img" in entry.content
