"""Every numeric ``AGGREGATOR_*`` setting: a value that is not a number, not finite, or
out of any sensible range is bad input named by its variable, never a traceback and never
taken (a NaN timeout passed the checks and failed the poll later; 1e300 minutes was an
OverflowError; 100,000 workers were started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_errors import Aggregator, aggregator, assert_one_clear_line  # noqa: F401  (aggregator: fixture)

from aggregator.config import Settings
from aggregator.demo_server import DemoServer
from aggregator.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TIMEOUT", "abc", "AGGREGATOR_TIMEOUT: expected a number of seconds, got 'abc'"),
        ("TIMEOUT", "nan", "AGGREGATOR_TIMEOUT must be a positive number of seconds"),
        ("TIMEOUT", "inf", "AGGREGATOR_TIMEOUT must be a positive number of seconds"),
        ("TIMEOUT", "1e400", "AGGREGATOR_TIMEOUT must be a positive number of seconds"),
        ("TIMEOUT", "0", "AGGREGATOR_TIMEOUT must be a positive number of seconds"),
        ("PARSE_TIMEOUT", "-1", "AGGREGATOR_PARSE_TIMEOUT must be a positive number"),
        ("EXTRACT_TIMEOUT", "nan", "AGGREGATOR_EXTRACT_TIMEOUT must be a positive number"),
        ("EXTRACT_BUDGET", "nan", "AGGREGATOR_EXTRACT_BUDGET must be a positive number"),
        # Past threading's longest wait, a worker's limit failed every feed of a poll
        # ("internal error: RuntimeError: worker pool failed: timestamp too large").
        ("PARSE_TIMEOUT", "1e10", "AGGREGATOR_PARSE_TIMEOUT must be a positive number of"),
        ("EXTRACT_TIMEOUT", "1e308", "AGGREGATOR_EXTRACT_TIMEOUT must be a positive number"),
        ("TIMEOUT", "86401", "AGGREGATOR_TIMEOUT must be a positive number of seconds up to"),
        ("EXTRACT_BUDGET", "1e20", "AGGREGATOR_EXTRACT_BUDGET must be a positive number of"),
        ("DEFAULT_INTERVAL", "nan", "AGGREGATOR_DEFAULT_INTERVAL must be between 5 and 1,440"),
        ("DEFAULT_INTERVAL", "1e300", "AGGREGATOR_DEFAULT_INTERVAL must be between 5 and"),
        ("DEFAULT_INTERVAL", "-5", "AGGREGATOR_DEFAULT_INTERVAL must be between 5 and 1,440"),
        ("DEFAULT_INTERVAL", "2d", "AGGREGATOR_DEFAULT_INTERVAL: expected a number of minutes"),
        ("WORKERS", "1.5", "AGGREGATOR_WORKERS: expected a whole number, got '1.5'"),
        ("WORKERS", "0", "AGGREGATOR_WORKERS must be between 1 and 256"),
        ("WORKERS", "100000", "AGGREGATOR_WORKERS must be between 1 and 256"),
        ("MAX_CONNECTIONS", "1000000", "AGGREGATOR_MAX_CONNECTIONS must be between 1 and"),
        ("PER_HOST", "0", "AGGREGATOR_PER_HOST must be between 1 and"),
        ("MAX_BODY_BYTES", "9" * 30, "AGGREGATOR_MAX_BODY_BYTES must be between 1,024 and"),
        ("MAX_BODY_BYTES", "10", "AGGREGATOR_MAX_BODY_BYTES must be between 1,024 and"),
        ("KEEP_PER_FEED", "-1", "AGGREGATOR_KEEP_PER_FEED must be 0 or more"),
        ("KEEP_PER_FEED", "x", "AGGREGATOR_KEEP_PER_FEED: expected a whole number, got 'x'"),
    ],
)
def test_a_bad_number_is_named_by_its_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({f"AGGREGATOR_{name}": value})
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("name", "value", "field", "want"),
    [
        ("TIMEOUT", " 7.5 ", "timeout_s", 7.5),
        ("PARSE_TIMEOUT", "86400", "parse_timeout_s", 86400.0),
        ("WORKERS", "3", "workers", 3),
        ("WORKERS", "256", "workers", 256),
        ("MAX_BODY_BYTES", "1_000_000", "max_body_bytes", 1_000_000),
        ("KEEP_PER_FEED", "0", "keep_per_feed", 0),
    ],
)
def test_good_numbers_are_taken(name: str, value: str, field: str, want: float) -> None:
    assert getattr(Settings.from_env({f"AGGREGATOR_{name}": value}), field) == want


def test_the_default_interval_in_minutes_within_the_bounds() -> None:
    s = Settings.from_env({"AGGREGATOR_DEFAULT_INTERVAL": "90"})
    assert s.default_interval.total_seconds() == 90 * 60


def test_the_cli_says_which_variable_in_one_line(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
) -> None:
    result = aggregator(tmp_path, "stories", env={"AGGREGATOR_DEFAULT_INTERVAL": "1e300"})
    assert_one_clear_line(result, "AGGREGATOR_DEFAULT_INTERVAL must be between 5 and 1,440")


@pytest.mark.parametrize("agent", ["Bücher-Bot/1.0", "bot/1.0\r\nX-Evil: 1"])
def test_a_user_agent_that_cannot_be_sent_is_named_by_its_variable(
    aggregator: Aggregator,  # noqa: F811
    tmp_path: Path,
    agent: str,
) -> None:
    """AGGREGATOR_USER_AGENT goes into every request's header: a non-ASCII one was a
    UnicodeEncodeError traceback from the HTTP client at the first fetch, and one with a
    line break failed every feed as "bad HTTP response", naming neither the setting."""
    with DemoServer() as server:
        (tmp_path / "feeds.yaml").write_text(server.feeds_yaml(), encoding="utf-8")
        env = {"AGGREGATOR_USER_AGENT": agent, "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1"}
        result = aggregator(tmp_path, "poll", "--no-extract", "--quiet", env=env)
    assert_one_clear_line(result, "AGGREGATOR_USER_AGENT must be printable ASCII")
