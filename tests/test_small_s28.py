"""Session 28, exporter/server and CLI polish: content-coding negotiation by q-value, a
Host naming a port no TCP connection has, and the CLI's words and exit statuses. Real
sockets, real SQLite files, the real CLI."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_config_serve import _store_stories
from test_evaluate import GOLD, small_models_dir, write_gold
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_prune import _seed_old_stories
from test_store import check

from aggregator.app import App, make_app
from aggregator.config import Settings
from aggregator.evaluation import PROGRESS_BYTES, GoldFile
from aggregator.progress import Step
from aggregator.serve import GZIP_MIN_BYTES, FeedServer, accepts_gzip

NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with make_app(Settings.from_env({}, data_dir=tmp_path), now=lambda: NOW) as a:
        _store_stories(
            a,
            "https://a.example/feed",
            [("1", "https://a.example/1", "KSK rollover"), ("2", "https://a.example/2", "Glue")],
        )
        yield a


def _raw(srv: FeedServer, head: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request whose head is sent byte for byte (``head`` without the blank line)."""
    host, port = srv.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as sock:
        sock.sendall(head + b"\r\nConnection: close\r\n\r\n")
        r = http.client.HTTPResponse(sock)
        r.begin()
        return r.status, r.msg, r.read()


# --- Accept-Encoding: the coding the client prefers --------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # identity listed above gzip: the client prefers no coding (RFC 9110 §12.5.3)
        ("gzip;q=0.1, identity", False),
        ("identity;q=0.9, gzip;q=0.5", False),
        ("gzip;q=0.5, *;q=1", False),  # "*" covers identity, not listed itself
        ("gzip;q=0.5, identity;q=0.5", True),  # a tie: the smaller body
        ("gzip;q=0.1, identity;q=0", True),
        ("identity;q=0, *;q=0.2", True),  # gzip by "*", identity refused
        ("GZIP;Q=0.3, Identity;q=0.2", True),
        ("gzip;q=1.5", False),  # no q-value (RFC 9110 §12.4.2: 0 to 1, 3 decimals)
        ("gzip;q=nan", False),
        ("gzip;q=inf", False),
        ("gzip;q=0.0001", False),
        ("gzip;q=0.001", True),
    ],
)
def test_accept_encoding_weighs_gzip_against_identity(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_a_client_preferring_identity_gets_the_feed_uncompressed(app: App) -> None:
    """``Accept-Encoding: gzip;q=0.1, identity`` (gzip only if nothing better) got gzip:
    only gzip's q-value was looked at."""
    with FeedServer(app) as srv:
        status, headers, body = _raw(
            srv, b"GET /feed.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0.1, identity"
        )
        assert status == 200 and len(body) >= GZIP_MIN_BYTES
        assert headers.get("Content-Encoding") is None and body.startswith(b"{")
        status, headers, zipped = _raw(
            srv, b"GET /feed.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, identity;q=0.5"
        )
        assert (status, headers.get("Content-Encoding")) == (200, "gzip")
        assert gzip.decompress(zipped) == body


# --- Host: a port no connection can have -------------------------------------------------


@pytest.mark.parametrize("port", [b"99999", b"65536", b"0", b"00000", b"9" * 5000])
def test_a_host_port_out_of_range_is_a_bad_request(app: App, port: bytes) -> None:
    """``Host: a:99999`` was served, its self link (and so the Atom feed's id) naming a
    port no client can connect to (0 too); 5,000 digits passed Python's int() limit in
    building the link, a 400 quoting Python's message. RFC 9112 §3.2: a 400, as for any
    invalid Host; in an absolute-form request target too."""
    with FeedServer(app) as srv:
        status, _, body = _raw(srv, b"GET /feed.json HTTP/1.1\r\nHost: a:" + port)
        assert (status, body) == (400, b"invalid Host header\n")
        status, _, _ = _raw(srv, b"GET http://a:" + port + b"/feed.json HTTP/1.1\r\nHost: a")
        assert status == 400


@pytest.mark.parametrize(
    ("port", "link"),
    [
        (b"", "http://a/"),
        (b"80", "http://a/"),
        (b"65535", "http://a:65535/"),
        (b"0081", "http://a:81/"),
    ],
)
def test_a_host_port_in_range_is_served(app: App, port: bytes, link: str) -> None:
    with FeedServer(app) as srv:
        status, _, body = _raw(srv, b"GET /feed.json HTTP/1.1\r\nHost: a:" + port)
        assert status == 200 and f'"home_page_url": "{link}"'.encode() in body, body


# --- the CLI's words ----------------------------------------------------------------------


def test_a_narrow_feeds_list_says_1_story_and_1_error(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The feeds list of a terminal under ~76 columns, one feed a line: it said
    "1 stories · … · 1 errors"."""
    with make_app(Settings.from_env({}, data_dir=env / "data")) as a:
        _store_stories(a, "https://a.example/feed", [("1", "https://a.example/1", "KSK")])
        _store_stories(
            a,
            "https://b.example/feed",
            [("2", "https://b.example/2", "Glue"), ("3", "https://b.example/3", "NS")],
            name="B",
        )
        feed = next(f for f in a.feeds() if f.url == "https://a.example/feed")
        a.store.save_checks(
            [
                check(
                    feed.id,
                    at=datetime.now(UTC),
                    outcome="error",
                    status="error",
                    error_count=1,
                    last_error="HTTP 503",
                    success=False,
                    next_check=datetime.now(UTC),
                )
            ]
        )
    monkeypatch.setenv("COLUMNS", "60")
    code, out, err = run(capsys, "feeds", "list")
    assert code == 0, err
    text = " ".join(out.split())
    assert "· 1 story · " in text and "· 1 error · " in text, out
    assert "· 2 stories · " in text and "· 0 errors · " in text, out
    assert "1 stories" not in text and "1 errors" not in text, out


# --- evaluate: the first read of a gold file is shown --------------------------------------


def test_reading_a_gold_file_through_reports_the_bytes_read(tmp_path: Path) -> None:
    """``evaluate GOLD.jsonl`` reads the file through (checking every line) before the
    model loads; of gigabytes, that took minutes with nothing on the screen, the stage
    display starting only at "loading the model". The read is told in bytes, of the
    file's size, as it starts, every PROGRESS_BYTES and at the end."""
    line = json.dumps({"title": "KSK rollover", "text": "x" * 2000, "topics": ["DNS"]})
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(line.replace("KSK", f"KSK {i}") for i in range(1500)) + "\n")
    size = gold.stat().st_size
    told: list[tuple[int, int | None]] = []
    with GoldFile(gold) as g:
        g.check(None, read=lambda done, total: told.append((done, total)))
        assert g.count == 1500 and len(list(g.stories(None))) == 1500
    assert told[0] == (0, size) and told[-1] == (size, size)
    assert len(told) >= 2 + size // PROGRESS_BYTES
    assert [d for d, _ in told] == sorted(d for d, _ in told)


def test_reading_a_piped_gold_file_reports_bytes_read(tmp_path: Path) -> None:
    """From a pipe the size is not known: the bytes read so far, no total."""
    body = b'{"title": "KSK", "text": "rollover", "topics": ["DNS"]}\n'
    r_fd, w_fd = os.pipe()
    with os.fdopen(w_fd, "wb") as w:
        w.write(body)
    told: list[tuple[int, int | None]] = []
    with open(r_fd, "rb") as r, GoldFile(tmp_path / "stdin", r, spool_dir=tmp_path) as g:
        g.check(None, read=lambda done, total: told.append((done, total)))
        assert [e.doc.title for e in g.stories(None)] == ["KSK"]
    assert told == [(0, None), (len(body), None)]


def test_evaluate_tells_the_first_read_in_its_scoring_stage(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read is told on the "score" row, before "loading the model"."""
    small_models_dir(env, monkeypatch, shipped=True)
    gold = write_gold(env / "gold.jsonl", GOLD)
    size = gold.stat().st_size
    steps: list[Step] = []
    with make_app(Settings.from_env()) as app:
        app.learning.evaluate(gold, progress=steps.append)
    notes = [s.note for s in steps]
    assert notes[0] == f"checking the file: 0.0 of {size / 1e6:,.1f} MB"
    assert notes.index("loading the model") == 2, notes
    assert {s.stage for s in steps} == {"score"}


def test_prune_says_1_story(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`prune` said "would delete 1 stories …; 2 stories stored", "deleted 1 stories …;
    1 stories now stored"."""
    _seed_old_stories(env / "data", 2)
    code, out, err = run(capsys, "prune", "--older-than", "180d", "--keep", "1", "--dry-run")
    text = " ".join(out.split())
    assert code == 0, err
    assert text.startswith("would delete 1 story first seen") and "; 2 stories stored" in text
    code, out, err = run(capsys, "prune", "--older-than", "180d", "--keep", "1")
    text = " ".join(out.split())
    assert code == 0, err
    assert text.startswith("deleted 1 story first seen") and "; 1 story now stored" in text, out
