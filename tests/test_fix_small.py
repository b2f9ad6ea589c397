"""Small user-facing inconsistencies, each through the real code: two ``export -o`` to
one file at once, ``-q ""`` on the command line, formula cells in ``topics --format
csv``, and ``status`` before a truncated ``model.joblib``."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_learning_cli import env, run  # noqa: F401  (env: fixture)

from aggregator.cli.common import write_streamed

# --- export -o: a temporary file of its own per export -------------------------------------


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Sets the process's umask for the test, and puts the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def test_two_exports_to_one_file_at_once_both_write_a_whole_document(tmp_path: Path) -> None:
    """Both wrote through ``FILE.tmp``: the second truncated the first's half-written
    file, renamed it into place, and the first then failed (its temporary file gone) or,
    had it not, would have put the two documents' bytes into one."""
    target = tmp_path / "all.atom"
    first_started, second_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    a_doc, b_doc = "<a>" + "x" * 5000 + "</a>\n", "<b>" + "y" * 300 + "</b>\n"

    def first(write: Callable[[str], object]) -> None:
        write(a_doc[:100])
        first_started.set()
        assert second_done.wait(10)  # the second export starts and ends meanwhile
        write(a_doc[100:])

    def second(write: Callable[[str], object]) -> None:
        write(b_doc)

    def export_first() -> None:
        try:
            write_streamed(first, target)
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    t = threading.Thread(target=export_first)
    t.start()
    try:
        assert first_started.wait(10)
        write_streamed(second, target)
        assert target.read_text() == b_doc
    finally:
        second_done.set()
        t.join(10)
    assert errors == []
    assert target.read_text() == a_doc  # the one renamed last, whole
    assert [p.name for p in tmp_path.iterdir()] == ["all.atom"]  # no temporary file left


def test_an_export_file_is_made_with_the_mode_the_umask_gives(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    """As ``open(FILE, "w")`` makes it (0o666 less the umask), not a temporary file's
    private 0o600: a file shared with a group stays readable by it."""
    umask(0o027)
    target = tmp_path / "all.json"
    write_streamed(lambda write: write("{}\n"), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    umask(0o002)
    write_streamed(lambda write: write("{}\n"), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o664


def test_a_failed_export_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "all.atom"
    target.write_text("the previous export\n")

    def fail(write: Callable[[str], object]) -> None:
        write("<?xml half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_streamed(fail, target)
    assert target.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["all.atom"]


# --- -q "": an empty search is bad input on the command line ----------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("stories", "-q", ""),
        ("stories", "--search", "   "),
        ("stories", "-q", "", "--format", "json"),
        ("stories", "--new", "-q", ""),
        ("export", "-q", ""),
    ],
    ids=["stories", "blank", "json", "new", "export"],
)
def test_an_empty_search_is_refused_naming_the_option(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    """``-q ""`` listed every story as if no search were given, while ``-q '""'`` and
    ``-q ' '`` were refused ("has no words to look for"): a search for nothing is a
    mistake (an unset shell variable), said as ``--limit -1`` is."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("error: --search is empty"), err


def test_serve_reads_an_empty_q_or_sort_as_not_given(tmp_path: Path) -> None:
    """A feed reader's form sends its empty fields (``q=&sort=``): they filter nothing
    and keep the default order, as an empty ``feed=`` does."""
    from datetime import UTC, datetime

    from test_config_serve import _store_stories
    from test_serve_audit import _get

    from aggregator.app import make_app
    from aggregator.config import Settings
    from aggregator.serve import FeedServer

    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: datetime(2026, 11, 28, 12, 0, tzinfo=UTC)) as a:
        _store_stories(
            a, "https://a.example/feed", [("1", "https://a.example/1", "A"), ("2", None, "B")]
        )
        with FeedServer(a) as srv:
            expected = _get(srv.url + "/feed.json")
            assert expected[0] == 200
            for query in ("q=", "sort=", "q=&sort=", "feed=&q=&sort="):
                code, _, body = _get(srv.url + "/feed.json?" + query)
                assert (code, body.count(b'"title"')) == (200, expected[2].count(b'"title"'))


# --- topics --format csv: no formula cells --------------------------------------------------


def test_topics_csv_guards_cells_a_spreadsheet_would_run(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Topic names and descriptions are the user's taxonomy's, and may come from a
    shared one: a cell starting with ``=`` ran as a formula where stories' and feeds'
    CSV put a ``'`` before it."""
    models = env / "models"
    models.mkdir()
    (models / "taxonomy.yaml").write_text(
        "version: 1\ntopics:\n"
        "  - id: sums\n    name: '=SUM(1+1)'\n    description: '@cmd|calc'\n"
        "  - id: dns\n    name: DNS\n    description: '-the resolvers'\n"
        "  - id: plain\n    name: Plain\n    description: Nothing to guard\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    code, out, err = run(capsys, "topics", "--format", "csv")
    assert code == 0, err
    assert out.splitlines() == [
        "topic,stories,description",
        "'=SUM(1+1),0,'@cmd|calc",
        "DNS,0,'-the resolvers",
        "Plain,0,Nothing to guard",
    ]
    code, out, _ = run(capsys, "topics", "--format", "json")  # JSON is data: as written
    assert code == 0 and '"=SUM(1+1)"' in out and '"@cmd|calc"' in out


# --- status: a model.joblib that does not match its manifest -------------------------------


@pytest.fixture
def models_copy(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """The shipped taxonomy and model, copied to a models directory of the test's own."""
    import shutil

    shipped = Path(__file__).resolve().parents[1] / "models"
    models = env / "models"
    models.mkdir()
    shutil.copy(shipped / "taxonomy.yaml", models)
    shutil.copytree(shipped / "classifier", models / "classifier")
    monkeypatch.setenv("AGGREGATOR_MODELS_DIR", str(models))
    return models / "classifier" / "model.joblib"


def _status_model(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, object], str]:
    import json

    code, out, err = run(capsys, "status", "--format", "json")
    assert code == 0, err
    model = json.loads(out)["model"]
    code, out, err = run(capsys, "status")
    assert code == 0, err
    return model, " ".join(out.split())


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("truncate", "model.joblib is 4,096 bytes; its manifest says"),
        ("flip", "model.joblib does not match its manifest's checksum"),
        ("remove", "model.joblib is missing"),
    ],
    ids=["truncated", "same-size", "missing"],
)
def test_status_says_the_model_file_does_not_match_its_manifest(
    models_copy: Path, capsys: pytest.CaptureFixture[str], damage: str, said: str
) -> None:
    """status read only manifest.json: a model.joblib cut short by a full disk or a
    copy stopped part way was reported as a good model (and its scores), until the
    next `classify` or a poll without the scorer failed to load it."""
    model, _ = _status_model(capsys)
    assert model["error"] is None and str(model["version"]).startswith("clf-")

    if damage == "truncate":
        with models_copy.open("r+b") as f:
            f.truncate(4096)
    elif damage == "flip":
        data = bytearray(models_copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        models_copy.write_bytes(bytes(data))
    else:
        models_copy.unlink()
    model, table = _status_model(capsys)
    assert said in str(model["error"]) and "aggregator train" in str(model["error"])
    assert model["version"] is None  # as for a manifest that cannot be read
    assert f"model shipped: {said}" in table
