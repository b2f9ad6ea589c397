"""Date bugs found in session 27 (dates and XHTML bases): each test is a user-visible
failure that was fixed, checked in every format (RSS on the fast path and feedparser's,
Atom, JSON Feed)."""

from __future__ import annotations

import time

import pytest
from test_parse_s27 import NOW, dated_in

from aggregator.parse import parse_feed

FORMS = ["rss-fast", "rss-feedparser", "atom", "json"]


@pytest.mark.parametrize(
    "value", ["Sat, 15 Jun 2024", "15 Jun 2024", "Jun 15 2024", "June 15th, 2024", "15 Juni 2024"]
)
@pytest.mark.parametrize("form", FORMS)
def test_a_day_without_a_time_is_midnight_in_every_format(value: str, form: str) -> None:
    # RSS and Atom read a day alone as midnight UTC; the JSON Feed reader found no date
    # in it, and the same story sorted by when it was first seen.
    midnight = "2024-06-15T00:00:00+00:00"
    assert dated_in(form, value) == (midnight, midnight)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("2024-06-15T10:00:00-04:00 EDT", "2024-06-15T14:00:00+00:00", id="iso-edt"),
        pytest.param("2024-06-15T10:00:00+02:00 CEST", "2024-06-15T08:00:00+00:00", id="iso-cest"),
        pytest.param("2024-06-15T10:00:00Z UTC", "2024-06-15T10:00:00+00:00", id="iso-z-utc"),
        pytest.param("2024-06-15 10:00:00 -0400 EDT", "2024-06-15T14:00:00+00:00", id="php-O-T"),
        # the offset is what the publisher's clock says; a name contradicting it is ignored
        pytest.param(
            "2024-06-15T10:00:00+00:00 EDT", "2024-06-15T10:00:00+00:00", id="offset-wins"
        ),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_zone_name_after_the_offset_is_ignored(value: str, iso: str, form: str) -> None:
    # PHP's "c T" and "Y-m-d H:i:s O T" write the offset, then the zone's name: the JSON
    # Feed reader (and, after a space before the offset, every reader) found no date.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Sat, 15 Jun 2024 10.00.00 GMT", "2024-06-15T10:00:00+00:00", id="hms"),
        pytest.param("15 Jun 2024 10.30 +0200", "2024-06-15T08:30:00+00:00", id="hm-offset"),
        pytest.param("Sat, 15 Jun 2024 9.05 pm CEST", "2024-06-15T19:05:00+00:00", id="pm"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_time_written_with_dots_is_read(value: str, iso: str, form: str) -> None:
    # "10.00.00", as Finnish, Danish or Italian locales write a time: the JSON Feed reader
    # (the email module) read it, feedparser found no date for RSS and Atom.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param(
            "Tuesday, March 5th, 2024 at 10:00 AM", "2024-03-05T10:00:00+00:00", id="wordpress"
        ),
        pytest.param("March 5, 2024 at 10:00 pm EST", "2024-03-06T03:00:00+00:00", id="pm-est"),
        pytest.param("5 March 2024 at 10:00", "2024-03-05T10:00:00+00:00", id="day-first"),
        pytest.param("March 5, 2024 @ 10:00 am", "2024-03-05T10:00:00+00:00", id="at-sign"),
        pytest.param("March 5, 2024, 10:00 AM", "2024-03-05T10:00:00+00:00", id="comma"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_at_between_the_day_and_the_time_is_read(value: str, iso: str, form: str) -> None:
    # "F j, Y \a\t g:i a", as WordPress themes print a date: no reader found one.
    assert dated_in(form, value) == (iso, iso)


def atom_inner_bases(div_base: str = "") -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>x</id>'
        "<updated>2024-01-01T00:00:00Z</updated><entry><title>e</title><id>y</id>"
        '<updated>2024-01-01T00:00:00Z</updated><link href="https://blog.example.org/a"/>'
        f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"{div_base}>'
        '<p xml:base="https://cdn.example.com/posts/"><a href="one.html">one</a>'
        '<span xml:base="sub/"><img src="x.png"/></span></p><a href="two.html">two</a>'
        "</div></content></entry></feed>"
    ).encode()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize(
    ("div_base", "outer"),
    [
        ("", "https://feeds.example.org/"),
        (' xml:base="https://e.org/blog/"', "https://e.org/blog/"),
    ],
    ids=["feed-url", "div-base"],
)
def test_xml_base_on_an_element_inside_xhtml_content_resolves_its_links(
    div_base: str, outer: str, fast: bool
) -> None:
    # An xml:base on an element inside Atom XHTML content applies to the links in that
    # element (and nests): they were resolved against the content's own base, links to
    # pages that do not exist.
    body = atom_inner_bases(div_base)
    (entry,) = parse_feed(body, "https://feeds.example.org/atom.xml", fast=fast, now=NOW).entries
    cdn = "https://cdn.example.com/posts/"
    assert entry.content == (
        f'<p><a href="{cdn}one.html" rel="noopener noreferrer">one</a>'
        f'<span><img src="{cdn}sub/x.png"></span></p>'
        f'<a href="{outer}two.html" rel="noopener noreferrer">two</a>'
    )


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param(
            "2024-06-15T10:00:00+02:00[Europe/Berlin]", "2024-06-15T08:00:00+00:00", id="java"
        ),
        pytest.param("2024-06-15T10:00:00Z[UTC]", "2024-06-15T10:00:00+00:00", id="utc"),
        pytest.param(
            "2024-06-15T10:00:00.5-04:00[America/New_York][u-ca=iso8601]",
            "2024-06-15T14:00:00+00:00",
            id="rfc9557-tags",
        ),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_bracketed_zone_after_the_offset_is_ignored(value: str, iso: str, form: str) -> None:
    # Java's ZonedDateTime.toString() and RFC 9557 put the zone's id in brackets after
    # the offset: the JSON Feed reader found no date in it.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Sat, 15th Jun 2024 10:00:00 GMT", "2024-06-15T10:00:00+00:00", id="rfc822"),
        pytest.param("1st June 2024 10:00 BST", "2024-06-01T09:00:00+00:00", id="bst"),
        pytest.param("Saturday 22nd June 2024", "2024-06-22T00:00:00+00:00", id="day-alone"),
        pytest.param("3rd of June, 2024 at 9:30 pm", "2024-06-03T21:30:00+00:00", id="of"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_a_day_written_as_an_ordinal_before_the_month_is_read(
    value: str, iso: str, form: str
) -> None:
    # "15th June 2024", as British sites print a date (PHP's "jS F Y"): no reader found
    # one, though "June 15th, 2024" was read.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("June 15, 2024 10:00\u202fPM", "2024-06-15T22:00:00+00:00", id="nnbsp"),
        pytest.param("Sat, 15 Jun 2024 9:05\u202fpm GMT", "2024-06-15T21:05:00+00:00", id="rfc822"),
        pytest.param("2024-06-15 10:00:00\u00a0PM", "2024-06-15T22:00:00+00:00", id="nbsp"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_pm_after_a_no_break_space_is_read(value: str, iso: str, form: str) -> None:
    # ICU 72 (Node's and Java's toLocaleString, macOS) writes U+202F before "PM": every
    # reader dropped the "PM", and an evening story was dated twelve hours early.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        pytest.param("Sat Jun 15 10:00:00 2024 +0200", "2024-06-15T08:00:00+00:00", id="offset"),
        pytest.param("Sat Jun  5 10:00:00 2024 -0400", "2024-06-05T14:00:00+00:00", id="minus"),
        pytest.param("Sat Jun 15 10:00:00 2024 GMT", "2024-06-15T10:00:00+00:00", id="gmt"),
        pytest.param("Sat Jun 15 10:00:00 2024 CEST", "2024-06-15T08:00:00+00:00", id="cest"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_asctime_with_the_zone_after_the_year_is_read(value: str, iso: str, form: str) -> None:
    # C's asctime with the zone after it ("%a %b %d %H:%M:%S %Y %z"): feedparser took
    # "+0200" for the year (the year 200, a story sorted below all others) or found no
    # date; the JSON Feed reader read it.
    assert dated_in(form, value) == (iso, iso)


@pytest.mark.parametrize(
    "value", ["Sat, 15 Jun 2024 10:00:00.123 +0200", "15 June 2024 10:00:00.5 CEST"]
)
@pytest.mark.parametrize("form", FORMS)
def test_a_fraction_of_a_second_in_an_rfc822_date_is_dropped(value: str, form: str) -> None:
    # as after an ISO date: no reader found a date in "10:00:00.123 +0200"
    assert dated_in(form, value) == ("2024-06-15T08:00:00+00:00",) * 2


def test_a_long_value_with_dots_is_read_in_linear_time() -> None:
    # the pattern for a time with dots tried every split of the value: 36 kB took ~9 s
    started = time.monotonic()
    assert dated_in("json", "a 2024 1." * 4000) == (None, None)
    assert time.monotonic() - started < 1  # ~0.01 s
