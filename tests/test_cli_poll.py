"""`aggregator poll` and `feeds list` as a user sees them: the progress bar on a real
terminal (a pty), the polling columns of `feeds list --format json`, the configured
User-Agent reaching the server, and SIGTERM / Ctrl-C stopping a poll mid-fetch."""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clirun import in_process
from httpserver import LocalServer

from aggregator.app import make_app
from aggregator.config import Settings

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<item><title>a</title><guid>g1</guid></item></channel></rss>"
)


def _env(tmp_path: Path, *urls: str) -> dict[str, str]:
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n" + "".join(f"  - url: {u}\n" for u in urls), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        AGGREGATOR_DATA_DIR=str(tmp_path / "data"),
        AGGREGATOR_FEEDS=str(tmp_path / "feeds.yaml"),
        AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="1",
        AGGREGATOR_EXTRACT="0",
        COLUMNS="100",
        TERM="xterm-256color",
    )
    env.pop("NO_COLOR", None)
    return env


def _aggregator(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_poll_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path, server: LocalServer) -> None:
    env = _env(tmp_path, server.route("/a.xml", body=RSS), server.url("/missing.xml"))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "poll"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave)
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert proc.returncode == 0
    terminal = b"".join(chunks).decode("utf-8", "replace")
    # the bar's last frame: feeds done of the total, new stories and errors so far
    assert "polling" in terminal and "2/2" in terminal, terminal
    assert "1 new · 1 error " in terminal, terminal
    assert "2 feeds, 1 new story, 1 failed" in stdout.decode()
    # not a terminal (a pipe, as in scripts): no bar, no control sequences
    piped = _aggregator(env, "poll", "--all")
    assert "polling" not in piped.stderr and "\x1b[" not in piped.stderr
    quiet = _aggregator(env, "poll", "--all", "--quiet")
    assert (quiet.returncode, quiet.stdout) == (0, "")


def test_feeds_list_json_shows_the_polling_state(tmp_path: Path, server: LocalServer) -> None:
    ok, bad = server.route("/a.xml", body=RSS), server.route("/b.xml", status=500)
    env = _env(tmp_path, ok, bad)
    before = datetime.now().astimezone()
    assert _aggregator(env, "poll").returncode == 0
    listed = json.loads(_aggregator(env, "feeds", "list", "--format", "json").stdout)
    by_url = {f["url"]: f for f in listed}
    a, b = by_url[ok], by_url[bad]
    assert (a["status"], a["error_count"], a["last_error"], a["stories"]) == ("active", 0, None, 1)
    assert (b["status"], b["error_count"], b["stories"]) == ("error", 1, 0)
    assert "500" in b["last_error"] and b["last_success"] is None
    assert datetime.fromisoformat(a["last_success"]) >= before
    for f in (a, b):
        assert datetime.fromisoformat(f["next_check"]) > datetime.fromisoformat(f["last_check"])


def test_configured_user_agent_reaches_the_server(tmp_path: Path, server: LocalServer) -> None:
    url = server.route("/f.xml", body=RSS)
    agent = "IndustryWatch/2.1 (+mailto:ops@example.org)"
    s = Settings.from_env(
        {"AGGREGATOR_USER_AGENT": agent},
        data_dir=tmp_path,
        allow_private_addresses=True,
        extract=False,
    )
    with make_app(s) as app:
        app.add_feed(url, discover=False)
        list(app.update_due())
    assert server.requests_for("/f.xml")[0].headers.get("user-agent") == agent


@pytest.mark.parametrize(
    ("sig", "status", "fmt"),
    [(signal.SIGTERM, 143, "table"), (signal.SIGINT, 130, "json")],
    ids=["SIGTERM-table", "SIGINT-json"],
)
def test_a_signal_stops_a_poll_mid_fetch_and_hands_its_leases_back(
    tmp_path: Path, server: LocalServer, sig: signal.Signals, status: int, fmt: str
) -> None:
    # One feed answers at once, four only after 30 s: the signal comes once the first is
    # stored and the others are in flight. The poll must not wait for them, must report
    # the one it polled, and must leave no lease behind (a PostgreSQL daemon elsewhere
    # would wait out the lease, 15 minutes, before polling those feeds).
    fast = server.route("/fast.xml", body=RSS)
    slow = [server.route(f"/slow{i}.xml", body=RSS, delay=30) for i in range(4)]
    env = _env(tmp_path, fast, *slow)
    env["AGGREGATOR_PER_HOST"] = "16"
    db = tmp_path / "data" / "aggregator.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "poll", "--format", fmt],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            server.in_flight == 4 and _checked(db) == [fast]
        ):
            time.sleep(0.05)
        assert server.in_flight == 4 and _checked(db) == [fast], "the poll never got there"
        t0 = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == status, stderr
    assert took < 3, f"stopping took {took:.1f} s"
    assert "poll interrupted: 4 feeds not polled" in stderr
    for noise in ("Traceback", "KeyboardInterrupt", "Task was destroyed", "Event loop is closed"):
        assert noise not in stderr, stderr
    if fmt == "json":
        assert [(r["url"], r["status"], r["new"]) for r in json.loads(stdout)] == [(fast, "ok", 1)]
    else:
        assert "1 feed, 1 new story, 0 failed" in stdout
    # nothing more was stored, and every lease was handed back
    assert _checked(db) == [fast]
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        leased = conn.execute("SELECT url FROM feed WHERE lease_owner IS NOT NULL").fetchall()
        (feeds,) = conn.execute("SELECT count(*) FROM feed").fetchone()
    assert (leased, feeds) == ([], 5)


