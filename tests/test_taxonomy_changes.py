"""A user customising the topic taxonomy, end to end: a topic added, renamed or removed
under a model trained on the old taxonomy and under labels given with the old names, odd
topic names, and taxonomy.yaml mistakes, through the real CLI and a real store (SQLite,
and PostgreSQL where the store is under test). A tiny taxonomy and model, trained here
through the real code path, keep it quick."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from clirun import Run, in_process
from httpserver import LocalServer

from aggregator.app import App, make_app
from aggregator.cli import main
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.serve import FeedServer
from aggregator.taxonomy import MAX_NAME, Taxonomy
from aggregator.types import (
    Document,
    FeedCheck,
    FeedSource,
    StoryDraft,
    StoryQuery,
    StoryRecord,
)

TOPICS = [
    {
        "id": "security",
        "name": "Security",
        "description": "Vulnerabilities, attacks, malware.",
        "aliases": ["infosec"],
        "seeds": ["ransomware", "vulnerability", "malware", "phishing"],
    },
    {
        "id": "domains",
        "name": "Domains",
        "aliases": ["domain names"],
        "seeds": ["domain name", "registrar"],
    },
    {
        # a name its id does not spell: a rename keeps it only through the aliases
        "id": "policy-regulation",
        "name": "Policy & Regulation",
        "aliases": ["policy & regulation", "regulation"],
        "seeds": ["regulator", "lawmakers"],
    },
    {"id": "ipv6", "name": "IPv6", "seeds": ["ipv6", "dual-stack"]},
]

QUANTUM = {
    "id": "quantum-safe-cryptography",
    "name": "Quantum-safe Cryptography",
    "description": "Post-quantum algorithms and the migration to them.",
    "aliases": ["pqc", "post-quantum"],
}

# Written for this test: short stories per topic, composed into seeds.
WORDS = {
    "Security": [
        "ransomware gang encrypts hospital servers",
        "attackers exploit an unpatched vulnerability in vpn appliances",
        "phishing emails deliver banking malware",
        "vendor ships emergency patch for a zero-day flaw",
        "researchers find a backdoor in router firmware",
    ],
    "Domains": [
        "registrar raises renewal prices for domain names",
        "premium domain name sells in the aftermarket",
        "expired domains snapped up by investors",
        "new registrar rules for domain transfers",
        "domain investors report strong quarterly sales",
    ],
    "Policy & Regulation": [
        "regulator proposes rules for online platforms",
        "lawmakers pass a bill on critical infrastructure",
        "ministry publishes a national cyber strategy",
        "regulator fines telecom operator over outage reporting",
        "parliament debates the new directive",
    ],
    "IPv6": [
        "isp completes dual-stack ipv6 rollout",
        "ipv6 traffic passes forty percent of requests",
        "mobile operator moves customers to ipv6-only network",
        "ipv6 adoption climbs among enterprise networks",
        "measurements show ipv6 reachability improving",
    ],
    "": [
        "local team wins the championship after overtime",
        "chef opens a new restaurant serving seasonal dishes",
        "heavy rain expected across the region this weekend",
        "museum unveils a restored painting",
        "farmers expect a record harvest of wheat this year",
    ],
}


def _seed_lines() -> list[str]:
    rng = random.Random(11)
    plan: list[tuple[str, ...]] = []
    plan += [("Security",)] * 14 + [("Domains",)] * 12 + [("Policy & Regulation",)] * 12
    plan += [("IPv6",)] * 10 + [("Security", "Policy & Regulation")] * 5 + [()] * 14
    lines = []
    for topics in plan:
        parts = [rng.choice(WORDS[t]) for t in (topics or ("",))]
        more = rng.choice(WORDS[topics[0] if topics else ""])
        lines.append(
            json.dumps(
                {
                    "title": parts[0].capitalize(),
                    "text": ". ".join(p.capitalize() for p in [*parts[1:], more]) + ".",
                    "topics": list(topics),
                }
            )
        )
    return lines


SEC = ("Ransomware gang exploits vpn vulnerability", "Attackers deliver malware by phishing.", ())
DOM = ("Registrar raises renewal prices", "Domain investors expect domain name sales.", ())
POL = ("Regulator proposes rules for platforms", "Lawmakers debate the directive.", ())
PQC = (
    "Post-quantum key exchange lands in TLS libraries",
    "Hybrid key exchange resists quantum computers.",
    ("PQC",),
)
OFF = ("Home team wins the cup final", "Fans celebrated downtown.", ())


def _write_taxonomy(models: Path, topics: list[dict[str, object]]) -> None:
    data = {"version": 1, "topics": topics}
    (models / "taxonomy.yaml").write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory as shipped: taxonomy.yaml, seeds/ and a classifier/ trained on
    the seeds for that taxonomy (the real recipe, fewer folds)."""
    from aggregator.examples import load_seed_examples
    from aggregator.train import train

    models = tmp_path_factory.mktemp("shipped")
    (models / "seeds").mkdir()
    (models / "seeds" / "seeds.jsonl").write_text("\n".join(_seed_lines()) + "\n")
    _write_taxonomy(models, TOPICS)
    taxonomy = Taxonomy.load(models / "taxonomy.yaml")
    train(
        load_seed_examples(models),
        taxonomy,
        models / "classifier",
        params={"cv_folds": 3, "holdout": 0},
    )
    return models


