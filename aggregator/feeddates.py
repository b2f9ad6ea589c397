"""Dates in feeds -> timezone-aware UTC datetimes, for both readers: :mod:`aggregator.parse`
(RSS, Atom, through feedparser or the fast path) and :mod:`aggregator.jsonfeed`.

Owns: zone names RFC 822 does not define, read at their offset; JSON Feed's RFC 3339 dates
(a leap second as the next second, :data:`_LEAP_SECOND`; a fraction of a second
dropped, as feedparser drops it for RSS and Atom), the RFC 822 ones some
publishers write instead, W3C-DTF's partial ones (``2024-05``, :data:`_PARTIAL`) and ISO
dates with a month or day of one digit (``2024-6-5``, :data:`_UNPADDED_DATE`), read as
feedparser reads them; feedparser's UTC ``struct_time`` as a
datetime; the refusal of a date later than the latest one trusted (the caller's time of
parsing plus ``parse.FUTURE_SLACK``), which then counts as missing; and, for feedparser,
the minutes of an ISO basic offset (``+0530``, :data:`_BASIC_OFFSET`) and the refusal of
what its own parsers would make another date of (:data:`_NOT_A_DATE`, :data:`_YEAR_ONLY`,
:func:`_moved_by_iso8601`: ``2024-13``, ``2024-02-30``, ``T25:00``; a time without a day,
:data:`_TIME_WITHOUT_DAY`), with ISO 8601's week
dates (:data:`_WEEK`) read as the JSON Feed reader reads them.
For both readers, a month named in another language (``Di, 15 Okt 2024``,
:data:`_MONTH_NAMES`) is read as the English one, a date written year first with ``/``
or ``.``, or ``年月日`` (:data:`_SLASHED`), and ISO 8601's basic format
(``20240615T100000Z``, :data:`_BASIC`) and ordinal dates (``2024-166``, :data:`_ORDINAL`)
are read as the ISO date they mean, an offset of
the hour alone (``+2``, ``-05``) or with a colon after an RFC 822 date (``+02:00``) at
that offset (:data:`_SHORT_OFFSET`), a time on the twelve-hour clock at its hour
(:data:`_TWELVE_HOUR`: ``10:00 PM`` is 22:00), RFC 850's ``06-Nov-94`` as RFC 822's
``06 Nov 1994`` (:data:`_DASHED`), a date written month first (``January 15, 2024``,
:data:`_MONTH_FIRST`) as ``15 Jan 2024``, a zone between the time and the year (Java's
``Sat Jun 15 10:00:00 CEST 2024``, :data:`_ZONE_BEFORE_YEAR`) at its offset, an IANA
zone's identifier (``2024-03-01 10:00 Europe/Berlin``, :data:`_IANA_ZONE`) at the offset
it had that day, and a
two-digit year as RFC 2822 reads it
(:data:`_SHORT_YEAR`: ``75`` is 1975, ``24`` 2024). A day with no time (``Sat, 15 Jun
2024``) is midnight UTC for both (:data:`_DAY_ALONE`).

RFC 822 dates know a handful of North American zone names; feedparser (and the email
module, for JSON Feed) read any other name as UTC and refuse ``GMT+2``. Publishers write
``CEST``, ``IST``, ``AEST``, ``JST``... and ``GMT+2``: :data:`_ZONE_HOURS` names the common
ones (where a name is ambiguous, the reading news feeds mean: ``IST`` is India, ``BST``
British summer time) and :func:`_zoned_date` turns them into numeric offsets for
feedparser's own RFC 822 and W3C-DTF parsers, and RFC 822's own names too when they
follow an ISO date (``2024-05-01 14:00:00 EDT``), where feedparser dropped them, and
feedparser's ``ET``, ``PT``... for the email module, which read them as UTC. A name
it does not know stays UTC, as before. A date without a zone is UTC (feedparser lost it
when it had a day name).

Importing this module registers :func:`_zoned_date` with feedparser, for the whole process
(the fast path reads dates with feedparser's handlers too); parse.py imports it before any
feed is parsed. Must not: do any I/O, or know about entries, feeds or their formats.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
from feedparser.datetimes.iso8601 import _iso8601_matches
from feedparser.datetimes.rfc822 import _parse_date_rfc822, timezone_names
from feedparser.datetimes.w3dtf import _parse_date_w3dtf

# Zone names RFC 822 does not define (it has UT, GMT, Z, the North American ones and the
# military letters, which feedparser and the email module know), in hours east of UTC.
_ZONE_HOURS = {
    "utc": 0, "wet": 0, "west": 1, "bst": 1, "ist": 5.5, "cet": 1, "cest": 2, "met": 1,
    "mest": 2, "eet": 2, "eest": 3, "msk": 3, "sast": 2, "cat": 2, "eat": 3, "wat": 1,
    "pkt": 5, "npt": 5.75, "ict": 7, "wib": 7, "hkt": 8, "sgt": 8, "pht": 8, "awst": 8,
    "jst": 9, "kst": 9, "acst": 9.5, "acdt": 10.5, "aest": 10, "aedt": 11, "nzst": 12,
    "nzdt": 13, "hst": -10, "akst": -9, "akdt": -8, "nst": -3.5, "ndt": -2.5, "brt": -3,
    "art": -3,
}  # fmt: skip
#: RFC 822's own names of two to four letters (``GMT``, ``EST``, ``PDT``...) and those
#: feedparser adds (``ET``, ``PT``...), in hours east of UTC. feedparser reads them only in
#: an RFC 822 date; after an ISO date, as PHP's ``Y-m-d H:i:s T`` writes them, it dropped
#: the zone (``2024-05-01T14:00:00 PDT`` was 14:00 UTC) and, with a space before the time,
#: the time too (``2024-05-01 14:00:00 EDT`` was midnight UTC). The email module (JSON
#: Feed) read ``ET`` and ``PT`` as UTC. :func:`_zoned` writes them as offsets like the
#: names above, for both readers. (Military letters, whose sign RFC 1123 calls unreliable,
#: are left as they were.)
_RFC822_ZONE_HOURS = {name: hours for name, hours in timezone_names.items() if len(name) >= 2}
_ZONED = re.compile(
    r"(?P<stamp>.*\d)\s*(?:(?P<name>[A-Za-z]{2,4})|(?:GMT|UTC)(?P<sign>[+-])(?P<h>\d{1,2})"
    r"(?::?(?P<m>[0-5]\d))?)\s*",
    re.ASCII,
)
#: A time followed by an offset of three digits, its hour unpadded (``10:00:00 -500``, as
#: a formatter printing the hour with ``%d`` writes it): feedparser took the first two
#: digits for the hour, so ``-500`` was -50 hours and ``+530`` +53, moving the date two
#: days. The email module (JSON Feed) read them as -05:00 and +05:30; so does :func:`_zoned`.
_UNPADDED_OFFSET = re.compile(
    r"(?P<stamp>.*\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?)\s*(?P<sign>[+-])(?P<h>\d)(?P<m>[0-5]\d)\s*",
    re.ASCII,
)
#: What feedparser's last resort, its ISO 8601 reader, makes another date of: a year of
#: five digits or more (``10000-01-01`` was 2010-11-01), a Unix time in seconds or
#: milliseconds (``1718431200`` was 2017-07-03), or (read by its RFC 822 and W3C-DTF
#: parsers) an offset of a day or more (``+99:99`` moved a date four days). Python's
#: parsers, which the JSON Feed reader uses, find no date in them; nor does this module.
_NOT_A_DATE = re.compile(
    r"\s*(?:[+-]?\d{5,}-.*|\d{9,10}|\d{13}|.*\d\s*[+-](?:2[4-9]|[3-9]\d):?\d\d)\s*",
    re.ASCII | re.DOTALL,
)
#: A date handler's answer for "no date": feedparser takes the first answer and has no
#: other way to be told. No datetime has a year 0, so :func:`_struct_time_utc` reads it
#: as missing, as it reads feedparser's own year 0 (``0000-01-01``).
_NO_DATE = (0, 1, 1, 0, 0, 0, 0, 1, 0)
_UNZONED_RFC822 = re.compile(
    r"[A-Za-z]{3,9},?\s+\d{1,2}\s+[A-Za-z]{3,9}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?", re.ASCII
)
#: An ISO date and time with ISO 8601's basic offset (``+0530``, as Java's ``Z`` and PHP's
#: ``O`` write it): feedparser's W3C-DTF parser reads the minutes from the offset's fifth
#: character on, so ``+0530`` was +05:00 and ``+0545`` +05:04 (India, Nepal,
#: Newfoundland, central Australia). Written ``+05:30``, it reads them right;
#: :func:`_rewritten` writes it so (and a space before it gone: Python's parser found no
#: date in ``10:00:00.5 +0200``).
_BASIC_OFFSET = re.compile(
    r"(?P<stamp>\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)"
    r"\s*(?P<sign>[+-])(?P<h>\d{2})(?P<m>\d{2})\s*",
    re.ASCII,
)
#: A date feedparser's ISO 8601 reader, its last resort, reads only the year of, taking
#: the month from the clock: four digits followed by neither a digit nor "-" (``2024/06/15``,
#: ``2024.06.15``, ``2024年6月15日`` were all the 1st of the current month of 2024; they are
#: read as they say now, :data:`_SLASHED`, and what remains is ``2024/06``, ``2024/13/45``...).
_YEAR_ONLY = re.compile(r"\d{4}(?![\d-])", re.ASCII)
#: A date written year, month, day with ``/`` or ``.`` between (``2024/06/15``,
#: ``2024.6.15 10:00 CEST``, as ``Y/m/d`` and Japanese or Chinese sites write it) or as
#: ``2024年6月15日``: feedparser read only its year (:data:`_YEAR_ONLY`) and Python's parsers
#: nothing. With four digits first it can only be year, month, day; :func:`_rewritten`
#: writes it as the ISO date, and whatever follows it (a time, a zone) is read as after
#: one. A date with the day or month first (``15/06/2024``, ``06/15/2024``) is not read:
#: which is which would be a guess.
_SLASHED = re.compile(
    r"\s*(?P<y>\d{4})(?:(?P<sep>[/.])|年)(?P<m>\d{1,2})(?(sep)(?P=sep)|月)(?P<d>\d{1,2})(?(sep)|日)"
    r"(?P<rest>(?:[Tt\s].*)?)",
    re.ASCII | re.DOTALL,
)
#: ISO 8601's basic format, a date and time without ``-`` or ``:`` (``20240615T100000Z``,
#: ``20240615T1000+0530``, as iCalendar and some Java and PHP formatters write it), or only
#: its date or its time so (``20240615 10:00:00``, ``2024-06-15T100000Z``): feedparser's
#: ISO 8601 reader read the date and dropped the time and the offset (midnight UTC);
#: Python's, for JSON Feed, read them. :func:`_rewritten` writes it in the extended
#: format, with whatever follows the time (a zone, an offset). A basic date before a space
#: needs a time with ``:`` after it.
_BASIC = re.compile(
    r"\s*(?P<y>\d{4})(?P<dash>-?)(?P<mo>\d{2})(?P=dash)(?P<d>\d{2})(?:[Tt]|\s+(?=\d\d:))"
    r"(?P<time>(?P<H>\d{2})(?::?(?P<M>\d{2})(?::?(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?)?)"
    r"(?P<rest>(?:\D.*)?)",
    re.ASCII | re.DOTALL,
)
#: ISO 8601's ordinal dates, the year and the day of the year (``2024-166``,
#: ``2024-012T10:00:00Z``): feedparser's W3C-DTF parser read the day as a month
#: (``2024-012`` was December 1st, ``2024-001`` January 1st by chance, ``2024-100`` no
#: date) and Python's parser found no date. :func:`_rewritten` writes the calendar date
#: it names, whatever follows (a time, a zone) kept; a day the year does not have
#: (``2023-366``, ``2024-000``) is left, no date for either reader.
_ORDINAL = re.compile(r"\s*(?P<y>\d{4})-(?P<o>\d{3})(?P<rest>(?:[Tt\s].*)?)", re.ASCII | re.DOTALL)
#: An RFC 822 date with a two-digit year (``Sat, 15 Jun 75 10:00:00 GMT``, ``15 Jun 24``):
#: feedparser made 00-89 20xx (so ``75`` was 2075, then refused as future) and the email
#: module (JSON Feed) made 00-68 20xx. :func:`_rewritten` writes the year as RFC 2822
#: (section 4.3) reads it, for both readers: 00-49 is 20xx, 50-99 19xx. So is such a
#: year padded to four digits (``0024``, as a formatter's ``yyyy`` writes the year 24 a
#: two-digit year was taken for): feedparser dated the story in the year 24, the email
#: module in 2024. But ``0001``, Go's zero time (Hugo's ``Mon, 01 Jan 0001``, a page
#: without a date), is the year 1 as written.
_SHORT_YEAR = re.compile(
    r"(?P<head>\s*(?:[A-Za-z]{3,9},?\s+)?(?:\d{1,2}\s+[A-Za-z]{3,9}|[A-Za-z]{3,9}\s+\d{1,2}),?\s+)"
    r"(?:00(?!01\b))?(?P<yy>\d{2})(?P<rest>(?:\s.*)?)",
    re.ASCII | re.DOTALL,
)
#: A time followed by an offset of the hour alone (``10:00:00 +2``, ``-05``) or of the hour
#: and a colon (``Sat, 15 Jun 2024 10:00:00 +02:00``, ``-3:30``): feedparser found no date
#: in the first (after an ISO date it dropped the offset), and the email module (JSON Feed)
#: read ``+2`` and ``+02`` as two minutes and ignored an offset with a colon, reading UTC.
#: :func:`_rewritten` writes it as RFC 822's ``+0200``, which every parser here reads (and
#: refuses at a day or more, :data:`_NOT_A_DATE`); after an ISO date (:data:`_ISO_DATE`),
#: as RFC 3339's ``+02:00``, which both readers read after a fraction of a second too.
_SHORT_OFFSET = re.compile(
    r"(?P<stamp>.*\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?)\s*"
    r"(?P<sign>[+-])(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?\s*",
    re.ASCII | re.DOTALL,
)

#: A fraction of a second written with a comma, as ISO 8601 allows (``10:00:00,5+02:00``):
#: feedparser's W3C-DTF parser found no date in it and its ISO 8601 reader dropped the
#: offset after it (10:00 UTC, not 08:00) or, after a space, the time (midnight).
#: :func:`_rewritten` writes it with a dot, for both readers.
_COMMA_FRACTION = re.compile(r"(?<=\d:[0-5]\d:[0-6]\d),(?=\d)", re.ASCII)
#: A fraction of a second after an RFC 822 date's time (``Sat, 15 Jun 2024 10:00:00.123
#: +0200``, as some JavaScript and .NET formatters write it): no reader found a date in
#: it. :func:`_rewritten` drops it, as both readers drop one after an ISO date.
_RFC822_FRACTION = re.compile(r"(?<=[A-Za-z]\s\d{4}\s\d\d:\d\d:\d\d)\.\d+(?=\s|\Z)", re.ASCII)
#: An ISO date first (``2024-06-15``): :func:`_rewritten` writes an offset after it
#: (:data:`_SHORT_OFFSET`, :data:`_BASIC_OFFSET`) as RFC 3339's ``+02:00``, which
#: Python's parser reads after a fraction of a second too (``10:00:00.5+02`` and
#: ``10:00:00.5 +0200`` were no date in JSON Feed).
_ISO_DATE = re.compile(r"\s*\d{4}-\d{1,2}-\d{1,2}", re.ASCII)

#: A time on the twelve-hour clock (``10:00 PM``, ``9:05 p.m.``, ``10:00:30pm``), as
#: publishers' ``g:i A`` and ``%I:%M %p`` write it: every reader here read the hour as on
#: the 24-hour clock and dropped the ``PM`` (or found no date), so an evening story was
#: dated twelve hours early. :func:`_rewritten` writes it on the 24-hour clock; an hour
#: outside 1-12 is left as written.
_TWELVE_HOUR = re.compile(
    r"(?<![\d:])(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?::(?P<s>[0-6]\d))?\s*(?P<half>[AaPp])\.?[Mm]\.?"
    r"(?![A-Za-z])",
    re.ASCII,
)


#: A time written with dots after a date with its month named (``Sat, 15 Jun 2024
#: 10.00.00 GMT``, ``15 Jun 2024 9.05 pm``), as Finnish, Danish or Italian locales write
#: it: the email module (JSON Feed) read it, feedparser found no date for RSS and Atom.
#: :func:`_rewritten` writes it with colons, for both readers. (The date before it is
#: bounded, so a long value is read in linear time.)
_DOTTED_TIME = re.compile(
    r"(?P<head>.{0,40}?[A-Za-z].{0,40}?\d{2,4},?\s+)(?P<h>\d{1,2})\.(?P<m>[0-5]\d)"
    r"(?:\.(?P<s>[0-6]\d))?"
    r"(?P<rest>(?:\s.*)?)",
    re.ASCII | re.DOTALL,
)


#: "at", "@" or a comma between the year and the time (``Tuesday, March 5th, 2024 at 10:00
#: AM``, ``March 5, 2024 @ 10:00 am``, ``March 5, 2024, 10:00``), as WordPress themes'
#: ``F j, Y \a\t g:i a`` print a date: no reader found a date in it. :func:`_rewritten`
#: writes a space.
_AT_TIME = re.compile(r"(?<=\d{4})(?:\s*,)?\s+(?:(?i:at)\s+|@\s*)?(?=\d{1,2}[:.][0-5]\d)", re.ASCII)


#: A space other than ASCII's (U+202F, which ICU 72 writes before "PM" in Node's and
#: Java's dates, ``10:00\u202fPM``; U+00A0): the patterns here, ASCII, did not see it
#: as one, and every reader dropped the "PM" (twelve hours early). :func:`_rewritten`
#: writes it as a space.
_UNICODE_SPACE = re.compile(r"(?![\t\n\r ])\s")


def _24_hour(match: re.Match[str]) -> str:
    hour = int(match["h"])
    if not 1 <= hour <= 12:
        return match.group()
    hour = hour % 12 + (12 if match["half"] in "Pp" else 0)
    return f"{hour:02d}:{match['m']}:{match['s'] or '00'}"


#: RFC 850's date, its day, month and year joined by "-" (``Sunday, 06-Nov-94 08:49:37
#: GMT``, HTTP's obsolete form, and PHP's ``DATE_COOKIE`` and ``DATE_RFC850``, which some
#: feeds use for ``pubDate``): the email module (JSON Feed) read it, feedparser found no
#: date. :func:`_rewritten` writes it with spaces, as RFC 822 (then a two-digit year as
#: :data:`_SHORT_YEAR` reads it).
_DASHED = re.compile(
    r"(?<![\w-])(?P<d>\d{1,2})-(?P<m>[A-Za-z]{3,9})-(?P<y>\d{4}|\d{2})(?![\w-])", re.ASCII
)

#: ISO 8601's week dates (``2024-W10``, ``2024-W10-3``, ``2024W10``, with a time or not):
#: feedparser's ISO 8601 reader read only their year and took the month from the clock
#: (``2024-W10`` was the 1st of the current month of 2024); the JSON Feed reader read them
#: (Python's ``fromisoformat``) as the Monday, or the day given, of that week.
#: :func:`_zoned_date` reads them as :func:`_iso_utc` does, and a week or day that does
#: not exist (``2024-W53``, ``2024-W10-8``) is no date.
_WEEK = re.compile(r"\s*\d{4}-?W\d\d(?:-?\d)?(?:[Tt].*)?", re.ASCII | re.DOTALL)

#: A time after a year, or a year and month, and no day (``2024-01T10:00:00Z``,
#: ``2024-1 10:00``, ``2024T10:00Z``): ISO 8601 and W3C-DTF put a time only after a
#: full date. feedparser's W3C-DTF parser made it the 1st (of January), a day the
#: publisher did not name; the JSON Feed reader found no date. :func:`_zoned_date`
#: finds none either: whether the day (or the month) was lost or never meant, the 1st
#: is a guess, and the time of first sight a better one.
_TIME_WITHOUT_DAY = re.compile(r"\s*\d{4}(?:-\d{1,2})?(?:[Tt]|\s+)\d.*", re.ASCII | re.DOTALL)


def _trusted(value: datetime | None, latest: datetime) -> datetime | None:
    """``value``, unless it is later than ``latest`` (see parse.FUTURE_SLACK)."""
    return None if value is None or value > latest else value


def _struct_time_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    try:  # feedparser normalises dates to a UTC struct_time
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


#: RFC 3339's leap second (``2016-12-31T23:59:60Z``, which its §5.6 allows), which a
#: datetime cannot hold: :func:`_iso_utc` reads it as the next second, as feedparser
#: reads it for RSS and Atom (the JSON Feed reader found no date in it).
_LEAP_SECOND = re.compile(r"(?<=\d-\d\d[Tt ]\d\d:\d\d:)60(?!\d)", re.ASCII)


#: W3C-DTF's partial dates, a year or a year and month (``2024``, ``2024-05``, ``2024-5``):
#: feedparser reads them (RSS's ``dc:date``, Atom) as the first day of the year or month,
#: UTC; Python's parsers found no date in them, and a JSON Feed item had none.
#: :func:`_iso_utc` reads them as feedparser does (a month outside 1-12 is no date).
_PARTIAL = re.compile(r"\s*(?P<y>\d{4})(?:-(?P<m>\d{1,2}))?\s*", re.ASCII)


#: An ISO date with a month or day of one digit (``2024-6-15``, ``2024-01-1T10:00:00Z``,
#: as publishers' ``Y-n-j`` writes them): feedparser reads them for RSS and Atom (its
#: W3C-DTF parser takes one or two digits); Python's parser found no date, and a JSON
#: Feed item had none. With the year first the order is ISO's, year, month, day:
#: :func:`_iso_utc` writes the two digits, whatever follows (a time, a zone) kept.
_UNPADDED_DATE = re.compile(
    r"(?P<y>\s*\d{4})-(?=\d-|\d\d-\d(?!\d))(?P<m>\d{1,2})-(?P<d>\d{1,2})(?P<rest>(?:[Tt\s].*)?)",
    re.ASCII | re.DOTALL,
)


#: An RFC 822 day with no time (``Sat, 15 Jun 2024``, ``Jun 15 2024``, and ``June 15th,
#: 2024`` once :func:`_rewritten`): feedparser reads it for RSS and Atom as midnight UTC;
#: the email module found no date in it, and a JSON Feed item had none. :func:`_iso_utc`
#: reads it as feedparser does.
_DAY_ALONE = re.compile(
    r"\s*(?:[A-Za-z]{2,9}\.?,?\s+)?(?:(?P<d>\d{1,2})\s+(?P<m>[A-Za-z]{3,9})"
    r"|(?P<m2>[A-Za-z]{3,9})\s+(?P<d2>\d{1,2}))\s+(?P<y>\d{4})\s*",
    re.ASCII,
)


def _iso_utc(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    if (partial := _PARTIAL.fullmatch(value)) is not None:
        try:
            return datetime(int(partial["y"]), int(partial["m"] or 1), 1, tzinfo=UTC)
        except ValueError:  # year 0, month 0 or 13...
            return None
    parsed: datetime | None = None
    value = _rewritten(value)
    if (unpadded := _UNPADDED_DATE.fullmatch(value)) is not None:
        month, day = int(unpadded["m"]), int(unpadded["d"])
        value = f"{unpadded['y']}-{month:02d}-{day:02d}{unpadded['rest']}"
    if (alone := _DAY_ALONE.fullmatch(value)) is not None:
        named = _month(alone["m"] or alone["m2"])
        try:
            d = int(alone["d"] or alone["d2"])
            return None if named is None else datetime(int(alone["y"]), named, d, tzinfo=UTC)
        except ValueError:  # 31 Apr, year 0...
            return None
    if (leap := _LEAP_SECOND.search(value)) is not None:
        value = f"{value[: leap.start()]}59{value[leap.end() :]}"
    for text in (*_zoned(value), value):  # a zone name the email module reads as UTC first
        try:
            parsed = datetime.fromisoformat(text.strip().upper())  # RFC 3339 per JSON Feed
            break
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)  # some publishers use RFC 822 dates
                break
            # OverflowError: a number of 20 digits where the year or the hour goes (the
            # email module's datetime() raised it, and the whole JSON Feed was lost)
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
    if parsed is None:
        return None
    try:
        if leap is not None:
            parsed += timedelta(seconds=1)
        parsed = parsed.replace(microsecond=0)  # whole seconds, as feedparser reads them
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


#: The forms nearly every feed writes, which both readers read right: RFC 822 (English
#: names) with a numeric offset under a day or GMT / UT / Z, and RFC 3339.
#: :func:`_rewritten` returns them at once: its four patterns doubled the time a date
#: took (~3 to ~6 µs).
_STANDARD = re.compile(
    r"(?:(?i:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} (?i:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep"
    r"|Oct|Nov|Dec) (?!00)\d{4} \d\d:\d\d(?::\d\d)?"
    r" (?:[+-](?:0\d|1[0-3])[0-5]\d|GMT|UTC?|Z)"
    r"|\d{4}-\d\d-\d\d[Tt]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[Zz]|[+-](?:0\d|1[0-3]):[0-5]\d)",
    re.ASCII,
)


#: Month names of other languages, in RFC 822's place (``Di, 15 Okt 2024 10:00:00
#: +0200``, ``mar., 15 oct. 2024``), as PHP's ``strftime`` and ``date`` write them under a
#: German, French, Spanish, Italian, Dutch or Portuguese locale: neither reader found a
#: date in them, and the story had none. Only the names English does not share (feedparser
#: reads a month by its first three letters: ``Juni``, ``mars``, ``sept.`` already read,
#: but not after a day name of another language, ``Lun, 15 Jan 2024``, nor ``Tue,15 Jan``).
_MONTH_NAMES = {
    name: month
    for month, names in enumerate(
        (
            "ene enero gen gennaio janv janvier januari janeiro",
            "févr fév février febrero febbraio februari fev fevereiro",
            "mär mrz märz marzo mrt maart março",
            "avr avril abr abril aprile",
            "mai maggio mag mayo mei maio",
            "juin junio giu giugno junho",
            "juil juillet julio lug luglio juli julho",
            "août aout ago agosto augustus",
            "set septiembre settembre setembro",
            "okt oktober octubre ott ottobre out outubro",
            "noviembre novembre novembro",
            "déc dez dezember décembre dic diciembre dicembre dezembro",
        ),
        start=1,
    )
    for name in names.split()
}
_ENGLISH_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip
_ENGLISH = {name.lower(): month for month, name in enumerate(_ENGLISH_MONTHS, start=1)}
#: An RFC 822 date whose month (and day) may be named in another language (see
#: :data:`_MONTH_NAMES`): a day name (any, with "." or ",", dropped: it says nothing the
#: date does not), the day ("15" or "15.", or "15th" or "15th of", as British sites write
#: it: no reader found a date in ``15th June 2024``), the month and a four-digit year.
_NAMED_MONTH = re.compile(
    r"\s*(?:[^\W\d_]{2,}\.?,?\s*)?(?P<d>\d{1,2})(?:\.|(?i:st|nd|rd|th)(?:\s+(?i:of))?)?\s+"
    r"(?P<m>[^\W\d_]{3,9})\.?,?\s+"
    r"(?P<rest>\d{4}(?!\d).*)",
    re.DOTALL,
)

#: A date written month first, as US sites print it (``January 15, 2024 10:00 AM``,
#: ``Jun 15, 2024``, ``Saturday, June 15th, 2024``): feedparser found no date in it (nor,
#: with a day name or ``15th``, the email module), and the story had none. The month is
#: named, so the order is certain; :func:`_rewritten` writes it as RFC 822's ``15 Jan
#: 2024 ...``, whatever follows the year (a time, a zone) kept. A comma or ``st``, ``nd``,
#: ``rd``, ``th`` after the day is required: ``Jun 15 2024`` was read already.
_MONTH_FIRST = re.compile(
    r"\s*(?:[^\W\d_]{2,}\.?,?\s+)?(?P<m>[^\W\d_]{3,9})\.?\s+(?P<d>\d{1,2})(?:(?:st|nd|rd|th),?|,)\s*"
    r"(?P<rest>\d{4}(?!\d).*)",
    re.DOTALL,
)

#: A zone between the time and the year, as Java's ``Date.toString()`` and Unix date(1)
#: write it (``Sat Jun 15 10:00:00 CEST 2024``): feedparser's asctime reader read only
#: RFC 822's names there, a name of :data:`_ZONE_HOURS` (``CEST``, ``JST``, ``IST``) as
#: UTC, hours off, and the email module (JSON Feed) read them all as UTC. :func:`_rewritten`
#: writes it as RFC 822 (``15 Jun 2024 10:00:00 CEST``), where the zone is read. An IANA
#: zone's identifier there (``Fri Mar  1 10:00:00 Europe/Berlin 2024``: date(1) with
#: ``TZ=Europe/Berlin``) was read as UTC, an hour or more off: it is written after the
#: year too, where :data:`_IANA_ZONE` reads it.
_ZONE_BEFORE_YEAR = re.compile(
    r"\s*(?:[A-Za-z]{3,9},?\s+)?(?P<m>[A-Za-z]{3,9})\s+(?P<d>\d{1,2})\s+"
    r"(?P<time>\d{1,2}:\d\d(?::\d\d)?)\s+(?P<zone>[A-Za-z]{2,5}(?:[+-]\d{1,2}(?::?\d\d)?)?"
    r"|[A-Za-z][\w+-]{0,13}(?:/[\w+-]{1,14}){1,2})\s+"
    r"(?P<y>\d{4})\s*",
    re.ASCII,
)

#: A zone after the year of C's asctime (``Sat Jun 15 10:00:00 2024 +0200``, as
#: ``%a %b %d %H:%M:%S %Y %z`` writes it): feedparser's asctime reader wants the zone
#: before the year, and took ``+0200`` for the year (the year 200) or found no date; the
#: email module (JSON Feed) read it. So is asctime without its day name (``Nov  6
#: 08:49:37 1994``, ``%b %e %H:%M:%S %Y``), zone or not: feedparser found no date in it.
#: :func:`_rewritten` writes it as RFC 822.
_ZONE_AFTER_YEAR = re.compile(
    r"\s*(?:[A-Za-z]{3,9},?\s+)?(?P<m>[A-Za-z]{3,9})\s+(?P<d>\d{1,2})\s+"
    r"(?P<time>\d{1,2}:\d\d(?::\d\d)?)\s+(?P<y>\d{4})"
    r"(?:\s+(?P<zone>[A-Za-z]{1,5}(?:[+-]\d{1,2}(?::?\d\d)?)?|[+-]\d{4}))?\s*",
    re.ASCII,
)

#: A comment after the date (``... +0200 (CEST)``), which RFC 822 allows and JavaScript's
#: ``Date.toString()`` writes (``GMT+0900 (Japan Standard Time)``): the email module (JSON
#: Feed) then dropped the offset (nine hours off) or found no date after an ISO date, and
#: every reader read a zone name before one as UTC. :func:`_rewritten` drops it.
_TRAILING_COMMENT = re.compile(r"\s*\([^()]*\)\s*\Z")


#: A zone's name after a numeric offset (``2024-06-15T10:00:00-04:00 EDT``, ``... -0400
#: EDT``), as PHP's ``c T`` and ``O T`` write them: the JSON Feed reader found no date in
#: them, nor, with a space before the offset, did feedparser. Likewise a zone's id in
#: brackets (``2024-06-15T10:00:00+02:00[Europe/Berlin]``), as Java's
#: ``ZonedDateTime.toString()`` and RFC 9557 write it, which the JSON Feed reader found
#: no date in. The offset says it already (and where the two disagree, the offset is the
#: clock's): :func:`_rewritten` drops the name.
_NAME_AFTER_OFFSET = re.compile(
    r"(?P<stamp>.*\d\s*(?:[+-]\d\d:?[0-5]\d|[Zz]))"
    r"(?:\s+(?:[A-Za-z]{2,5}|[A-Za-z][\w+-]*(?:/[\w+-]+)+)|(?:\[[^\[\]]*\])+)\s*",
    re.ASCII | re.DOTALL,
)

#: An IANA zone's identifier after the time and no offset (``2024-03-01 10:00
#: Europe/Berlin``, as PHP's ``e`` writes it, and ``2024-07-01T10:00:00[Europe/Paris]``,
#: RFC 9557's brackets without the offset): feedparser read the time as UTC (an hour or
#: two off, America/* five to eight) and the JSON Feed reader found no date.
#: :func:`_rewritten` writes the offset the zone had at that time of that day (its summer
#: time too), from the system's zone database (or the ``tzdata`` package); a name neither
#: knows is left as it was.
#: An identifier has two or three parts (``America/Argentina/Buenos_Aires``) of at most
#: 14 characters (tz-link.html's rule): a key of many parts made zoneinfo's look-up in the
#: ``tzdata`` package import one module per part, and the parse failed with
#: RecursionError.
_IANA_ZONE = re.compile(
    r"(?P<stamp>.*\d)(?:\s+(?P<zone>[A-Za-z][\w+-]{0,13}(?:/[\w+-]{1,14}){1,2})"
    r"|\[(?P<bracketed>[A-Za-z][\w+-]{0,13}(?:/[\w+-]{1,14}){1,2})\])\s*",
    re.ASCII | re.DOTALL,
)


@functools.lru_cache(maxsize=256)
def _iana_zone(name: str) -> ZoneInfo | None:
    """The zone named ``name`` (:data:`_IANA_ZONE`), or None: unknown names too are kept,
    so a feed repeating one costs one look-up in the zone database."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found, not a key, a directory
        return None


