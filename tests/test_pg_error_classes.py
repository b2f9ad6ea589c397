"""Which PostgreSQL errors mean "the database cannot answer now" (StoreUnavailableError:
the poll ends as database trouble and hands its feeds back, `serve` answers 503) and
which are about the data being written (StoreError: contained to the one feed).

Before, every OperationalError from PostgreSQL counted as unavailable, including SQLSTATE
class 54 (program limit exceeded): one item with a long, incompressible guid ("index row
size 8024 exceeds btree version 4 maximum 2704", before migration 16) ended every poll,
for every feed, as database trouble, for as long as the feed listed it."""

from __future__ import annotations

import base64
import random
from contextlib import closing

import pytest
from sqlalchemy import text
from test_label_archive import T1
from test_store import check, draft

from aggregator.errors import StoreError, StoreUnavailableError
from aggregator.store import open_store
from aggregator.store.base import _store_error
from aggregator.types import FeedSource, StoryRecord

pytestmark = pytest.mark.postgres


def _raised(st: object, sql: str) -> StoreError:
    with pytest.raises(StoreError) as caught, st._read() as s:  # type: ignore[attr-defined]
        s.execute(text(sql))
    return caught.value


@pytest.mark.parametrize(
    ("sql", "unavailable"),
    [
        # 54000 program_limit_exceeded: the data, not the server
        (
            "SELECT to_tsvector('simple', string_agg(md5(i::text), ' ')) "
            "FROM generate_series(1, 60000) i",
            False,
        ),
        # 22012 division_by_zero (a DataError): the data
        ("SELECT 1 / 0", False),
        # 57014 query_canceled by statement_timeout: the server is busy, try later
        ("SET statement_timeout = 50; SELECT pg_sleep(2)", True),
    ],
    ids=["54000-limit", "22012-data", "57014-timeout"],
)
def test_postgres_errors_are_classed_by_sqlstate(pg_url: str, sql: str, unavailable: bool) -> None:
    with closing(open_store(pg_url)) as st:
        e = _raised(st, sql)
        assert isinstance(e, StoreUnavailableError) is unavailable, str(e)


def test_a_lost_connection_is_still_unavailable(pg_url: str) -> None:
    with closing(open_store(pg_url)) as st:
        with pytest.raises(StoreError) as caught, st._read() as s:
            s.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert isinstance(caught.value, StoreUnavailableError)
        with st._read() as s:  # and the store carries on
            assert s.execute(text("SELECT 1")).scalar() == 1


def test_an_index_limit_on_one_feed_is_that_feeds_error(pg_url: str) -> None:
    """Our own indexes hold values of any length now (migrations 15 and 16); an index a
    database administrator added (here on story titles) still has the B-tree's limit,
    and one long title must cost its own feed's write only."""
    rng = random.Random(7)
    long_title = base64.b64encode(rng.randbytes(6000)).decode()
    with closing(open_store(pg_url)) as st:
        with st.engine.begin() as c:
            c.execute(text("CREATE INDEX ix_dba_story_title ON story (title)"))
        feed, _ = st.add_feed(FeedSource(url="https://a.example/feed"), T1)
        other, _ = st.add_feed(FeedSource(url="https://b.example/feed"), T1)
        with pytest.raises(StoreError) as caught:
            st.save_update(check(feed.id), [StoryRecord(draft=draft("v1:guid:1", long_title))])
        assert not isinstance(caught.value, StoreUnavailableError)
        assert "index row size" in str(caught.value)
        st.save_update(check(other.id), [StoryRecord(draft=draft("v1:guid:2", "Short"))])


def test_store_error_keeps_non_postgres_classes() -> None:
    # no driver error underneath (e.g. the pool timing out): unavailable, as before
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    assert isinstance(_store_error(PoolTimeoutError("pool")), StoreUnavailableError)
