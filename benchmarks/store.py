"""Store benchmark: read-path latency on a big store (years of news), SQLite and PostgreSQL.

What it does, for each backend (``--backend sqlite|postgresql|both``):

1. builds a store of ``--stories`` N stories (default 300,000) in ``--feeds`` feeds
   (default 1,000) through the project's own write path: ``open_store(url)``, the
   taxonomy's topics, ``upsert_feeds``, then ``SqlStore.save_update(FeedCheck,
   [StoryRecord, ...])`` with 35 records per call, as a first poll of a feed writes them.
   Everything comes from a seeded RNG (``--seed``), so two runs build the same store:

   - feed sizes are skewed (a few feeds hold thousands of stories, most a few hundred),
     each feed starting somewhere in the first two of the three years covered;
   - stories are written in the order a poller would have met them (ids grow with time);
     3 % have no date (sorted by when first seen);
   - titles and texts come from a vocabulary of the domain (DNS, registrars, ICANN,
     ransomware, IPv4 transfers, phishing, new gTLDs ...) drawn with Zipf weights, so
     ``domain`` is in nearly every story (the worst case for a search), ``sinkholed``
     in ~0.05 % of them and ``"root zone"`` a phrase in ~5 %;
   - 1-4 topics per story from ``models/taxonomy.yaml`` (skewed: DNS far more frequent
     than Coronavirus), with model / feed-category / rule sources;
   - 6 % of stories are another feed's recent story (same link, a near-identical
     SimHash), so clusters exist; 20 % carry an extracted full text;
   - 0.3 % of stories get user labels (``add_labels``);
   - each poll records the keys its document listed (``FeedCheck.listed``), as prune reads.

2. times the read paths users hit, each on a freshly opened store: the first run
   ("cold": new connections, an empty SQLite page cache / a new PostgreSQL backend; the
   OS page cache stays warm, dropping it needs root) and the median of ``--repeat`` more
   ("warm"): ``stories`` (newest 50, by topic, by feed, date windows, full text, combined
   filters, a deep page, no limit), ``get_story`` + ``cluster_members`` (``show``),
   ``topics()``, ``feeds()``, ``prune_stories(dry_run=True)``, ``next_due``,
   ``due_feed_ids``, ``claim_due`` (then released), and ``App.export`` (``aggregator
   export --topic X``, atom, 100 stories).

3. times the write path on the built store (``--writes`` K, default 100; 0: not at
   all): a poll of K feeds bringing 35 new stories each, K ``save_update`` calls of
   freshly generated records (later than every stored story, 6 % of them copies of
   the store's newest ones from other feeds, so that URL and SimHash look-ups find
   clusters), on a freshly opened store. The records are made before the clock starts;
   the figure is stories/s and the median ms per call. Afterwards the stories, their
   fetch-log rows and the feeds' state are put back as they were, so ``--reuse`` times
   the same store again. With ``--group G`` the same calls are timed again, right after,
   as the poll writes feeds parsed meanwhile: ``save_updates`` of G feeds a transaction
   (the store put back in between), and the ratio printed.

4. prints a table (query, backend, cold ms, warm median ms, rows) and, with ``--json
   FILE``, writes the figures there.

Running (under ``nice``: the build is CPU-bound for minutes)::

    nice -n 10 .venv/bin/python benchmarks/store.py                      # 300k, both
    nice -n 10 .venv/bin/python benchmarks/store.py --stories 30000 --backend sqlite
    nice -n 10 .venv/bin/python benchmarks/store.py --keep --workdir /tmp/sb  # keep DBs
    nice -n 10 .venv/bin/python benchmarks/store.py --reuse --workdir /tmp/sb # time again

The build is the long part: on 2 CPUs 300,000 stories took 13 min on SQLite (~400/s,
~1,000/s while the store is small) and 34 min on PostgreSQL (~150-400/s); 30,000 take
half a minute and a minute. ``--only WORD ...`` times only the queries whose name
contains one of the words (``--only NOTHING``: build, time nothing).

``--keep`` leaves the SQLite file in ``--workdir`` and the PostgreSQL database
(``aggregator_bench_<N>`` on the server of ``--pg-url``); ``--reuse`` times a kept store
again instead of building it (opening it runs any newer migration, and that time is
printed). PostgreSQL gets an ``ANALYZE`` after the build, as autovacuum would soon do;
SQLite gets nothing (the application never runs ``ANALYZE`` there either).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.app import App, make_app  # noqa: E402
from aggregator.config import Settings  # noqa: E402
from aggregator.dedupe import listing_digest  # noqa: E402
from aggregator.store import SqlStore, open_store  # noqa: E402
from aggregator.types import (  # noqa: E402
    FeedCheck,
    FeedSource,
    Prediction,
    StoryDraft,
    StoryQuery,
    StoryRecord,
    TopicScore,
)

END = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # the newest story; "now" is an hour later
NOW = END + timedelta(hours=1)
SPAN = timedelta(days=3 * 365)
PER_CALL = 35  # records per save_update, as a first poll of a feed writes them
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# --- vocabulary ----------------------------------------------------------------------------
# Domain words first (Zipf weights follow list order, so earlier = more frequent).
def _split(text: str) -> list[str]:
    return text.split()


DOMAIN_WORDS = _split("""
domain dns registry registrar icann internet security new names data network
attack policy ipv4 address transfer phishing ransomware root zone gtld tld
operator abuse report cyber malware users service government court ruling
registrant whois privacy board community global members market price block
dnssec resolver server provider access lookup query cache record nameserver
threat actors campaign breach vulnerability exploit patch botnet ddos traffic
brand udrp complaint panel wipo dispute trademark cybersquatting infringement
ipv6 allocation rir arin ripe apnic lacnic afrinic prefix routing bgp rpki
spam email mailbox filter sender spf dkim dmarc blocklist
broadband wireless spectrum 5g fiber telecom carrier satellite rural coverage
cloud datacenter outage latency edge compute hosting platform kubernetes
blockchain crypto token wallet ledger nft
censorship shutdown filtering surveillance rights freedom journalists
neutrality fcc throttling zero rating
law legislation regulation directive commission eu gdpr nis2 compliance fine
governance multistakeholder igf itu un wsis accountability transparency
iot devices firmware sensors smart home industrial
ai model machine learning generative chatbot
covid pandemic vaccine remote
auction price per address legacy block lease broker buyer seller
expansion round applicants applications string delegation contention
extortion leak darkweb affiliate encryptor negotiation payment decryptor
credential lure kit takedown impersonation lookalike homograph typosquatting
""")
GENERAL_WORDS = _split("""
the of and to in for on with as by at from that this is was are be has have
said says will would could new first more after over year years week month today
announced launched plans report reports update updates latest says warns calls
""")
RARE_WORD = "sinkholed"  # ~0.05 % of stories
RARE_P = 0.0005
PHRASE_P = 0.04  # "root zone" written as a phrase (beside the words' own frequency)

TOPIC_WEIGHTS: dict[str, float] = {
    "DNS": 12,
    "Domain Names": 10,
    "Cybersecurity": 10,
    "Internet Governance": 7,
    "Policy & Regulation": 7,
    "New TLDs": 5,
    "Registry Services": 5,
    "Cybercrime": 5,
    "Cyberattack": 5,
    "Malware": 4,
    "Threat Intelligence": 3,
    "DNS Security": 4,
    "IPv4 Markets": 3,
    "IP Addressing": 3,
    "Privacy": 3,
    "Law": 3,
    "Brand Protection": 2,
    "UDRP": 2,
    "IPv6": 2,
    "Regional Registries": 2,
    "Networks": 3,
    "Telecom": 2,
    "Broadband": 1.5,
    "Wireless": 1,
    "Internet of Things": 1,
    "Cloud Computing": 2,
    "Email": 1.5,
    "Spam": 1,
    "Net Neutrality": 0.7,
    "Censorship": 1,
    "Blockchain": 0.8,
    "Artificial Intelligence": 1.5,
    "Coronavirus": 0.3,
}


@dataclass(slots=True)
class Chunk:
    at: int  # epoch seconds: when this poll wrote the chunk
    feed: int  # feed index (0-based)
    dates: list[int]  # published, epoch seconds


class Corpus:
    """Deterministic generator of the store's feeds and stories."""

    def __init__(self, stories: int, feeds: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n, self.nfeeds = stories, feeds
        words = DOMAIN_WORDS + GENERAL_WORDS
        self.words = words
        self.cum = list(accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(words))))
        self.topics = list(TOPIC_WEIGHTS)
        self.topic_cum = list(accumulate(TOPIC_WEIGHTS.values()))
        self.recent: deque[tuple[int, str, int, str]] = deque(maxlen=3000)
        self.made = 0

    def feed_sources(self) -> list[FeedSource]:
        return [
            FeedSource(url=f"https://feed{i:04d}.example/rss", name=f"Source {i:04d}")
            for i in range(self.nfeeds)
        ]

    def chunks(self) -> list[Chunk]:
        """Every save_update call, in the order a poller would have made them."""
        rng = self.rng
        weights = [1.0 / (i + 1) ** 0.8 for i in range(self.nfeeds)]
        rng.shuffle(weights)
        total = sum(weights)
        sizes = [max(1, int(self.n * w / total)) for w in weights]
        i = 0
        while sum(sizes) < self.n:  # rounding: top up round-robin
            sizes[i % self.nfeeds] += 1
            i += 1
        while sum(sizes) > self.n:
            j = max(range(self.nfeeds), key=sizes.__getitem__)
            sizes[j] -= 1
        end = int(END.timestamp())
        start = end - int(SPAN.total_seconds())
        out: list[Chunk] = []
        for f, size in enumerate(sizes):
            first = start + int(rng.random() * rng.random() * (2 / 3) * (end - start))
            dates = sorted(rng.randint(first, end) for _ in range(size))
            for k in range(0, size, PER_CALL):
                part = dates[k : k + PER_CALL]
                out.append(Chunk(at=min(end, part[-1] + rng.randint(60, 7200)), feed=f, dates=part))
        out.sort(key=lambda c: (c.at, c.feed))
        return out

    def _words(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)

    def _topics(self) -> list[tuple[str, float, str]]:
        rng = self.rng
        k = rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
        picked: list[str] = []
        while len(picked) < k:
            t = self.topics[bisect_right(self.topic_cum, rng.random() * self.topic_cum[-1])]
            if t not in picked:
                picked.append(t)
        out = []
        for t in picked:
            r = rng.random()
            source = "model" if r < 0.85 else ("feed-category" if r < 0.95 else "rule")
            score = 1.0 if source != "model" else round(rng.uniform(0.3, 0.99), 3)
            out.append((t, score, source))
        out.sort(key=lambda x: (-x[1], x[0]))
        return out

    def records(self, chunk: Chunk) -> list[StoryRecord]:
        rng = self.rng
        f = chunk.feed
        out: list[StoryRecord] = []
        urls_here: set[str] = set()
        for ts in chunk.dates:
            n = self.made
            self.made += 1
            published = datetime.fromtimestamp(ts, UTC) if rng.random() >= 0.03 else None
            topics = self._topics()
            dup = None
            if rng.random() < 0.06 and self.recent:
                cand = self.recent[rng.randrange(len(self.recent))]
                if cand[0] != f and cand[1] not in urls_here:
                    dup = cand
            if dup is not None:
                _, link, fp0, title = dup
                fp = fp0 ^ (1 << rng.randrange(64))
            else:
                link = f"https://site{f:04d}.example/{ts // 86400}/{n}"
                fp = rng.getrandbits(64)
                tw = self._words(rng.randint(6, 11))
                tw[0] = tw[0].capitalize()
                title = " ".join(tw)
            urls_here.add(link)
            body = self._words(rng.randint(40, 80))
            # a word or two of each topic's name, so topic and text correlate a little
            for t, _, _ in topics:
                body.insert(rng.randrange(len(body)), t.split()[0].lower().strip("&"))
            if rng.random() < PHRASE_P:
                body.insert(rng.randrange(len(body)), "root zone")
            if rng.random() < RARE_P:
                body.insert(rng.randrange(len(body)), RARE_WORD)
            summary = " ".join(body) + "."
            full = None
            if rng.random() < 0.2:
                full = summary + " " + " ".join(self._words(rng.randint(120, 250))) + "."
            if dup is None:
                self.recent.append((f, link, fp, title))
            key = f"v1:guid:https://feed{f:04d}.example/p/{n}"
            draft = StoryDraft(
                key=key,
                guid=key[len("v1:guid:") :],
                link=link,
                canonical_url=link,
                title=title,
                author=rng.choice(("Ana", "Bo", "Chen", "Dee", None)),
                published=published,
                updated=None,
                summary=f"<p>{summary}</p>",
                content=None,
                categories=(topics[0][0],) if topics[0][2] == "feed-category" else (),
                content_hash=f"h{n}",
            )
            pred = Prediction(
                topics=tuple(TopicScore(topic=t, score=s, source=src) for t, s, src in topics),  # type: ignore[arg-type]
                model_version="bench-1",
            )
            out.append(
                StoryRecord(
                    draft=draft,
                    full_text=full,
                    extraction_status="ok" if full else "skipped",
                    prediction=pred,
                    fingerprint=fp,
                    text=summary + ("\n" + full if full else ""),
                )
            )
        return out


