"""`aggregator evaluate` and the train comparison through the real CLI: gold files are
checked before scoring, every evaluation is recorded beside the user's model and compared
with the latest evaluation of the same data by a different model version, and `train`
compares the new model's cross-validated scores with the replaced model's. Plus the
evaluation history and report deltas on their own."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_learning_cli import run, seed_stories

from aggregator.evaluation import (
    HISTORY_FILE,
    HISTORY_FORMAT,
    HISTORY_KEEP,
    EvalData,
    EvalHistory,
    EvalRecord,
    EvalReport,
    TopicMetrics,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("AGGREGATOR_MODELS_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return tmp_path


#: The topics the tests' labels name (STORIES, LABELS): a taxonomy of these alone trains
#: ~5x faster than the real one (a head per topic, each fitted once per fold)
LABELLED_TOPICS = ("DNS", "Cyberattack", "IPv4 Markets", "New TLDs", "Networks")


def small_models_dir(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    shipped: bool,
    every: int = 8,
    topics: tuple[str, ...] | None = None,
) -> Path:
    """The real taxonomy and every ``every``-th real seed (quick to train); with
    ``shipped``, a copy of the shipped classifier as the model in use before the first
    `train`. ``topics``: the real taxonomy's definitions of these topics alone, and the
    seeds of these topics (their other topics dropped) or of none (not shipped: the
    shipped model was trained for every topic)."""
    import shutil

    assert not (shipped and topics)
    models = env / "models"
    write_models_dir(models, every=every, topics=topics)
    if shipped:
        shutil.copytree(REPO / "models" / "classifier", models / "classifier")
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    return models


def write_models_dir(models: Path, *, every: int, topics: tuple[str, ...] | None) -> None:
    """``models``: taxonomy.yaml and seeds/ as :func:`small_models_dir` describes them."""
    import shutil

    import yaml

    (models / "seeds").mkdir(parents=True)
    shutil.copy(REPO / "models" / "taxonomy.yaml", models / "taxonomy.yaml")
    if topics is not None:
        data = yaml.safe_load((REPO / "models" / "taxonomy.yaml").read_text(encoding="utf-8"))
        data["topics"] = [t for t in data["topics"] if t["name"] in topics]
        assert {t["name"] for t in data["topics"]} == set(topics)  # each one named
        (models / "taxonomy.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    for f in sorted((REPO / "models" / "seeds").glob("*.jsonl")):
        lines = f.read_text(encoding="utf-8").splitlines()
        if topics is not None:
            kept = []
            for line in lines:
                seed = json.loads(line)
                mine = [t for t in seed["topics"] if t in topics]
                if mine or not seed["topics"]:
                    kept.append(json.dumps({**seed, "topics": mine}, ensure_ascii=False))
            lines = kept
        (models / "seeds" / f.name).write_text("\n".join(lines[::every]) + "\n", encoding="utf-8")


STORIES = [
    ("DNSSEC signing outage at a ccTLD", "The DNSSEC signer failed; resolvers said SERVFAIL."),
    ("Ransomware gang leaks hospital data", "Attackers encrypted systems, leaked records."),
    ("IPv4 block sells for record price", "A broker sold a /16 through an RIR transfer."),
    ("New gTLD round application window opens", "ICANN opens applications for new TLDs."),
    ("Football club wins the cup final", "The home side scored twice in extra time."),
    ("Backbone operator lights new subsea cable", "More capacity between two continents."),
]
LABELS = ["+DNS", "+Cyberattack", "+IPv4 Markets", "+New TLDs", "-DNS", "+Networks"]


GOLD = [
    {"title": "Registry suffers DNSSEC validation failure", "text": "Signatures expired.",
     "topics": ["DNS", "DNS Security"]},
    {"title": "Broker reports IPv4 prices falling", "text": "Fewer /24 transfers at RIRs.",
     "topics": ["IPv4 Markets", "IP Addressing"]},
    {"title": "Phishing kit targets bank customers", "text": "Lookalike domains and spam.",
     "topics": ["Cybercrime"]},
    {"title": "Ransomware attack shuts down hospital", "text": "Systems were encrypted.",
     "topics": ["Cyberattack", "Cybersecurity"]},
    {"title": "UDRP panel transfers lookalike domain", "text": "A WIPO panel found bad faith.",
     "topics": ["UDRP", "Domain Names"]},
    {"title": "Operator completes IPv6 rollout", "text": "All mobile customers get IPv6.",
     "topics": ["IPv6"]},
    {"title": "Tennis star retires", "text": "After twenty years on tour.", "topics": []},
]  # fmt: skip


def write_gold(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def history(env: Path) -> list[dict[str, object]]:
    data = json.loads((env / "data" / "models" / HISTORY_FILE).read_text(encoding="utf-8"))
    rows: list[dict[str, object]] = data["evaluations"]
    return rows


# --- gold files: bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "no labelled stories", id="empty-file"),
        pytest.param(b"\n  \n\n", "no labelled stories", id="blank-lines-only"),
        pytest.param(
            b'{"title": "a", "text": "x", "topics": []}\n\n{"title": "b", "text": "y"}\n',
            'gold.jsonl:3: no "topics"',
            id="line-without-topics",
        ),
        pytest.param(
            b'{"title": "a", "topics": null}\n', "'topics' must be a list", id="topics-null"
        ),
        pytest.param(b'{"title": "a", "topics": ["Gardening"]}\n', "Gardening", id="unknown"),
        pytest.param(b'{"title": "caf\xe9", "topics": []}\n', "not UTF-8", id="not-utf8"),
    ],
)
def test_bad_gold_file_is_rejected_with_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    gold = env / "gold.jsonl"
    gold.write_bytes(content)
    code, out, err = run(capsys, "evaluate", str(gold))
    assert code == 2
    assert message in err
    assert out == ""
    assert not (env / "data" / "models" / HISTORY_FILE).exists()  # nothing recorded


@pytest.mark.parametrize(
    ("line", "title", "summary"),
    [
        pytest.param({"text": "Signatures expired."}, "", "Signatures expired.", id="text-only"),
        pytest.param({"title": "DNSSEC failure"}, "DNSSEC failure", "", id="title-only"),
        pytest.param({"title": None, "summary": "Expired."}, "", "Expired.", id="summary-only"),
        pytest.param({"title": "", "text": "Expired."}, "", "Expired.", id="empty-title"),
        pytest.param({"title": "DNSSEC", "text": None}, "DNSSEC", "", id="null-text"),
        # a page's text alone is a story too, as classify reads it
        pytest.param({"full_text": "Signatures expired."}, "", "", id="full-text-only"),
    ],
)  # fmt: skip
def test_a_gold_line_needs_a_title_or_a_text_not_both(
    tmp_path: Path, line: dict[str, object], title: str, summary: str
) -> None:
    from aggregator.evaluation import read_gold

    gold = write_gold(tmp_path / "gold.jsonl", [{**line, "topics": ["DNS"]}])
    (example,), _ = read_gold(gold)
    assert (example.doc.title, example.doc.summary, example.topics) == (title, summary, ("DNS",))


@pytest.mark.parametrize(
    "line",
    [
        pytest.param({}, id="neither"),
        pytest.param({"title": "", "text": ""}, id="both-empty"),
        pytest.param({"title": " ", "text": "\t"}, id="both-blank"),
        pytest.param({"title": None, "text": None}, id="both-null"),
    ],
)
def test_a_gold_line_without_title_or_text_is_refused_naming_the_line(
    tmp_path: Path, line: dict[str, object]
) -> None:
    from aggregator.errors import ConfigError
    from aggregator.evaluation import read_gold

    gold = write_gold(tmp_path / "gold.jsonl", [GOLD[0], {**line, "topics": []}])
    with pytest.raises(ConfigError, match=r"gold\.jsonl:2: no 'title' or 'text'"):
        read_gold(gold)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param({"title": 5, "text": "x"}, "'title' must be a string", id="title-number"),
        pytest.param({"title": "x", "text": 5}, "'text' / 'full_text' must be", id="text-number"),
    ],
)  # fmt: skip
def test_a_gold_title_or_text_of_another_type_is_still_refused(
    tmp_path: Path, line: dict[str, object], message: str
) -> None:
    from aggregator.errors import ConfigError
    from aggregator.evaluation import read_gold

    gold = write_gold(tmp_path / "gold.jsonl", [{**line, "topics": []}])
    with pytest.raises(ConfigError, match=re.escape(f"gold.jsonl:1: {message}")):
        read_gold(gold)


def test_a_gold_file_of_texts_without_titles_is_evaluated(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"text": f"{r['title']}. {r['text']}", "topics": r["topics"]} for r in GOLD]
    gold = write_gold(env / "texts.jsonl", rows)
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["examples"] == len(GOLD)
    # and a line with neither is one error naming its line, exit 2, nothing recorded
    write_gold(gold, [*rows, {"title": "", "topics": []}])
    code, out, err = run(capsys, "evaluate", str(gold))
    assert code == 2 and f"{gold}:{len(GOLD) + 1}: no 'title' or 'text'" in err.replace("\n", "")
    assert out == ""


def test_missing_gold_file_is_bad_input(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "evaluate", str(env / "nowhere.jsonl"))
    assert code == 2 and "cannot read" in err


def test_empty_topics_is_an_off_topic_story(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = write_gold(
        env / "offtopic.jsonl",
        [{"title": "Tennis star retires", "text": "After twenty years on tour.", "topics": []}],
    )
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["examples"] == 1
    assert rep["label"] == "offtopic.jsonl (1 story)"
    # every topic is known not to apply: none has support, so none has a recall or F1
    assert all(m["support"] == 0 for m in rep["topics"].values())
    assert all(m["recall"] is None and m["f1"] is None for m in rep["topics"].values())


def test_help_says_what_a_gold_file_needs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "evaluate", "--help")
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    assert '"topics" ([] for a story in no topic)' in flat
    assert "rejected (exit 2)" in flat


# --- gold files: comparison with the previous model version ------------------------------


@pytest.mark.slow
def test_gold_evaluation_is_compared_with_the_previous_model_version(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every 400th seed (~24), not every 8th: train fits twice, and what is checked is the
    # comparison with the shipped model, not how well the new one scores (that it scores
    # some gold topic differently is asserted below)
    models = small_models_dir(env, monkeypatch, shipped=True, every=400)
    shipped = json.loads((models / "classifier" / "manifest.json").read_text())["model_version"]
    shipped_cv = json.loads((models / "classifier" / "report.json").read_text())["cv"]
    gold = write_gold(env / "gold.jsonl", GOLD)

    # the first evaluation of this file: nothing to compare with, and said so
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["model_version"] == shipped
    assert first["data"] == {
        "kind": "gold",
        "sha256": hashlib.sha256(gold.read_bytes()).hexdigest(),
        "what": "gold.jsonl (7 stories)",
    }
    assert first["label"] == "gold.jsonl (7 stories)"
    assert first["compared_with"] is None
    code, out, _ = run(capsys, "evaluate", str(gold))
    assert code == 0
    assert f"Evaluation of {shipped}: gold.jsonl (7 stories)" in out  # the title is not blank
    assert "No earlier evaluation of the same data" in out  # same version: not a comparison
    (record,) = history(env)  # a re-run of the same model replaces its record
    assert record["model_version"] == shipped

    # train: the new model's cross-validated scores against the replaced (shipped) one's
    code, out, err = run(capsys, "train")
    assert code == 0, err
    manifest = json.loads((env / "data" / "models" / "classifier" / "manifest.json").read_text())
    new = manifest["model_version"]
    assert new != shipped
    cv_now = manifest["scores"]["cv"]
    line = re.search(
        r"vs the previous model \(cross-validated, each over its own training data\): "
        r"micro-F1 ([\d.]+) → ([\d.]+) \(([-+][\d.]+)\), "
        r"macro-F1 ([\d.]+) → ([\d.]+) \(([-+][\d.]+)\)",
        " ".join(out.split()),
    )
    assert line is not None, out
    # the manifest keeps four decimals and the line shows three: equal to within rounding
    for got, want in zip(
        map(float, line.groups()),
        (
            shipped_cv["micro"]["f1"],
            cv_now["micro"]["f1"],
            cv_now["micro"]["f1"] - shipped_cv["micro"]["f1"],
            shipped_cv["macro"]["f1"],
            cv_now["macro"]["f1"],
            cv_now["macro"]["f1"] - shipped_cv["macro"]["f1"],
        ),
        strict=True,
    ):
        assert got == pytest.approx(want, abs=0.0011)

    # the new model on the same file is compared with the shipped model's evaluation
    code, out, err = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0, err
    now = json.loads(out)
    assert now["model_version"] == new
    cmp = now["compared_with"]
    assert cmp["model_version"] == shipped
    assert datetime.fromisoformat(cmp["evaluated_at"]).tzinfo is not None
    delta = cmp["delta"]
    assert delta["micro_f1"] == pytest.approx(now["micro"]["f1"] - first["micro"]["f1"], abs=2e-4)
    assert delta["macro_f1"] == pytest.approx(now["macro"]["f1"] - first["macro"]["f1"], abs=2e-4)
    changed = {
        t for t, m in now["topics"].items() if m["support"] and m["f1"] != first["topics"][t]["f1"]
    }
    assert set(delta["topics"]) == changed  # only the topics whose F1 moved
    assert changed, "the small model should score some gold topic differently"
    for t in changed:
        d = delta["topics"][t]
        assert d["f1_before"] == first["topics"][t]["f1"]
        assert d["f1_now"] == now["topics"][t]["f1"]
        assert d["delta"] == pytest.approx(d["f1_now"] - d["f1_before"], abs=2e-4)

    code, out, _ = run(capsys, "evaluate", str(gold))
    assert code == 0
    text = " ".join(out.split())
    assert f"Evaluation of {new}: gold.jsonl (7 stories)" in text
    assert f"vs {shipped} on the same data" in text
    assert f"micro-F1 {first['micro']['f1']:.3f} → {now['micro']['f1']:.3f}" in text
    assert "F1 changed for:" in text
    for t in changed:
        before, after = first["topics"][t]["f1"], now["topics"][t]["f1"]
        assert f"{t}: {before:.3f} → {after:.3f} ({after - before:+.3f})" in text
    unchanged = {t for t, m in now["topics"].items() if m["support"]} - changed
    for t in unchanged:
        assert f"{t}: " not in text.split("F1 changed for:")[1]
    assert {r["model_version"] for r in history(env)} == {shipped, new}

    # other data (one more story): no earlier evaluation of it, whatever the model
    write_gold(gold, [*GOLD, {"title": "Spam volumes drop", "text": "x", "topics": ["Spam"]}])
    code, out, _ = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0
    assert json.loads(out)["compared_with"] is None
    assert len(history(env)) == 3


# --- cross-validation over user labels ---------------------------------------------------


@pytest.mark.slow
def test_cross_validation_is_recorded_and_compared_across_models(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # cross-validation trains five times per run: fewer seeds still (every 60th, ~100:
    # what is checked is the recording and the comparison, not how well the models score)
    models = small_models_dir(env, monkeypatch, shipped=False, every=60, topics=LABELLED_TOPICS)
    ids = seed_stories(env / "data", [(t, x, ()) for t, x in STORIES], classify=False)
    for story_id, change in zip(ids, LABELS, strict=True):
        code, _, err = run(capsys, "label", str(story_id), change)
        assert code == 0, err

    # no model before this one: train says there is nothing to compare with
    code, out, err = run(capsys, "train", "--no-retag")
    assert code == 0, err
    assert "the previous model has no cross-validated report to compare with" in out
    code, out, err = run(capsys, "evaluate", "--format", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["data"]["kind"] == "cv"
    assert first["data"]["what"] == first["label"] == "cv over 6 user labels"
    assert first["compared_with"] is None

    # fewer seeds, same labels: a different model, compared on the same labels (at every
    # 60th seed the first file keeps 5 lines: all of them go)
    seed_file = sorted((models / "seeds").glob("*.jsonl"))[0]
    seed_file.write_text(
        "\n".join(seed_file.read_text(encoding="utf-8").splitlines()[:-5]) + "\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "train", "--no-retag")
    assert code == 0, err
    assert "vs the previous model (cross-validated" in out
    code, out, err = run(capsys, "evaluate")
    assert code == 0, err
    text = " ".join(out.split())
    assert ": cv over 6 user labels" in text
    assert f"vs {first['model_version']} on the same data" in text
    assert [r["data"]["kind"] for r in history(env)] == ["cv", "cv"]


# --- the history and report deltas on their own -----------------------------------------


def report(tp: int, support: int = 4, predicted: int = 4) -> EvalReport:
    return EvalReport(
        topics=(
            TopicMetrics(topic="A", support=support, predicted=predicted, true_positives=tp),
            TopicMetrics(topic="B", support=2, predicted=2, true_positives=1),
            TopicMetrics(topic="C", support=0, predicted=1, true_positives=0),
        ),
        examples=10,
        label="gold.jsonl (10 stories)",
    )


T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOLD_A = EvalData(kind="gold", sha256="a" * 64, what="a.jsonl (10 stories)")
GOLD_B = EvalData(kind="gold", sha256="b" * 64, what="b.jsonl (10 stories)")
CV_A = EvalData(kind="cv", sha256="a" * 64, what="cv over 10 user labels")


def rec(version: str, data: EvalData, minutes: int, tp: int = 2) -> EvalRecord:
    return EvalRecord(
        model_version=version, data=data, at=T0 + timedelta(minutes=minutes), report=report(tp)
    )


def test_history_finds_the_latest_evaluation_of_the_same_data_by_another_model(
    tmp_path: Path,
) -> None:
    h = EvalHistory(tmp_path / "models" / HISTORY_FILE)
    assert h.records() == [] and h.previous(GOLD_A, "v1") is None
    for r in (
        rec("v1", GOLD_A, 0, tp=1),
        rec("v2", GOLD_A, 1, tp=2),
        rec("v2", GOLD_B, 2),
        rec("v3", CV_A, 3),  # same hash, but cross-validation: other data
        rec("v3", GOLD_A, 4, tp=3),
    ):
        h.add(r)
    assert EvalHistory(h.path).records()[-1] == rec("v3", GOLD_A, 4, tp=3)  # round trip
    got = h.previous(GOLD_A, "v3")
    assert got is not None and (got.model_version, got.report.topic("A")) == (
        "v2",
        TopicMetrics(topic="A", support=4, predicted=4, true_positives=2),
    )
    assert h.previous(GOLD_A, "v4") == rec("v3", GOLD_A, 4, tp=3)
    assert h.previous(GOLD_B, "v2") is None  # only its own evaluation
    assert h.previous(CV_A, "v4") == rec("v3", CV_A, 3)

    # a re-run of the same model on the same data replaces its record
    h.add(rec("v3", GOLD_A, 9, tp=4))
    assert [(r.model_version, r.data.kind) for r in h.records()] == [
        ("v1", "gold"),
        ("v2", "gold"),
        ("v2", "gold"),
        ("v3", "cv"),
        ("v3", "gold"),
    ]
    assert h.records()[-1].at == T0 + timedelta(minutes=9)


def test_history_is_capped_and_survives_a_broken_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = EvalHistory(tmp_path / HISTORY_FILE)
    h.path.write_text("{not json", encoding="utf-8")
    assert h.records() == []
    assert "unreadable" in caplog.text
    h.add(rec("v0", GOLD_A, 0))  # over the broken file
    assert [r.model_version for r in h.records()] == ["v0"]
    # full, as HISTORY_KEEP adds leave it: written at once (each add rewrites the whole
    # file, pretty-printed by the pure-Python JSON encoder: ~3 s for 200 adds)
    full = [rec(f"v{i}", GOLD_A, i).to_dict() for i in range(HISTORY_KEEP)]
    h.path.write_text(json.dumps({"format": HISTORY_FORMAT, "evaluations": full}), "utf-8")
    assert [r.model_version for r in h.records()] == [f"v{i}" for i in range(HISTORY_KEEP)]
    for i in range(HISTORY_KEEP, HISTORY_KEEP + 3):
        h.add(rec(f"v{i}", GOLD_A, i))
    kept = h.records()
    assert len(kept) == HISTORY_KEEP
    assert kept[0].model_version == "v3"  # the oldest went first
    assert [r.model_version for r in kept] == [f"v{i}" for i in range(3, HISTORY_KEEP + 3)]
    raw = json.loads(h.path.read_text(encoding="utf-8"))
    raw["evaluations"].insert(0, {"model_version": "broken"})
    h.path.write_text(json.dumps(raw), encoding="utf-8")
    assert len(h.records()) == HISTORY_KEEP  # the bad record is skipped, the rest kept
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_delta_lists_only_topics_whose_f1_changed() -> None:
    before, after = report(tp=2), report(tp=3)
    delta = after.compare(before)
    assert delta.micro_f1 == pytest.approx(after.micro_f1 - before.micro_f1)
    # B has the same counts; C has no support on either side
    assert [t for t, _, _ in delta.changed] == ["A"]
    assert delta.to_dict()["topics"] == {"A": {"f1_before": 0.5, "f1_now": 0.75, "delta": 0.25}}
    assert after.compare(after).changed == ()
    assert after.compare(after).to_dict()["topics"] == {}


def test_a_topic_without_gold_support_has_no_recall_or_f1_in_json() -> None:
    # C is given once but no gold story has it: its recall and F1 are undefined (0/0), not
    # 0.0, which read as "the model missed everything"; its precision (0 of 1) is a score
    d = report(tp=2).to_dict()
    assert d["topics"]["C"] == {
        "precision": 0.0,
        "recall": None,
        "f1": None,
        "support": 0,
        "predicted": 1,
        "true_positives": 0,
    }
    assert d["topics"]["A"]["recall"] == 0.5 and d["topics"]["A"]["f1"] == 0.5
    # a topic neither given nor in any gold story: nothing at all is measured
    idle = EvalReport(
        topics=(TopicMetrics(topic="D", support=0, predicted=0, true_positives=0),),
        examples=1,
    ).to_dict()["topics"]["D"]
    assert (idle["precision"], idle["recall"], idle["f1"]) == (None, None, None)
    # macro averages stay over the topics with support (A and B), as documented
    assert d["macro"]["f1"] == round((0.5 + 0.5) / 2, 4)
    assert d["macro"]["recall"] == round((0.5 + 0.5) / 2, 4)
    # the report reads back from its own JSON (report.json, evaluations.json)
    assert EvalReport.from_dict(json.loads(json.dumps(d))) == report(tp=2)


def test_a_topic_that_lost_its_gold_support_has_no_f1_now() -> None:
    # A had support before and has none now: its F1 now is undefined, not a fall to 0
    before = report(tp=2)
    after = EvalReport(
        topics=(
            TopicMetrics(topic="A", support=0, predicted=3, true_positives=0),
            *before.topics[1:],
        ),
        examples=10,
    )
    assert after.compare(before).to_dict()["topics"] == {
        "A": {"f1_before": 0.5, "f1_now": None, "delta": None}
    }
