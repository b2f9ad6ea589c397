"""Values too long for an index. PostgreSQL refuses a B-tree index entry over 2,704
bytes (after compression), so a feed URL of several kilobytes could be added on SQLite
but not on PostgreSQL ("index row size 8040 exceeds btree version 4 maximum 2704"), and
a permanent redirect to one was adopted and then failed to store on every poll. A feed
URL is now limited to MAX_FEED_URL_BYTES (2,048 bytes as UTF-8, what sitemaps and
most software allow), checked where a URL comes in and before a redirect is adopted."""

from __future__ import annotations

import secrets
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from test_label_archive import T1
from test_schedule import NOW, P0, feed, ok
from test_store import check, draft

from aggregator import schedule
from aggregator.errors import ConfigError
from aggregator.feedlist import check_feed_url, parse_feeds_yaml
from aggregator.store import open_store
from aggregator.types import MAX_FEED_URL_BYTES, FeedSource, StoryQuery, StoryRecord


def _url(n_bytes: int) -> str:
    head = "https://a.example/feed?x="
    return head + secrets.token_hex(n_bytes)[: n_bytes - len(head)]


def test_a_feed_url_over_the_limit_is_refused_with_the_reason() -> None:
    longest = _url(MAX_FEED_URL_BYTES)
    assert check_feed_url(longest) == longest
    with pytest.raises(ConfigError, match=r"longer than 2,048 bytes \(2,049\)"):
        check_feed_url(_url(MAX_FEED_URL_BYTES + 1))
    # counted as UTF-8: 700 three-byte characters are 2,100 bytes
    with pytest.raises(ConfigError, match="longer than 2,048 bytes"):
        check_feed_url("https://a.example/" + "€" * 700)
    # and the message does not quote the whole URL
    with pytest.raises(ConfigError) as caught:
        check_feed_url(_url(10_000))
    assert len(str(caught.value)) < 300


def test_feeds_yaml_names_the_entry_with_the_overlong_url() -> None:
    text = f"feeds:\n  - url: https://ok.example/feed\n  - url: {_url(3000)}\n"
    with pytest.raises(ConfigError, match="longer than 2,048 bytes"):
        parse_feeds_yaml(text)


def test_a_permanent_redirect_to_an_overlong_url_is_followed_but_never_adopted() -> None:
    target = _url(MAX_FEED_URL_BYTES + 100)
    f = feed()
    for hours in (0, 12, 30, 60):
        c = schedule.after_success(
            f,
            ok(permanent_redirect=target),
            outcome="ok",
            now=NOW + timedelta(hours=hours),
            policy=P0,
            post_dates=[],
        )
        assert c.url is None
        f = replace(
            f,
            redirect_url=c.redirect_url,
            redirect_count=c.redirect_count,
            redirect_first_seen=c.redirect_first_seen,
        )
    # a target within the limit is adopted as before
    longest = _url(MAX_FEED_URL_BYTES)
    c = schedule.after_success(
        feed(),
        ok(permanent_redirect=longest),
        outcome="ok",
        now=NOW,
        policy=replace(P0, redirect_polls=1, redirect_span=timedelta(0)),
        post_dates=[],
    )
    assert c.url == longest


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_longest_feed_url_allowed_is_stored_on_both_backends(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    longest = check_feed_url(_url(MAX_FEED_URL_BYTES))  # random hex: it does not compress
    with closing(open_store(url)) as st:
        added, _ = st.add_feed(FeedSource(url=longest), T1)
        assert added.url == longest


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_story_link_of_several_kilobytes_is_stored_and_matched_across_feeds(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """A story's canonical URL is indexed for finding the same link in other feeds; on
    PostgreSQL a B-tree entry cannot hold a long one, so the index is a hash index there
    (migration 15), as the label archive's feed URL index has been since migration 10."""
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    link = "https://news.example/story?t=" + secrets.token_urlsafe(6000)
    with closing(open_store(url)) as st:
        a, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T1)
        b, _ = st.add_feed(FeedSource(url="https://b.example/feed"), T1)
        st.save_update(check(a.id), [StoryRecord(draft=draft("v1:guid:a1", "One", link=link))])
        st.save_update(
            check(b.id), [StoryRecord(draft=draft("v1:guid:b1", "Another title", link=link))]
        )
        (one,) = st.stories(StoryQuery(feeds=(str(a.id),)))
        (other,) = st.stories(StoryQuery(feeds=(str(b.id),)))
        assert one.link == other.link == link
        assert one.cluster_id == other.cluster_id is not None
