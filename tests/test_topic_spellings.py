"""A topic given to `-t`, `label` or serve's `?topic=` is found however it is spelled,
as feed categories are: "and" for "&", other spacing or punctuation ("Policy and
Regulation", "policy-and-regulation" were unknown topics)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_learning_cli import env, run, seed_stories  # noqa: F401  (env: fixture)

from aggregator.config import REPO_MODELS_DIR
from aggregator.taxonomy import Taxonomy


def test_a_topic_is_found_however_it_is_spelled() -> None:
    taxonomy = Taxonomy.load(REPO_MODELS_DIR / "taxonomy.yaml")
    for spelling in (
        "Policy & Regulation",
        "Policy and Regulation",
        "policy  &  regulation",
        "policy-and-regulation",
        "POLICY_AND_REGULATION",
    ):
        topic = taxonomy.get(spelling)
        assert topic is not None and topic.name == "Policy & Regulation", spelling
    ipv4 = taxonomy.get("ipv4-markets")
    assert ipv4 is not None and ipv4.name == "IPv4 Markets"
    assert taxonomy.get("Policy") is None and taxonomy.get("") is None


def test_the_cli_takes_such_spellings(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (sid, *_) = seed_stories(env / "data", classify=False)
    code, _, err = run(capsys, "label", str(sid), "+Policy and Regulation")
    assert code == 0, err
    code, out, err = run(capsys, "stories", "-t", "policy-and-regulation", "--format", "json")
    assert code == 0, err
    assert f'"id": {sid},' in out
