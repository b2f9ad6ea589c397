"""Regenerate the golden ``NAME.expected.json`` files beside each feed fixture.

Usage (from the repository root)::

    .venv/bin/python tests/data/feeds/regen.py          # rewrite every existing expected file
    .venv/bin/python tests/data/feeds/regen.py rss20    # write rss20.expected.json (new or not)

A fixture is golden when ``NAME.expected.json`` sits beside ``NAME.xml`` / ``NAME.json``;
other feed files here (served by the test HTTP server to other tests) are left alone.
Each fixture is parsed with
``aggregator.parse.parse_feed(body, FEED_URL + NAME.ext)`` and the normalised result is
written as JSON (datetimes as ISO 8601 strings, ``ttl`` in seconds). The files in ``bad/``
are not feeds and have no expected file: tests/test_parse.py checks they raise ParseError.

The output is only a proposal: read the diff (``git diff tests/data/feeds``) and check
every changed value by eye before committing it — a golden file that merely records what
the code does today proves nothing. tests/test_parse.py imports :func:`snapshot` from
here, so the test and this script cannot disagree about the format.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FEED_URL = "https://feeds.example.org/"


def fixtures(names: list[str] | None = None) -> list[Path]:
    """Feed files with an expected file (or named in ``names``), sorted."""
    return sorted(
        p
        for p in HERE.iterdir()
        if p.suffix in (".xml", ".json")
        and not p.name.endswith(".expected.json")
        and (p.stem in names if names else expected_path(p).exists())
    )


def expected_path(fixture: Path) -> Path:
    return fixture.with_name(fixture.stem + ".expected.json")


def snapshot(fixture: Path) -> dict[str, Any]:
    """What ``parse_feed`` makes of ``fixture``, as plain JSON-able data."""
    from aggregator.parse import parse_feed

    parsed = parse_feed(fixture.read_bytes(), FEED_URL + fixture.name)
    return _jsonable(parsed)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {name: _jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for ``aggregator``
    for fixture in fixtures(names):
        text = json.dumps(snapshot(fixture), indent=2, ensure_ascii=False) + "\n"
        expected_path(fixture).write_text(text, encoding="utf-8")
        print(f"wrote {expected_path(fixture).relative_to(HERE)}")


if __name__ == "__main__":
    main(sys.argv[1:])