def _iana_offset(text: str) -> str:
    """``text`` with an IANA zone's identifier after its time (:data:`_IANA_ZONE`)
    written as the offset it had then, RFC 822 style (`` +0100``); else as it is."""
    match = _IANA_ZONE.fullmatch(text)
    if match is None:
        return text
    zone = _iana_zone(match["zone"] or match["bracketed"])
    local = _iso_utc(match["stamp"]) if zone is not None else None  # no zone: UTC
    if zone is None or local is None:
        return text
    offset = zone.utcoffset(local.replace(tzinfo=None))
    minutes = round(offset.total_seconds() / 60) if offset is not None else 0
    sign, (hh, mm) = "-" if minutes < 0 else "+", divmod(abs(minutes), 60)
    return f"{match['stamp']} {sign}{hh:02d}{mm:02d}"


def _month(name: str) -> int | None:
    """The month ``name`` names (English, by its first three letters, or
    :data:`_MONTH_NAMES`), or None."""
    return _MONTH_NAMES.get(name.lower()) or _ENGLISH.get(name[:3].lower())


def _rewritten(value: str) -> str:
    """``value`` with a date one of the readers misreads or finds none in
    (:data:`_ORDINAL`, :data:`_SLASHED`, :data:`_BASIC`) written as the ISO date it
    means; one with another language's month or an ordinal day (:data:`_NAMED_MONTH`),
    RFC 850's (:data:`_DASHED`) and one written month first (:data:`_MONTH_FIRST`) or
    with the zone before the year (:data:`_ZONE_BEFORE_YEAR`) or after it in asctime
    (:data:`_ZONE_AFTER_YEAR`) as RFC 822 in English; a
    time on the twelve-hour clock (:data:`_TWELVE_HOUR`) on the 24-hour one (after any
    space, :data:`_UNICODE_SPACE`), a time after "at" (:data:`_AT_TIME`) or written
    with dots (:data:`_DOTTED_TIME`) with colons; a two-digit year
    (:data:`_SHORT_YEAR`) as its four digits, a comma before a fraction of a second
    (:data:`_COMMA_FRACTION`) as a dot (after an RFC 822 date dropped,
    :data:`_RFC822_FRACTION`) and an offset one of them misreads
    (:data:`_SHORT_OFFSET`, :data:`_BASIC_OFFSET`) as ``±hhmm``, or ``±hh:mm`` after an
    ISO date, and a comment or a zone's name after it dropped (:data:`_TRAILING_COMMENT`,
    :data:`_NAME_AFTER_OFFSET`), or an IANA zone's identifier without one written as the
    offset it had (:data:`_IANA_ZONE`), for both readers; ``value`` itself otherwise."""
    if _STANDARD.fullmatch(value):
        return value
    text = value if value.isascii() else _UNICODE_SPACE.sub(" ", value)
    text = _AT_TIME.sub(" ", text)
    if "." in text and (dotted := _DOTTED_TIME.fullmatch(text)) is not None:
        seconds = f":{dotted['s']}" if dotted["s"] else ""
        text = f"{dotted['head']}{dotted['h']}:{dotted['m']}{seconds}{dotted['rest']}"
    text = _TWELVE_HOUR.sub(_24_hour, _COMMA_FRACTION.sub(".", text))
    if "." in text:
        text = _RFC822_FRACTION.sub("", text)
    if text.rstrip().endswith(")"):
        text = _TRAILING_COMMENT.sub("", text)
    if (named := _NAME_AFTER_OFFSET.fullmatch(text)) is not None:
        text = named["stamp"]
    elif "/" in text:
        text = _iana_offset(text)
    if "-" in text:
        text = _DASHED.sub(r"\g<d> \g<m> \g<y>", text)
    if (short := _SHORT_YEAR.fullmatch(text)) is not None:
        yy = int(short["yy"])
        text = f"{short['head']}{yy + (2000 if yy < 50 else 1900)}{short['rest']}"
    if (ordinal := _ORDINAL.fullmatch(text)) is not None and (
        date := _ordinal_date(int(ordinal["y"]), int(ordinal["o"]))
    ):
        text = f"{date}{ordinal['rest']}"
    elif (slashed := _SLASHED.fullmatch(text)) is not None:
        y, m, d = slashed["y"], int(slashed["m"]), int(slashed["d"])
        text = f"{y}-{m:02d}-{d:02d}{slashed['rest']}"
    elif (named := _NAMED_MONTH.fullmatch(text)) is not None and (month := _month(named["m"])):
        text = f"{named['d']} {_ENGLISH_MONTHS[month - 1]} {named['rest']}"
    elif (first := _MONTH_FIRST.fullmatch(text)) is not None and (month := _month(first["m"])):
        text = f"{first['d']} {_ENGLISH_MONTHS[month - 1]} {first['rest']}"
    elif (java := _ZONE_BEFORE_YEAR.fullmatch(text)) is not None and (month := _month(java["m"])):
        text = f"{java['d']} {_ENGLISH_MONTHS[month - 1]} {java['y']} {java['time']} {java['zone']}"
        if "/" in java["zone"]:
            text = _iana_offset(text)
    elif (asc := _ZONE_AFTER_YEAR.fullmatch(text)) is not None and (month := _month(asc["m"])):
        zone = f" {asc['zone']}" if asc["zone"] else ""
        text = f"{asc['d']} {_ENGLISH_MONTHS[month - 1]} {asc['y']} {asc['time']}{zone}"
    elif (basic := _BASIC.fullmatch(text)) is not None and not (
        basic["dash"] and ":" in basic["time"]  # the extended format already
    ):
        fraction = f".{basic['f']}" if basic["f"] else ""
        minute, second = basic["M"] or "00", basic["S"] or "00"
        text = (
            f"{basic['y']}-{basic['mo']}-{basic['d']}T{basic['H']}:{minute}:{second}{fraction}"
            f"{basic['rest']}"
        )
    offset = _SHORT_OFFSET.fullmatch(text)
    if offset is not None and _ISO_DATE.match(offset["stamp"]):
        hh, mm = int(offset["h"]), offset["m"] or "00"
        text = f"{offset['stamp']}{offset['sign']}{hh:02d}:{mm}"
    elif offset is not None and (
        offset["m"] is None  # +2, -05
        or len(offset["h"]) == 1  # -3:30
        or re.search("[A-Za-z]{3}", offset["stamp"], re.ASCII) is not None  # a month's name
    ):
        hh, mm = int(offset["h"]), offset["m"] or "00"
        text = f"{offset['stamp']} {offset['sign']}{hh:02d}{mm}"
    elif (basic := _BASIC_OFFSET.fullmatch(text)) is not None:
        text = f"{basic['stamp']}{basic['sign']}{basic['h']}:{basic['m']}"
    return text