def feed_check(
    feed_id: int, at: datetime, records: list[StoryRecord], rng: random.Random
) -> FeedCheck:
    return FeedCheck(
        feed_id=feed_id,
        at=at,
        outcome="ok",
        next_check=max(at, END - timedelta(hours=30)) + timedelta(minutes=rng.randint(5, 1440)),
        status="active",
        error_count=0,
        first_error_at=None,
        last_error=None,
        http_status=200,
        ms=rng.randint(50, 900),
        success=True,
        etag=f'"{rng.getrandbits(40):x}"',
        interval=timedelta(minutes=rng.choice((15, 30, 60, 120, 360))),
        listed=tuple(listing_digest(r.draft.key) for r in records),
    )


# --- backends ------------------------------------------------------------------------------


@contextmanager
def backend_url(backend: str, args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    """The store's URL and whether it already holds a built store (``--reuse``)."""
    if backend == "sqlite":
        workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="aggbench-"))
        path = workdir / f"store-{args.stories}.db"
        exists = path.exists()
        if exists and not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            exists = False
        try:
            yield f"sqlite:///{path}", exists
        finally:
            if not args.keep:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                if not args.workdir:
                    shutil.rmtree(workdir, ignore_errors=True)
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    name = f"aggregator_bench_{args.stories}"
    with admin.connect() as c:
        exists = bool(
            c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        )
        if exists and not args.reuse:
            c.execute(text(f'DROP DATABASE "{name}"'))
            exists = False
        if not exists:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    base = args.pg_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}", exists
    finally:
        if not args.keep:
            with admin.connect() as c:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def settings_for(url: str, workdir: Path) -> Settings:
    return Settings.from_env({}, data_dir=workdir, database_url=url, extract=False)


