"""``aggregator export`` round trips and its ``-o``: what the real CLI does with an output
path that names a directory or a place it cannot write, and what an exported feed gives
back when it is read (feedparser, the project's parser) or polled as a feed again."""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from httpserver import LocalServer
from test_extract_pipeline import TITLE, article_page
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.export import render
from aggregator.parse import parse_feed
from aggregator.textutil import html_to_text
from aggregator.types import Story, StoryQuery

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# --- -o FILE ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["", ".", "/", "..", "dir", "dir/"])
def test_export_to_a_directory_is_one_clear_error_and_writes_nothing(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """``-o`` naming a directory: ``-o .``, ``-o /`` and ``-o ""`` ended in a traceback
    (``ValueError: PosixPath('.') has an empty name``); ``-o dir`` rendered the whole
    document, then said ``Is a directory: dir.3f9c….tmp``, a file the user never named,
    and ``-o ..`` wrote a temporary file into the working directory before failing with
    ``Device or resource busy``. Each is one line naming the path given, exit 2, before
    any work, and nothing is left behind."""
    work = env / "work"
    (work / "dir").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert run(capsys, "export")[0] == 0  # the database made
    before = sorted(p.name for p in work.rglob("*")), sorted(p.name for p in env.iterdir())
    code, out, err = run(capsys, "export", "--format", "rss", "-o", where)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "is a directory" in err and ".tmp" not in err
    assert (sorted(p.name for p in work.rglob("*")), sorted(p.name for p in env.iterdir())) == (
        before
    )


def test_export_to_a_place_it_cannot_write_names_the_file_given(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A directory that cannot be written (sysfs refuses new files, even to root) or a
    path through a regular file: the error named the temporary file beside the output
    (``No such file or directory: /sys/merged.atom.5c1f….tmp``) or the parent alone, as
    if it should not exist (``File exists: notes``). It names the output the user gave
    and why it cannot be written; exit 1, nothing left behind."""
    (env / "notes").write_text("a file, not a directory\n")
    targets = [env / "notes" / "merged.atom"]
    if os.path.isdir("/sys/kernel"):
        targets.append(Path("/sys/kernel/merged.atom"))
    for target in targets:
        code, out, err = run(capsys, "export", "-o", str(target))
        assert (code, out) == (1, "")
        assert err.startswith(f"error: cannot write {target}: "), err
        assert err.count("\n") == 1 and ".tmp" not in err, err
        assert not target.parent.is_dir() or not list(target.parent.glob("merged.atom*"))
    assert sorted(p.name for p in env.iterdir()) == ["data", "feeds.yaml", "notes"]
    assert (env / "notes").read_text() == "a file, not a directory\n"


def test_a_failed_export_leaves_no_directory_it_made(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``-o`` makes the directories its file goes in (``-o site/feeds/all.atom``), before
    the export runs: one that then failed (an unknown topic, the store, Ctrl-C) left
    them behind, empty, though it wrote nothing. Those it made go again; one that was
    there already stays, and a successful export keeps what it made."""
    (env / "site").mkdir()
    target = env / "site" / "feeds" / "2026" / "all.atom"
    code, out, err = run(capsys, "export", "--topic", "no-such-topic", "-o", str(target))
    assert (code, out) == (2, "") and "unknown topic" in err
    assert list((env / "site").iterdir()) == []
    code, out, err = run(capsys, "export", "-o", str(target))
    assert (code, out, err) == (0, "", f"wrote {target}\n")
    assert [p.name for p in target.parent.iterdir()] == ["all.atom"]


def test_export_to_a_file_with_a_long_name_writes_it(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file name of 239 to 255 bytes is a valid name, but the temporary file written
    beside it (``NAME.RANDOM.tmp``, 17 bytes more) is not: the export failed with
    ``File name too long``. The temporary name is cut to fit; the file is written."""
    limit = os.pathconf(env, "PC_NAME_MAX")
    for name in ("a" * (limit - 5) + ".atom", "é" * ((limit - 5) // 2) + ".atom"):
        target = env / name
        code, out, err = run(capsys, "export", "-o", str(target))
        assert (code, out, err) == (0, "", f"wrote {target}\n")
        assert target.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.suffix for p in env.iterdir()) == ["", ".atom", ".atom", ".yaml"]


# --- the whole text a story's page gave ---------------------------------------------------


def test_the_text_extracted_from_the_page_is_exported_over_the_feeds_teaser(
    tmp_path: Path, server: LocalServer
) -> None:
    """README: a merged feed carries "its whole text" where "the feed or the page gave
    more". A story whose feed gave a short text (RSS ``content:encoded``, Atom
    ``<content>``, a JSON Feed's ``content_html``) has its page extracted, and the
    article is stored only when longer than that text; but the export wrote the feed's
    teaser whenever there was one, so the page's text reached no reader (only stories
    of an RSS feed with a bare ``<description>`` had theirs). Every format carries it,
    and polling the exported file as a feed gives it back."""
    page = server.route("/page/0", body=article_page().encode(), content_type="text/html")
    rss = (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        f"<item><title>{TITLE}</title><link>{page}</link><guid>g0</guid>"
        "<description>Teaser.</description><content:encoded><![CDATA[<p>A short teaser of "
        "the DNSSEC story.</p>]]></content:encoded></item></channel></rss>"
    ).encode()
    s = Settings.from_env({}, data_dir=tmp_path / "a", allow_private_addresses=True, workers=1)
    with make_app(s, now=lambda: NOW) as a:
        a.add_feed(server.route("/feed.xml", body=rss), discover=False)
        assert [(r.status, r.new) for r in a.update_due(all_feeds=True)] == [("ok", 1)]
        (story,) = a.stories(StoryQuery(limit=None))
        assert story.extraction_status == "ok" and story.full_text
        assert story.content == "<p>A short teaser of the DNSSEC story.</p>"
        first = story.full_text.split("\n")[0]
        documents = {}
        for fmt in ("atom", "rss", "json"):
            streamed: list[str] = []
            a.export_to(streamed.append, StoryQuery(limit=None), fmt)
            documents[fmt] = "".join(streamed)
            assert documents[fmt] == a.export(StoryQuery(limit=None), fmt)
    atom = feedparser.parse(documents["atom"].encode())
    rss_back = feedparser.parse(documents["rss"].encode())
    for parsed in (atom, rss_back):
        assert parsed.bozo == 0
        (entry,) = parsed.entries
        assert [c.value for c in entry.content] == [html_escape_paragraphs(story.full_text)]
        assert entry.summary == "Teaser."
    (item,) = json.loads(documents["json"])["items"]
    assert item["content_html"] == html_escape_paragraphs(story.full_text)
    # polled back as a feed: the article is the story's text
    for fmt, content_type in CONTENT_TYPES.items():
        route = server.route(
            f"/export.{fmt}", body=documents[fmt].encode(), content_type=content_type
        )
        s2 = Settings.from_env(
            {}, data_dir=tmp_path / fmt, allow_private_addresses=True, extract=False
        )
        with make_app(s2, now=lambda: NOW) as b:
            b.add_feed(route, discover=False)
            assert [(r.status, r.new) for r in b.update_due(all_feeds=True)] == [("ok", 1)]
            (back,) = b.stories(StoryQuery(limit=None))
            assert first in html_to_text(back.content or ""), (fmt, content_type, back.content)


def test_a_feeds_whole_text_longer_than_an_older_article_stays_the_content() -> None:
    """An edited story keeps the article its page gave when the edit gives the whole
    text in the feed (``fill_row``): then the feed's content, the longer, is exported."""
    whole = "<p>" + "The feed now gives the whole article. " * 60 + "</p>"
    old = story_with(content=whole, full_text="An older, shorter article text.")
    for fmt in ("atom", "rss", "json"):
        document = render([old], fmt, title="t", updated=NOW)
        assert "The feed now gives the whole article." in document
        assert "An older, shorter article text." not in document


# --- topics, polled back --------------------------------------------------------------------

TAGGED_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Reg</title>
<link>https://reg.example/</link>
<item><title>Root zone signed again</title><link>https://reg.example/1</link><guid>r1</guid>
<description>The root zone was re-signed.</description><category>Registry news</category>
<pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>New resolver policy</title><link>https://reg.example/2</link><guid>r2</guid>
<description>A resolver operator changed its policy.</description>
<pubDate>Fri, 27 Nov 2026 11:00:00 GMT</pubDate></item>
</channel></rss>"""


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_an_exported_feed_polled_by_another_store_keeps_its_topics(
    tmp_path: Path, server: LocalServer, fmt: str
) -> None:
    """A merged feed subscribed to by another aggregator (ours: a hub exporting per-topic
    feeds): Atom wrote each topic's score into its category's ``label``
    (``label="DNS (0.95)"``), which the parser rightly prefers as the category's name,
    so the stories came back with the category "DNS (0.95)" and without the topic DNS
    (``--topic DNS`` found none of them), where RSS and JSON Feed kept it. The topic's
    name and the story's own categories come back exactly, in every format."""
    s = Settings.from_env({}, data_dir=tmp_path / "a", allow_private_addresses=True, extract=False)
    with make_app(s, now=lambda: NOW) as a:
        a.add_feed(server.route("/reg.xml", body=TAGGED_RSS), discover=False)
        assert [r.error for r in a.update_due(all_feeds=True)] == [None]
        for story in a.stories(StoryQuery(limit=None)):
            a.label(story.id, ["DNS"], [])
        stories = a.stories(StoryQuery(limit=None))
        sent = {x.title: (*(t.topic for t in x.topics), *x.categories) for x in stories}
        assert all(x.topics[0].topic == "DNS" for x in stories)
        streamed: list[str] = []
        a.export_to(streamed.append, StoryQuery(limit=None), fmt)
        document = "".join(streamed)
    parsed = parse_feed(document.encode(), f"https://hub.example/feed.{fmt}", now=NOW)
    assert {e.title: e.categories for e in parsed.entries} == sent
    route = server.route(f"/hub.{fmt}", body=document.encode(), content_type=CONTENT_TYPES[fmt])
    s2 = Settings.from_env({}, data_dir=tmp_path / "b", allow_private_addresses=True, extract=False)
    with make_app(s2, now=lambda: NOW) as b:
        b.add_feed(route, discover=False)
        assert [(r.status, r.new) for r in b.update_due(all_feeds=True)] == [("ok", 2)]
        tagged = b.stories(StoryQuery(topics=("DNS",), limit=None))
        assert sorted(x.title for x in tagged) == sorted(sent)


CONTENT_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}


def html_escape_paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n") if p.strip())


def story_with(**fields: Any) -> Story:
    base: dict[str, Any] = {
        "id": 1,
        "feed_id": 1,
        "feed_url": "https://feed.example/rss",
        "feed_title": "Feed",
        "key": "v1:guid:g",
        "guid": "g",
        "link": "https://site.example/a",
        "canonical_url": "https://site.example/a",
        "title": "Title",
        "author": None,
        "published": NOW,
        "first_seen": NOW,
        "summary": "<p>Teaser.</p>",
        "content": None,
        "full_text": None,
        "extraction_status": "ok",
        "extraction_error": None,
        "categories": (),
    }
    return Story(**{**base, **fields})