def _ordinal_date(year: int, day: int) -> str | None:
    """The ISO calendar date of day ``day`` of ``year`` (:data:`_ORDINAL`); None when
    the year has no such day."""
    if year == 0 or not 1 <= day <= (366 if calendar.isleap(year) else 365):
        return None
    return (datetime(year, 1, 1) + timedelta(days=day - 1)).date().isoformat()


def _zoned(value: str) -> tuple[str, ...]:
    """``value`` with its zone name (one of :data:`_ZONE_HOURS`), ``GMT±h[:mm]`` or
    unpadded ``±hmm`` offset (:data:`_UNPADDED_OFFSET`) written as a numeric offset, RFC
    822 style (``... +0200``) and ISO style (``...+02:00``); empty when it ends in none."""
    text = value.strip()
    match = _ZONED.fullmatch(text) or _UNPADDED_OFFSET.fullmatch(text)
    if match is None:
        return ()
    if match.groupdict().get("name") is not None:
        name = match["name"].lower()
        hours = _ZONE_HOURS.get(name, _RFC822_ZONE_HOURS.get(name))
        if hours is None:
            return ()
        minutes = round(hours * 60)
    else:
        minutes = int(match["h"]) * 60 + int(match["m"] or 0)
        if match["sign"] == "-":
            minutes = -minutes
    if abs(minutes) > 14 * 60:  # no zone is further from UTC
        return ()
    sign, (hh, mm) = "-" if minutes < 0 else "+", divmod(abs(minutes), 60)
    stamp = match["stamp"]
    return f"{stamp} {sign}{hh:02d}{mm:02d}", f"{stamp}{sign}{hh:02d}:{mm:02d}"


