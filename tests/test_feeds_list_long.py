"""`feeds list` of many feeds prints plain aligned columns: a rich table took ~1.3 ms a
row to lay out, 19 s for 10,000 feeds. What the columns say is what the table says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_store import check

from aggregator.app import make_app
from aggregator.cli.feeds import PLAIN_ABOVE
from aggregator.config import Settings
from aggregator.types import FeedSource


def test_a_long_feed_list_is_plain_aligned_columns(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = PLAIN_ABOVE + 1
    with make_app(Settings.from_env({}, data_dir=env / "data")) as app:
        sources = [
            FeedSource(url=f"https://site{i}.example/feed.xml", name=f"Site {i}") for i in range(n)
        ]
        sources[0] = FeedSource(
            url="https://long.example/f", name="A name far longer than thirty columns, cut"
        )
        sources[1] = FeedSource(url="https://off.example/f", enabled=False)
        app.store.upsert_feeds(sources, app.now())
        failing = next(f for f in app.feeds() if f.url == "https://site2.example/feed.xml")
        app.store.save_checks(
            [
                check(
                    failing.id,
                    at=datetime.now(UTC) - timedelta(hours=1),
                    outcome="error",
                    status="error",
                    error_count=2,
                    last_error="HTTP 503 Service Unavailable",
                    success=False,
                    next_check=datetime.now(UTC) + timedelta(hours=3),
                )
            ]
        )
    for columns, compact in (("160", False), ("80", True)):
        monkeypatch.setenv("COLUMNS", columns)
        code, out, err = run(capsys, "feeds", "list")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split() == [
            "id", "feed", "status", "stories", "last", "ok", "errors", "next", "check",
            *([] if compact else ["last", "error"]),
        ]  # fmt: skip
        assert len(lines) == 1 + n + (1 if compact else 0)  # the error on a line of its own
        assert any("A name far longer than thirty…" in line for line in lines)
        off = next(line for line in lines if "off.example" in line)
        assert off.split()[2:] == ["off", "0", "—", "0", "—"]
        row = next(line for line in lines if " Site 2 " in line)
        assert (row.split()[3:5] == ["error", "0"] and "in 3h" in row) or "in 2h" in row
        if compact:
            after = lines[lines.index(row) + 1]
            assert after.strip() == "HTTP 503 Service Unavailable"
        else:
            assert row.endswith("HTTP 503 Service Unavailable")
        # columns line up: every row's status starts where the header's does
        at = lines[0].index("status")
        feed_rows = [line for line in lines[1:] if line.split()[0].isdigit()]
        assert len(feed_rows) == n
        assert all(line[at:].split()[0] in ("active", "error", "off") for line in feed_rows)
