"""The daemon and the poll outlive PostgreSQL's bad hours: connections the server
terminated, and the server going away for a while (a restart, a network failure).

The outage is a real one as the client sees it: the store talks to PostgreSQL through a
TCP forwarder on loopback that the test cuts (every connection closed, new ones refused)
and restores. Connections are terminated with ``pg_terminate_backend`` from an admin
connection."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from httpserver import LocalServer, Request, closed_port
from sqlalchemy import create_engine, text
from test_poll_containment import sql

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import StoreError

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Resilience</title>
<link>http://example.org/</link><item><title>Registry operators meet</title>
<link>http://example.org/a</link><guid>a</guid><description>Operators met to discuss
DNSSEC key rollovers.</description></item></channel></rss>"""


class Forwarder:
    """A TCP forwarder from 127.0.0.1:<port> to ``target``. ``cut()`` closes every
    connection through it and stops listening (new connections are refused);
    ``restore()`` listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._start()

    def _start(self) -> None:
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown first: closing alone leaves the thread blocked in accept() listening
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._start()


@pytest.fixture
def forwarder(pg_url: str) -> Iterator[Forwarder]:
    f = Forwarder(("127.0.0.1", 5432))
    try:
        yield f
    finally:
        f.cut()


def through(pg_url: str, f: Forwarder) -> str:
    """``pg_url`` by way of the forwarder."""
    return re.sub(r"@127\.0\.0\.1:5432/", f"@127.0.0.1:{f.port}/", pg_url)


def terminate_backends(pg_url: str) -> int:
    name = pg_url.rsplit("/", 1)[1]
    engine = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            return int(
                c.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def cut_mid_fetch(forwarder: Forwarder) -> Callable[[Request], bytes]:
    """A feed body that cuts the database off while its (first) request is being served:
    the poll is mid-fetch then, whatever its pace (a fixed delay and a timer raced it)."""
    served = threading.Event()

    def serve(_: Request) -> bytes:
        if not served.is_set():
            served.set()
            forwarder.cut()
        return RSS

    return serve


def wait_for(what: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if what():
                return
        except Exception:  # e.g. the daemon has not created its tables yet
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.postgres
def test_connections_the_server_terminated_are_replaced(
    pg_url: str, tmp_path: Path, server: LocalServer
) -> None:
    # The pool's connections all die between two polls (a PostgreSQL restart, an
    # idle-session timeout): the next poll reconnects instead of failing on a stale one.
    url = server.route("/f.xml", body=RSS, etag='"v1"')
    s = Settings.from_env(
        {}, database_url=pg_url, data_dir=tmp_path, allow_private_addresses=True, extract=False
    )
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        assert [r.status for r in app.update_due(all_feeds=True)] == ["ok"]
        assert terminate_backends(pg_url) >= 1
        assert [r.status for r in app.update_due(all_feeds=True)] == ["not_modified"]
        assert terminate_backends(pg_url) >= 1
        assert app.feeds()[0].stories == 1


@pytest.mark.postgres
def test_feeds_a_failed_poll_could_not_hand_back_are_polled_once_it_is_back(
    pg_url: str, forwarder: Forwarder, tmp_path: Path, server: LocalServer
) -> None:
    # The database goes away while a feed is being fetched: its outcome cannot be stored,
    # nor its lease released. Until now the lease stayed for its 15 minutes, and the same
    # daemon skipped the feed all that time; now the next poll hands it back first.
    slow = server.route("/slow.xml", body=cut_mid_fetch(forwarder))
    s = Settings.from_env(
        {},
        database_url=through(pg_url, forwarder),
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
    )
    with make_app(s) as app:
        app.add_feed(slow, discover=False)
        updates = app.update_due()
        with pytest.raises(StoreError):
            list(updates)
        # the fetch was done, nothing stored, the lease still the poll's
        assert len(server.requests_for("/slow.xml")) == 1
        assert sql(pg_url, "SELECT lease_owner, last_check FROM feed") == [(app.owner, None)]

        with pytest.raises(StoreError):  # still gone: the next poll fails at once
            list(app.update_due())
        forwarder.restore()
        results = list(app.update_due())
        assert [(r.url, r.status) for r in results] == [(slow, "ok")]
        assert sql(pg_url, "SELECT lease_owner, status FROM feed") == [(None, "active")]
        assert app.feeds()[0].stories == 1


@pytest.mark.postgres
def test_feeds_a_failed_poll_could_not_hand_back_are_handed_back_on_closing(
    pg_url: str, forwarder: Forwarder, tmp_path: Path, server: LocalServer
) -> None:
    # A daemon stopped after the database came back, before its next poll: the other
    # daemons get the feed now, not when the lease expires.
    slow = server.route("/slow.xml", body=cut_mid_fetch(forwarder))
    s = Settings.from_env(
        {},
        database_url=through(pg_url, forwarder),
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
    )
    with make_app(s) as app:
        app.add_feed(slow, discover=False)
        with pytest.raises(StoreError):
            list(app.update_due())
        forwarder.restore()
        assert sql(pg_url, "SELECT lease_owner FROM feed") == [(app.owner,)]
    assert sql(pg_url, "SELECT lease_owner FROM feed") == [(None,)]


def daemon_env(tmp_path: Path, url: str, feeds: list[str]) -> dict[str, str]:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in feeds))
    return {
        **os.environ,
        "AGGREGATOR_DATA_DIR": str(tmp_path / "data"),
        "AGGREGATOR_DATABASE_URL": url,
        "AGGREGATOR_FEEDS": str(path),
        "AGGREGATOR_ALLOW_PRIVATE_ADDRESSES": "1",
    }


@pytest.mark.postgres
def test_a_real_daemon_outlives_a_postgres_outage(
    pg_url: str, forwarder: Forwarder, tmp_path: Path, server: LocalServer
) -> None:
    url = server.route("/f.xml", body=RSS, etag='"v1"')
    env = daemon_env(tmp_path, through(pg_url, forwarder), [url])
    proc = subprocess.Popen(  # default log level: what an operator sees
        [sys.executable, "-m", "aggregator", "daemon", "--no-extract", "--max-sleep", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: sql(pg_url, "SELECT count(*) FROM story") == [(1,)])
        forwarder.cut()
        time.sleep(2.5)  # a few wake-ups against a database that is not there
        assert proc.poll() is None, proc.communicate()[1]
        sql(pg_url, "UPDATE feed SET next_check = now() - interval '1 second'")
        forwarder.restore()
        wait_for(lambda: len(server.requests_for("/f.xml")) == 2)  # polled again
        wait_for(lambda: sql(pg_url, "SELECT lease_owner FROM feed") == [(None,)])
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = err.splitlines()
    failed = [line for line in lines if "poll cycle failed" in line]
    # one line per failed cycle, at most one per second (no busy loop), each saying why
    assert 1 <= len(failed) <= 5, err
    assert all(" ERROR " in line and "connect" in line for line in failed), err
    assert any("poll cycle succeeded again" in line for line in lines), err
    assert "Traceback" not in err
    # every line is a log record of its own: nothing spills over several lines
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in lines), err


def test_a_daemon_whose_database_is_unreachable_at_start_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nothing"
    env = daemon_env(tmp_path, url, [])
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "daemon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert time.monotonic() - t0 < 20
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot open database:") and "refused" in line, done.stderr


@pytest.mark.postgres
def test_a_poll_that_loses_its_database_says_so_and_the_next_poll_takes_its_feeds(
    pg_url: str, forwarder: Forwarder, tmp_path: Path, server: LocalServer
) -> None:
    slow = server.route("/slow.xml", body=cut_mid_fetch(forwarder))
    env = daemon_env(tmp_path, through(pg_url, forwarder), [slow])
    poll = [sys.executable, "-m", "aggregator", "poll", "--no-extract", "--format", "json"]
    proc = subprocess.Popen(
        poll, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _out, err = proc.communicate(timeout=30)
        assert len(server.requests_for("/slow.xml")) == 1  # cut while it was fetched
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    (line,) = err.strip().splitlines()  # one line, no traceback
    assert line.startswith("error: connection failed") and "refused" in line, err
    # the dead process's lease is handed back by the next poll on this host
    assert sql(pg_url, "SELECT lease_owner IS NOT NULL, last_check FROM feed") == [(True, None)]
    forwarder.restore()
    done = subprocess.run(poll, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"status": "ok"' in done.stdout