def _zoned_date(value: str) -> Any:
    """A feedparser date handler (tried before its own): a date :func:`_zoned` rewrites,
    read by feedparser's RFC 822 or W3C-DTF parser; :data:`_NO_DATE` for what its
    parsers would misread (:data:`_NOT_A_DATE`); None leaves it to the others.

    An RFC 822 date with a day name and a time but no zone (``Fri, 27 Nov 2026
    10:00:00``) is read as UTC, as feedparser reads it without the day name and as the
    JSON Feed reader reads it: feedparser's own parser counts the day name as the
    missing zone and returns nothing. An ISO basic offset is read with its minutes
    (:data:`_BASIC_OFFSET`); a date :func:`_rewritten` rewrites is read as it is
    rewritten; a date of which feedparser would read only the year
    (:data:`_YEAR_ONLY`), or which its ISO 8601 reader would move
    (:func:`_moved_by_iso8601`), and a time without a day (:data:`_TIME_WITHOUT_DAY`)
    are no date, as for JSON Feed; a week date (:data:`_WEEK`) is read as for JSON
    Feed."""
    if _WEEK.fullmatch(value):
        week = _iso_utc(value)
        return _NO_DATE if week is None else week.utctimetuple()
    if _TIME_WITHOUT_DAY.fullmatch(value):
        return _NO_DATE
    text = _rewritten(value)
    if _NOT_A_DATE.fullmatch(value) or _NOT_A_DATE.fullmatch(text):
        return _NO_DATE
    forms = _zoned(text)
    if forms:
        read = _parse_date_rfc822(forms[0]) or _parse_date_w3dtf(forms[1])
    elif _UNZONED_RFC822.fullmatch(text.strip()):
        read = _parse_date_rfc822(f"{text.strip()} +0000")
    elif text != value:
        read = _parse_date_rfc822(text) or _parse_date_w3dtf(text)
    else:
        read = None
    if read is None and (_year_only(value) or _moved_by_iso8601(value)):
        return _NO_DATE
    return read


