"""`aggregator export --url URL [--home-url URL]`: a merged feed written to a file that is
published somewhere (a static site, a cron job) names where it lives. Before, an exported
file had no self link, its Atom id was a URN made of its title and its RSS channel link
was the placeholder `urn:aggregator`, which validators reject (RSS 2.0: "the URL to the
HTML website corresponding to the channel")."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest
from httpserver import LocalServer
from test_learning_cli import run
from test_output_export import SHARED_LINK_RSS

SELF = "https://news.example.org/feeds/dns.xml"
HOME = "https://news.example.org/"


def _polled(capsys: pytest.CaptureFixture[str], server: LocalServer, env: Path) -> None:
    url = server.route("/notices.xml", body=SHARED_LINK_RSS)
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n")
    code, _, err = run(capsys, "poll", "--quiet", "--no-extract")
    assert code == 0, err


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return tmp_path


def test_export_names_where_the_file_is_published(
    capsys: pytest.CaptureFixture[str], server: LocalServer, env: Path
) -> None:
    _polled(capsys, server, env)
    code, out, err = run(capsys, "export", "--format", "atom", "--url", SELF)
    assert code == 0, err
    atom = feedparser.parse(out)
    assert atom.feed.id == SELF
    assert [link.href for link in atom.feed.links if link.rel == "self"] == [SELF]

    code, out, err = run(capsys, "export", "--format", "rss", "--url", SELF, "--home-url", HOME)
    assert code == 0, err
    rss = feedparser.parse(out)
    assert rss.feed.link == HOME
    assert [link.href for link in rss.feed.links if link.rel == "self"] == [SELF]
    assert "urn:aggregator" not in out.split("<item>")[0]

    code, out, err = run(capsys, "export", "--format", "rss", "--url", SELF)
    assert code == 0, err
    assert feedparser.parse(out).feed.link == SELF  # no website: the file itself

    code, out, err = run(capsys, "export", "--format", "json", "--url", SELF, "--home-url", HOME)
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["feed_url"], doc["home_page_url"]) == (SELF, HOME)


def test_export_to_a_file_takes_the_same_urls(
    capsys: pytest.CaptureFixture[str], server: LocalServer, env: Path
) -> None:
    _polled(capsys, server, env)
    target = env / "dns.xml"
    code, _, err = run(capsys, "export", "--url", SELF, "-o", str(target))
    assert code == 0, err
    assert feedparser.parse(target.read_bytes()).feed.id == SELF


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("--url", "feeds/dns.xml"), "--url 'feeds/dns.xml' must start with http:// or https://"),
        (("--url", "javascript:alert(1)"), "must start with http:// or https://"),
        (("--home-url", "ftp://news.example.org/"), "--home-url 'ftp://news.example.org/' must"),
        (("--url", "https://"), "--url 'https://' has no host"),
        (("--url", "https://ann:pw@news.example.org/f"), "must not hold a user name or password"),
    ],
    ids=["relative", "javascript", "ftp-home", "no-host", "password"],
)
def test_export_refuses_a_url_that_is_not_absolute_http(
    capsys: pytest.CaptureFixture[str], env: Path, args: tuple[str, str], why: str
) -> None:
    code, out, err = run(capsys, "export", *args)
    assert code == 2
    assert out == ""
    assert why in err
    assert "pw" not in err
