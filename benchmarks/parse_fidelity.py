"""Fidelity and speed of the lxml fast path (aggregator/fastparse.py) against feedparser.

For every feed file: ``parse_feed(..., fast=False)`` (feedparser, the reference) and
``parse_feed(..., fast=True)`` must give equal ``ParsedFeed`` values (or the same
``ParseError`` message). Prints files, accepted by the fast path, identical, differing (must
be 0), then CPU per feed for each path and their ratio. Exits 1 on any difference.

Corpora (nothing is downloaded here; no network):

- directories of feed files, e.g. feedparser's own test corpus, fetched by hand once:
  ``pip download --no-deps --no-binary :all: feedparser==6.0.11 -d /tmp/fpsdist`` then
  ``tar xzf /tmp/fpsdist/feedparser-6.0.11.tar.gz -C /tmp/fpsdist`` (the default path is
  its ``tests/`` directory); each file is parsed with no Content-Type and, with
  ``--content-types``, with each of those too;
- ``--generate N``: the first N feeds of benchmarks/fetch.py's corpus (``--seed``), each
  with the Content-Type the benchmark serves it with.

    python benchmarks/parse_fidelity.py                      # feedparser's tests
    python benchmarks/parse_fidelity.py --generate 1000 --no-dirs
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from aggregator import fastparse  # noqa: E402
from aggregator.errors import ParseError  # noqa: E402
from aggregator.parse import feedparser_headers, parse_feed  # noqa: E402

DEFAULT_DIR = Path("/tmp/fpsdist/feedparser-6.0.11/tests")
URL = "https://feeds.example.org/feed"


@dataclass
class Tally:
    files: int = 0
    accepted: int = 0
    identical: int = 0
    differing: list[str] = field(default_factory=list)
    slow_cpu: float = 0.0  # every file, feedparser path
    fast_cpu: float = 0.0  # every file, fast path on (declines fall back to feedparser)
    slow_cpu_accepted: float = 0.0
    fast_cpu_accepted: float = 0.0


def _outcome(body: bytes, content_type: str | None, fast: bool) -> tuple[object, float]:
    start = time.process_time()
    try:
        result: object = parse_feed(body, URL, content_type=content_type, fast=fast)
    except ParseError as e:
        result = ("ParseError", str(e))
    except Exception as e:  # a crash is a finding too: compare it like a result
        result = ("crash", type(e).__name__, str(e))
    return result, time.process_time() - start


def compare(cases: Iterable[tuple[str, bytes, str | None]]) -> Tally:
    tally = Tally()
    for label, body, content_type in cases:
        tally.files += 1
        accepted = fastparse.extract(body, feedparser_headers(content_type)) is not None
        reference, slow = _outcome(body, content_type, fast=False)
        result, fast = _outcome(body, content_type, fast=True)
        tally.slow_cpu += slow
        tally.fast_cpu += fast
        if not accepted:
            continue
        tally.accepted += 1
        tally.slow_cpu_accepted += slow
        tally.fast_cpu_accepted += fast
        if result == reference:
            tally.identical += 1
        else:
            tally.differing.append(label)
    return tally


def directory_cases(
    directory: Path, content_types: list[str | None]
) -> Iterable[tuple[str, bytes, str | None]]:
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        body = path.read_bytes()
        if not body.lstrip(b"\xef\xbb\xbf \t\r\n"):
            continue  # parse_feed refuses these before either path runs
        for content_type in content_types:
            yield f"{path} [{content_type}]", body, content_type


def _load_fetch() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fetch", HERE.parent / "fetch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def generated_cases(n: int, seed: int, directory: Path) -> Iterable[tuple[str, bytes, str | None]]:
    fetch = _load_fetch()
    for feed in fetch.build_corpus(seed, n, 1, directory):
        yield f"{directory}/{feed.path.rsplit('/', 1)[-1]}", feed.raw, feed.spec.content_type


def report(name: str, t: Tally) -> None:
    print(f"== {name}")
    print(
        f"files {t.files}, accepted by the fast path {t.accepted}, identical {t.identical}, "
        f"differing {len(t.differing)}"
    )
    for label in t.differing[:20]:
        print(f"  DIFFERS: {label}")
    if t.files:
        slow, fast = t.slow_cpu / t.files * 1000, t.fast_cpu / t.files * 1000
        print(
            f"CPU per feed, all files: feedparser path {slow:.2f} ms, fast path on "
            f"{fast:.2f} ms (declines included), ratio {slow / max(fast, 1e-9):.2f}x"
        )
    if t.accepted:
        slow = t.slow_cpu_accepted / t.accepted * 1000
        fast = t.fast_cpu_accepted / t.accepted * 1000
        print(
            f"CPU per feed, accepted files: feedparser path {slow:.2f} ms, fast path "
            f"{fast:.2f} ms, ratio {slow / max(fast, 1e-9):.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", type=Path, help=f"feed directories (default {DEFAULT_DIR})")
    p.add_argument("--no-dirs", action="store_true", help="skip the directories")
    p.add_argument(
        "--content-types",
        nargs="*",
        default=[],
        help="also parse each directory file with these Content-Types",
    )
    p.add_argument("--generate", type=int, default=0, help="N benchmark feeds (fetch.py)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--corpus-dir", type=Path, default=None, help="where generated feeds go")
    a = p.parse_args(argv)

    differing = 0
    if not a.no_dirs:
        dirs = a.dirs or [DEFAULT_DIR]
        content_types: list[str | None] = [None, *a.content_types]
        for directory in dirs:
            if not directory.is_dir():
                print(
                    f"{directory} not found. Fetch feedparser's test corpus by hand first:\n"
                    "  pip download --no-deps --no-binary :all: feedparser==6.0.11 "
                    "-d /tmp/fpsdist\n"
                    "  tar xzf /tmp/fpsdist/feedparser-6.0.11.tar.gz -C /tmp/fpsdist",
                    file=sys.stderr,
                )
                return 2
            tally = compare(directory_cases(directory, content_types))
            report(str(directory), tally)
            differing += len(tally.differing)
    if a.generate:
        with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
            directory = a.corpus_dir or Path(tmp) / f"corpus-seed{a.seed}"
            tally = compare(generated_cases(a.generate, a.seed, directory))
        report(f"benchmark corpus, {a.generate} feeds, seed {a.seed}", tally)
        differing += len(tally.differing)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
