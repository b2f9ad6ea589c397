"""What a new user following README.md runs into: behaviour README promises, checked as
a user meets it (each was found not to match, and fixed).

The real CLI as ``python -m aggregator`` runs it (its ``main``, in the test process:
tests/clirun.py), against the bundled demo server on 127.0.0.1 where a feed is needed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clirun import in_process

from aggregator.demo_server import DemoServer

Aggregator = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def aggregator(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Aggregator:
    """``aggregator(cwd, *argv, env=None)``: the CLI on the data directory in ``cwd``, run
    from there, with ``env`` added to the environment."""
    run = in_process(monkeypatch, capfd)

    def aggregator(
        cwd: Path, *argv: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
        environ.update(AGGREGATOR_DATA_DIR=str(cwd / "data"), COLUMNS="200", **(env or {}))
        return run(environ, *argv, cwd=cwd)

    return aggregator


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    with DemoServer(port=0) as server:
        yield server


def test_feeds_add_follows_a_pages_rss_1_0_link(
    aggregator: Aggregator, tmp_path: Path, demo: DemoServer
) -> None:
    page = demo.url("/pages/ipv6-passes-half-of-traffic.html")
    result = aggregator(
        tmp_path, "feeds", "add", page, env={"AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1"}
    )
    assert result.returncode == 0, result.stderr
    assert demo.url("/feeds/addressledger.rdf") in result.stdout


def test_feeds_add_follows_a_pages_rss_2_0_link(
    aggregator: Aggregator, tmp_path: Path, demo: DemoServer
) -> None:
    """The same page layout with an application/rss+xml link works (the control case)."""
    page = demo.url("/pages/dnssec-algorithm-rollover.html")
    result = aggregator(
        tmp_path, "feeds", "add", page, env={"AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1"}
    )
    assert result.returncode == 0, result.stderr
    assert demo.url("/feeds/circlenet.xml") in result.stdout


def test_poll_refuses_a_feeds_file_given_with_feeds_that_does_not_exist(
    aggregator: Aggregator,
    tmp_path: Path,
) -> None:
    result = aggregator(tmp_path, "--feeds", "nosuch.yaml", "poll")
    assert result.returncode == 2
    assert "feeds file not found: nosuch.yaml" in result.stderr


def test_feeds_list_refuses_a_feeds_file_given_with_feeds_that_does_not_exist(
    aggregator: Aggregator,
    tmp_path: Path,
) -> None:
    result = aggregator(tmp_path, "--feeds", "nosuch.yaml", "feeds", "list")
    assert result.returncode == 2
    assert "feeds file not found: nosuch.yaml" in result.stderr


@pytest.mark.slow
def test_demo_keep_refuses_a_directory_holding_a_database(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    """A second `demo --keep DIR` would poll the first run's feeds too, whose demo server
    (and port) is gone, and report each as failing; and a directory holding a database
    may be a real one. So it is refused, with nothing changed."""
    keep = tmp_path / "demo-db"
    out = str(tmp_path / "merged.atom")
    first = aggregator(tmp_path, "demo", "--keep", str(keep), "-o", out)
    assert first.returncode == 0, first.stderr
    assert "0 failed" in first.stdout
    before = (keep / "aggregator.db").stat().st_mtime_ns
    second = aggregator(tmp_path, "demo", "--keep", str(keep), "-o", out)
    assert second.returncode == 2
    assert "holds a database already" in second.stderr
    assert (keep / "aggregator.db").stat().st_mtime_ns == before


def test_a_feeds_file_named_by_the_environment_must_exist(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    """AGGREGATOR_FEEDS naming a file that is not there (a systemd unit with a typo) is
    an error, as --feeds is: `poll` said "No feeds are due" and a daemon idled for ever.
    The default ./feeds.yaml may still be absent."""
    env = {"AGGREGATOR_FEEDS": str(tmp_path / "nosuch.yaml")}
    for argv in (["poll"], ["feeds", "list"]):
        result = aggregator(tmp_path, *argv, env=env)
        assert result.returncode == 2, result.stdout
        assert "feeds file not found:" in result.stderr and "nosuch.yaml" in result.stderr
    assert aggregator(tmp_path, "feeds", "list").returncode == 0  # no ./feeds.yaml: fine