def _year_only(value: str) -> bool:
    """Whether feedparser would read only the year of ``value`` (:data:`_YEAR_ONLY`): its
    W3C-DTF and RFC 822 parsers find no date in it, and its ISO 8601 reader is next."""
    if _YEAR_ONLY.match(value) is None:
        return False
    return not (_parse_date_w3dtf(value) or _parse_date_rfc822(value))


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGIT = re.compile(r"\d", re.ASCII)


def _moved_by_iso8601(value: str) -> bool:
    """Whether feedparser's ISO 8601 reader, its last resort, would read ``value`` as
    another date than it says: it hands what it matched to ``mktime``, which moves an
    impossible month, day, day of the year, hour, minute or second to a real one
    (``2024-13`` was 2025-01-01, ``2024-00`` 2023-12-01, ``2024-02-30`` March 1st,
    ``T25:00`` 01:00 the next day), takes the month from the clock when it matched only
    the year (``2024-Q1``), and drops a time (or a day) that it cannot read after what it
    matched (``2024-06-15 25:00:00`` and ``2024-01-1T25:00:00Z`` were midnight). Such a
    date is no date, as for JSON Feed, whose reader finds none in them. Hour 24 too:
    W3C-DTF and RFC 3339 stop at 23. A leap second (``:60``) is read as the next second
    (see :data:`_LEAP_SECOND`)."""
    if not value[:1].isdigit() and not value.startswith("-"):  # RFC 822's, most often
        return False
    try:  # RFC 3339's, most often: a date Python reads has no impossible field
        datetime.fromisoformat(value)
        return False
    except ValueError:
        pass
    match = next((m for m in (match(value) for match in _iso8601_matches) if m), None)
    if match is None or match.end() == 0:
        return False
    field = {k: int(v) for k, v in match.groupdict().items() if v and v.isdigit()}
    year = field.get("year") or 2000  # none given (or ``00``): one with February 29th
    month, day, ordinal = field.get("month"), field.get("day"), field.get("ordinal")
    if month is not None:
        moved = not 1 <= month <= 12 or (
            day is not None
            and not 1 <= day <= _DAYS[month - 1] + (month == 2 and calendar.isleap(year))
        )
    elif day is not None:  # ---DD: the month is the clock's
        moved = not 1 <= day <= 31
    elif ordinal is not None:
        moved = not 1 <= ordinal <= (366 if calendar.isleap(year) else 365)
    else:  # the year alone, followed by what the reader did not read
        moved = "year" in field and bool(value[match.end() :].strip())
    moved = moved or field.get("hour", 0) > 23 or field.get("minute", 0) > 59
    moved = moved or field.get("second", 0) > 60 or field.get("tzmin", 0) > 59
    if not moved and ("hour" in field or _DIGIT.search(value, match.end()) is None):
        return False  # else it read the date and dropped a time, or a day, after it
    return not (_parse_date_w3dtf(value) or _parse_date_rfc822(value))


feedparser.registerDateHandler(_zoned_date)