def _checked(db: Path) -> list[str]:
    """The URLs of the feeds whose outcome is stored, read as another process would."""
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT url FROM feed WHERE last_check IS NOT NULL").fetchall()
    except sqlite3.OperationalError:  # the schema is still being created
        return []
    return [url for (url,) in rows]


def test_poll_feed_polls_only_the_named_feeds_due_or_not(
    tmp_path: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`poll --feed` (id or URL, repeatable): just those feeds, due or not, as after a fix
    to one feed; a name that is no feed is an error before anything is polled; a feed
    that is turned off is not polled, and the reason is given. The commands run in this
    process (the other tests here start the CLI as a process)."""
    _aggregator = in_process(monkeypatch, capsys)
    a, b = (server.route(f"/{n}.xml", body=RSS) for n in ("a", "b"))
    # c on a host of its own (the server by another name): its 429 below holds its host
    server.route("/c.xml", body=RSS)
    c = server.url("/c.xml", host="localhost")
    env = _env(tmp_path, a, b, c)
    first = _aggregator(env, "poll", "--format", "json")
    assert first.returncode == 0, first.stderr
    assert len(json.loads(first.stdout)) == 3  # none is due now

    got = _aggregator(env, "poll", "--feed", b, "--feed", "3", "--feed", b, "--format", "json")
    assert got.returncode == 0, got.stderr
    assert sorted(r["url"] for r in json.loads(got.stdout)) == [b, c]

    table = _aggregator(env, "poll", "--feed", "1")
    assert table.returncode == 0 and "No feeds are due" not in table.stdout

    unknown = _aggregator(env, "poll", "--feed", server.url("/nope.xml"))
    assert unknown.returncode == 2
    assert "no feed" in unknown.stderr and "feeds list" in unknown.stderr

    (tmp_path / "feeds.yaml").write_text(
        f"feeds:\n  - url: {a}\n  - url: {b}\n    enabled: false\n  - url: {c}\n",
        encoding="utf-8",
    )
    off = _aggregator(env, "poll", "--feed", b, "--format", "json")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout) == []
    assert "not polled" in off.stderr and "enabled: false" in off.stderr

    # a server's Retry-After holds a named feed back too, and the reason says until when
    server.route("/c.xml", status=429, body=b"slow down", headers={"Retry-After": "3600"})
    assert _aggregator(env, "poll", "--feed", c).returncode == 1  # its only feed failed
    held = _aggregator(env, "poll", "--feed", c, "--format", "json")
    assert held.returncode == 0 and json.loads(held.stdout) == [], held.stderr
    assert "not polled" in held.stderr and "no request before" in held.stderr
    assert "(Retry-After)" in held.stderr

    # a feed another host's daemon is polling (its lease): named, with when the lease ends
    with make_app(Settings.from_env(env)) as app:
        assert app.store.claim_due(
            app.now(),
            owner="elsewhere.example:41:daemon",
            lease=timedelta(minutes=15),
            include_not_due=True,
            ids=[1],
        )
    busy = _aggregator(env, "poll", "--feed", "1", "--format", "json")
    assert busy.returncode == 0 and json.loads(busy.stdout) == [], busy.stderr
    assert "elsewhere.example:41:daemon is polling it (its lease ends" in busy.stderr
    shown = _aggregator(env, "feeds", "show", "1", "--format", "json")
    assert json.loads(shown.stdout)["lease"]["owner"] == "elsewhere.example:41:daemon"
    table = _aggregator(env, "feeds", "show", "1")
    assert "polling now" in table.stdout and "elsewhere.example:41:daemon" in table.stdout
