"""Session 29: what the CLI and the daemon say, in words a reader takes at face value.

A count printed beside a noun agrees with it ("1 feed", "2 feeds", "1,000 stories"), in
the poll's and extract's summaries and the daemon's log lines as in the rest of the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

from aggregator.app import ExtractionTally
from aggregator.cli.commands import print_poll_summary
from aggregator.cli.common import PollFmt
from aggregator.cli.maintenance import _report_extraction
from aggregator.textutil import counted
from aggregator.types import UpdateResult


@pytest.mark.parametrize(
    ("n", "one", "many", "grouped", "expected"),
    [
        (0, "story", "stories", True, "0 stories"),
        (1, "story", "stories", True, "1 story"),
        (2, "feed", None, True, "2 feeds"),
        (1, "feed", None, True, "1 feed"),
        (12345, "story", "stories", True, "12,345 stories"),
        (12345, "error", None, False, "12345 errors"),
    ],
    ids=["zero", "one", "two", "one-regular", "grouped", "ungrouped"],
)
def test_counted(n: int, one: str, many: str | None, grouped: bool, expected: str) -> None:
    assert counted(n, one, many, grouped=grouped) == expected


def _result(n: int, *, new: int = 0, deferred: int = 0, status: str = "ok") -> UpdateResult:
    return UpdateResult(
        feed_id=n,
        url=f"https://feeds.example/{n}.xml",
        title=f"feed {n}",
        status=status,  # type: ignore[arg-type]
        new=new,
        deferred=deferred,
    )


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())


def test_poll_summary_agrees_with_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    print_poll_summary([_result(1, new=1, deferred=1)])
    said = _said(capsys)
    assert "1 feed, 1 new story, 0 failed" in said, said
    assert "1 story was stored without its article page" in said, said

    print_poll_summary([_result(1, new=2, deferred=2), _result(2, status="error")])
    said = _said(capsys)
    assert "2 feeds, 2 new stories, 1 failed" in said, said
    assert "2 stories were stored without their article page" in said, said


def test_extract_summary_agrees_with_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    _report_extraction(ExtractionTally(tried=1, extracted=1, left=1), PollFmt.table)
    said = _said(capsys)
    assert said.startswith("extracted 1 of 1 story; 0 failed"), said
    assert "0 kept their feed's longer text; 1 still waits (" in said, said

    _report_extraction(ExtractionTally(tried=3, extracted=1, failed=1, left=2), PollFmt.table)
    said = _said(capsys)
    assert said.startswith("extracted 1 of 3 stories; 1 failed"), said
    assert "1 kept its feed's longer text; 2 still wait (" in said, said


def test_daemon_help_says_how_it_stops(capsys: pytest.CaptureFixture[str]) -> None:
    """`daemon --help` said it stops "after the work in flight": it does not wait for the
    fetches in flight, it cancels them and hands their feeds back (as `poll` says of
    itself, and README), and it said nothing of following the feeds file."""
    code, out, err = run(capsys, "daemon", "--help")
    assert code == 0, err
    said = " ".join(out.replace("│", " ").split())
    assert "after the work in flight" not in said, said
    assert "following the feeds file" in said and "SIGHUP" in said, said
    assert "fetches in flight are cancelled" in said, said
    assert "the feeds not yet stored are handed back" in said, said
    assert "the exit status is 0" in said and "130, 143" in said, said


def test_a_page_shared_with_one_other_story_says_so_in_the_singular() -> None:
    """Why a story got no article, as `show` prints it: "redirected to the same page as 1
    other stories" and "the same text as 1 other stories' pages" for the commonest case,
    two stories (an article link and another both sent to the home page)."""
    from aggregator.articles import Extracted, _one_page_for_many
    from aggregator.types import Article

    def got(n: int) -> list[tuple[str, Extracted]]:
        return [(f"k{i}", Extracted(article=Article(url=f"https://s.example/{i}", text="Same")))
                for i in range(n)]  # fmt: skip

    def whys(n: int, *, redirected: bool) -> set[str]:
        landed = {f"k{i}": ("https://s.example/", f"https://s.example/{i}") for i in range(n)}
        fetched = {f"k{i}": (f"https://s.example/{i}", frozenset({f"t{i}"})) for i in range(n)}
        done = _one_page_for_many(got(n), landed if redirected else {}, fetched)
        return {str(ex.article.message) for _, ex in done}  # type: ignore[union-attr]

    assert whys(2, redirected=True) == {
        "redirected to the same page as 1 other story (https://s.example/)"
    }
    assert whys(3, redirected=True) == {
        "redirected to the same page as 2 other stories (https://s.example/)"
    }
    assert whys(2, redirected=False) == {"the page gave the same text as 1 other story's page"}
    assert whys(3, redirected=False) == {"the page gave the same text as 2 other stories' pages"}


def test_a_poll_that_polls_nothing_says_why_and_offers_all_only_where_it_helps(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`poll --all` with nothing to poll said "No feeds are due. Use --all to poll every
    feed now.", to the command given --all; so did `poll` with no feed at all, or with
    every feed turned off, where --all polls nothing either."""
    monkeypatch.delenv("AGGREGATOR_ALLOW_PRIVATE_ADDRESSES", raising=False)

    def said(*argv: str) -> str:
        code, out, err = run(capsys, "poll", *argv)
        assert code == 0, err
        return " ".join(out.split())

    for argv in ((), ("--all",)):
        assert said(*argv) == (
            "No feeds yet: add one with `aggregator feeds add URL`, or list them in the"
            f" feeds file ({env / 'feeds.yaml'})."
        ), argv
    (env / "feeds.yaml").write_text(
        "feeds:\n  - {url: 'http://127.0.0.1:9/off.xml', enabled: false}\n"
    )
    for argv in ((), ("--all",)):
        assert said(*argv) == (
            "No feed is on: each is turned off in the feeds file, gone (HTTP 410) or"
            " disabled after 30 days of errors (see `aggregator feeds list`)."
        ), argv
    # a feed polled once (loopback is refused: an error at once, retried later) is not
    # due: --all is the way to poll it now, and it does
    (env / "feeds.yaml").write_text("feeds:\n  - {url: 'http://127.0.0.1:9/on.xml'}\n")
    code, _, err = run(capsys, "poll")
    assert code == 1, err  # every feed failed
    assert said() == "No feeds are due. Use --all to poll every feed now."
    code, out, err = run(capsys, "poll", "--all")
    assert code == 1 and "1 feed, 0 new stories, 1 failed" in " ".join(out.split()), err


def test_poll_help_says_show_lists_the_newest_stories_and_not_with_quiet_or_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`poll --help` said --show lists "the N newest tagged stories", as if it filtered
    on tags (it lists the newest stories, with their topics, tagged or not), and not
    that --show with --quiet or --format json is refused (bad input, exit 2)."""
    code, out, err = run(capsys, "poll", "--help")
    assert code == 0, err
    said = " ".join(out.replace("│", " ").split())
    assert "newest tagged stories" not in said, said
    assert "the N newest stories with their topics" in said, said
    assert "not with --quiet or --format json" in said, said
    code, _, err = run(capsys, "poll", "--show", "3", "--quiet")
    assert code == 2 and "--show lists stories after the poll's table" in err, err