@pytest.fixture
def env(tmp_path: Path, shipped: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AGGREGATOR_* for the CLI: a copy of the shipped models directory (tests edit its
    taxonomy.yaml, as a user would), a data directory, an empty feeds file."""
    shutil.copytree(shipped, tmp_path / "models")
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("AGGREGATOR_FEEDS", str(tmp_path / "feeds.yaml"))
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    return tmp_path


@pytest.fixture
def db_env(env: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``env`` on SQLite, then on PostgreSQL."""
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", db_url)
    return env


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    c = capsys.readouterr()
    return code, c.out, c.err


def open_app() -> App:
    return make_app(Settings.from_env())


def store(stories: list[tuple[str, str, tuple[str, ...]]]) -> list[int]:
    """``stories`` (title, text, feed categories) stored in one feed, tagged by the model
    in use as a poll would tag them."""
    with open_app() as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://news.example/feed"), app.now())
        recs = [
            StoryRecord(
                draft=StoryDraft(
                    key=f"k{i}-{title}",
                    guid=f"k{i}-{title}",
                    link=f"https://news.example/{i}/{len(title)}",
                    canonical_url=None,
                    title=title,
                    author=None,
                    published=None,
                    updated=None,
                    summary=text,
                    content=None,
                    categories=cats,
                    content_hash=f"h{i}-{title}",
                ),
                prediction=app.predictor.predict(
                    [Document(id=str(i), title=title, summary=text, categories=cats)]
                )[0],
            )
            for i, (title, text, cats) in enumerate(stories)
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


def topics_of(story_id: int) -> dict[str, str]:
    with open_app() as app:
        return {t.topic: t.source for t in app.story(story_id).topics}


def edit_taxonomy(env: Path, change: str) -> None:
    """The user's edit of models/taxonomy.yaml."""
    topics = [dict(t) for t in TOPICS]
    if change == "add":
        topics.append(dict(QUANTUM))
    elif change == "remove":
        topics = [t for t in topics if t["id"] != "domains"]
    elif change == "rename":
        topics[2]["name"] = "Regulation"  # same id; the old name stays among the aliases
    elif change == "rename-forgetting-the-alias":
        topics[2]["name"] = "Regulation"
        topics[2]["aliases"] = ["regulation"]
    elif change != "none":
        raise AssertionError(change)
    _write_taxonomy(env / "models", topics)


# -- taxonomy.yaml mistakes and odd names --------------------------------------------------

GOOD = "version: 1\ntopics:\n  - id: dns\n    name: DNS\n    aliases: [resolvers]\n"


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (GOOD + "  - id: dns\n    name: Other\n", 6, "id 'dns' is taken by topics[0], line 3"),
        (GOOD + "  - id: d-n-s\n    name: Other\n", 6, "id 'd-n-s' and the name 'DNS'"),
        (GOOD + "  - id: dns-2\n    name: dns\n", 6, "name 'dns' is taken by topics[0], line 3"),
        (
            "version: 1\ntopics:\n  - id: a\n    name: Policy & Regulation\n"
            "  - id: b\n    name: Policy and Regulation\n",
            5,
            "are one topic to `-t`",
        ),
        (GOOD + "    aliases: [dns servers]\n", 6, "'aliases' is given twice"),
        (GOOD + "topics:\n  - id: email\n    name: Email\n", 6, "'topics' is given twice"),
        (GOOD + "   seeds: [unclosed\n", 6, "not valid YAML"),
        (GOOD + "  - id: x\n\tname: X\n", 7, "not valid YAML: found a tab"),
        (GOOD + '  - id: x\n    name: "X\\nY"\n', 6, "control character (U+000A)"),
        (GOOD + '  - id: x\n    name: "X\\u202eY"\n', 6, "control character (U+202E)"),
        (GOOD + f"  - id: x\n    name: {'x' * (MAX_NAME + 1)}\n", 6, "at most 100"),
        (GOOD + "  - id: x\n    name: A;B\n", 6, "';'"),
        (GOOD + "  - id: x\n    name: '???'\n", 6, "no letter or digit"),
        (GOOD + "  - id: X Y\n    name: X\n", 6, "lower-case slug"),
        (GOOD + "  - id: x\n    name: ' X'\n", 6, "starts or ends with spaces"),
        (GOOD.replace("DNS", "D\xe9NS").encode("latin-1"), 4, "not UTF-8"),
        # an alias node that holds itself: looking for repeated keys must not loop
        ("version: 1\ntopics: &t\n  - id: x\n    name: X\n    aliases: *t\n", 3, "not a string"),
    ],
    ids=[
        "duplicate-id",
        "id-spelling-another-topic",
        "name-differing-only-in-case",
        "and-vs-ampersand",
        "repeated-key",
        "repeated-topics",
        "bad-yaml",
        "tab",
        "newline-in-name",
        "bidi-override-in-name",
        "long-name",
        "semicolon",
        "punctuation-only",
        "bad-id",
        "padded-name",
        "latin-1-file",
        "recursive-alias",
    ],
)
def test_a_taxonomy_mistake_is_one_line_naming_the_file_and_line(
    tmp_path: Path, text: str | bytes, line: int, says: str
) -> None:
    path = tmp_path / "taxonomy.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        Taxonomy.load(path)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"taxonomy {path}")
    assert f"line {line}" in message and says in message, message


