"""The classifier through the real CLI: classify's JSONL contract and its errors, label,
label --suggest, train (with re-tagging), evaluate and explain."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from aggregator.app import make_app
from aggregator.cli import main
from aggregator.config import Settings
from aggregator.types import (
    Document,
    FeedCheck,
    FeedSource,
    Prediction,
    StoryDraft,
    StoryRecord,
)

REPO = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    c = capsys.readouterr()
    return code, c.out, c.err


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return tmp_path


STORIES = [
    (
        "DNSSEC signing outage at a ccTLD",
        "The registry's DNSSEC signer failed and resolvers returned SERVFAIL.",
        ("dns",),
    ),
    (
        "Ransomware gang leaks hospital data",
        "Attackers encrypted systems and published stolen patient records.",
        (),
    ),
    (
        "IPv4 block sells for record price",
        "A broker sold a /16 of IPv4 address space through an RIR transfer.",
        ("ipv4",),
    ),
    (
        "UDRP panel orders transfer of lookalike domain",
        "A trademark owner won a domain dispute.",
        (),
    ),
    ("Football club wins the cup final", "The home side scored twice in extra time.", ()),
    (
        "New gTLD round application window opens",
        "ICANN opens applications for new top-level domains.",
        ("new gtlds",),
    ),
]


def seed_stories(
    data_dir: Path,
    stories: list[tuple[str, str, tuple[str, ...]]] = STORIES,
    *,
    classify: bool = True,
) -> list[int]:
    """``stories`` (title, text, feed categories) stored in one feed; their topics from
    the model in use, or none (``classify=False``: no model is needed to store them)."""
    s = Settings.from_env({}, data_dir=data_dir)
    with make_app(s) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://news.example/feed"), app.now())
        recs = [
            StoryRecord(
                draft=StoryDraft(
                    key=f"k{i}",
                    guid=f"k{i}",
                    link=f"https://news.example/{i}",
                    canonical_url=None,
                    title=t,
                    author=None,
                    published=None,
                    updated=None,
                    summary=x,
                    content=None,
                    categories=c,
                    content_hash=f"h{i}",
                ),
                prediction=app.classifier.predict(
                    [Document(id=str(i), title=t, summary=x, categories=c)]
                )[0]
                if classify
                else Prediction(topics=(), model_version="none"),
            )
            for i, (t, x, c) in enumerate(stories)
        ]
        now = app.now()
        saved = app.store.save_update(
            FeedCheck(
                feed_id=feed.id,
                at=now,
                outcome="ok",
                next_check=now,
                status="active",
                error_count=0,
                first_error_at=None,
                last_error=None,
                success=True,
            ),
            recs,
        )
        return list(saved.new)


def test_classify_jsonl_contract_and_bad_lines(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = env / "in.jsonl"
    src.write_text(
        json.dumps(
            {
                "id": "a",
                "title": "DNSSEC key rollover at the root zone",
                "text": "Resolvers must update trust anchors.",
            }
        )
        + "\n"
        + "{not json\n"
        + json.dumps(
            {
                "id": "c",
                "title": "Striker scores hat-trick in derby",
                "text": "The match ended 3-1.",
            }
        )
        + "\n"
        + json.dumps(["not", "an", "object"])
        + "\n"
        + "\n"
        + json.dumps(
            {
                "id": "e",
                "title": "Phishing kit targets bank customers",
                "text": "Criminals sold the kit on forums.",
            }
        )
        + "\n"
    )
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1  # some lines were bad...
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["a", "c", "e"]  # ...but nothing else was lost
    assert "line 2: not valid JSON" in err and "line 4: expected a JSON object" in err
    topics = {x["id"]: {t["topic"] for t in x["topics"]} for x in lines}
    assert {"DNS", "DNS Security"} & topics["a"]
    assert topics["c"] == set()  # general news: untagged
    assert "Cybercrime" in topics["e"] or "Cybersecurity" in topics["e"]
    assert all(0 <= t["score"] <= 1 for x in lines for t in x["topics"])

    code, out, _ = run(
        capsys, "classify", "--text", "ICANN board approves new gTLD applicant guidebook"
    )
    assert code == 0
    (one,) = [json.loads(x) for x in out.splitlines()]
    assert "New TLDs" in {t["topic"] for t in one["topics"]}

    # --text reads a headline as a title, as the same story in JSON Lines is read
    headline = "Registry signs the root zone with a new KSK"
    body = "Resolvers must update their trust anchors before the rollover."
    src.write_text(json.dumps({"id": "x", "title": headline, "text": body}) + "\n")
    code, as_jsonl, _ = run(capsys, "classify", str(src))
    code2, as_text, _ = run(capsys, "classify", "--text", f"{headline}\n{body}")
    assert code == code2 == 0
    assert json.loads(as_text)["topics"] == json.loads(as_jsonl)["topics"]

    code, _, err = run(capsys, "classify", str(env / "missing.jsonl"))
    assert code == 2 and "cannot read" in err


def classify_bytes(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    data: bytes,
    *,
    stdin: bool,
) -> tuple[int, str, str]:
    """Run ``classify`` on raw bytes, from a file or from stdin."""
    if stdin:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        return run(capsys, "classify", "-")
    src = tmp_path / "in.jsonl"
    src.write_bytes(data)
    return run(capsys, "classify", str(src))


def test_classify_needs_no_database(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """classify is the model alone: it made a data directory and a database wherever it
    ran, and failed where none could be made or the database was down."""
    code, out, err = run(capsys, "classify", "--text", "DNSSEC key rollover at the root zone")
    assert code == 0, err
    assert "DNS" in {t["topic"] for t in json.loads(out)["topics"]}
    assert not (env / "data").exists()
    code, out, err = run(
        capsys,
        "--database-url",
        "postgresql+psycopg://nobody@127.0.0.1:9/none",
        "classify",
        "--text",
        "DNSSEC key rollover at the root zone",
    )
    assert code == 0, err
    assert json.loads(out)["id"] == "text"


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_classify_invalid_utf8_is_one_bad_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: bool
) -> None:
    data = (
        b'{"id":"a","title":"DNS resolver"}\n'
        b'{"id":"b","title":"caf\xe9 DNS"}\n'  # Latin-1, not UTF-8
        b'{"id":"c","title":"DNS"}\n'
    )
    code, out, err = classify_bytes(capsys, monkeypatch, env, data, stdin=stdin)
    assert code == 1
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["a", "c"]
    assert "line 2: not valid UTF-8" in err and "Traceback" not in err


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_classify_skips_a_utf8_bom(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: bool
) -> None:
    data = b'\xef\xbb\xbf{"id":"a","title":"DNS resolver"}\r\n{"id":"b","title":"DNS"}\r\n'
    code, out, err = classify_bytes(capsys, monkeypatch, env, data, stdin=stdin)
    assert (code, err) == (0, "")
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["a", "b"]


def test_classify_output_is_valid_utf8_json_for_lone_surrogates(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = env / "in.jsonl"
    src.write_text(
        '{"id":"a","title":"DNS"}\n'
        '{"id":"\\ud800","title":"x \\udfff DNS"}\n'
        '{"id":"caf\\u00e9","title":"DNS"}\n'
    )
    code, out, err = run(capsys, "classify", str(src))
    assert (code, err) == (0, "")
    out.encode("utf-8")  # strict: no lone surrogate reached stdout
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["a", "\ud800", "caf\u00e9"]


def test_classify_echoes_ids_as_given(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids: list[object] = ["a", 42, None, 1.5, True, -7, "42"]
    lines = [json.dumps({"id": i, "title": "DNS"}) for i in ids]
    lines.append(json.dumps({"title": "no id here"}))  # a missing id: the line number
    lines.append('{"id": 1e400, "title": "DNS"}')  # not representable in JSON output
    src = env / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "classify", str(src))
    got = [json.loads(x)["id"] for x in out.splitlines()]
    assert got == [*ids, "8"]
    assert [type(x) for x in got] == [type(x) for x in [*ids, "8"]]
    assert code == 1 and "line 9: 'id' must be a finite number" in err


def test_classify_survives_pathological_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = "1" + "0" * 5000  # past int()'s 4300-digit conversion limit
    deep = "[" * 100_000 + "]" * 100_000  # past the recursion limit
    lines = [
        '{"id":"a","title":"DNS"}',
        f'{{"id":{huge},"title":"DNS"}}',
        deep,
        '{"id":[NaN],"title":"DNS"}',
        '{"id":"e","title":"DNS"}',
    ]
    src = env / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["a", "e"]
    assert "line 2: not valid JSON (a number is too long)" in err
    assert "line 3: not valid JSON (nested too deeply)" in err
    assert "line 4: 'id' must be a finite number" in err


def test_classify_says_which_input_is_wrong(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "classify")
    assert code == 2 and "give a FILE" in err and "not both" not in err
    code, _, err = run(capsys, "classify", "-", "--text", "DNS")
    assert code == 2 and "not both" in err


def test_a_story_without_text_is_bad_input_in_both_forms(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: a line with no text is a bad line; `--text` with nothing in it likewise
    (both used to come back untagged, exit 0, as if general news)."""
    src = env / "in.jsonl"
    lines = [{"id": 1, "title": "", "text": "  "}, {"id": 2, "title": "DNSSEC at the root"}]
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, out, err = run(capsys, "classify", str(src))
    assert code == 1 and "line 1: no text to classify" in err
    assert [json.loads(x)["id"] for x in out.splitlines()] == [2]
    for blank in ("", " \n "):
        code, out, err = run(capsys, "classify", "--text", blank)
        assert (code, out) == (2, "") and "--text is empty" in err


