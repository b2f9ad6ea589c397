"""Date bugs found in session 27 (dates and XHTML bases): each test is a user-visible
failure that was fixed, checked in every format (RSS on the fast path and feedparser's,
Atom, JSON Feed)."""

from __future__ import annotations

import pytest
from test_parse_s27 import dated_in

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
