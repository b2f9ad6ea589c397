"""The options a reading list (``stories --new --cursor NAME``) is read by: taken from the
command line as given (``--since 7d`` stays ``7d``, read again at each read), kept as JSON
in the store for a named list, read back and checked, and shown as the options that give
them. Used by ``stories`` and ``status``."""

from __future__ import annotations

import json
import shlex
from typing import Any

from .common import SortBy, for_terminal

#: Each option a list keeps: its key in the JSON, and its flag as shown.
OPTIONS = (
    ("topic", "-t"),
    ("any_topic", "--any-topic"),
    ("not_topic", "--not-topic"),
    ("feed", "-f"),
    ("since", "--since"),
    ("until", "--until"),
    ("q", "-q"),
    ("sort", "--sort"),
)
_KEYS = frozenset(key for key, _ in OPTIONS)
_REPEATED = frozenset({"topic", "any_topic", "not_topic", "feed"})  # lists; the rest strings
_SORTS = frozenset(s.value for s in SortBy)


def given_filters(
    topic: list[str] | None,
    any_topic: list[str] | None,
    not_topic: list[str] | None,
    feed: list[str] | None,
    since: str | None,
    until: str | None,
    search: str | None,
    sort: SortBy,
) -> dict[str, Any]:
    """The options given, only those (the sort only when not by date), each text as the
    store keeps it (``storable_text``: a lone surrogate, argv's byte that is not UTF-8, as
    U+FFFD), so that the same options given again compare equal to those kept."""
    from ..store.tables import storable_text  # here: `--new` opens the store anyway

    given: dict[str, Any] = {
        "topic": topic or [],
        "any_topic": any_topic or [],
        "not_topic": not_topic or [],
        "feed": feed or [],
        "since": since,
        "until": until,
        "q": search,
        "sort": None if sort == SortBy.date else sort.value,
    }
    return {
        key: [storable_text(v) for v in value] if isinstance(value, list) else storable_text(value)
        for key, value in given.items()
        if value
    }


def read_filters(kept: str) -> dict[str, Any] | None:
    """A list's options as it kept them, or None when they are not what ``given_filters``
    writes (the database is shared: another version, or a hand, may have written them)."""
    try:
        filters = json.loads(kept)
    except ValueError:
        return None
    if not isinstance(filters, dict):
        return None
    for key, value in filters.items():
        if key in _REPEATED:
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                return None
        elif key not in _KEYS or not isinstance(value, str):
            return None
    if filters.get("sort", SortBy.date.value) not in _SORTS:
        return None
    return filters


def shown(filters: dict[str, Any]) -> str:
    """``filters`` as the options that give them (``-t DNS -q 'root zone'``), for a
    terminal: each value as a story's title is shown (``for_terminal``), without control
    characters or escape sequences. They are read from the database, which others may
    share, and went to the terminal as kept (an ESC in ``-q``, which the search reads as
    a space, recoloured the table or retitled the window)."""
    words: list[str] = []
    for key, flag in OPTIONS:
        value = filters.get(key)
        for v in value if isinstance(value, list) else [value] if value else []:
            words += [flag, for_terminal(v)]
    return shlex.join(words) if words else "every story"
