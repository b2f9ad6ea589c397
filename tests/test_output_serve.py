"""``aggregator serve`` as a feed reader and a user starting it see it: the ``limit``
parameter, weak validators in If-None-Match, and listening addresses that cannot be used."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from readonly import refuse_writes
from test_config_serve import _store_stories

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.serve import MAX_LIMIT, FeedServer, serve_forever

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _store_five(a: App) -> None:
    _store_stories(
        a,
        "https://a.example/feed",
        [(str(i), f"https://a.example/{i}", f"Story {i}") for i in range(5)],
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with make_app(Settings.from_env({}, data_dir=tmp_path), now=lambda: NOW) as a:
        _store_five(a)
        yield a


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedServer]:
    """``app``'s five stories served once for the seven limit cases, which only read
    them (each made the App, stored the stories and started a server); the store
    refuses writes (readonly.py)."""
    data = tmp_path_factory.mktemp("served")
    with make_app(Settings.from_env({}, data_dir=data), now=lambda: NOW) as a:
        _store_five(a)
        refuse_writes(a.store.engine)
        with FeedServer(a) as srv:
            yield srv


def _get(url: str, **headers: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize(
    ("query", "status", "entries"),
    [
        ("", 200, 5),
        ("limit=2", 200, 2),
        ("limit=0", 200, 5),  # 0 is "no limit", as for the CLI's --limit (up to MAX_LIMIT)
        (f"limit={MAX_LIMIT * 10}", 200, 5),
        ("limit=-1", 400, 0),
        ("limit=abc", 400, 0),
        ("limit=", 200, 5),  # a blank parameter is an absent one, as for q= or topic=
    ],
    ids=["default", "two", "zero-no-limit", "over-max", "negative", "not-a-number", "blank"],
)
def test_limit_parameter(served: FeedServer, query: str, status: int, entries: int) -> None:
    code, body = _get(f"{served.url}/feed.atom?{query}")
    assert code == status, body
    if status == 200:
        assert len(feedparser.parse(body).entries) == entries
    else:
        assert body.decode() == "limit must be a whole number, 0 for no limit\n"


def test_weak_validator_in_if_none_match_gets_a_304(app: App) -> None:
    """If-None-Match compares weakly (RFC 9110 §13.1.2): a cache or proxy that weakened our
    strong ETag to W/"…" still gets a 304."""
    with FeedServer(app) as srv:
        first = urllib.request.urlopen(srv.url + "/feed.rss")
        etag = first.headers["ETag"]
        assert etag.startswith('"')
        for header in (f"W/{etag}", f'"other", W/{etag}'):
            code, body = _get(srv.url + "/feed.rss", **{"If-None-Match": header})
            assert (code, body) == (304, b""), header
        code, _ = _get(srv.url + "/feed.rss", **{"If-None-Match": 'W/"other"'})
        assert code == 200


def test_serve_on_a_port_in_use_is_one_clear_error(app: App) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: "):
            serve_forever(app, host="127.0.0.1", port=port)
    with pytest.raises(ConfigError, match=r"^cannot listen on no-such-host\.invalid:0: "):
        serve_forever(app, host="no-such-host.invalid", port=0)


def test_serve_closes_its_socket_when_announcing_fails(app: App) -> None:
    # `aggregator serve | head -0`: printing the address meets a broken pipe.
    read_end, write_end = os.pipe()
    os.close(read_end)
    announced: list[str] = []

    def announce(url: str) -> None:
        announced.append(url)
        os.write(write_end, url.encode())

    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(BrokenPipeError):
                serve_forever(app, host="127.0.0.1", port=0, announce=announce)
            gc.collect()
    finally:
        os.close(write_end)
    # It was left to the garbage collector: "ResourceWarning: unclosed <socket.socket ...>"
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
    port = urllib.parse.urlsplit(announced[0]).port
    assert port
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))  # the listening socket was closed


def test_serve_on_ipv6_loopback(app: App) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with FeedServer(app, host="::1") as srv:
        assert srv.url.startswith("http://[::1]:")
        code, body = _get(srv.url + "/feed.json")
    assert code == 200
    assert b'"feed_url": "http://[::1]:' in body


def test_serve_command_reports_a_busy_port_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["--data-dir", str(tmp_path), "serve", "--port", str(port)]
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("host", ["", " "], ids=["empty", "blank"])
def test_serve_with_an_empty_host_is_bad_input(tmp_path: Path, host: str) -> None:
    """`--host ""` (a `--host "$HOST"` whose variable is unset) listened on every
    interface, 0.0.0.0, where the README promises 127.0.0.1 unless an address is named."""
    argv = ["--data-dir", str(tmp_path), "serve", "--host", host, "--port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", *argv], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: --host is empty: ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_on_sigterm_as_on_ctrl_c(tmp_path: Path, signum: int) -> None:
    """systemd, Docker and Kubernetes stop a service with SIGTERM: `serve` died of the
    signal (143) with its store left open, where Ctrl-C closed it and exited 0."""
    argv = ["--data-dir", str(tmp_path), "serve", "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", *argv],
        stderr=subprocess.PIPE,
        text=True,
        # a child of a non-interactive shell may inherit SIGINT ignored: let it have it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        url = line.split()[-1]
        with urllib.request.urlopen(url + "feed.json", timeout=10) as r:
            assert r.status == 200
        proc.send_signal(signum)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in rest
    # the store was closed: SQLite folds its write-ahead log back and removes it
    assert not (tmp_path / "aggregator.db-wal").exists()
