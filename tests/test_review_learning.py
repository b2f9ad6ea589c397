"""A user's audit of the classifier commands, through the real CLI: `label --suggest`
beside a label, gold files as editors save them, `classify -` as a co-process, and
`train` run again with nothing new to learn."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_evaluate import GOLD, LABELLED_TOPICS, small_models_dir
from test_learning_cli import STORIES, env, run, seed_stories

from aggregator.app import make_app
from aggregator.config import Settings

__all__ = ["env"]  # the fixture, shared with test_learning_cli

REPO = Path(__file__).resolve().parents[1]


def labels_of(data_dir: Path, story_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    with make_app(Settings.from_env({}, data_dir=data_dir)) as app:
        return app.story_labels(story_id)


# --- label ------------------------------------------------------------------------------


def test_label_beside_suggest_is_refused_not_dropped(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_stories(env / "data", classify=False)
    # `label --suggest 3 ID +DNS` used to list suggestions, exit 0 and record nothing
    code, out, err = run(capsys, "label", "--suggest", "3", str(ids[0]), "+DNS")
    assert code == 2
    assert "not both" in err and out == ""
    assert labels_of(env / "data", ids[0]) == ((), ())
    code, _, err = run(capsys, "label", str(ids[0]), "+DNS", "--suggest", "3")
    assert code == 2 and "not both" in err


def test_label_suggest_says_when_every_story_is_labelled(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_stories(env / "data", classify=False)
    for story_id in ids:
        code, _, err = run(capsys, "label", str(story_id), "-Law")
        assert code == 0, err
    code, out, err = run(capsys, "label", "--suggest", "5")
    assert (code, err) == (0, "")
    assert "poll some feeds first" not in out  # there are stories: all of them labelled
    assert "are all labelled" in " ".join(out.split())


# --- evaluate: gold files as editors write them -------------------------------------------


def test_gold_file_with_bom_crlf_and_unicode_line_separators(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [dict(r) for r in GOLD[:3]]
    # U+2028 and U+0085 are legal, unescaped, inside a JSON string: text, not line ends
    rows[0]["text"] = "Signatures expired.\u2028Resolvers said SERVFAIL.\u0085Fixed."
    body = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows)
    gold = env / "gold.jsonl"
    gold.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))  # as Notepad saves it
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == 3
    assert report["label"] == "gold.jsonl (3 stories)"
    # the same stories without BOM and CR score the same
    plain = env / "plain.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, out2, err = run(capsys, "evaluate", str(plain), "--format", "json")
    assert code == 0, err
    assert json.loads(out2)["topics"] == report["topics"]


def test_gold_file_unknown_topic_names_its_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gold = env / "gold.jsonl"
    gold.write_text(
        json.dumps({"title": "Root zone KSK rollover", "topics": ["DNS"]})
        + "\n"
        + json.dumps({"title": "Qubits", "topics": ["dns security", "Quantum Computing"]})
        + "\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "evaluate", str(gold))
    assert code == 2 and out == ""
    assert f"{gold}:2: unknown topic 'Quantum Computing'" in " ".join(err.split())


def test_gold_lines_are_fully_labelled_whatever_their_source(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a story that is in no topic, written with the "source" field user labels export
    # with: the model's every topic on it is wrong, as for "topics": [] without it
    rows = [
        {"title": "Registry suffers DNSSEC validation failure", "text": "Expired.", "topics": []}
    ]
    plain, tagged = env / "plain.jsonl", env / "tagged.jsonl"
    plain.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    tagged.write_text(json.dumps({**rows[0], "source": "user"}) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "evaluate", str(plain), "--format", "json")
    assert code == 0, err
    expected = json.loads(out)["topics"]
    wrong = {t for t, m in expected.items() if m["predicted"]}
    assert "DNS" in wrong and not any(m["true_positives"] for m in expected.values())
    code, out, err = run(capsys, "evaluate", str(tagged), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["topics"] == expected  # before: its topics counted nowhere


# --- classify: a co-process gets each answer at once ------------------------------------------


def test_classify_stdin_answers_each_line_before_the_next_arrives(env: Path) -> None:
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "classify", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for i, title in enumerate(["DNSSEC outage at a ccTLD registry", "Cup final in Rome"]):
            proc.stdin.write(json.dumps({"id": i, "title": title}).encode() + b"\n")
            proc.stdin.flush()
            # before: nothing came out until 2,000 lines or the end of input
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no answer to line {i + 1} while the writer waits for it"
            assert json.loads(proc.stdout.readline())["id"] == i
        started = time.monotonic()
        proc.stdin.write(b'{"id": "last", "title": "UDRP panel transfers domain"}\n')
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0
        assert [json.loads(x)["id"] for x in rest.splitlines()] == ["last"]
        assert time.monotonic() - started < 60
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_classify_stdin_batches_a_fast_pipe_and_keeps_line_numbers(env: Path) -> None:
    lines = [json.dumps({"title": f"DNS resolver outage number {i}"}) for i in range(3000)]
    lines[1500] = "{not json"
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "classify", "-"],
        input=("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"),
        capture_output=True,
        env=environ,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "error: stdin line 1501: not valid JSON (Expecting property name enclosed in double "
        "quotes at column 2)"
    ]
    ids = [json.loads(x)["id"] for x in done.stdout.decode().splitlines()]
    assert ids == [str(n) for n in range(1, 3001) if n != 1501]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        ["classify", "in.jsonl"],
        ["stories", "--format", "json"],
        ["topics"],
        ["stories", "--format", "csv"],
    ],
    ids=["classify", "stories-json", "topics", "stories-csv"],
)
def test_output_to_a_full_disk_is_one_error_line(env: Path, args: list[str]) -> None:
    """Before: a traceback ending in OSError: [Errno 28]."""
    seed_stories(env / "data", classify=False)
    (env / "in.jsonl").write_text(
        "".join(json.dumps({"id": i, "title": "DNS outage"}) + "\n" for i in range(50)),
        encoding="utf-8",
    )
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            env=environ,
            cwd=env,
            timeout=120,
            check=False,
            text=True,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["error: cannot write the output: No space left on device"]


def test_a_reader_that_goes_away_ends_classify_quietly(env: Path) -> None:
    """`aggregator classify big.jsonl | head -1`: exit 1, nothing on stderr."""
    src = env / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"id": i, "title": "DNS outage"}) + "\n" for i in range(20_000)),
        encoding="utf-8",
    )
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "classify", str(src)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["id"] == 0
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert stderr == ""


# --- train: nothing new to learn --------------------------------------------------------------


@pytest.mark.slow
def test_train_again_with_nothing_new_keeps_the_model(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every 60th seed (~100): keeping or fitting again does not depend on the model's size,
    # and this trains three times
    small_models_dir(env, monkeypatch, shipped=False, every=60, topics=LABELLED_TOPICS)
    ids = seed_stories(env / "data", STORIES, classify=False)
    code, _, err = run(capsys, "label", str(ids[4]), "+Networks")
    assert code == 0, err
    code, _, err = run(capsys, "train")
    assert code == 0, err
    manifest = env / "data" / "models" / "classifier" / "manifest.json"
    version = json.loads(manifest.read_text())["model_version"]
    before = manifest.stat()

    # the same labels, categories and seeds: the same model; kept, not fitted again
    started = time.monotonic()
    code, out, err = run(capsys, "train")
    assert code == 0, err
    text = " ".join(out.split())
    assert f"nothing new to learn: the model in use, {version}" in text
    # the model in use tagged every story when it was trained: none to re-tag
    assert "re-tagged 0 stories: 0 with changed topics" in text
    after = manifest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert time.monotonic() - started < 30
    # ... and kept without importing scikit-learn or SciPy: a fresh `aggregator train`
    # paid ~1.7 s of its ~3 s for them (aggregator.train, for a version and a report)
    script = (
        "import sys\n"
        "from aggregator.cli import main\n"
        "try:\n"
        "    main(['train'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "leaked = sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'})\n"
        "print('leaked:', leaked)\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert fresh.returncode == 0, fresh.stderr
    assert f"nothing new to learn: the model in use, {version}" in " ".join(fresh.stdout.split())
    assert fresh.stdout.splitlines()[-1] == "leaked: []", fresh.stdout
    assert manifest.stat().st_ino == before.st_ino

    code, out, err = run(capsys, "train", "--force", "--no-retag")
    assert code == 0, err
    assert "nothing new" not in out and f"trained {version}" in " ".join(out.split())
    assert manifest.stat().st_ino != before.st_ino  # written again, the same version

    # a new label: a new model
    code, _, err = run(capsys, "label", str(ids[1]), "-Networks")
    assert code == 0, err
    code, out, err = run(capsys, "train", "--no-retag")
    assert code == 0, err
    assert "nothing new" not in out
    assert json.loads(manifest.read_text())["model_version"] != version


def wait_until_fitting(proc: subprocess.Popen[str]) -> None:
    """Until `train` is fitting. Nothing in the command imports scikit-learn's linear
    models before `train` begins (aggregator.train does, once the examples are read and
    there is something to fit, then fits for tens of seconds): wait until they are mapped
    into the process, then a second more. Without /proc: the fixed wait this replaced."""
    maps = Path(f"/proc/{proc.pid}/maps")
    if not maps.exists():
        time.sleep(6)
        return
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if "/sklearn/linear_model/" in maps.read_text(errors="replace"):
                break
        except OSError:  # the process is ending
            break
        time.sleep(0.02)
    time.sleep(1.0)  # the last imports, the examples: fitting by now


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_train_stopped_by_a_signal_says_so_and_leaves_the_model_in_use(
    env: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    small_models_dir(env, monkeypatch, shipped=True, every=4)  # a minute's training
    seed_stories(env / "data", STORIES, classify=False)
    environ = {**os.environ, "AGGREGATOR_DATA_DIR": str(env / "data")}
    environ["AGGREGATOR_FEEDS"] = str(env / "feeds.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "train"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=REPO,
        text=True,
    )
    wait_until_fitting(proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    # before: SIGTERM killed it without a word (status -15), Ctrl-C exited 130 silently
    assert proc.returncode == 128 + signum
    shipped = json.loads((REPO / "models" / "classifier" / "manifest.json").read_text())
    assert err.splitlines() == [
        f"train interrupted: nothing was written; the model in use is still "
        f"{shipped['model_version']}"
    ]
    assert "Traceback" not in err and out == ""
    models = env / "data" / "models"
    assert not models.exists() or list(models.iterdir()) == []  # nothing half-written
