"""feeds.yaml values YAML 1.1 reads as something else: a date-like plain scalar is its
text (no field is a date; ``name: 2024-02-30`` was a ValueError traceback), and a value
the safe loader cannot build (``!!int x``, ``!!bool maybe``, a 5,000-digit number) is
one error naming the file, line, entry and field, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_learning_cli import run

from aggregator.errors import ConfigError
from aggregator.feedlist import load_feeds, parse_feeds_yaml

ENTRY = "feeds:\n  - url: https://a.example/f\n"


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01",
        "2024-01-01 10:00:00",
        "2024-01-01T10:00:00Z",
        "2024-02-30",  # no such day: ValueError
        "2024-13-45",
        "2024-01-01T25:00:00",
        "2024-01-01T10:00:00+25:00",  # no such offset: ValueError
    ],
)
def test_a_date_like_name_or_topic_is_its_text(value: str) -> None:
    (src,) = parse_feeds_yaml(f"{ENTRY}    name: {value}\n    topics: [{value}, b]\n")
    assert src.name == value and src.topics == (value, "b")
    (src,) = parse_feeds_yaml(f"{ENTRY}    topics: {value}\n")
    assert src.topics == (value,)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            f"{ENTRY}    interval: 2024-01-01\n",
            r"feeds.yaml:2: feed #1: 'interval' is .* got '2024-01-01'",
        ),
        (
            f"{ENTRY}    enabled: 2024-01-01\n",
            "feeds.yaml:2: feed #1: 'enabled' must be true or false",
        ),
        ("feeds:\n  - url: 2024-01-01\n", r"feeds.yaml:2: feed #1: only http\(s\) URLs"),
        ("feeds:\n  - 2024-01-01\n", r"feeds.yaml:2: feed #1: only http\(s\) URLs"),
        (f"{ENTRY}    added: 2024-01-01\n", r"feeds.yaml:2: feed #1: unknown field\(s\) added"),
        (f"{ENTRY}    2024-01-01: x\n", r"unknown field\(s\) 2024-01-01"),
        ("2024-01-01: x\n", r"unknown top-level key\(s\) 2024-01-01"),
    ],
)
def test_a_date_where_no_text_goes_is_a_clear_error(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_feeds_yaml(yaml_text)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            f"{ENTRY}    name: !!timestamp 2024-02-30\n",
            r"^feeds.yaml:3: feed #1: 'name': cannot read '2024-02-30' as !!timestamp"
            r" \(day is out of range for month\)$",
        ),
        (
            f"{ENTRY}    name: !!timestamp soon\n",
            r"^feeds.yaml:3: feed #1: 'name': cannot read 'soon' as !!timestamp$",
        ),
        (
            f"{ENTRY}    name: !!int x\n",
            r"^feeds.yaml:3: feed #1: 'name': cannot read 'x' as !!int$",
        ),
        (
            f"{ENTRY}    interval: !!float x\n",
            r"^feeds.yaml:3: feed #1: 'interval': cannot read 'x' as !!float$",
        ),
        (
            f"{ENTRY}    enabled: !!bool maybe\n",
            r"^feeds.yaml:3: feed #1: 'enabled': cannot read 'maybe' as !!bool$",
        ),
        (
            f"{ENTRY}    interval: {'1' * 5000}\n",
            r"^feeds.yaml:3: feed #1: 'interval': cannot read '1{40}…' as !!int"
            r" \(too many digits\)$",
        ),
        (f"{ENTRY}    interval: {'1' * 400}\n", r"'interval' 1{20}… is too long$"),
        (
            f"{ENTRY}  - url: https://b.example/f\n    topics: [a, !!int b]\n",
            r"^feeds.yaml:4: feed #2: cannot read 'b' as !!int$",
        ),
        (f"{ENTRY}    ? !!int k\n    : v\n", r"^feeds.yaml:3: feed #1: cannot read 'k' as !!int$"),
        ("- https://a.example/f\n- !!int x\n", r"^feeds.yaml:2: feed #2: cannot read 'x'"),
        ("feeds: !!int x\n", r"^feeds.yaml:1: 'feeds': cannot read 'x' as !!int$"),
        ("!!int x\n", r"^feeds.yaml:1: cannot read 'x' as !!int$"),
    ],
)
def test_a_value_the_loader_cannot_build_is_one_clear_error(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_feeds_yaml(yaml_text)


def test_the_cli_says_so_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = tmp_path / "feeds.yaml"
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(feeds))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    feeds.write_text(f"{ENTRY}    name: 2024-02-30\n")
    assert [s.name for s in load_feeds(feeds)] == ["2024-02-30"]
    code, out, err = run(capsys, "feeds", "list")
    assert code == 0 and "2024-02-30" in out, err
    feeds.write_text(f"{ENTRY}    enabled: !!bool maybe\n")
    code, out, err = run(capsys, "feeds", "list")
    assert code != 0 and "Traceback" not in out + err
    assert f"{feeds}:3: feed #1: 'enabled': cannot read 'maybe' as !!bool" in " ".join(err.split())
