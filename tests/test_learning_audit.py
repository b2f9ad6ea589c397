"""The classifier commands as a demanding user meets them, through the real CLI on real
stores: `label` and `explain` of ids no store can hold, a topic name left unquoted, a
label withdrawn that was never given, a label on one copy of a story other feeds carry
too, titles that would drive the terminal, `explain`'s terms as a person reads them,
`classify` echoing ids exactly and refusing UTF-16, and gold files with duplicated,
contradictory or broken lines."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest
from test_cli_read_audit import cli  # noqa: F401  (fixture)
from test_evaluate import GOLD, small_models_dir
from test_learning_cli import classify_bytes, env, run, seed_stories
from test_store import check

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.types import FeedSource, Prediction, StoryDraft, StoryRecord

__all__ = ["env"]  # the fixture, shared with test_learning_cli


# --- label / explain: ids no store can hold ------------------------------------------------


@pytest.mark.parametrize(
    "story_id", ["99999999999999999999", str(2**63), str(2**31)], ids=["20-digits", "2^63", "2^31"]
)
@pytest.mark.parametrize(
    "argv",
    [["label", "{id}", "+DNS"], ["label", "{id}", "--forget", "DNS"], ["explain", "{id}"]],
    ids=["label", "forget", "explain"],
)
def test_an_id_no_store_can_hold_is_no_story(
    cli: str | None,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    story_id: str,
) -> None:
    """Before: an OverflowError traceback on SQLite (exit 1), "error: integer out of
    range" (exit 1, as if the store had failed) on PostgreSQL past 2^31 - 1."""
    code, out, err = run(capsys, *(a.format(id=story_id) for a in argv))
    assert (code, out) == (2, "")
    assert err == f"not found: no story {story_id}\n"


