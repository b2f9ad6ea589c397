"""An OPML outline's ``htmlUrl`` (the site's page) is kept by `feeds import` as the feed's
site until a poll stores the feed's own link, so an export right after an import (or of
a feed whose document names no site) still has it; it was dropped. On SQLite and
PostgreSQL: the site column is the one polls write, no migration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from httpserver import LocalServer
from test_learning_cli import run

from aggregator.feedlist import read_opml

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><body>
  <outline text="News">
    <outline type="rss" text="A" xmlUrl="{a}" htmlUrl="https://a-site.example/"/>
    <outline type="rss" text="B" xmlUrl="{b}" htmlUrl="https://b-site.example/home"/>
  </outline>
  <outline type="rss" text="C" xmlUrl="{c}"/>
</body></opml>
"""


def test_read_opml_keeps_an_http_html_url_as_the_site() -> None:
    listing = read_opml(
        "<opml><body>"
        '<outline type="rss" xmlUrl="https://a.example/f" htmlUrl=" https://a.example/ "/>'
        '<outline type="rss" xmlUrl="https://b.example/f" htmlUrl="javascript:alert(1)"/>'
        '<outline type="rss" xmlUrl="https://c.example/f" htmlUrl="/relative"/>'
        '<outline type="rss" xmlUrl="https://d.example/f" htmlUrl="https://ann:pw@d.example/"/>'
        '<outline type="rss" xmlUrl="https://e.example/f"/>'
        '<outline type="rss" xmlUrl="https://e.example/f/" htmlUrl="https://e.example/"/>'
        "</body></opml>"
    )
    assert [(s.url, s.site) for s in listing.sources] == [
        ("https://a.example/f", "https://a.example/"),
        ("https://b.example/f", None),  # the feed is kept, not the bad site
        ("https://c.example/f", None),
        ("https://d.example/f", "https://d.example/"),  # no login
        ("https://e.example/f", "https://e.example/"),  # from the entry merged into it
    ]


def sites(opml: str) -> dict[str, str | None]:
    return {
        m.group(1): (h.group(1) if (h := re.search(r'htmlUrl="([^"]*)"', m.group(0))) else None)
        for m in re.finditer(r'<outline [^>]*xmlUrl="([^"]*)"[^>]*>', opml)
    }


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", "1")
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("AGGREGATOR_DATABASE_URL", db_url)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return tmp_path


def rss(link: str | None) -> bytes:
    own = f"<link>{link}</link>" if link else ""
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{own}'
        "<item><title>x</title><guid>g1</guid></item></channel></rss>"
    ).encode()


def test_an_export_after_an_import_keeps_the_site_until_the_feed_names_its_own(
    cli: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    a = server.route(
        "/a.xml", body=rss("https://a-own.example/"), content_type="application/rss+xml"
    )
    b = server.route("/b.xml", body=rss(None), content_type="application/rss+xml")
    c = server.route("/c.xml", body=rss(None), content_type="application/rss+xml")
    # c is there before the import, with no site: the import gives it none either
    code, _, err = run(capsys, "feeds", "add", "--no-discover", c)
    assert code == 0, err
    (cli / "in.opml").write_text(OPML.format(a=a, b=b, c=c))
    code, out, err = run(capsys, "feeds", "import", str(cli / "in.opml"))
    assert code == 0 and out.strip().startswith("2 added, 1 updated"), out + err

    code, exported, err = run(capsys, "feeds", "export")
    assert code == 0, err
    assert sites(exported) == {
        a: "https://a-site.example/",
        b: "https://b-site.example/home",
        c: None,
    }

    # the export imported again changes nothing
    (cli / "back.opml").write_text(exported)
    code, out, _ = run(capsys, "feeds", "import", str(cli / "back.opml"))
    assert out.strip() == "0 added, 0 updated, 3 unchanged, 0 skipped"

    # a poll stores what the feed itself says; a feed that says nothing keeps the import's
    code, _, err = run(capsys, "poll", "--all", "--no-extract", "--quiet")
    assert code == 0, err
    code, exported, _ = run(capsys, "feeds", "export")
    assert sites(exported) == {
        a: "https://a-own.example/",
        b: "https://b-site.example/home",
        c: None,
    }
    # and an import never overwrites a site a poll stored
    code, out, _ = run(capsys, "feeds", "import", str(cli / "in.opml"))
    assert out.strip() == "0 added, 0 updated, 3 unchanged, 0 skipped"
    assert sites(run(capsys, "feeds", "export")[1])[a] == "https://a-own.example/"
