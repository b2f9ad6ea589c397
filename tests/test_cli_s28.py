"""The CLI, evaluation and OPML import as a demanding user meets them, found in session
28: the real CLI in-process against real files and a real SQLite store."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from test_evaluate import GOLD_A, rec
from test_learning_cli import run
from test_query_s26 import use

from aggregator.evaluation import HISTORY_FILE, EvalHistory

# --- evaluate: a corrupt history is warned about once ---------------------------------------


def test_a_corrupt_evaluation_history_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One `evaluate` reads the history twice, as here (the previous run to compare
    with, then again under its lock to add its own), and each read logged "evaluation
    history … unreadable, starting afresh": the same warning twice in one run. A bad
    record was skipped with a warning twice likewise."""
    h = EvalHistory(tmp_path / HISTORY_FILE)
    h.path.write_text("{not json", encoding="utf-8")
    assert h.previous(GOLD_A, "v2") is None
    h.add(rec("v2", GOLD_A, 1))
    assert caplog.text.count("unreadable") == 1, caplog.text
    caplog.clear()
    # recorded afresh: the next run reads it without a word
    again = EvalHistory(h.path)
    assert again.previous(GOLD_A, "v3") == rec("v2", GOLD_A, 1)
    again.add(rec("v3", GOLD_A, 2))
    assert caplog.text == ""
    # a bad record among good ones: skipped, said once per run
    h.path.write_text(
        h.path.read_text(encoding="utf-8").replace('"evaluations": [', '"evaluations": [7, ', 1),
        encoding="utf-8",
    )
    third = EvalHistory(h.path)
    assert third.previous(GOLD_A, "v4") == rec("v3", GOLD_A, 2)
    third.add(rec("v4", GOLD_A, 3))
    assert caplog.text.count("skipping a bad record") == 1, caplog.text


# --- feeds add / feeds enable: a URL or id that fails among others --------------------------


def test_feeds_add_exits_2_when_any_url_is_not_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``feeds add URL1 URL2`` with one URL refused exited 0, as if both were added (only
    all of them failing exited 2): a script could not tell. The others are still added,
    and the status is the one that URL alone gives."""
    use(tmp_path, None, monkeypatch)
    good = ("https://p.example/a", "https://p.example/b")
    code, out, err = run(
        capsys, "feeds", "add", "--no-discover", good[0], "ftp://p.example/x", good[1]
    )
    assert code == 2
    assert "not added ftp://p.example/x" in " ".join(err.split())
    assert out.splitlines() == [f"added: {good[0]}", f"added: {good[1]}"]
    alone = run(capsys, "feeds", "add", "--no-discover", "ftp://p.example/x")[0]
    assert alone == 2
    # every URL added (or already there): 0
    code, out, err = run(capsys, "feeds", "add", "--no-discover", *good)
    assert code == 0, err
    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    assert sorted(f["url"] for f in json.loads(out)) == list(good)


def test_feeds_enable_enables_every_feed_named_and_exits_2_for_one_it_cannot_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``feeds enable A 999 B`` stopped at the id no feed has: A was enabled, B (named
    after it) not, and the one error line did not say so. Every feed found is enabled,
    each ref not found is one ``not found`` line, and the exit status is 2."""
    use(tmp_path, None, monkeypatch)
    urls = ("https://p.example/a", "https://p.example/b")
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n" + "".join(f"  - {{url: '{u}', enabled: false}}\n" for u in urls)
    )
    code, out, err = run(capsys, "feeds", "list", "--format", "json")  # syncs the file
    assert code == 0, err
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    code, out, err = run(capsys, "feeds", "enable", urls[0], "999", urls[1])
    assert code == 2
    assert out.splitlines() == [f"enabled: {urls[0]}", f"enabled: {urls[1]}"]
    assert "not found: no feed 999" in err
    code, out, _ = run(capsys, "feeds", "list", "--format", "json")
    assert [f["enabled"] for f in json.loads(out)] == [True, True]


# --- OPML / feeds.yaml: one topic however it is spelled ---------------------------------------