def test_the_cli_refuses_a_broken_taxonomy_in_one_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taxonomy = env / "models" / "taxonomy.yaml"
    taxonomy.write_text(taxonomy.read_text() + "  - id: security\n    name: Security again\n")
    code, out, err = run(capsys, "topics")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: taxonomy ")
    assert str(taxonomy) in err and "line " in err


def test_an_alias_several_topics_claim_maps_to_each(tmp_path: Path) -> None:
    """By design, not a mistake: a feed category ("ransomware") can mean several topics."""
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        GOOD + "  - id: email\n    name: Email\n    aliases: [Resolvers, mail]\n",
        encoding="utf-8",
    )
    taxonomy = Taxonomy.load(path)
    assert taxonomy.topics_for_categories(["resolvers"]) == ("DNS", "Email")
    assert taxonomy.resolve("resolvers") is None  # no one topic an old name could be


def test_odd_topic_names_work_in_queries_labels_and_served_feeds(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_name = "Long " + "n" * (MAX_NAME - 5)
    odd = [
        {"id": "tcp-ip", "name": "TCP/IP"},
        {"id": "bezopasnost", "name": "Безопасность", "aliases": ["Кибербезопасность"]},
        {"id": "sicherheit", "name": "Über Sicherheit"},
        {"id": "securite", "name": "sécurité réseau"},
        {"id": "long", "name": long_name},
    ]
    (story,) = store([OFF])  # before the edit: the shipped model fits the old taxonomy
    _write_taxonomy(env / "models", [*TOPICS, *odd])
    taxonomy = Taxonomy.load(env / "models" / "taxonomy.yaml")
    # a feed's category in another spelling, as for ASCII names (letters beyond ASCII
    # were dropped, so these names had no spelling at all and were no alias of their topic)
    assert taxonomy.topics_for_categories(["кибер-безопасность", "БЕЗОПАСНОСТЬ"]) == (
        "Безопасность",
    )
    assert taxonomy.topics_for_categories(["über-sicherheit"]) == ("Über Sicherheit",)
    assert taxonomy.topics_for_categories(["uber sicherheit"]) == ()  # another word
    assert taxonomy.get("tcp-ip") == taxonomy.get("tcp / ip") == taxonomy.get("TCP/IP")
    assert taxonomy.get("Sécurité-Réseau") == taxonomy.get("securite")

    for name in ("TCP/IP", "sécurité réseau", long_name):
        assert run(capsys, "label", str(story), f"+{name}")[0] == 0
    for spelling in ("tcp/ip", "Sécurité Réseau", long_name.upper()):
        code, out, err = run(capsys, "stories", "-t", spelling, "--format", "json")
        assert code == 0, err
        assert [s["id"] for s in json.loads(out)] == [story]
    code, out, _ = run(capsys, "topics", "--format", "json")
    assert {t["topic"]: t["stories"] for t in json.loads(out)}["TCP/IP"] == 1
    with open_app() as app, FeedServer(app) as srv:
        for name in ("TCP/IP", "sécurité réseau", long_name):
            url = f"{srv.url}/topics/{urllib.parse.quote(name, safe='')}.json"
            with urllib.request.urlopen(url) as r:
                feed = json.loads(r.read())
            assert [i["title"] for i in feed["items"]] == [OFF[0]], name
        with urllib.request.urlopen(srv.url + "/") as r:
            index = r.read().decode()
        assert "/topics/TCP%2FIP.atom" in index


def test_a_name_with_capitals_beyond_ascii_is_found_by_its_stories(
    db_env: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLite's lower() folds ASCII only: "unknown topic(s): Безопасность" there, before
    (story,) = store([OFF])
    odd = [{"id": "bezopasnost", "name": "Безопасность"}, {"id": "ubr", "name": "Über"}]
    _write_taxonomy(db_env / "models", [*TOPICS, *odd])
    for name in ("Безопасность", "Über"):
        assert run(capsys, "label", str(story), f"+{name}")[0] == 0
        code, out, err = run(capsys, "stories", "-t", name.lower(), "--format", "json")
        assert code == 0, err
        assert [s["id"] for s in json.loads(out)] == [story]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        ("reorder", "topics reordered"),
        ("seeds", "the same topics, other ids or seed phrases"),
        ("rename", "topics added: Regulation; removed: Policy & Regulation"),
        ("remove", "topics removed: Domains"),
        ("describe", None),  # descriptions and aliases need no retraining
    ],
)
def test_a_model_of_another_taxonomy_is_refused_naming_what_changed(
    env: Path, edit: str, says: str | None
) -> None:
    from aggregator.classify import Classifier
    from aggregator.errors import ModelError

    topics = [dict(t) for t in TOPICS]
    if edit == "reorder":
        topics.reverse()
    elif edit == "seeds":
        topics[0]["seeds"] = ["ransomware"]
    elif edit == "rename":
        topics[2]["name"] = "Regulation"
    elif edit == "remove":
        del topics[1]
    else:
        topics[0]["description"] = "Anything about security."
        topics[0]["aliases"] = ["infosec", "cyber"]
    _write_taxonomy(env / "models", topics)
    if says is None:
        assert Classifier.load(env / "models").topics == tuple(t["name"] for t in TOPICS)
        return
    with pytest.raises(ModelError) as e:
        Classifier.load(env / "models")
    assert f"different taxonomy ({says}; hash " in str(e.value)