def test_label_of_a_negative_id_is_no_story(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # archived labels have negative ids inside the store: none is reachable from here
    seed_stories(env / "data", classify=False)
    code, _, err = run(capsys, "label", "-1", "+DNS")
    assert (code, err) == (2, "not found: no story -1\n")
    code, _, err = run(capsys, "explain", "--", "-1")
    assert (code, err) == (2, "not found: no story -1\n")


# --- label: what the user typed ------------------------------------------------------------


def test_a_topic_name_left_unquoted_gets_a_hint(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_stories(env / "data", classify=False)
    code, out, err = run(capsys, "label", str(ids[0]), "+Internet", "Governance")
    assert (code, out) == (2, "")
    assert "'Governance': write +Topic" in err
    assert 'quote a name with spaces: "+Internet Governance"' in " ".join(err.split())
    code, _, err = run(capsys, "label", str(ids[0]), "-Policy", "&", "Regulation")
    assert code == 2 and '"-Policy & Regulation"' in " ".join(err.split())
    # names are matched whatever their case, "&" included
    code, out, err = run(capsys, "label", str(ids[0]), "+policy & REGULATION", "--format", "json")
    assert code == 0, err
    assert {"topic": "Policy & Regulation", "score": 1.0, "source": "user"} in json.loads(out)[
        "topics"
    ]


def test_withdrawing_a_label_never_given_says_so(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`label ID --forget Topic` on a topic the story has no label on did nothing and
    said nothing (a typo'd story id, say): now it says so, and still exits 0."""
    ids = seed_stories(env / "data", classify=False)
    assert run(capsys, "label", str(ids[0]), "+Censorship")[0] == 0
    code, _, err = run(capsys, "label", str(ids[0]), "--forget", "dns", "--forget", "Censorship")
    assert code == 0
    assert err == f"note: story {ids[0]} had no label on DNS to withdraw\n"
    code, _, err = run(capsys, "label", str(ids[0]), "--forget", "Censorship")
    assert code == 0 and "no label on Censorship" in err


# --- terminal safety --------------------------------------------------------------------------

EVIL = "\x1b[31mRED\x1b[0m DNSSEC outage \x1b]0;pwned\x07at a ccTLD \u202eevil"


def test_story_titles_cannot_drive_the_terminal(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feed chooses its titles: `label`, `explain` and `label --suggest` printed them
    raw, escape sequences (colours, the window title, clearing the screen) and bidi
    overrides included, where `stories` and `show` drop them."""
    stories = [
        (EVIL, "Resolvers returned SERVFAIL after the DNSSEC signer failed.", ("dns",)),
        ("Football club wins the cup final", "The home side scored twice.", ()),
    ]
    ids = seed_stories(env / "data", stories)
    for argv in (  # suggest first: a labelled story is not suggested
        ["label", "--suggest", "5"],
        ["explain", str(ids[0])],
        ["label", str(ids[0]), "+Censorship"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out), (argv, out)
        (title,) = [line for line in out.splitlines() if "RED DNSSEC outage" in line]
        assert "pwned" not in title, argv  # the window title's text went with its escape


# --- label on one copy of a story other feeds carry too ------------------------------------

TWIN = (
    "Registry DNSSEC signer fails at a ccTLD",
    "The registry's DNSSEC signer failed and validating resolvers returned SERVFAIL.",
)


def seed_twins(data_dir: Path, url: str | None) -> list[int]:
    """One story in two feeds, both with the feed category "dns", the same canonical
    URL: one cluster, the first copy shown for both."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ids: list[int] = []
    with make_app(Settings.from_env({}, data_dir=data_dir, database_url=url)) as app:
        for n, feed_url in enumerate(["https://a.example/feed", "https://b.example/feed"]):
            feed, _ = app.store.add_feed(FeedSource(url=feed_url), app.now())
            draft = StoryDraft(
                key=f"k{n}",
                guid=f"k{n}",
                link=f"https://site.example/dnssec?via={n}",
                canonical_url="https://site.example/dnssec",
                title=TWIN[0],
                author=None,
                published=None,
                updated=None,
                summary=TWIN[1],
                content=None,
                categories=("dns",),
                content_hash=f"h{n}",
            )
            record = StoryRecord(draft=draft, prediction=Prediction(topics=(), model_version="x"))
            ids += app.store.save_update(check(feed.id, at=app.now()), [record]).new
        assert {s.cluster_id for s in app.store.get_stories(ids)} == {ids[0]}
    return ids


def test_a_label_on_one_copy_of_a_story_speaks_for_its_cluster(
    cli: str | None,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The user says the second feed's copy is not about DNS: before, `train` still
    learned DNS from the first copy's feed category (the same text, taught both ways) and
    `label --suggest` offered the first copy, as if the story were unlabelled."""
    _, second = seed_twins(tmp_path / "data", cli)
    code, _, err = run(capsys, "label", str(second), "-DNS", "+Censorship")
    assert code == 0, err
    with make_app(Settings.from_env({}, data_dir=tmp_path / "data", database_url=cli)) as app:
        taught = [
            (e.source, e.doc.id, e.topics, e.negative)
            for e in app.learning.examples()
            if e.source != "seed"
        ]
    assert taught == [("user", str(second), ("Censorship",), ("DNS",))]
    code, out, err = run(capsys, "label", "--suggest", "5", "--format", "json")
    assert (code, json.loads(out)) == (0, []), err
    code, out, _ = run(capsys, "label", "--suggest", "5")
    assert "are all labelled" in " ".join(out.split())


@pytest.mark.slow
def test_train_counts_no_feed_category_example_a_label_overrules(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `train` prints: the twin's feed category no longer counts once the other
    copy's label settles the topic (every 400th seed: a second or two)."""
    small_models_dir(env, monkeypatch, shipped=False, every=400)
    _, second = seed_twins(env / "data", None)
    code, out, err = run(capsys, "label", str(second), "-DNS")
    assert code == 0, err
    code, out, err = run(capsys, "train", "--no-retag")
    assert code == 0, err
    text = " ".join(out.split())
    assert re.search(r"on \d+ examples \(seed \d+, user 1\)", text), text


# --- explain: terms a person reads ------------------------------------------------------------


def test_explain_lists_whole_terms_that_moved_the_score(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Terms wrapped at the terminal's edge were cut in two ("seed phrases [Domain
    Names]:" at the end of one line, "cctld (+1.44)" at the start of the next, which read
    as a term of its own), and terms that moved nothing were listed as "(+0.00)"."""
    from aggregator.cli.common import out as console

    stories = [
        (
            "DNSSEC signing outage at a ccTLD",
            "The registry's DNSSEC signer failed and resolvers returned SERVFAIL. Visit "
            "https://very.long.example.com/path/to/the/dnssec/report?x=1 for the details.",
            ("dns",),
        )
    ]
    (story,) = seed_stories(env / "data", stories)
    code, out, err = run(capsys, "explain", str(story))
    assert code == 0, err
    term = r"[^,]+ \([+-]\d+\.\d\d\)"
    lines = out.splitlines()
    blocks = [i for i, line in enumerate(lines) if line.startswith(("  up:", "  down:"))]
    assert blocks
    for i in blocks:
        block = [lines[i]]
        while i + len(block) < len(lines) and lines[i + len(block)].startswith(" " * 8):
            block.append(lines[i + len(block)])
        for line in block:
            assert len(line) <= console.width, line
            assert re.fullmatch(f"{term}(, {term})*,?", line[8:]), line
            assert "(+0.00)" not in line and "(-0.00)" not in line, line
    code, out, _ = run(capsys, "explain", str(story), "--format", "json")
    topics = json.loads(out)["topics"]
    assert all(v != 0 for t in topics for _, v in (*t["up"], *t["down"]))


# --- classify: the JSONL contract ------------------------------------------------------------


def test_classify_echoes_number_ids_as_written(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: "`id` comes back exactly as given". 1e5 came back as 100000.0, 1.10 as
    1.1, and 0.1000000000000000055511151231257827 and 12345678901234567890.5 rounded to
    a double's 17 digits: a script matching answers to questions by id lost them."""
    written = [
        "1e5",
        "1.10",
        "1E+2",
        "-0.0",
        "0.1000000000000000055511151231257827",
        "12345678901234567890.5",
        '{"batch": 7, "at": 1.50}',
        "[2.0, 3]",
        "42",
        '"a"',
    ]
    src = env / "in.jsonl"
    src.write_text("".join(f'{{"id": {w}, "title": "DNS outage"}}\n' for w in written))
    code, out, err = run(capsys, "classify", str(src))
    assert (code, err) == (0, "")
    echoed = [re.match(r'\{"id": (.*), "topics": \[', line) for line in out.splitlines()]
    assert [m.group(1) if m else None for m in echoed] == written
    for line in out.splitlines():
        json.loads(line)  # still JSON


def test_classify_refuses_an_id_nested_too_deeply_to_echo_as_one_bad_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An id nested some 400 to 990 levels deep is JSON the reader takes, but echoing it
    as written ran out of stack while the answers were written: a RecursionError
    traceback, and every later line of the input lost."""
    lines = [
        '{"id": "a", "title": "DNS outage"}',
        '{"id": ' + "[" * 700 + "]" * 700 + ', "title": "DNS outage"}',
        '{"id": ' + '{"k": ' * 700 + "1" + "}" * 700 + ', "title": "DNS outage"}',
        '{"id": [[[1.10]]], "title": "DNS outage"}',
        '{"id": "e", "title": "DNS outage"}',
    ]
    src = env / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1
    assert [line.split(', "topics"')[0] for line in out.splitlines()] == [
        '{"id": "a"',
        '{"id": [[[1.10]]]',
        '{"id": "e"',
    ]
    assert err.splitlines() == [
        f"error: {src} line {n}: 'id' is nested too deeply to echo" for n in (2, 3)
    ]


def test_classify_names_an_unterminated_string_once(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stream cut mid-line: "Unterminated string starting at at column 24"."""
    src = env / "in.jsonl"
    src.write_bytes(b'{"id": "a", "title": "DNS"}\n{"id": "cut", "title": "DNS res')
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1 and [json.loads(x)["id"] for x in out.splitlines()] == ["a"]
    assert err == (
        f"error: {src} line 2: not valid JSON (Unterminated string starting at column 24)\n"
    )


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"], ids=["LE", "BE"])
def test_classify_refuses_utf16_in_one_line(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: bool,
    codec: str,
) -> None:
    """What PowerShell's `>` writes: before, one "not valid UTF-8" or "not valid JSON"
    error per line, nothing classified."""
    bom = "\ufeff" if codec == "utf-16-be" else ""
    rows = [json.dumps({"id": i, "title": "DNS outage"}) for i in range(5)]
    data = (bom + "\r\n".join(rows) + "\r\n").encode(codec)
    code, out, err = classify_bytes(capsys, monkeypatch, env, data, stdin=stdin)
    assert (code, out) == (2, "")
    name = "stdin" if stdin else str(env / "in.jsonl")
    assert err.splitlines() == [
        f"error: {name} line 1: UTF-16 text (it starts with a UTF-16 byte-order mark); "
        "classify reads UTF-8"
    ]


# --- evaluate: gold files ----------------------------------------------------------------------


def gold_file(path: Path, lines: list[str], *, encoding: str = "utf-8") -> Path:
    path.write_bytes("".join(line + "\n" for line in lines).encode(encoding))
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            [json.dumps(GOLD[0]), "", json.dumps(GOLD[1]) + ","],
            "gold.jsonl:3: not JSON (Extra data at column {col})",
            id="trailing-comma",
        ),
        pytest.param(
            [json.dumps(GOLD[0]), "{'title': 'x', 'topics': []}"],
            "gold.jsonl:2: not JSON (Expecting property name enclosed in double quotes "
            "at column 2)",
            id="single-quotes",
        ),
        pytest.param(
            [json.dumps({"title": "Root zone KSK rollover", "topics": ["DNS"]}),
             json.dumps({"title": "Resolver outage", "topics": ["DNS"], "negative": ["dns"]})],
            "gold.jsonl:2: 'DNS' is both in 'topics' and in 'negative'",
            id="topic-and-negative",
        ),
        pytest.param(
            [json.dumps({"title": "Root zone KSK rollover", "topics": ["DNS"]}),
             json.dumps({"title": "Regulator fines registrar", "topics": ["Policy & Regulation"],
                         "negative": ["policy-and-regulation"]})],
            "gold.jsonl:2: 'Policy & Regulation' is both in 'topics' and in 'negative'",
            id="topic-and-negative-spelled-otherwise",
        ),
        pytest.param(
            [json.dumps(GOLD[0]), json.dumps(GOLD[6]),
             json.dumps({**GOLD[0], "topics": ["DNS"]})],
            "gold.jsonl:3: the story of line 1 again, with other topics",
            id="contradicting-duplicate",
        ),
    ],
)  # fmt: skip
def test_a_broken_gold_line_is_named_plainly(
    env: Path, capsys: pytest.CaptureFixture[str], lines: list[str], message: str
) -> None:
    """`not JSON: Expecting value: line 1 column 1 (char 0)` named a line of the
    file and then "line 1"; a topic both given and denied, or one story given two
    different answers, was scored without a word."""
    gold = gold_file(env / "gold.jsonl", lines)
    code, out, err = run(capsys, "evaluate", str(gold))
    assert (code, out) == (2, "")
    expected = message.format(col=len(lines[-1]))
    assert f"error: {env}/{expected}" in " ".join(err.split())


def test_a_gold_story_given_twice_counts_once(
    env: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    rows = [json.dumps(r) for r in GOLD[:3]]
    once = gold_file(env / "once.jsonl", rows)
    twice = gold_file(env / "twice.jsonl", [*rows, rows[0], json.dumps(GOLD[0], indent=None)])
    code, out, err = run(capsys, "evaluate", str(once), "--format", "json")
    assert code == 0, err
    expected = json.loads(out)
    with caplog.at_level(logging.WARNING, logger="aggregator.evaluation"):
        code, out, err = run(capsys, "evaluate", str(twice), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["label"] == "twice.jsonl (3 stories)" and report["examples"] == 3
    assert report["topics"] == expected["topics"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{twice}: lines 4, 5 repeat stories of earlier lines (same title and text, same "
        "topics); each story is counted once"
    ]


def test_a_gold_file_whose_name_is_not_utf8_is_evaluated(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file named in Latin-1 ("résumé" from an old archive): its name, in the report's
    label, could not be written to evaluations.json (a UnicodeEncodeError traceback after
    the whole evaluation had run)."""
    name = os.fsdecode(b"r\xe9sum\xe9.jsonl")
    gold = gold_file(env / name, [json.dumps(r) for r in GOLD[:3]])
    for fmt in ("json", "table"):
        code, out, err = run(capsys, "evaluate", str(gold), "--format", fmt)
        assert code == 0, err
        out.encode("utf-8")  # strict: the name comes out printable
        assert "r\ufffdsum\ufffd.jsonl (3 stories)" in out
    history = json.loads((env / "data" / "models" / "evaluations.json").read_text("utf-8"))
    assert [r["data"]["what"] for r in history["evaluations"]] == [
        "r\ufffdsum\ufffd.jsonl (3 stories)"
    ]


def test_a_utf16_gold_file_says_what_it_is(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = gold_file(env / "gold.jsonl", [json.dumps(GOLD[0])], encoding="utf-16")
    code, _, err = run(capsys, "evaluate", str(gold))
    assert code == 2
    assert (
        f"error: {gold}:1: UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8"
        in " ".join(err.split())
    )


def test_cross_validation_with_one_label_says_one_story(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_stories(env / "data", classify=False)
    assert run(capsys, "label", str(ids[4]), "+Networks")[0] == 0
    code, _, err = run(capsys, "evaluate")
    assert code == 2
    assert "only 1 labelled story: give at least 5 labels" in " ".join(err.split())