def build(url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    corpus = Corpus(args.stories, args.feeds, args.seed)
    t0 = time.perf_counter()
    app = make_app(settings_for(url, workdir), now=lambda: NOW)  # migrates, syncs topics
    store = app.store
    assert isinstance(store, SqlStore)
    store.upsert_feeds(corpus.feed_sources(), END - SPAN - timedelta(days=1))
    ids = {f.url: f.id for f in store.feeds()}
    feed_ids = [ids[s.url] for s in corpus.feed_sources()]
    chunks = corpus.chunks()
    crng = random.Random(args.seed + 1)
    # No ANALYZE here on a server with autovacuum off: the store gathers the statistics
    # its look-ups need itself (SqlStore._keep_statistics; without them the build slowed
    # to ~20 stories/s past 250,000).
    done = 0
    last = time.perf_counter()
    for i, chunk in enumerate(chunks):
        records = corpus.records(chunk)
        at = datetime.fromtimestamp(chunk.at, UTC)
        store.save_update(feed_check(feed_ids[chunk.feed], at, records, crng), records)
        done += len(records)
        if time.perf_counter() - last > 10 or i == len(chunks) - 1:
            last = time.perf_counter()
            rate = done / (last - t0)
            print(
                f"  {done:>9,} / {args.stories:,} stories  {rate:,.0f}/s  "
                f"eta {(args.stories - done) / rate:,.0f} s",
                file=sys.stderr,
                flush=True,
            )
    # user labels: 0.3 % of stories, one transaction each (as `aggregator label` does)
    lrng = random.Random(args.seed + 2)
    topics = list(TOPIC_WEIGHTS)
    nlabels = max(1, args.stories * 3 // 1000)
    for sid in sorted(lrng.sample(range(1, args.stories + 1), nlabels)):
        pos = lrng.sample(topics, lrng.randint(0, 2))
        neg = [t for t in lrng.sample(topics, lrng.randint(0, 1)) if t not in pos]
        store.add_labels(sid, pos, neg or ([] if pos else [topics[-1]]), END)
    built = time.perf_counter() - t0
    if store.dialect == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    app.close()
    return {"build_s": round(built, 1), "labels": nlabels, "stories": store_count(url)}


def store_count(url: str) -> int:
    s = open_store(url)
    try:
        return s.story_count()
    finally:
        s.close()


# --- timing --------------------------------------------------------------------------------


# The feed columns a poll's save_update sets (SqlStore._apply_checks)
_POLL_STATE = [
    "url",
    "source_url",
    "title",
    "site",
    "listed",
    "etag",
    "last_modified",
    "body_hash",
    "poll_interval_s",
    "next_check",
    "not_before",
    "last_check",
    "last_success",
    "status",
    "error_count",
    "first_error_at",
    "last_error",
    "redirect_url",
    "redirect_count",
    "redirect_first_seen",
    "lease_owner",
    "lease_until",
]


def write_rate(url: str, args: argparse.Namespace, group: int = 1) -> dict[str, Any]:
    """A poll's writes into the built store (``--writes`` calls of 35 new stories, each
    to another feed; ``group`` feeds a transaction), then the store put back as it was.
    See the module docstring."""
    from sqlalchemy import text

    store = open_store(url)
    assert isinstance(store, SqlStore)
    try:
        with store.engine.connect() as c:
            last_story = int(c.execute(text("SELECT max(id) FROM story")).scalar() or 0)
            last_log = int(c.execute(text("SELECT max(id) FROM fetch_log")).scalar() or 0)
            feed_state = [
                dict(r._mapping)
                for r in c.execute(text(f"SELECT id, {', '.join(_POLL_STATE)} FROM feed"))
            ]
            newest = c.execute(
                text(
                    "SELECT f.url, s.link, s.fingerprint, s.title FROM story s "
                    "JOIN feed f ON f.id = s.feed_id ORDER BY s.id DESC LIMIT 3000"
                )
            ).all()
        by_url = {f["url"]: f["id"] for f in feed_state}
        corpus = Corpus(args.stories, args.feeds, args.seed + 3)
        corpus.made = 10 * max(args.stories, last_story)  # keys no stored story has
        index = {src.url: i for i, src in enumerate(corpus.feed_sources())}
        for feed_url, link, fp, title in reversed(newest):
            if feed_url in index and fp is not None:
                corpus.recent.append((index[feed_url], link, fp & ((1 << 64) - 1), title))
        rng = random.Random(args.seed + 4)
        start = int(NOW.timestamp())
        calls = []
        for k, f in enumerate(rng.sample(range(args.feeds), min(args.writes, args.feeds))):
            at = start + 2 * k
            dates = sorted(rng.randint(at - 86_400, at - 60) for _ in range(PER_CALL))
            records = corpus.records(Chunk(at=at, feed=f, dates=dates))
            when = datetime.fromtimestamp(at, UTC)
            check = feed_check(by_url[corpus.feed_sources()[f].url], when, records, rng)
            calls.append((check, records))
        times = []
        t0 = time.perf_counter()
        for start in range(0, len(calls), group):
            part = calls[start : start + group]
            t = time.perf_counter()
            if group == 1:
                store.save_update(*part[0])
            else:
                store.save_updates(part)
            times.append((time.perf_counter() - t) / len(part))
        total = time.perf_counter() - t0
    finally:
        store.close()
    _undo_writes(url, last_story, last_log, feed_state)
    n = sum(len(r) for _, r in calls)
    return {
        "calls": len(calls),
        "group": group,
        "stories": n,
        "seconds": round(total, 2),
        "stories_per_s": round(n / total) if total else 0,
        "median_ms_per_call": round(statistics.median(times) * 1000, 1) if times else 0,
    }


def _undo_writes(
    url: str, last_story: int, last_log: int, feed_state: list[dict[str, Any]]
) -> None:
    """The store as it was before ``write_rate``: its new stories (their topics go with
    them), search rows and fetch-log rows deleted, the feeds' columns restored."""
    from sqlalchemy import text

    store = open_store(url)
    assert isinstance(store, SqlStore)
    try:
        with store.engine.begin() as c:
            if store.dialect == "sqlite":
                c.execute(text("DELETE FROM story_fts WHERE rowid > :n"), {"n": last_story})
            c.execute(text("DELETE FROM story WHERE id > :n"), {"n": last_story})
            c.execute(text("DELETE FROM fetch_log WHERE id > :n"), {"n": last_log})
            if feed_state:
                c.execute(
                    text(
                        "UPDATE feed SET "
                        + ", ".join(f"{k} = :{k}" for k in _POLL_STATE)
                        + " WHERE id = :id"
                    ),
                    feed_state,
                )
    finally:
        store.close()


@dataclass(slots=True)
class Result:
    query: str
    backend: str
    cold_ms: float
    warm_ms: float
    rows: int


def read_paths(app: App) -> list[tuple[str, Callable[[App], int]]]:
    """(name, function returning a row count) for each read path to time."""
    store = app.store
    assert isinstance(store, SqlStore)
    big_feed = max(store.feeds(), key=lambda f: f.stories)
    small_feed = min((f for f in store.feeds() if f.stories > 0), key=lambda f: f.stories)
    mid = END - SPAN / 2
    # a story in a cluster (other feeds' copies): the "show" path with "also covered by"
    with store.engine.connect() as c:
        from sqlalchemy import text

        sid = c.execute(
            text(
                "SELECT max(s.id) FROM story s WHERE s.cluster_id <> s.id "
                "AND s.id < (SELECT max(id) FROM story) / 2"
            )
        ).scalar()
    shown = int(sid or 1)

    def q(**kw: Any) -> Callable[[App], int]:
        query = StoryQuery(**kw)
        return lambda a: len(a.stories(query))

    def show(a: App) -> int:
        s = a.story(shown)
        a.story_labels(shown)
        return 1 + len(a.also_covered(s))

    def claim(a: App) -> int:
        st = a.store
        got = st.claim_due(NOW, owner="bench:1:x", lease=timedelta(minutes=10))
        st.release([f.id for f in got], "bench:1:x")
        return len(got)

    bf = big_feed.name or big_feed.url
    sf = small_feed.name or small_feed.url
    return [
        ("stories newest 50", q()),
        ("stories --topic DNS (common)", q(topics=("DNS",))),
        ("stories --topic Coronavirus (rare)", q(topics=("Coronavirus",))),
        ("stories --topic DNS --topic Malware", q(topics=("DNS", "Malware"))),
        (f"stories --feed big ({big_feed.stories})", q(feeds=(bf,))),
        (f"stories --feed small ({small_feed.stories})", q(feeds=(sf,))),
        ("stories --since 7d", q(since=NOW - timedelta(days=7))),
        ("stories 30-day window, 18 months ago", q(since=mid, until=mid + timedelta(days=30))),
        ("stories --until 2 years ago", q(until=END - timedelta(days=730))),
        ("stories -q domain (common)", q(text="domain")),
        (f"stories -q {RARE_WORD} (rare)", q(text=RARE_WORD)),
        ('stories -q "root zone" (phrase)', q(text='"root zone"')),
        ("stories -q dns* (prefix)", q(text="dns*")),
        ("stories -q 'ransomware OR phishing'", q(text="ransomware OR phishing")),
        ("stories --topic DNS -q registrar", q(topics=("DNS",), text="registrar")),
        ("stories --topic Coronavirus -q domain", q(topics=("Coronavirus",), text="domain")),
        ("stories --feed big --topic DNS", q(feeds=(bf,), topics=("DNS",))),
        ("stories --topic DNS --since 7d", q(topics=("DNS",), since=NOW - timedelta(days=7))),
        (
            "stories --topic DNS 30-day window",
            q(topics=("DNS",), since=mid, until=mid + timedelta(days=30)),
        ),
        ("stories page 100 (offset 4950)", q(offset=4950)),
        ("stories --topic DNS page 20 (offset 950)", q(topics=("DNS",), offset=950)),
        ("stories --topic Coronavirus --limit 0", q(topics=("Coronavirus",), limit=None)),
        (
            "stories -t 'IPv4 Markets' -q transfer --limit 0",
            q(topics=("IPv4 Markets",), text="transfer", limit=None),
        ),
        ("stories --sort sources --since 7d", q(since=NOW - timedelta(days=7), order="sources")),
        ("stories --topic DNS --sort sources", q(topics=("DNS",), order="sources")),
        ("stories --sort sources (all)", q(order="sources")),
        ("stories -q domain --sort relevance", q(text="domain", order="relevance")),
        ("stories -q registrar --sort relevance", q(text="registrar", order="relevance")),
        (
            'stories -q "root zone" --sort relevance',
            q(text='"root zone"', order="relevance"),
        ),
        ("show (get_story + cluster + labels)", show),
        ("topics (counts)", lambda a: len(a.topics())),
        ("feeds list (per-feed counts)", lambda a: len(a.feeds())),
        (
            "prune --older-than 180d --dry-run",
            lambda a: a.store.prune_stories(NOW - timedelta(days=180), 200, dry_run=True),
        ),
        ("status (store summary + model manifest)", lambda a: a.status().store.stories),
        ("next_due", lambda a: int(a.store.next_due() is not None)),
        ("due_feed_ids", lambda a: len(a.store.due_feed_ids(NOW))),
        ("claim_due + release (1,000 feeds)", claim),
        (
            "export --topic DNS (atom, 100)",
            lambda a: a.export(StoryQuery(topics=("DNS",), limit=100), "atom").count("<entry>"),
        ),
        ("export (atom, 100)", lambda a: a.export(StoryQuery(limit=100), "atom").count("<entry>")),
    ]


def time_paths(url: str, backend: str, args: argparse.Namespace, workdir: Path) -> list[Result]:
    settings = settings_for(url, workdir)
    with make_app(settings, now=lambda: NOW) as a:
        paths = read_paths(a)
    only = [s.lower() for s in args.only or ()]
    out: list[Result] = []
    for name, fn in paths:
        if only and not any(o in name.lower() for o in only):
            continue
        with make_app(settings, now=lambda: NOW) as a:  # fresh connections: "cold"
            t = time.perf_counter()
            rows = fn(a)
            cold = (time.perf_counter() - t) * 1000
            warm = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                fn(a)
                warm.append((time.perf_counter() - t) * 1000)
        r = Result(name, backend, round(cold, 1), round(statistics.median(warm), 1), rows)
        print(f"  {r.query:<48} {r.cold_ms:>9.1f} {r.warm_ms:>9.1f} {r.rows:>7}", file=sys.stderr)
        out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stories", type=int, default=300_000)
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="a database on the server (admin)")
    p.add_argument("--repeat", type=int, default=5, help="warm runs per query (median)")
    p.add_argument("--workdir", help="where the SQLite file goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the built stores")
    p.add_argument("--reuse", action="store_true", help="time a kept store, do not rebuild")
    p.add_argument("--only", nargs="*", help="time only queries whose name contains these")
    p.add_argument(
        "--writes",
        type=int,
        default=100,
        help="time a poll of this many feeds writing 35 new stories each (0: no writes)",
    )
    p.add_argument(
        "--group",
        type=int,
        default=8,
        help="time the writes again, this many feeds a transaction (1: not)",
    )
    p.add_argument("--seed", type=int, default=20261101)
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="aggbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.workdir:
        args.workdir = str(workdir)
        cleanup = not args.keep
    else:
        cleanup = False
    results: list[Result] = []
    meta: dict[str, Any] = {"stories": args.stories, "feeds": args.feeds, "seed": args.seed}
    try:
        for backend in backends:
            with backend_url(backend, args) as (url, exists):
                if exists:
                    t = time.perf_counter()
                    n = store_count(url)  # opening migrates: timed
                    meta[backend] = {"open_s": round(time.perf_counter() - t, 2), "stories": n}
                    print(f"{backend}: reusing {n:,} stories", file=sys.stderr)
                else:
                    print(f"{backend}: building {args.stories:,} stories", file=sys.stderr)
                    meta[backend] = build(url, args, workdir)
                    print(f"{backend}: {meta[backend]}", file=sys.stderr)
                print(f"  {'query':<48} {'cold ms':>9} {'warm ms':>9} {'rows':>7}", file=sys.stderr)
                results.extend(time_paths(url, backend, args, workdir))
                # one feed a transaction, then (--group) several, on the same calls
                groups = [1, args.group] if args.group > 1 else [1]
                for group in groups if args.writes > 0 else []:
                    w = write_rate(url, args, group)
                    meta[backend]["writes" if group == 1 else "grouped_writes"] = w
                    how = "save_update" if group == 1 else f"save_updates, {group} a transaction"
                    print(
                        f"  {how}, {w['calls']} polls of {PER_CALL}: "
                        f"{w['stories_per_s']:,} stories/s, "
                        f"median {w['median_ms_per_call']} ms a feed",
                        file=sys.stderr,
                    )
    finally:
        if cleanup:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.stories:,} stories, {args.feeds:,} feeds, warm = median of {args.repeat}")
    print(f"| {'query':<48} | {'backend':<10} | {'cold ms':>8} | {'warm ms':>8} | {'rows':>6} |")
    print(f"|{'-' * 50}|{'-' * 12}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
    for r in results:
        print(
            f"| {r.query:<48} | {r.backend:<10} | {r.cold_ms:>8.1f} | {r.warm_ms:>8.1f} | "
            f"{r.rows:>6} |"
        )
    for backend in backends:
        w = meta.get(backend, {}).get("writes")
        if w:
            print(
                f"\nwrite rate, {backend}, {args.stories:,} stories stored: {w['calls']} "
                f"save_update calls of {PER_CALL} new stories, {w['stories_per_s']:,} "
                f"stories/s (median {w['median_ms_per_call']} ms a call)"
            )
        g = meta.get(backend, {}).get("grouped_writes")
        if w and g:
            print(
                f"write rate, {backend}, the same calls {g['group']} a transaction "
                f"(save_updates): {g['stories_per_s']:,} stories/s, "
                f"{g['stories_per_s'] / max(w['stories_per_s'], 1):.2f}x one a transaction"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "meta": meta,
                    "results": [
                        r.__dict__
                        if hasattr(r, "__dict__")
                        else {k: getattr(r, k) for k in r.__slots__}
                        for r in results
                    ],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
