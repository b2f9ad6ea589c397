"""``FeedServer`` (``aggregator serve`` on a background thread, as the tests and an
embedding program run it) stops promptly: its accept loop woke every half second to look
for ``shutdown``, so leaving every ``with FeedServer(app)`` waited ~0.5 s for nothing."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.serve import FeedServer


def test_leaving_a_feed_server_does_not_wait_half_a_second(tmp_path: Path) -> None:
    with make_app(Settings.from_env({}, data_dir=tmp_path)) as app:
        took = []
        for _ in range(3):
            with FeedServer(app) as srv:
                with urllib.request.urlopen(srv.url + "/feed.atom", timeout=10) as r:
                    assert r.status == 200
                left = time.perf_counter()
            took.append(time.perf_counter() - left)
            # closed: nothing answers on its port any more
            try:
                urllib.request.urlopen(srv.url + "/feed.atom", timeout=10)
            except OSError:
                pass
            else:
                raise AssertionError("the server still answers after leaving it")
    # the best of three, so a busy machine's one slow wake-up does not decide it
    assert min(took) < 0.2, took
