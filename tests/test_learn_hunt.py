"""The learning commands, hunted: what a demanding user of classify, label, train,
evaluate and explain met (each test names what went wrong before its fix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_taxonomy_changes import (  # noqa: F401  (env, shipped: fixtures)
    POL,
    SEC,
    TOPICS,
    _write_taxonomy,
    env,
    run,
    shipped,
    store,
)


def test_brackets_in_topic_names_and_paths_are_printed_as_they_are(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Printed as rich markup: "[beta]" was read as a style and dropped ("topics: Policy &
    # Regulation  1.00 (user)"), and so was a "[work]" in the data directory's path
    # ("model written to /home/me/ news/..."); a "[/...]" in it ended `train` in a
    # MarkupError traceback after the model was written.
    data = env / "[work] [/old]" / "data"
    monkeypatch.setenv("AGGREGATOR_DATA_DIR", str(data))
    ids = store([POL, SEC, POL, SEC])
    _write_taxonomy(env / "models", [{**t, "name": f"{t['name']} [beta]"} for t in TOPICS])
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    assert f"model written to {data / 'models' / 'classifier'}" in out.replace("\n", "")
    code, out, err = run(capsys, "train", "--quiet")
    assert code == 0, err
    assert f"model in use: {data / 'models'}" in out.replace("\n", "")
    code, out, err = run(capsys, "label", str(ids[0]), "+Policy & Regulation [beta]")
    assert code == 0, err
    assert "Policy & Regulation [beta] 1.00 (user)" in out
    code, out, err = run(capsys, "label", "--suggest", "3")
    assert code == 0, err
    assert out.count(" [beta]") == 3, out