def test_classify_errors_are_not_wrapped_when_stderr_is_not_a_terminal(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    missing = env / ("a-long-directory-name " * 4) / "stories.jsonl"
    code, _, err = run(capsys, "classify", str(missing))
    assert code == 2
    assert err.splitlines() == [f"error: cannot read {missing}: No such file or directory"]

    src = env / ("a long file name " * 4 + ".jsonl")
    src.write_text("{not json\n")
    code, _, err = run(capsys, "classify", str(src))
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith(f"error: {src} line 1: not valid JSON")


def test_label_suggest_explain(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed_stories(env / "data")
    code, out, _ = run(capsys, "label", str(ids[1]), "+Cyberattack", "-Privacy", "--format", "json")
    assert code == 0
    story = json.loads(out)
    assert {"topic": "Cyberattack", "score": 1.0, "source": "user"} in story["topics"]
    assert "Privacy" not in {t["topic"] for t in story["topics"]}

    code, _, err = run(capsys, "label", str(ids[1]), "+Gardening")
    assert code == 2 and "unknown topic" in err
    code, _, err = run(capsys, "label", str(ids[1]), "DNS")
    assert code == 2 and "+Topic" in err

    code, out, _ = run(capsys, "label", "--suggest", "3", "--format", "json")
    assert code == 0
    suggested = json.loads(out)
    assert len(suggested) == 3
    assert ids[1] not in {s["id"] for s in suggested}  # labelled stories are not suggested
    assert suggested == sorted(suggested, key=lambda s: -s["uncertainty"])
    for s in suggested:  # the topic a label would settle: its score nearest its threshold
        about = s["about"]
        thr, score = about["threshold"], about["score"]
        span = 1 - thr if score >= thr else thr
        assert s["uncertainty"] == pytest.approx(1 - abs(score - thr) / span, abs=2e-4)
    code, out, _ = run(capsys, "label", "--suggest", "2")
    assert code == 0 and "unsure about" in out
    assert suggested[0]["about"]["topic"] in out and "label one:" in out

    code, out, _ = run(capsys, "explain", str(ids[0]), "--format", "json")
    assert code == 0
    exp = json.loads(out)
    dns = next(t for t in exp["topics"] if t["topic"] in ("DNS", "DNS Security"))
    assert dns["up"] and 0 <= dns["threshold"] <= 1
    code, out, _ = run(capsys, "explain", str(ids[0]))
    assert "threshold" in out and "up:" in out


def test_a_label_can_be_withdrawn_and_the_model_decides_again(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dnssec = seed_stories(env / "data")[0]  # DNS from its feed category, DNS Security by rule

    def topics() -> dict[str, str]:
        _, out, _ = run(capsys, "show", str(dnssec), "--format", "json")
        return {t["topic"]: t["source"] for t in json.loads(out)["topics"]}

    before = topics()
    assert before["DNS"] == "feed-category"
    code, _, err = run(capsys, "label", str(dnssec), "-DNS", "+Censorship")
    assert code == 0, err
    assert "DNS" not in topics() and topics()["Censorship"] == "user"

    forget = ["--forget", "dns", "--forget", "Censorship"]
    code, out, err = run(capsys, "label", str(dnssec), *forget, "--format", "json")
    assert code == 0, err
    assert {t["topic"]: t["source"] for t in json.loads(out)["topics"]} == before
    assert topics() == before
    with make_app(Settings.from_env({}, data_dir=env / "data")) as app:
        assert app.story_labels(dnssec) == ((), ())
        assert app.labelled() == []  # train no longer learns from them

    code, _, err = run(capsys, "label", str(dnssec), "+DNS", "--forget", "DNS")
    assert code == 2 and "both labelled and forgotten" in err
    code, _, err = run(capsys, "label", str(dnssec), "--forget", "Gardening")
    assert code == 2 and "unknown topic" in err
    code, _, err = run(capsys, "label", "999999", "--forget", "DNS")
    assert code == 2 and "no story 999999" in err
    code, _, err = run(capsys, "label", "--suggest", "2", "--forget", "DNS")
    assert code == 2 and "not both" in err


def test_explain_agrees_with_show_after_labels(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dnssec = seed_stories(env / "data")[0]  # DNS from its feed category, DNS Security by rule
    _, out, _ = run(capsys, "show", str(dnssec), "--format", "json")
    assert {(t["topic"], t["source"]) for t in json.loads(out)["topics"]} >= {
        ("DNS", "feed-category"),
        ("DNS Security", "rule"),
    }
    code, _, _ = run(capsys, "label", str(dnssec), "+Censorship", "-DNS", "-DNS Security")
    assert code == 0

    _, out, _ = run(capsys, "show", str(dnssec), "--format", "json")
    shown = [(t["topic"], t["source"]) for t in json.loads(out)["topics"]]
    assert ("Censorship", "user") in shown
    code, out, _ = run(capsys, "explain", str(dnssec), "--format", "json")
    assert code == 0
    topics = {t["topic"]: t for t in json.loads(out)["topics"]}
    assert [(t["topic"], t["source"]) for t in topics.values() if t["given"]] == shown
    censorship = topics["Censorship"]  # the user's label, with what the model alone says
    assert censorship["given_score"] == 1.0
    assert censorship["score"] < censorship["threshold"] and not censorship["model_given"]
    for removed in ("DNS", "DNS Security"):  # removed by the label, the model still shown
        t = topics[removed]
        assert not t["given"] and t["source"] is None and t["removed_by_label"]
        assert t["model_given"] and t["score"] >= t["threshold"] and t["up"]

    code, out, _ = run(capsys, "explain", str(dnssec))
    assert code == 0
    text = " ".join(out.split())  # whatever the terminal's width
    assert "Censorship: score" in text
    assert "given via user; the model alone would not give it" in text
    assert "DNS Security: score" in text
    assert "not given: removed by your label; the model alone would give it" in text
    assert "via feed-category" not in text and "via rule" not in text


def test_explain_lists_a_label_on_a_topic_the_model_lacks(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    football = seed_stories(env / "data")[4]
    with make_app(Settings.from_env({}, data_dir=env / "data")) as app:
        # a topic since renamed in the taxonomy: its row and the user's label stay
        app.store.sync_topics([("Old Topic", None)])
        app.store.add_labels(football, ["Old Topic"], [], app.now())
    _, out, _ = run(capsys, "show", str(football), "--format", "json")
    assert [(t["topic"], t["source"]) for t in json.loads(out)["topics"]] == [("Old Topic", "user")]
    code, out, _ = run(capsys, "explain", str(football), "--format", "json")
    assert code == 0
    (old,) = [t for t in json.loads(out)["topics"] if t["given"]]
    assert old["topic"] == "Old Topic" and old["source"] == "user"
    assert old["score"] is None and old["threshold"] is None and not old["model_given"]
    code, out, _ = run(capsys, "explain", str(football))
    assert code == 0 and "Old Topic: not a topic of the current model" in out


def test_train_from_labels_retags_and_evaluate(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a small models dir (the real taxonomy, a slice of the real seeds) keeps training quick;
    # every 400th seed (~24, not ~6,000): what is checked here (the labels, feed categories
    # and re-tagging reaching the new model, evaluate's report) does not depend on how well
    # the model scores, and train fits twice (held-out, then all); fewer seeds, fewer
    # topics with a positive: fewer heads to fit (every 30th took ~2x as long)
    models = env / "models"
    (models / "seeds").mkdir(parents=True)
    shutil.copy(REPO / "models" / "taxonomy.yaml", models / "taxonomy.yaml")
    for f in sorted((REPO / "models" / "seeds").glob("*.jsonl")):
        lines = f.read_text(encoding="utf-8").splitlines()
        (models / "seeds" / f.name).write_text("\n".join(lines[::400]) + "\n", encoding="utf-8")
    shutil.copytree(REPO / "models" / "classifier", models / "classifier")
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))

    ids = seed_stories(env / "data")
    football = ids[4]
    # teach it something the seeds never say: this football story is about Networks
    run(capsys, "label", str(football), "+Networks")
    code, out, err = run(capsys, "train")
    assert code == 0, err
    assert "re-tagged 6 stories" in out
    assert (env / "data" / "models" / "classifier" / "manifest.json").exists()
    manifest = json.loads((env / "data" / "models" / "classifier" / "manifest.json").read_text())
    assert manifest["data"]["by_source"]["user"] == 1
    assert manifest["data"]["by_source"]["feed-category"] >= 2  # dns / ipv4 / new gtlds aliases
    code, out, _ = run(capsys, "show", str(football), "--format", "json")
    assert {"topic": "Networks", "score": 1.0, "source": "user"} in json.loads(out)["topics"]

    gold = env / "gold.jsonl"
    gold.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {
                    "title": "Registry suffers DNSSEC validation failure",
                    "text": "Signatures expired.",
                    "topics": ["DNS", "DNS Security"],
                },
                {
                    "title": "Broker reports IPv4 prices falling",
                    "text": "Transfers slowed.",
                    "topics": ["IPv4 Markets", "IP Addressing"],
                },
                {
                    "title": "Tennis star retires",
                    "text": "After twenty years on tour.",
                    "topics": [],
                },
            ]
        )
        + "\n"
    )
    code, out, _ = run(capsys, "evaluate", str(gold), "--format", "json")
    assert code == 0
    rep = json.loads(out)
    assert {"micro", "macro", "topics"} <= set(rep)
    assert 0 <= rep["micro"]["f1"] <= 1
    assert "compared_with" in rep
    code, _, err = run(capsys, "evaluate")  # one user label: too few to cross-validate
    assert code == 2 and "at least 5" in err


def _story_with_five_topics():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from aggregator.types import Story, TopicScore

    names = ["Policy & Regulation", "Internet Governance", "Domain Names", "Law", "DNS"]
    return Story(
        id=7,
        feed_id=1,
        feed_url="https://example.org/feed",
        feed_title="A feed with a rather long name indeed",
        key="k",
        guid=None,
        link=None,
        canonical_url=None,
        title="Regulators clash over investigators' access to domain registration data",
        author=None,
        published=datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        first_seen=datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        summary=None,
        content=None,
        full_text=None,
        extraction_status="done",
        extraction_error=None,
        categories=(),
        topics=tuple(TopicScore(topic=n, score=0.9 - i / 10) for i, n in enumerate(names)),
    )


@pytest.mark.parametrize("width", [80, 100, 140])
def test_stories_table_keeps_each_topic_with_its_score_on_one_line(width: int) -> None:
    from rich.console import Console

    from aggregator.cli.common import stories_table

    console = Console(width=width, record=True, color_system=None)
    console.print(stories_table([_story_with_five_topics()], width=width))
    lines = console.export_text().splitlines()
    assert len(max(lines, key=len)) <= width  # nothing cropped at the right edge
    assert lines[0].rstrip().endswith(("┓", "┐"))
    for shown in ("Policy & Regulation 0.90", "Internet Governance 0.80", "Law 0.60", "+1 more"):
        assert sum(shown in line for line in lines) == 1, (shown, lines)
    assert "DNS" not in "\n".join(lines)  # the fifth topic is counted, not listed
    text = " ".join(" ".join(line.strip("│ ").split()) for line in lines)
    assert "Regulators clash over" in text
    # under 100 columns the date drops its time and the title keeps ~40 columns
    assert ("09:30" in text) == (width >= 100)
    if width < 100:
        assert any("Regulators clash over investigators'" in line for line in lines), lines


@pytest.mark.parametrize("width", [80, 120])
def test_feeds_table_shows_the_whole_last_error_at_any_width(width: int) -> None:
    from datetime import UTC, datetime, timedelta

    from rich.console import Console

    from aggregator.cli.feeds import feeds_table
    from aggregator.types import Feed

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    error = "GET http://feeds.example.net/rss: connection refused (after 3 attempts)"
    feed = Feed(
        id=1,
        url="http://feeds.example.net/rss",
        name="Example Networks Operations Journal",
        title=None,
        site=None,
        topics=(),
        status="error",
        enabled=True,
        etag=None,
        last_modified=None,
        body_hash=None,
        interval=None,
        next_check=now + timedelta(hours=2),
        last_check=now,
        last_success=now - timedelta(days=3),
        error_count=4,
        first_error_at=now - timedelta(days=1),
        last_error=error,
        redirect_url=None,
        redirect_count=0,
        redirect_first_seen=None,
        stories=12,
    )
    console = Console(width=width, record=True, color_system=None)
    console.print(feeds_table([feed], now, width=width))
    lines = console.export_text().splitlines()
    assert len(max(lines, key=len)) <= width and lines[0].rstrip().endswith("┓")
    # the whole error, in one column however folded, and readable: a few lines, not a
    # 7-character strip down the right edge (16 lines at 80 columns before)
    body = [line for line in lines if line.startswith("│")]
    columns = len(body[0].split("│")) - 2
    assert any(
        error.replace(" ", "") in "".join(line.split("│")[c] for line in body).replace(" ", "")
        for c in range(1, columns + 1)
    )
    assert len(body) <= 6, lines
    text = "\n".join(lines)
    assert "error" in text and "in 2h" in text and "3d ago" in text


def test_label_suggest_with_no_stories_says_so(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "label", "--suggest", "5")
    assert code == 0 and "no unlabelled stories to suggest" in out
    code, out, _ = run(capsys, "label", "--suggest", "5", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_show_lists_your_labels_removals_included(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_stories(env / "data")
    code, out, _ = run(capsys, "show", str(ids[0]), "--format", "json")
    assert code == 0 and json.loads(out)["labels"] == {"added": [], "removed": []}
    assert run(capsys, "label", str(ids[0]), "+Censorship", "-DNS")[0] == 0
    code, out, _ = run(capsys, "show", str(ids[0]), "--format", "json")
    shown = json.loads(out)
    assert shown["labels"] == {"added": ["Censorship"], "removed": ["DNS"]}
    assert "DNS" not in {t["topic"] for t in shown["topics"]}  # a removal shows nowhere else
    code, out, _ = run(capsys, "show", str(ids[0]))
    assert "your labels: +Censorship, -DNS" in out