def test_opml_topics_spelled_in_another_case_are_one_topic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feed in a folder "DNS" whose ``category`` says ``/dns`` (Inoreader writes both),
    or listed again under a folder "Policy and Regulation" beside "Policy & Regulation",
    was stored with the topic twice ("DNS; dns"), though a topic is found however it is
    spelled (taxonomy.yaml, `-t`): each is one topic, under its first spelling. feeds.yaml
    likewise."""
    use(tmp_path, None, monkeypatch)
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="DNS"><outline type="rss" text="A" category="/dns,/Security"'
        ' xmlUrl="https://a.example/feed"/></outline>'
        '<outline text="Policy &amp; Regulation"><outline type="rss" text="B"'
        ' xmlUrl="https://b.example/feed"/></outline>'
        '<outline text="policy and regulation"><outline type="rss" text="B"'
        ' xmlUrl="https://b.example/feed"/></outline>'
        "</body></opml>",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "feeds", "import", str(opml))
    assert code == 0, err
    code, out, err = run(capsys, "feeds", "list", "--format", "json")
    assert code == 0, err
    assert {f["url"]: f["topics"] for f in json.loads(out)} == {
        "https://a.example/feed": ["DNS", "Security"],
        "https://b.example/feed": ["Policy & Regulation"],
    }
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  - {url: 'https://c.example/feed', topics: [IPv6, ipv6, ' IPV6 ', Other]}\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "feeds", "list", "--format", "json")
    assert code == 0, err
    topics = {f["url"]: f["topics"] for f in json.loads(out)}
    assert topics["https://c.example/feed"] == ["IPv6", "Other"]


# --- evaluate: a gold file is read a line at a time -----------------------------------------


class _GoldPipe(io.RawIOBase):
    """A pipe's read end, made up as it is read: ``lines`` JSON lines, each ``size``
    bytes long, all the same story (counted once). Not seekable, as a pipe is not.
    ``held``: the memory Python took (tracemalloc's, when traced) between the first
    read and the end of the data: before the model loads, as the gold file is checked
    first."""

    def __init__(self, lines: int, size: int) -> None:
        row = {"title": "Registry signs the root zone", "topics": ["DNS"], "text": ""}
        pad = size - len(json.dumps(row)) - 1
        # one long word: cheap to score, as the point is the reading
        self.line = (json.dumps({**row, "text": "x" * pad}) + "\n").encode()
        assert len(self.line) == size
        self.left = lines * size  # bytes still to give
        self.held: int | None = None
        self.before: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.before is None and tracemalloc.is_tracing():
            self.before = tracemalloc.get_traced_memory()[0]
        if not self.left:
            if self.held is None and self.before is not None and tracemalloc.is_tracing():
                self.held = tracemalloc.get_traced_memory()[0] - self.before
                tracemalloc.stop()  # the rest at full speed
            return 0
        at = (len(self.line) - self.left % len(self.line)) % len(self.line)
        n = min(len(buffer), self.left, len(self.line) - at)
        buffer[:n] = memoryview(self.line)[at : at + n]
        self.left -= n
        return n


def test_evaluate_reads_a_gold_file_a_line_at_a_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`evaluate -` read standard input whole, decoded it whole and split it whole
    before the first story was looked at (a file named on the command line too): a gold
    file of gigabytes needed several times its size in memory. It is read a line at a
    time now (from a pipe, copied to a temporary file for the second read): once 8 MB
    of gold data have come through a pipe, a quarter of that is held (it was all of
    it, and more), and the report is the same."""
    use(tmp_path, None, monkeypatch)
    size, lines = 128 * 1024, 64
    pipe = _GoldPipe(lines, size)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(pipe)))
    tracemalloc.start()
    try:
        code, out, err = run(capsys, "evaluate", "-", "--format", "json")
    finally:
        tracemalloc.stop()
    assert code == 0, err
    assert pipe.held is not None and pipe.held < size * lines / 4, pipe.held
    report = json.loads(out)
    assert report["examples"] == 1 and report["label"] == "stdin (1 story)"
    assert report["topics"]["DNS"]["support"] == 1
    assert f"lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and {lines - 11} more repeat" in caplog.text
    assert report["data"]["sha256"] == hashlib.sha256(pipe.line * lines).hexdigest()


def test_evaluate_keeps_its_copy_of_a_piped_gold_file_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The copy of a gold file read from a pipe went to the system's temporary directory,
    which is often a tmpfs (RAM): a gold file of gigabytes held in memory after all. It
    is made in the data directory, beside the database; where that cannot be written,
    in the system's."""
    use(tmp_path, None, monkeypatch)
    where: list[str] = []

    def open_files() -> list[str]:
        fds = list(Path("/proc/self/fd").iterdir())
        return [os.readlink(fd) for fd in fds if fd.exists()]

    class Watched(_GoldPipe):
        def readinto(self, buffer: Any) -> int:
            n = super().readinto(buffer)
            if not n and not where:  # the end: the copy is open by now
                where.extend(open_files())
            return n

    before = set(open_files())  # pytest's own capture files among them

    pipe = Watched(4, 1024)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(pipe)))
    code, out, err = run(capsys, "evaluate", "-", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["examples"] == 1
    data = str(tmp_path / "data")
    # an open file without a name (unlinked, or O_TMPFILE): the copy, not the database
    copies = [w for w in where if w.endswith(" (deleted)") and w not in before]
    assert copies and all(w.startswith(data + "/") for w in copies), where
    assert not [p for p in (tmp_path / "data").iterdir() if "gold" in p.name]  # none left
