"""The newest list orders and reading lists, as a demanding user meets them: serve's
validators on a page by relevance, a named list's options in any text argv holds, and
an order given to a named list."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from test_config_serve import _store_stories
from test_serve_proxy import NOW, STORED, Clock, _request, clock  # noqa: F401  (clock: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer


def test_a_page_by_relevance_reranked_by_stories_stored_off_it_is_not_answered_304(
    tmp_path: Path,
    clock: Clock,  # noqa: F811
) -> None:
    """bm25 (SQLite) weighs a word by how few stories hold it: stories stored off a page
    by ``sort=relevance`` change its order, and which stories it holds, while none on
    it was stored since. Its Last-Modified stayed put, so If-Modified-Since got a 304
    for a page now holding another story; like a page by sources it has none (the
    ETag validates it)."""
    with (
        make_app(Settings.from_env({}, data_dir=tmp_path), now=clock) as app,
        FeedServer(app) as srv,
    ):
        _store_stories(
            app,
            "https://a.example/feed",
            [
                ("x", "https://a.example/x", "alpha alpha alpha beta"),
                ("y", "https://a.example/y", "alpha beta beta beta"),
            ],
        )
        path = "/feed.atom?q=alpha%20beta&sort=relevance&limit=1"
        status, headers, body = _request(srv, path)
        assert status == 200 and b"beta beta beta" in body
        before = headers["Last-Modified"] or STORED  # what it said, or would have said
        clock.at = NOW + timedelta(hours=1)
        # twenty stories with "beta" alone: none matches, and beta weighs less now
        _store_stories(
            app,
            "https://b.example/feed",
            [(f"b{i}", f"https://b.example/{i}", f"beta filler{i}") for i in range(20)],
            day=20,
        )
        status, headers, body = _request(srv, path, ("If-Modified-Since", before))
        assert status == 200 and b"alpha alpha alpha" in body
        assert headers["Last-Modified"] is None
        status, _, _ = _request(srv, path, ("If-None-Match", headers["ETag"]))
        assert status == 304
        # by date, the first page keeps its Last-Modified
        status, headers, _ = _request(srv, "/feed.atom?q=alpha%20beta&limit=1")
        assert headers["Last-Modified"] is not None