# -- a topic added -----------------------------------------------------------------------


def _rss(items: list[tuple[str, str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>https://news.example/{g}</link><guid>{g}</guid>"
        f"<category>{c}</category><description>{d}</description></item>"
        for g, t, d, c in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example/</link>{body}</channel></rss>"
    ).encode()


def _aggregator(run: Run, env: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m aggregator`` on ``env`` with private addresses, no extraction, one
    worker, run by ``run`` (tests/clirun.py: the CLI's main in this process)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    environ.update(
        AGGREGATOR_DATA_DIR=str(env / "data"),
        AGGREGATOR_MODELS_DIR=str(env / "models"),
        AGGREGATOR_FEEDS=str(env / "feeds.yaml"),
        AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="1",
        AGGREGATOR_EXTRACT="0",
        AGGREGATOR_WORKERS="1",
    )
    return run(environ, *argv)


def test_a_topic_added_is_given_by_its_aliases_at_once_then_trains_from_two_labels(
    env: Path,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The polls and the train run the CLI's main in this process (tests/clirun.py), their
    log on stderr as a process's; capfd reads the worker processes' output too."""
    cli = in_process(monkeypatch, capfd)
    a = server.route("/a.xml", body=_rss([("a1", *SEC[:2], "infosec")]))
    b = server.route("/b.xml", body=_rss([("b1", *DOM[:2], "domain names")]))
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {a}\n  - url: {b}\n")
    done = _aggregator(cli, env, "poll", "--quiet")
    assert done.returncode == 0, done.stderr

    edit_taxonomy(env, "add")  # the shipped model knows nothing of it
    server.route("/a.xml", body=_rss([("a2", *PQC[:2], "PQC"), ("a1", *SEC[:2], "infosec")]))
    server.route("/b.xml", body=_rss([("b2", "Quantum-safe TLS", "Post-quantum.", "pqc")]))
    done = _aggregator(cli, env, "poll", "--all", "--quiet")
    # both feeds stored their stories with the topics their feed categories name (the
    # new topic's aliases need no model), and said why once (not once per feed)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("stories get only their feed categories' topics") == 1
    assert "different taxonomy" in done.stderr and "aggregator train" in done.stderr
    assert "topics added: Quantum-safe Cryptography;" in done.stderr  # which edit mattered
    assert "Traceback" not in done.stderr

    code, out, _ = run(capfd, "stories", "--format", "json")
    by_title = {s["title"]: s for s in json.loads(out)}
    by_alias = [{"topic": QUANTUM["name"], "score": 1.0, "source": "feed-category"}]
    assert by_title[PQC[0]]["topics"] == by_title["Quantum-safe TLS"]["topics"] == by_alias
    assert by_title[SEC[0]]["topics"]  # tagged by the first poll
    code, out, _ = run(capfd, "topics", "--format", "json")
    assert json.loads(out)[-1] == {
        "topic": QUANTUM["name"],
        "stories": 2,
        "description": QUANTUM["description"],
    }
    code, out, _ = run(capfd, "stories", "-t", "quantum-safe-cryptography", "--format", "json")
    assert code == 0 and {s["title"] for s in json.loads(out)} == {PQC[0], "Quantum-safe TLS"}
    pqc = by_title[PQC[0]]["id"]
    code, out, _ = run(capfd, "show", str(pqc), "--format", "json")
    assert json.loads(out)["model_version"] == "feed-categories"  # no model: a re-tag takes it
    code, _, err = run(capfd, "explain", str(pqc))
    assert code == 1 and err.count("\n") == 1 and "retrain" in err

    # two examples of the new topic: the user's label and the other story's feed category
    assert run(capfd, "label", str(pqc), f"+{QUANTUM['name']}")[0] == 0
    done = _aggregator(cli, env, "train", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "too few examples to learn 1 topic (Quantum-safe Cryptography: 2)" in done.stderr
    manifest = json.loads((env / "data" / "models" / "classifier" / "manifest.json").read_text())
    assert manifest["topics"][-1] == QUANTUM["name"]
    assert manifest["data"]["positives"][QUANTUM["name"]] == 2

    code, out, _ = run(capfd, "stories", "-t", QUANTUM["name"], "--format", "json")
    tagged = {
        s["title"]: t["source"]
        for s in json.loads(out)
        for t in s["topics"]
        if t["topic"] == QUANTUM["name"]
    }
    # re-tagged by the new model: the other story's alias applies now
    assert tagged == {PQC[0]: "user", "Quantum-safe TLS": "feed-category"}
    code, out, _ = run(capfd, "export", "--topic", QUANTUM["name"], "--format", "json")
    assert {i["title"] for i in json.loads(out)["items"]} == {PQC[0], "Quantum-safe TLS"}
    # an alias only this topic claims names it (a renamed topic's old name is one)
    assert run(capfd, "export", "--topic", "PQC", "--format", "json")[1] == out
    code, out, err = run(capfd, "explain", str(pqc), "--format", "json")
    assert code == 0, err
    (given,) = [t for t in json.loads(out)["topics"] if t["topic"] == QUANTUM["name"]]
    assert given["source"] == "user" and given["threshold"] == 0.5  # too few to tune


def test_a_daemon_tags_again_once_a_model_fits_the_taxonomy(env: Path, server: LocalServer) -> None:
    """App._model_error, once set, kept the model away for the App's life: a daemon that
    met a model of the old taxonomy stored every story untagged until it was restarted,
    also after `aggregator train` wrote a model that fits."""
    a = server.route("/a.xml", body=_rss([("a1", *SEC[:2], "infosec")]))
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {a}\n")
    edit_taxonomy(env, "add")
    settings = Settings.from_env(
        {}, data_dir=env / "data", models_dir=env / "models", allow_private_addresses=True
    )
    with make_app(settings) as daemon:
        daemon.sync_feeds(env / "feeds.yaml")
        assert [r.status for r in daemon.update_due(all_feeds=True, extract=False)] == ["ok"]
        (first,) = daemon.stories(StoryQuery(limit=10))  # no model: its category alone
        assert [(t.topic, t.source) for t in first.topics] == [("Security", "feed-category")]
        with make_app(settings) as other:  # `aggregator train` meanwhile
            other.learning.train(retag=False)
        server.route("/a.xml", body=_rss([("a2", *DOM[:2], "domain names")]))
        list(daemon.update_due(all_feeds=True, extract=False))
        newest = daemon.stories(StoryQuery(limit=10))[0]
        assert newest.title == DOM[0] and newest.topics


# -- labels when the model in use does not fit the taxonomy ----------------------------------


def test_forgetting_a_label_when_the_model_does_not_load_leaves_the_story_to_the_retag(
    db_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (sec,) = store([SEC])
    assert topics_of(sec)["Security"] in ("model", "rule")
    with open_app() as app:
        app.label(sec, [], ["Security"])
    assert "Security" not in topics_of(sec)

    edit_taxonomy(db_env, "add")  # the model in use no longer loads
    with open_app() as app, caplog.at_level(logging.WARNING):
        app.label(sec, [], [], ["Security"])  # raised ModelError, the label gone already
        assert app.story_labels(sec) == ((), ())
        assert app.story(sec).model_version is None  # left for the next re-tag
    assert "label withdrawn" in caplog.text and "aggregator train" in caplog.text

    edit_taxonomy(db_env, "none")  # the user puts the taxonomy back: the model loads
    with open_app() as app:
        seen, _ = app.retag()  # what `train` does after fitting (or keeping) the model
        assert seen == 1
    assert topics_of(sec)["Security"] in ("model", "rule")  # the model decides it again


# -- a topic removed -----------------------------------------------------------------------


def test_a_removed_topic_trains_without_it_and_its_labels_can_be_withdrawn(
    db_env: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dom, off = store([DOM, OFF])
    with open_app() as app:
        app.label(dom, ["Domains"], [])
        app.label(off, ["Domains", "IPv6"], [])
    edit_taxonomy(db_env, "remove")
    code, out, _ = run(capsys, "show", str(off))
    assert "your labels: +Domains, +IPv6" in out
    assert "(Domains is no longer a topic (kept, not learnt);" in " ".join(out.split())

    with open_app() as app, caplog.at_level(logging.WARNING):
        examples = app.learning.examples()
    # the seeds still name Domains: they keep their other topics (train failed with
    # "examples name unknown topics: Domains"); the labels of it are skipped, and kept
    assert "seed examples in" in caplog.text and "Domains in 12" in caplog.text
    assert "user labels of topics no longer in the taxonomy are skipped: Domains" in caplog.text
    assert not any("Domains" in e.topics for e in examples)
    assert [e.topics for e in examples if e.source == "user"] == [("IPv6",)]
    seeds = [e for e in examples if e.source == "seed"]
    assert len(seeds) == len(_seed_lines())  # none lost: a Domains-only seed is off-topic now

    code, _, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    manifest = json.loads((db_env / "data" / "models" / "classifier" / "manifest.json").read_text())
    assert "Domains" not in manifest["topics"]
    assert topics_of(dom).get("Domains") == "user"  # the label is kept ...

    with open_app() as app:
        assert app.forget_targets(dom, ["domains"]) == [("Domains", ("Domains",))]
        assert app.forget_targets(dom, ["Gardening", "IPv6"]) == [("IPv6", ())]
        with pytest.raises(ConfigError, match="unknown topics 'Nope', 'Gardening'"):
            app.label(dom, ["Nope"], [], ["Domains", "Gardening"])  # all named at once
        app.label(dom, [], [], ["Domains"])  # ... until withdrawn ("unknown topic" before)
        assert app.story_labels(dom) == ((), ())
        app.label(off, [], [], ["Domains"])
        assert app.story_labels(off) == (("IPv6",), ())
    assert "Domains" not in topics_of(dom) and "Domains" not in topics_of(off)
    code, _, err = run(capsys, "stories", "-t", "Domains")
    assert code == 2 and "unknown topic 'Domains'" in err


def test_the_cli_withdraws_a_label_of_a_removed_topic(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (dom,) = store([DOM])
    assert run(capsys, "label", str(dom), "+Domains")[0] == 0
    edit_taxonomy(env, "remove")
    code, out, err = run(capsys, "label", str(dom), "--forget", "Domains", "--format", "json")
    assert (code, err) == (0, "")
    assert "Domains" not in {t["topic"] for t in json.loads(out)["topics"]}


# -- a topic renamed -----------------------------------------------------------------------


def test_a_renamed_topic_keeps_its_labels_and_seeds_under_its_new_name(
    db_env: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    pol, sec = store([POL, SEC])
    with open_app() as app:
        app.label(pol, ["Policy & Regulation"], [])
        app.label(sec, ["Policy & Regulation"], [])
    edit_taxonomy(db_env, "rename")  # same id; "policy & regulation" is among its aliases
    _, out, _ = run(capsys, "show", str(pol))
    assert "your labels: +Regulation" in out and "Policy" not in out

    with open_app() as app, caplog.at_level(logging.WARNING):
        examples = app.learning.examples()
        assert not caplog.text  # nothing skipped: seeds and labels read as Regulation
        users = {e.doc.title: (e.topics, e.negative) for e in examples if e.source == "user"}
        assert users == {POL[0]: (("Regulation",), ()), SEC[0]: (("Regulation",), ())}
        renamed = sum("Regulation" in e.topics for e in examples if e.source == "seed")
        assert renamed == 17

        # the user's word under the new name replaces the one under the old: `show`
        # listed "+Policy & Regulation" and "-Regulation" side by side, and training
        # read the pair as a positive
        app.label(pol, [], ["Regulation"])
        assert app.story_labels(pol) == ((), ("Regulation",))
        assert "Policy & Regulation" not in {t.topic for t in app.story(pol).topics}
        users = {
            e.doc.title: (e.topics, e.negative)
            for e in app.learning.examples()
            if e.source == "user"
        }
        assert users[POL[0]] == ((), ("Regulation",))

        # the label given under the old name is under the new one (sync_topics moved it)
        assert app.forget_targets(sec, ["regulation"]) == [("Regulation", ("Regulation",))]
        app.label(sec, [], [], ["Regulation"])
        assert app.story_labels(sec) == ((), ())
        assert "Policy & Regulation" not in {t.topic for t in app.story(sec).topics}

        # the old name still names the topic: `label +OldName` was "unknown topic"
        app.label(sec, ["Policy & Regulation"], [])
        assert app.story_labels(sec) == (("Regulation",), ())
    code, out, err = run(capsys, "stories", "-t", "policy & regulation", "--format", "json")
    assert (code, err) == (0, "")
    assert {s["id"] for s in json.loads(out)} >= {sec}


def test_a_rename_that_drops_the_old_name_skips_those_seed_labels_with_a_warning(
    env: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    edit_taxonomy(env, "rename-forgetting-the-alias")
    with open_app() as app, caplog.at_level(logging.WARNING):
        examples = app.learning.examples()
    assert "Policy & Regulation in 17" in caplog.text and "aliases" in caplog.text
    assert all("Policy & Regulation" not in e.topics for e in examples)
    code, _, err = run(capsys, "train", "--quiet", "--no-retag")
    assert code == 0, err


def test_examples_and_model_version_are_unchanged_for_an_unchanged_taxonomy(env: Path) -> None:
    """Reading seeds and labels through the taxonomy must not change a thing when it did
    not change: the same examples keep the same model version (`train` keeps it)."""
    from aggregator.examples import load_seed_examples

    (sec,) = store([SEC])
    with open_app() as app:
        app.label(sec, ["Security"], ["IPv6"])
        examples = app.learning.examples()
    seeds = [e for e in examples if e.source == "seed"]
    assert seeds == load_seed_examples(env / "models")
    assert [(e.topics, e.negative) for e in examples if e.source == "user"] == [
        (("Security",), ("IPv6",))
    ]


def test_the_seeds_hold_what_the_tests_count() -> None:
    lines = [json.loads(x) for x in _seed_lines()]
    assert sum("Domains" in x["topics"] for x in lines) == 12
    assert sum("Policy & Regulation" in x["topics"] for x in lines) == 17


# -- what other modules still owe (the exact changes are in the reasons) -----------------------


def test_the_cli_says_nothing_false_when_it_withdraws_a_label_under_an_old_name(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pol,) = store([POL])
    assert run(capsys, "label", str(pol), "+Policy & Regulation")[0] == 0
    edit_taxonomy(env, "rename")
    code, out, err = run(capsys, "label", str(pol), "--forget", "Regulation", "--format", "json")
    assert code == 0
    assert "Policy & Regulation" not in {t["topic"] for t in json.loads(out)["topics"]}
    assert err == ""


def test_stories_labelled_under_the_old_name_are_listed_under_the_new(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store keyed topics by name: a rename made a new row and left the labels on the
    old one, so `stories -t Regulation` missed the stories labelled 'Policy & Regulation'."""
    off, pol = store([OFF, POL])
    assert run(capsys, "label", str(off), "+Policy & Regulation")[0] == 0
    assert run(capsys, "label", str(pol), "-Policy & Regulation")[0] == 0
    edit_taxonomy(db_env, "rename")
    code, out, err = run(capsys, "stories", "-t", "Regulation", "--format", "json")
    assert code == 0, err
    assert [s["id"] for s in json.loads(out)] == [off]
    with open_app() as app:
        assert app.story_labels(off) == (("Regulation",), ())
        assert app.story_labels(pol) == ((), ("Regulation",))
        assert [(t.name, t.stories) for t in app.topics()][2] == ("Regulation", 1)
        assert "Policy & Regulation" not in {t.name for t in app.store.topics()}
    code, out, err = run(capsys, "label", str(off), "--forget", "regulation")
    assert code == 0, err
    with open_app() as app:
        assert app.story_labels(off) == ((), ())


def test_a_rename_made_before_renames_were_carried_over_is_merged(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database renamed by an earlier version has both rows: the labels and tags of the
    old one move onto the new (a label or a tag under the new name winning) and the old
    row goes."""
    from aggregator.types import Prediction, TopicScore

    a, b, c, d, e = store([OFF, POL, SEC, DOM, OFF])
    for story, label in [(a, "+"), (b, "+"), (c, "-")]:
        assert run(capsys, "label", str(story), label + "Policy & Regulation")[0] == 0
    with open_app() as app:  # what an earlier version left after the rename
        app.store.sync_topics([("Regulation", None)])
        app.store.add_labels(b, [], ["Regulation"], app.now())
        both = (TopicScore(topic="Regulation", score=0.9), TopicScore(topic=OLD, score=0.8))
        app.store.set_predictions(
            [
                (d, Prediction(topics=both, model_version="m")),
                (e, Prediction(topics=(TopicScore(topic=OLD, score=0.7),), model_version="m")),
            ]
        )
    edit_taxonomy(db_env, "rename")
    with open_app() as app:
        assert OLD not in {t.name for t in app.store.topics()}
        labels = {s: app.story_labels(s) for s in (a, b, c)}
        tagged = {
            s: [(t.source, t.score) for t in app.story(s).topics if t.topic == "Regulation"]
            for s in (a, b, c, d, e)
        }
    assert labels == {a: (("Regulation",), ()), b: ((), ("Regulation",)), c: labels[b]}
    assert tagged == {a: [("user", 1.0)], b: [], c: [], d: [("model", 0.9)], e: [("model", 0.7)]}


OLD = "Policy & Regulation"


def test_a_long_running_process_names_a_topic_added_since_it_started(env: Path) -> None:
    """The topic ids were read once per store, so a daemon or `serve` started before a
    topic was added showed its stories' new topic as '?' (and a poll dropped it from the
    stories it stored); the map is read again on a miss."""
    (story,) = store([OFF])
    with open_app() as serving:  # `aggregator serve`, started before the edit
        assert serving.story(story).topics == ()
        edit_taxonomy(env, "add")
        with open_app() as app:
            app.label(story, [QUANTUM["name"]], [])
        assert [t.topic for t in serving.story(story).topics] == [QUANTUM["name"]]


def test_a_taxonomy_broken_while_polling_stores_the_stories_untagged(
    env: Path, server: LocalServer
) -> None:
    a = server.route("/a.xml", body=_rss([("a1", *SEC[:2], "infosec")]))
    (env / "feeds.yaml").write_text(f"feeds:\n  - url: {a}\n")
    settings = Settings.from_env(
        {}, data_dir=env / "data", models_dir=env / "models", allow_private_addresses=True
    )
    with make_app(settings) as daemon:  # started with a good taxonomy
        daemon.sync_feeds(env / "feeds.yaml")
        (env / "models" / "taxonomy.yaml").write_text("version: 1\ntopics: [unclosed\n")
        (result,) = daemon.update_due(all_feeds=True, extract=False)
        assert (result.status, result.new) == ("ok", 1), result.error


def test_make_app_closes_the_store_when_syncing_topics_fails_otherwise(tmp_path: Path) -> None:
    """The store was closed only on an AggregatorError; anything else (a Ctrl-C, or the
    ValueError a NUL byte in a models path given in code makes) left it open. No file
    the taxonomy loader reads raises other than ConfigError, so the NUL byte stands in."""
    settings = Settings.from_env({}, data_dir=tmp_path, models_dir=tmp_path / "models\0")
    # ``info`` keeps the traceback, and so the App, alive: the GC cannot close it for us.
    with pytest.raises(ValueError, match="null byte") as info:
        make_app(settings)
    # SQLite removes the WAL files when its last connection closes.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aggregator.db"]
    assert info.type is ValueError
