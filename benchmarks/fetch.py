"""Feed-polling benchmark: our update pipeline against lemon24/reader on the same corpus.

What it does, for each corpus size N (``--feeds 200 1000``):

1. generates N feeds, deterministically from ``--seed`` and from a word list in this file
   (no third-party text): RSS 2.0 / Atom / RSS 1.0, 20-50 entries each, ~130 KB mean,
   part of them with full content (``content:encoded`` / Atom ``content`` with HTML
   paragraphs), some in windows-1252 or iso-8859-1, a few not well-formed;
2. serves them from an asyncio HTTP/1.1 server in this process, listening on
   127.0.0.1 .. 127.0.0.H (``--hosts``; Linux routes all of 127/8 to loopback), so the
   clients' per-host limits behave as they would against H different sites: every
   response waits ``--latency-ms``, bodies go out gzipped, with ETag / Last-Modified and
   304 answers to conditional requests;
3. measures, each in a fresh subprocess: our first poll (fresh SQLite data dir, extraction
   off, ``make_app(...)`` + ``sync_feeds`` + ``update_due(all_feeds=True)``), our second
   poll (same database, every feed answers 304), then reader's first and second
   ``update_feeds(workers=16)`` from ``--reader-python`` (a separate virtualenv: reader is
   never a dependency of ours);
4. checks that no field is lost: per-entry title / link / date / summary presence in our
   store against ``reader.get_entries`` for a sample of feeds;
5. prints a table, ratios and the issue's bars; ``--profile`` adds a profiled first poll
   (cProfile of the main thread, per-thread and per-worker CPU, py-spy when given) and an
   in-process parse microbenchmark.

See benchmarks/README.md for how to run it and what each figure means. The same file is
also the child program (``--child ours|reader|parse``); the reader child runs under
reader's interpreter, so nothing here imports ``aggregator`` at module level.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import pickle
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
BASE_TIME = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)  # "now" of the corpus; no clock read
DEFAULT_READER_PYTHON = "/tmp/readervenv/bin/python"

# --- the word list (written for this benchmark) ----------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


WORDS = _words("""
network latency packet router switch fiber backbone peering transit exchange bandwidth
throughput cache proxy edge origin server client browser protocol handshake certificate
encryption key cipher token session cookie header payload request response stream socket
kernel driver firmware patch release update version branch merge commit review build
deploy rollout rollback canary cluster node pod container image registry runtime scheduler
queue worker job batch pipeline stage metric alert dashboard incident outage postmortem
report audit policy compliance privacy consent regulator court ruling fine settlement
lawsuit merger acquisition startup investor funding round valuation revenue margin profit
loss quarter forecast market share customer subscriber user account password breach leak
attacker exploit vulnerability advisory disclosure researcher bounty malware ransomware
botnet phishing spam filter firewall gateway tunnel resolver domain registrar zone record
address prefix route announcement hijack leak filter validation signature ledger archive
storage disk volume snapshot backup replica shard index query database table column schema
migration transaction lock commit log journal event message broker topic partition
consumer producer stream window aggregate model training inference dataset label feature
accuracy benchmark chip processor core memory bandwidth thermal power datacenter region
zone availability capacity demand supply shortage price cost budget contract vendor
partner platform service product feature launch preview beta roadmap deprecation sunset
standard draft specification working group charter consensus meeting vote proposal
extension library framework package dependency toolchain compiler interpreter language
runtime garbage collector thread process signal timeout retry backoff jitter limit quota
throttle burst spike trend growth decline adoption migration upgrade downgrade regression
bug fix crash hang leak panic error warning notice bulletin newsletter podcast interview
keynote conference summit workshop panel talk slide demo paper study survey analysis
community maintainer contributor sponsor foundation license copyright trademark patent
open source project repository issue ticket roadmap milestone sprint team engineer
operator administrator developer designer manager director founder analyst reporter
editor reader viewer audience mobile desktop tablet laptop phone carrier spectrum tower
satellite cable subsea landing station outage repair crew weather storm heat flood
energy grid solar battery efficiency carbon emission target pledge report
fast slow new old large small early late public private global local regional national
secure unsafe stable flaky critical minor major urgent routine quiet busy open closed
free paid cheap expensive modern legacy native hybrid remote local central distributed
announces releases ships patches fixes breaks delays cancels expands cuts raises lowers
acquires sells buys leases blocks allows restricts warns urges confirms denies reports
publishes drops adds removes replaces migrates upgrades scales measures tracks detects
""")
ACCENTED = _words("café naïve façade résumé Zürich São Málaga über Ångström déjà piñata Genève")
SMART = ["“quoted”", "it’s", "2019–2025", "wait — what", "€40", "Acme™", "and so on…"]  # cp1252
BEYOND_LATIN = ["東京", "Москва", "Αθήνα", "서울"]  # only UTF-8 feeds carry these
FIRST_NAMES = _words("Ada Ravi Mei Tomas Ingrid Kofi Lucia Omar Priya Sven Yara Hugo Noor Felix")
LAST_NAMES = _words("Okafor Lindqvist Moreau Tanaka Alvarez Novak Haddad Keller Singh Byrne")
TLDS = ("example", "example.net", "example.org", "test")

KIND_CT = {"rss20": "application/rss+xml", "atom": "application/atom+xml"}
KIND_CT["rss10"] = "application/rdf+xml"
_IMG = re.compile(r"(<img [^>]*[^/])>")


# --- corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedSpec:
    index: int
    kind: str  # rss20 | atom | rss10
    encoding: str  # utf-8 | windows-1252 | iso-8859-1
    full: bool  # full content (content:encoded / atom content) as well as a summary
    broken: str | None  # how the document is not well-formed, if it is not
    entries: int
    updated: datetime
    content_type: str


@dataclass(slots=True)
class ServedFeed:
    spec: FeedSpec
    path: str
    host: str
    etag: str
    last_modified: str
    raw: bytes
    gz: bytes


class Text:
    """Sentences and HTML from WORDS, with the extra characters a feed's encoding allows."""

    def __init__(self, rng: random.Random, encoding: str) -> None:
        self.rng = rng
        extra = list(ACCENTED)
        if encoding != "iso-8859-1":
            extra += SMART
        if encoding == "utf-8":
            extra += BEYOND_LATIN
        self.extra = extra

    def word(self) -> str:
        r = self.rng
        if r.random() < 0.015:
            return r.choice(self.extra)
        if r.random() < 0.02:
            return f"v{r.randint(1, 9)}.{r.randint(0, 20)}"
        return r.choice(WORDS)

    def words(self, lo: int, hi: int) -> str:
        return " ".join(self.word() for _ in range(self.rng.randint(lo, hi)))

    def sentence(self) -> str:
        s = self.words(8, 20)
        return s[0].upper() + s[1:] + self.rng.choice(".....?!")

    def title(self) -> str:
        t = self.words(4, 11)
        return t[0].upper() + t[1:]

    def plain_summary(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(2, 4)))

    def html_paragraph(self, site: str) -> str:
        r = self.rng
        parts = []
        for _ in range(r.randint(3, 7)):
            s = escape(self.sentence())
            roll = r.random()
            if roll < 0.15:
                w = s.split(" ", 3)
                href = f"{site}/{r.choice(WORDS)}/{r.randint(1, 9999)}"
                s = f'{w[0]} <a href="{href}">{" ".join(w[1:3])}</a> {" ".join(w[3:])}'
            elif roll < 0.25:
                w = s.split(" ", 2)
                s = f"{w[0]} <em>{w[1]}</em> {w[2]}"
            elif roll < 0.30:
                s += f" <code>{r.choice(WORDS)}_{r.choice(WORDS)}()</code>"
            parts.append(s)
        return "<p>" + " ".join(parts) + "</p>"

    def html_body(self, site: str, paragraphs: int) -> str:
        r = self.rng
        out = []
        for i in range(paragraphs):
            out.append(self.html_paragraph(site))
            roll = r.random()
            if i == 1 and roll < 0.3:
                out.append(f'<img src="/img/{r.randint(1, 999)}.png" alt="{r.choice(WORDS)}">')
            elif roll < 0.08:
                items = "".join(f"<li>{escape(self.words(3, 8))}</li>" for _ in range(3))
                out.append(f"<ul>{items}</ul>")
            elif roll < 0.12:
                out.append(f"<blockquote><p>{escape(self.sentence())}</p></blockquote>")
            elif roll < 0.16:
                out.append(f"<h2>{escape(self.title())}</h2>")
        return "\n".join(out)


def feed_spec(seed: int, index: int) -> FeedSpec:
    """Feed ``index``'s shape depends only on (seed, index): a corpus of N feeds is the
    first N of a larger one."""
    r = random.Random(f"{seed}:{index}:spec")
    roll = r.random()
    kind = "rss20" if roll < 0.55 else "atom" if roll < 0.85 else "rss10"
    roll = r.random()
    encoding = "windows-1252" if roll < 0.05 else "iso-8859-1" if roll < 0.10 else "utf-8"
    broken = r.choice(["amp", "entity", "tag", "ctrl"]) if r.random() < 0.03 else None
    base = KIND_CT[kind]
    if encoding != "utf-8" and r.random() < 0.5:
        content_type = f"{base}; charset={encoding}"
    elif r.random() < 0.15:
        content_type = "text/xml; charset=utf-8" if encoding == "utf-8" else "application/xml"
    else:
        content_type = base
    return FeedSpec(
        index=index,
        kind=kind,
        encoding=encoding,
        full=r.random() < 0.40,
        broken=broken,
        entries=r.randint(20, 50),
        updated=BASE_TIME - timedelta(minutes=r.randint(0, 600)),
        content_type=content_type,
    )


@dataclass(slots=True)
class _Entry:
    title: str | None
    link: str
    guid: str | None
    guid_is_link: bool
    published: datetime | None
    author: str
    categories: list[str]
    summary: str | None  # HTML
    content: str | None  # HTML


def _entries(spec: FeedSpec, text: Text, r: random.Random, site: str) -> list[_Entry]:
    out = []
    when = spec.updated
    tracking = r.random() < 0.1
    for n in range(spec.entries):
        slug = "-".join(text.rng.choice(WORDS) for _ in range(4))
        link = f"{site}/{when:%Y/%m}/{slug}-{spec.index}-{n}"
        if tracking:
            link += "?utm_source=rss&utm_medium=feed"
        guid_roll = r.random()
        full = spec.full
        paragraphs = r.randint(6, 18) if full else 0
        summary: str | None = "<p>" + escape(text.plain_summary()) + "</p>"
        if full and r.random() < 0.3:
            summary = text.html_paragraph(site)
        if r.random() < 0.02:
            summary = None
        out.append(
            _Entry(
                title=None if (spec.kind != "atom" and r.random() < 0.01) else text.title(),
                link=link,
                guid=None if guid_roll < 0.05 else f"{site.split('//')[1]}-{spec.index}-{n}",
                guid_is_link=guid_roll < 0.15,
                published=None if r.random() < 0.03 else when,
                author=f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}",
                categories=[r.choice(WORDS) for _ in range(r.randint(0, 3))],
                summary=summary,
                content=text.html_body(site, paragraphs) if full else None,
            )
        )
        when -= timedelta(minutes=r.randint(20, 2 * 24 * 60))
    return out


def _rfc822(d: datetime) -> str:
    return format_datetime(d, usegmt=True)


def _iso(d: datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cdata(html: str) -> str:
    return "<![CDATA[" + html.replace("]]>", "]]&gt;") + "]]>"


def _breakage(broken: str | None, n: int) -> str:
    """Text that makes entry 2 not well-formed, the way real feeds fail: a bare "&", an
    HTML-only entity, an unclosed HTML tag, a control character (XML 1.0 forbids it)."""
    if broken is None or n != 2:
        return ""
    return {"amp": " R&D Q&A", "entity": " caf&eacute;&nbsp;bar", "tag": " line<br>break"}.get(
        broken, " form\x0cfeed"
    )


def render_feed(seed: int, spec: FeedSpec) -> bytes:
    r = random.Random(f"{seed}:{spec.index}:body")
    text = Text(r, spec.encoding)
    name = f"{r.choice(WORDS)}-{r.choice(WORDS)}{spec.index}"
    site = f"https://www.{name}.{r.choice(TLDS)}"
    feed_title = escape(text.title())
    entries = _entries(spec, text, r, site)
    decl = f'<?xml version="1.0" encoding="{spec.encoding}"?>\n'
    if spec.kind == "rss20":
        doc = decl + _rss20(spec, entries, site, feed_title, text)
    elif spec.kind == "atom":
        doc = decl + _atom(spec, entries, site, feed_title, text)
    else:
        doc = decl + _rss10(spec, entries, site, feed_title, text)
    return doc.encode(spec.encoding, "xmlcharrefreplace")


def _rss20(spec: FeedSpec, entries: list[_Entry], site: str, title: str, text: Text) -> str:
    ns = (
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    )
    out = [
        f'<rss version="2.0" {ns}>\n<channel>\n<title>{title}</title>\n<link>{site}/</link>\n',
        f"<description>{escape(text.sentence())}</description>\n<language>en</language>\n",
        f"<lastBuildDate>{_rfc822(spec.updated)}</lastBuildDate>\n",
    ]
    if spec.index % 4 == 0:
        out.append("<ttl>60</ttl>\n")
    cdata = spec.index % 3 != 0  # the others escape their HTML
    for n, e in enumerate(entries):
        bad = _breakage(spec.broken, n)
        item = ["<item>\n"]
        if e.title is not None:
            item.append(f"<title>{escape(e.title)}{bad}</title>\n")
        item.append(f"<link>{escape(e.link)}</link>\n")
        if e.guid_is_link:
            item.append(f'<guid isPermaLink="true">{escape(e.link)}</guid>\n')
        elif e.guid is not None:
            item.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>\n')
        if e.published is not None:
            item.append(f"<pubDate>{_rfc822(e.published)}</pubDate>\n")
        item.append(f"<dc:creator>{escape(e.author)}</dc:creator>\n")
        item += [f"<category>{escape(c)}</category>\n" for c in e.categories]
        if e.summary is not None:
            body = _cdata(e.summary) if cdata else escape(e.summary)
            item.append(f"<description>{body}</description>\n")
        if e.content is not None:
            item.append(f"<content:encoded>{_cdata(e.content)}</content:encoded>\n")
        item.append("</item>\n")
        out += item
    out.append("</channel>\n</rss>\n")
    return "".join(out)


def _atom(spec: FeedSpec, entries: list[_Entry], site: str, title: str, text: Text) -> str:
    domain = site.split("//")[1]
    base = f' xml:base="{site}/"' if spec.index % 5 == 0 else ""
    out = [
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"{base}>\n',
        f"<title>{title}</title>\n<subtitle>{escape(text.sentence())}</subtitle>\n",
        f'<link rel="alternate" type="text/html" href="{site}/"/>\n',
        f"<id>tag:{domain},2025:feed</id>\n<updated>{_iso(spec.updated)}</updated>\n",
        f"<author><name>{escape(text.title())}</name></author>\n",
    ]
    xhtml = spec.index % 7 == 0
    for n, e in enumerate(entries):
        bad = _breakage(spec.broken, n)
        item = ["<entry>\n", f'<title type="html">{escape(e.title or "")}{bad}</title>\n']
        item.append(f'<link rel="alternate" type="text/html" href={quoteattr(e.link)}/>\n')
        ident = e.link if e.guid_is_link else f"tag:{domain},2025:{e.guid or e.link}"
        item.append(f"<id>{escape(ident)}</id>\n")
        if e.published is not None:
            item.append(f"<published>{_iso(e.published)}</published>\n")
        updated = e.published or spec.updated
        item.append(f"<updated>{_iso(updated + timedelta(minutes=n % 3))}</updated>\n")
        item.append(f"<author><name>{escape(e.author)}</name></author>\n")
        item += [f'<category term="{escape(c)}"/>\n' for c in e.categories]
        if e.summary is not None:
            item.append(f'<summary type="html">{escape(e.summary)}</summary>\n')
        if e.content is not None:
            if xhtml:
                div = '<div xmlns="http://www.w3.org/1999/xhtml">'
                item.append(f'<content type="xhtml">{div}{_xhtml(e.content)}</div></content>\n')
            else:
                item.append(f'<content type="html">{escape(e.content)}</content>\n')
        item.append("</entry>\n")
        out += item
    out.append("</feed>\n")
    return "".join(out)


def _xhtml(html: str) -> str:
    """Our generator's HTML is XHTML apart from the void <img>."""
    return _IMG.sub(r"\1/>", html)


def _rss10(spec: FeedSpec, entries: list[_Entry], site: str, title: str, text: Text) -> str:
    ns = (
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'
    )
    seq = "".join(f"<rdf:li rdf:resource={quoteattr(e.link)}/>\n" for e in entries)
    out = [
        f'<rdf:RDF {ns}>\n<channel rdf:about="{site}/index.rdf">\n<title>{title}</title>\n',
        f"<link>{site}/</link>\n<description>{escape(text.sentence())}</description>\n",
        "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>\n",
        f"<items><rdf:Seq>\n{seq}</rdf:Seq></items>\n</channel>\n",
    ]
    for n, e in enumerate(entries):
        bad = _breakage(spec.broken, n)
        item = [f"<item rdf:about={quoteattr(e.link)}>\n"]
        if e.title is not None:
            item.append(f"<title>{escape(e.title)}{bad}</title>\n")
        item.append(f"<link>{escape(e.link)}</link>\n")
        if e.summary is not None:
            item.append(f"<description>{escape(e.summary)}</description>\n")
        if e.published is not None:
            item.append(f"<dc:date>{_iso(e.published)}</dc:date>\n")
        item.append(f"<dc:creator>{escape(e.author)}</dc:creator>\n")
        item += [f"<dc:subject>{escape(c)}</dc:subject>\n" for c in e.categories]
        if e.content is not None:
            item.append(f"<content:encoded>{_cdata(e.content)}</content:encoded>\n")
        item.append("</item>\n")
        out += item
    out.append("</rdf:RDF>\n")
    return "".join(out)


def corpus_dir(workdir: Path, seed: int) -> Path:
    return workdir / f"corpus-seed{seed}"


def build_corpus(seed: int, n: int, hosts: int, directory: Path) -> list[ServedFeed]:
    """Feed i lives on host 127.0.0.(1 + i % hosts) at /feeds/i.xml; bodies are also
    written to ``directory`` (the parse microbenchmark reads them from there)."""
    directory.mkdir(parents=True, exist_ok=True)
    feeds = []
    for i in range(n):
        spec = feed_spec(seed, i)
        path = directory / f"{i:05d}.xml"
        if path.exists():
            raw = path.read_bytes()
        else:
            raw = render_feed(seed, spec)
            path.write_bytes(raw)
        feeds.append(
            ServedFeed(
                spec=spec,
                path=f"/feeds/{i:05d}.xml",
                host=f"127.0.0.{1 + i % hosts}",
                etag='"' + hashlib.sha1(raw).hexdigest()[:20] + '"',
                last_modified=_rfc822(spec.updated),
                raw=raw,
                gz=gzip.compress(raw, 6, mtime=0),
            )
        )
    return feeds


# --- the server ------------------------------------------------------------------------------


@dataclass(slots=True)
class ServerStats:
    requests: int = 0
    ok: int = 0
    not_modified: int = 0
    other: int = 0
    bytes_out: int = 0
    connections: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


class FeedServer:
    """HTTP/1.1 with keep-alive on every 127.0.0.x address, on an event loop thread."""

    def __init__(self, hosts: int, latency: float) -> None:
        self.hosts = [f"127.0.0.{i}" for i in range(1, hosts + 1)]
        self.latency = latency
        self.ports: dict[str, int] = {}
        self.routes: dict[tuple[str, str], ServedFeed] = {}
        self.stats = ServerStats()
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result()

    async def _listen(self) -> None:
        for host in self.hosts:
            server = await asyncio.start_server(self._client, host, 0, backlog=1024)
            self.ports[host] = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    def serve(self, feeds: list[ServedFeed]) -> list[str]:
        """Route ``feeds`` (replacing any earlier set) and return their URLs."""
        self.routes = {(f.host, f.path): f for f in feeds}
        return [self.url(f) for f in feeds]

    def url(self, f: ServedFeed) -> str:
        return f"http://{f.host}:{self.ports[f.host]}{f.path}"

    def reset_stats(self) -> ServerStats:
        old, self.stats = self.stats, ServerStats()
        return old

    def stop(self) -> None:
        async def close() -> None:
            for s in self._servers:
                s.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        self.stats.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = [*lines[0].split(" "), "", ""][:3]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                st = self.stats
                st.requests += 1
                st.in_flight += 1
                st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
                try:
                    await asyncio.sleep(self.latency)
                    status, out_headers, body = self._respond(host, method, target, headers)
                finally:
                    st.in_flight -= 1
                reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "Error")
                out_headers["Date"] = _rfc822(datetime.now(UTC))
                out_headers["Content-Length"] = str(len(body))
                blob = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in out_headers.items()
                )
                writer.write(blob.encode("latin-1") + b"\r\n" + body)
                st.bytes_out += len(body)
                if status == 200:
                    st.ok += 1
                elif status == 304:
                    st.not_modified += 1
                else:
                    st.other += 1
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except ConnectionError:
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _respond(
        self, host: str, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        feed = self.routes.get((host, target.split("?", 1)[0]))
        if feed is None or method not in ("GET", "HEAD"):
            return 404, {"Content-Type": "text/plain"}, b"not found\n"
        common = {"ETag": feed.etag, "Last-Modified": feed.last_modified}
        common["Vary"] = "Accept-Encoding"
        inm = headers.get("if-none-match")
        ims = headers.get("if-modified-since")
        if inm is not None:  # RFC 9110 13.1.2: If-None-Match wins over If-Modified-Since
            tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
            fresh = "*" in tags or feed.etag in tags
        elif ims is not None:
            try:
                fresh = parsedate_to_datetime(ims) >= feed.spec.updated.replace(microsecond=0)
            except (TypeError, ValueError):
                fresh = False
        else:
            fresh = False
        if fresh:
            return 304, common, b""
        out = {"Content-Type": feed.spec.content_type, **common}
        if "gzip" in headers.get("accept-encoding", "").lower():
            out["Content-Encoding"] = "gzip"
            body = feed.gz
        else:
            body = feed.raw
        return 200, out, b"" if method == "HEAD" else body


def server_selfcheck(server: FeedServer, feeds: list[ServedFeed], clients: int = 128) -> str:
    """``clients`` simultaneous GETs (one connection each): all should finish in about one
    latency, showing the server is not what limits a client's concurrency."""

    async def one(f: ServedFeed) -> int:
        r, w = await asyncio.open_connection(f.host, server.ports[f.host])
        w.write(
            f"GET {f.path} HTTP/1.1\r\nHost: {f.host}\r\nAccept-Encoding: gzip\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = await r.read()
        w.close()
        return int(data.split(b" ", 2)[1])

    async def all_of() -> list[int]:
        return await asyncio.gather(*(one(feeds[i % len(feeds)]) for i in range(clients)))

    server.reset_stats()
    t0 = time.perf_counter()
    codes = asyncio.run(all_of())
    took = time.perf_counter() - t0
    stats = server.reset_stats()
    ok = sum(c == 200 for c in codes)
    return (
        f"server self-check: {clients} simultaneous connections, {ok} x 200 in {took:.2f} s "
        f"(latency {server.latency * 1000:g} ms), peak in flight {stats.peak_in_flight}"
    )


# --- measuring a process tree ----------------------------------------------------------------


def _proc_stat(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(root: int) -> dict[int, int]:
    """Every descendant of ``root``, mapped to its parent."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(entry)
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out: dict[int, int] = {}
    todo = [(c, root) for c in children.get(root, [])]
    while todo:
        pid, parent = todo.pop()
        out[pid] = parent
        todo += [(c, pid) for c in children.get(pid, [])]
    return out


def descendants(root: int) -> list[int]:
    return list(process_tree(root))


def _role(pid: int, parent: int, root: int, tree: dict[int, int]) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmd = ""
    if "resource_tracker" in cmd:
        return "resource tracker"
    if "_worker_entry" in cmd:
        return "worker"
    return "other" if tree.get(parent, -1) != root else "child"


def proc_cpu(pid: int | str, *, with_children: bool = True) -> float:
    """utime + stime (+ cutime + cstime: reaped children) in seconds, 0 if gone."""
    fields = _proc_stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def proc_status_kb(pid: int | str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples the summed RSS (every ``interval``) and PSS (at each new RSS peak and every
    tenth sample) of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_pss_kb = self.peak_procs = 0
        self.at_peak: dict[str, int] = {}  # MB of RSS by role at the peak
        self._stop_event = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self._stop_event.is_set():
            tree = process_tree(self.pid)
            pids = [self.pid, *tree]
            rss = [proc_status_kb(p, "VmRSS") for p in pids]
            new_peak = sum(rss) > self.peak_rss_kb
            if new_peak:
                self.peak_rss_kb = sum(rss)
                roles: Counter[str] = Counter()
                for pid, r in zip(pids, rss, strict=True):
                    role = "main" if pid == self.pid else _role(pid, tree[pid], self.pid, tree)
                    roles[role] += r
                self.at_peak = {k: v // 1024 for k, v in roles.items()}
            if new_peak or tick % 10 == 0:  # smaps_rollup costs ~1 ms a process
                self.peak_pss_kb = max(self.peak_pss_kb, sum(proc_pss_kb(p) for p in pids))
            self.peak_procs = max(self.peak_procs, len(pids))
            tick += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def tree_cpu_snapshot() -> dict[str, Any]:
    """CPU seconds of this process (threads separately) and of each live descendant,
    including what descendants' reaped children used (cutime/cstime)."""
    self_ru = resource.getrusage(resource.RUSAGE_SELF)
    kids_ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    names = {t.native_id: t.name for t in threading.enumerate()}
    threads = {}
    for tid in os.listdir("/proc/self/task"):
        fields = _proc_stat(f"self/task/{tid}")
        if fields is not None:
            name = names.get(int(tid), f"thread-{tid}")
            threads[name] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    desc = {pid: proc_cpu(pid) for pid in descendants(os.getpid())}
    return {
        "self": self_ru.ru_utime + self_ru.ru_stime,
        "reaped": kids_ru.ru_utime + kids_ru.ru_stime,
        "threads": threads,
        "descendants": desc,
    }


def tree_cpu_delta(a: dict[str, Any], b: dict[str, Any]) -> float:
    desc = sum(b["descendants"].values()) - sum(
        v for pid, v in a["descendants"].items() if pid in b["descendants"]
    )
    return (b["self"] - a["self"]) + (b["reaped"] - a["reaped"]) + desc


def tree_hwm_mb() -> tuple[float, float]:
    """(this process's peak RSS, the largest peak RSS of a live descendant), in MB."""
    own = proc_status_kb("self", "VmHWM")
    kids = [proc_status_kb(p, "VmHWM") for p in descendants(os.getpid())]
    return own / 1024, max(kids, default=0) / 1024


# --- the children ----------------------------------------------------------------------------


def child_ours(a: argparse.Namespace) -> dict[str, Any]:
    import logging

    from aggregator.app import make_app
    from aggregator.config import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(
        data_dir=Path(a.data_dir), feeds_path=Path(a.feeds_file), extract=False
    )
    model = settings.active_models_dir / "classifier" / "manifest.json"
    profiler = None
    if a.cprofile:
        import cProfile

        profiler = cProfile.Profile()
    statuses: Counter[str] = Counter()
    new = 0
    errors: list[str] = []
    with make_app(settings) as app:
        app.prepare_poll()  # as `aggregator poll` does: the HTTP stack loads during the sync
        app.sync_feeds()
        before = tree_cpu_snapshot()
        t0 = time.perf_counter()
        first_result = None
        if profiler is not None:
            profiler.enable()
        for res in app.update_due(all_feeds=True):
            if first_result is None:
                first_result = time.perf_counter() - t0
            statuses[res.status] += 1
            new += res.new
            if res.error and len(errors) < 5:
                errors.append(f"{res.url}: {res.error}")
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - t0
        after = tree_cpu_snapshot()
        hwm_main, hwm_child = tree_hwm_mb()
        # Private attributes, read for the figures only (absent ones are reported as such).
        pool = getattr(app, "_pool", None)
        worker_pids = list(pool.pids) if pool is not None else []
        fetcher = getattr(app, "_fetcher", None)
        fetch_stats = asdict(fetcher.stats) if fetcher is not None else {}
        poll_stats = asdict(app.last_poll_stats)
        model_error = getattr(app, "_model_error", None)
        model_error = str(model_error) if model_error is not None else None
    if profiler is not None:
        profiler.dump_stats(a.cprofile)
    with contextlib.closing(sqlite3.connect(Path(a.data_dir) / "aggregator.db")) as db:
        stories = db.execute("SELECT count(*) FROM story").fetchone()[0]
    threads = {
        name: cpu - before["threads"].get(name, 0.0) for name, cpu in after["threads"].items()
    }
    return {
        "wall": wall,
        "first_result": first_result,
        "cpu": tree_cpu_delta(before, after),
        "cpu_threads": threads,
        "cpu_workers": [
            after["descendants"].get(p, 0.0) - before["descendants"].get(p, 0.0)
            for p in worker_pids
        ],
        "cpu_other_descendants": sum(
            v - before["descendants"].get(p, 0.0)
            for p, v in after["descendants"].items()
            if p not in worker_pids
        ),
        "hwm_main_mb": hwm_main,
        "hwm_child_mb": hwm_child,
        "statuses": dict(statuses),
        "new": new,
        "stories": stories,
        "errors": errors,
        "fetch": fetch_stats,
        "poll": poll_stats,
        "workers": settings.workers,
        "per_host": settings.per_host,
        "max_connections": settings.max_connections,
        "model": str(model) if model.exists() else None,
        "model_error": model_error,
    }


def child_reader(a: argparse.Namespace) -> dict[str, Any]:
    from reader import make_reader

    urls = Path(a.feeds_file).read_text().split()
    reader = make_reader(a.db)
    if a.add:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    before = tree_cpu_snapshot()
    t0 = time.perf_counter()
    statuses: Counter[str] = Counter()
    new = 0
    errors: list[str] = []
    # scheduled=False: 3.x updates only feeds whose update_after has passed by default, so
    # the second update would otherwise skip every feed instead of asking for a 304.
    for res in reader.update_feeds_iter(workers=a.reader_workers, scheduled=False):
        if res.value is None:
            statuses["not_modified"] += 1
        elif isinstance(res.value, Exception):
            statuses["error"] += 1
            if len(errors) < 5:
                errors.append(f"{res.url}: {res.value}")
        else:
            statuses["ok"] += 1
            new += res.value.new
    wall = time.perf_counter() - t0
    after = tree_cpu_snapshot()
    hwm_main, hwm_child = tree_hwm_mb()
    counts = reader.get_entry_counts()
    out = {
        "wall": wall,
        "cpu": tree_cpu_delta(before, after),
        "cpu_threads": {k: v - before["threads"].get(k, 0.0) for k, v in after["threads"].items()},
        "hwm_main_mb": hwm_main,
        "hwm_child_mb": hwm_child,
        "statuses": dict(statuses),
        "new": new,
        "stories": counts.total,
        "errors": errors,
        "workers": a.reader_workers,
    }
    if a.dump:
        sample = Path(a.sample_file).read_text().split()
        dump: dict[str, list[dict[str, Any]]] = {}
        for url in sample:
            dump[url] = [
                {
                    "id": e.id,
                    "link": e.link,
                    "title": e.title,
                    "published": bool(e.published),
                    "updated": bool(e.updated),
                    "summary": bool(e.summary),
                    "content": bool(e.content),
                }
                for e in reader.get_entries(feed=url)
            ]
        Path(a.dump).write_text(json.dumps(dump))
    reader.close()
    return out


def child_parse(a: argparse.Namespace) -> dict[str, Any]:
    """Parse every corpus body serially in this one process: parse_feed vs feedparser
    alone vs story identity vs pickling the result back to the parent."""
    import feedparser

    from aggregator.dedupe import story_drafts
    from aggregator.parse import parse_feed

    manifest = json.loads(Path(a.manifest).read_text())
    bodies = [(m, (Path(a.corpus) / f"{m['index']:05d}.xml").read_bytes()) for m in manifest]
    totals: Counter[str] = Counter()
    by_kind: dict[str, list[float]] = {}
    pickled = 0
    for m, body in bodies:
        ct = m["content_type"]
        t0 = time.process_time()
        parsed = parse_feed(body, "http://bench.test/feed", content_type=ct)
        t1 = time.process_time()
        drafts = story_drafts(parsed)
        t2 = time.process_time()
        blob = pickle.dumps((parsed, drafts), pickle.HIGHEST_PROTOCOL)
        pickle.dumps(body, pickle.HIGHEST_PROTOCOL)
        t3 = time.process_time()
        headers = {"content-type": ct} if "charset=" in ct or not ct.startswith("text/") else {}
        feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        t4 = time.process_time()
        totals["parse_feed"] += t1 - t0
        totals["story_drafts"] += t2 - t1
        totals["pickle"] += t3 - t2
        totals["feedparser_only"] += t4 - t3
        pickled += len(blob)
        label = "broken" if m["broken"] else m["kind"] + ("+full" if m["full"] else "")
        by_kind.setdefault(label, []).append((t1 - t0) * 1000)
    totals.update(_whole_job_times(bodies))
    profile_top: list[tuple[str, float]] = []
    if a.cprofile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for m, body in bodies:
            story_drafts(parse_feed(body, "http://bench.test/feed", content_type=m["content_type"]))
        prof.disable()
        st = pstats.Stats(prof)
        rows = []
        for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
            rows.append((f"{Path(file).parent.name}/{Path(file).name}:{func}", tt))
        rows.sort(key=lambda r: -r[1])
        total_tt = sum(r[1] for r in rows) or 1.0
        profile_top = [(name, tt / total_tt) for name, tt in rows[:15]]
    return {
        "feeds": len(bodies),
        "totals": dict(totals),
        "by_kind_ms": {k: statistics.mean(v) for k, v in sorted(by_kind.items())},
        "by_kind_n": {k: len(v) for k, v in sorted(by_kind.items())},
        "pickled_result_mb": pickled / 1e6,
        "tottime_top": profile_top,
    }


def _whole_job_times(bodies: list[tuple[dict[str, Any], bytes]]) -> dict[str, float]:
    """CPU of the worker's whole parse job, with and without the classifier, when
    ``aggregator.jobs.parse_job`` takes a model (the job then also does plain text, SimHash
    and classification). Empty when its shape is not the one this was written for."""
    try:
        from aggregator.config import Settings
        from aggregator.jobs import ModelRef, parse_job

        settings = Settings.from_env()
        model = ModelRef(
            models_dir=str(settings.active_models_dir),
            taxonomy_path=str(settings.taxonomy_path),
        )
        m0, body0 = bodies[0]
        parse_job(body0, "http://bench.test/feed", m0["content_type"], model)  # loads it
        out: dict[str, float] = {}
        for name, ref in (("job_with_model", model), ("job_without_model", None)):
            t0 = time.process_time()
            for m, body in bodies:
                parse_job(body, "http://bench.test/feed", m["content_type"], ref)
            out[name] = time.process_time() - t0
        return out
    except Exception as e:  # a changed job signature must not cost the other figures
        print(f"whole-job timing skipped: {type(e).__name__}: {e}", file=sys.stderr)
        return {}


# --- the parent ------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    name: str
    result: dict[str, Any]
    proc_wall: float
    rusage_cpu: float  # parent's RUSAGE_CHILDREN delta: the child and what it reaped
    peak_rss_mb: float
    peak_pss_mb: float
    peak_procs: int
    at_peak: dict[str, int]
    server: ServerStats
    server_cpu: float


@dataclass(slots=True)
class Run:
    n: int
    phases: dict[str, Phase] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class ChildFailed(Exception):
    pass


def run_child(
    name: str, cmd: list[str], env: dict[str, str], server: FeedServer, workdir: Path
) -> Phase:
    result_path = workdir / f"{name}.json"
    err_path = workdir / f"{name}.stderr"
    server.reset_stats()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [*cmd, "--result", str(result_path)], env=env, stdout=err, stderr=err, cwd=REPO
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    proc_wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    stats = server.reset_stats()
    if code != 0 or not result_path.exists():
        sys.stderr.write(err_path.read_text(errors="replace")[-4000:])
        raise ChildFailed(f"{name}: child exited with {code} after {proc_wall:.0f} s")
    return Phase(
        name=name,
        result=json.loads(result_path.read_text()),
        proc_wall=proc_wall,
        rusage_cpu=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        peak_rss_mb=sampler.peak_rss_kb / 1024,
        peak_pss_mb=sampler.peak_pss_kb / 1024,
        peak_procs=sampler.peak_procs,
        at_peak=sampler.at_peak,
        server=stats,
        server_cpu=(self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime),
    )


def sample_indices(feeds: list[ServedFeed], size: int) -> list[int]:
    """Evenly spaced feeds plus, up to a fifth of the sample, the not-well-formed and
    legacy-encoded ones (where fields are most likely to go missing)."""
    n = len(feeds)
    even = {round(k * n / size) for k in range(size - size // 5)} if n else set()
    special = [f.spec.index for f in feeds if f.spec.broken]
    special += [f.spec.index for f in feeds if f.spec.encoding != "utf-8"]
    out = set(even)
    for i in special:
        if len(out) >= size:
            break
        out.add(i)
    return sorted(i for i in out if i < n)


def compare_fields(ours_db: Path, reader_dump: Path, sample_urls: list[str]) -> dict[str, Any]:
    """Per-entry presence of title / link / date / summary, ours against reader's, for
    entries matched on guid (else link). A field reader has and we lack is "lost"."""
    theirs: dict[str, list[dict[str, Any]]] = json.loads(reader_dump.read_text())
    ours: dict[str, list[tuple[Any, ...]]] = {u: [] for u in sample_urls}
    with contextlib.closing(sqlite3.connect(ours_db)) as db:
        marks = ",".join("?" * len(sample_urls))
        rows = db.execute(
            "SELECT f.url, s.guid, s.link, s.title, s.published, s.summary, s.content "
            f"FROM story s JOIN feed f ON f.id = s.feed_id WHERE f.url IN ({marks})",
            sample_urls,
        )
        for row in rows:
            ours[row[0]].append(row[1:])
    lost: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    link_differs = matched = only_ours = only_theirs = 0
    examples: list[str] = []
    for url in sample_urls:
        mine = {}
        for guid, link, title, published, summary, content in ours.get(url, []):
            mine[guid or link] = {
                "link": link,
                "title": bool(title),
                "published": bool(published),
                "summary": bool(summary or content),
            }
        seen = set()
        for e in theirs.get(url, []):
            key = e["id"] if e["id"] in mine else e["link"] if e["link"] in mine else None
            if key is None:
                only_theirs += 1
                if len(examples) < 5:
                    examples.append(f"reader only: {url} id={e['id']!r}")
                continue
            seen.add(key)
            matched += 1
            m = mine[key]
            fields = {
                "title": bool(e["title"]),
                "link": bool(e["link"]),
                "published": e["published"] or e["updated"],
                "summary": e["summary"] or e["content"],
            }
            for name, has in fields.items():
                ours_has = bool(m["link"]) if name == "link" else m[name]
                if has and not ours_has:
                    lost[name] += 1
                    if len(examples) < 5:
                        examples.append(f"lost {name}: {url} id={e['id']!r}")
                elif ours_has and not has:
                    extra[name] += 1
            if e["link"] and m["link"] and e["link"] != m["link"]:
                link_differs += 1
        only_ours += len(set(mine) - seen)
    return {
        "feeds": len(sample_urls),
        "matched": matched,
        "only_ours": only_ours,
        "only_reader": only_theirs,
        "lost": dict(lost),
        "extra": dict(extra),
        "link_differs": link_differs,
        "mismatches": sum(lost.values()) + only_theirs,
        "examples": examples,
    }


def child_env(a: argparse.Namespace) -> dict[str, str]:
    """The environment of every child: no AGGREGATOR_* from the caller's shell, private
    addresses allowed (the server is on 127.0.0.x), extraction off, no proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="1", AGGREGATOR_EXTRACT="0")
    env.update(NO_PROXY="127.0.0.0/8,localhost", PYTHONHASHSEED="0")
    if a.models_dir is not None:
        env["AGGREGATOR_MODELS_DIR"] = str(a.models_dir)
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(k, None)
    return env


def one_run(
    a: argparse.Namespace,
    n: int,
    rep: int,
    feeds: list[ServedFeed],
    server: FeedServer,
    workdir: Path,
) -> Run:
    run = Run(n=n)
    rundir = workdir / f"n{n}-r{rep}"
    shutil.rmtree(rundir, ignore_errors=True)  # fresh databases, even in a reused workdir
    rundir.mkdir(parents=True)
    urls = server.serve(feeds)
    feeds_yaml = rundir / "feeds.yaml"
    feeds_yaml.write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in urls))
    url_list = rundir / "urls.txt"
    url_list.write_text("\n".join(urls) + "\n")
    sample = [urls[i] for i in sample_indices(feeds, a.sample)]
    sample_file = rundir / "sample.txt"
    sample_file.write_text("\n".join(sample) + "\n")
    env = child_env(a)
    data_dir = rundir / "ours"
    ours = [sys.executable, str(HERE), "--child", "ours", "--data-dir", str(data_dir)]
    ours += ["--feeds-file", str(feeds_yaml)]
    db = rundir / "reader.sqlite"
    rd = [a.reader_python, str(HERE), "--child", "reader", "--db", str(db)]
    rd += ["--feeds-file", str(url_list), "--reader-workers", str(a.reader_workers)]
    dump = rundir / "reader-sample.json"
    steps = []
    if not a.skip_reader:  # reader first: its figures survive if our long poll dies
        steps += [("reader-1", [*rd, "--add"])]
        steps += [("reader-2", [*rd, "--dump", str(dump), "--sample-file", str(sample_file)])]
    steps += [("ours-1", ours), ("ours-2", ours)]
    for name, cmd in steps:
        if name.endswith("-2") and name.replace("-2", "-1") not in run.phases:
            continue  # a second poll needs the first one's database
        try:
            run.phases[name] = run_child(name, cmd, env, server, rundir)
        except ChildFailed as e:
            print(f"  [N={n} run {rep + 1}] {e}", flush=True)
            run.failures.append(str(e))
            continue
        _progress(n, rep, run.phases[name])
    if "ours-1" in run.phases and "reader-2" in run.phases:
        run.fields = compare_fields(data_dir / "aggregator.db", dump, sample)
    if not a.keep:
        for p in (data_dir, rundir / "reader.sqlite"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    return run


def _progress(n: int, rep: int, p: Phase) -> None:
    r = p.result
    print(
        f"  [N={n} run {rep + 1}] {p.name}: {r['wall']:.2f} s, cpu {r['cpu']:.2f} s, "
        f"peak {p.peak_rss_mb:.0f} MB, stories {r['stories']}, {r['statuses']}",
        flush=True,
    )


PHASE_LABELS = {
    "ours-1": "ours, first poll",
    "ours-2": "ours, second poll (304)",
    "reader-1": "reader, first update",
    "reader-2": "reader, second update",
}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def summarize(a: argparse.Namespace, n: int, runs: list[Run], feeds: list[ServedFeed]) -> dict:
    phases: dict[str, dict[str, Any]] = {}
    for name in PHASE_LABELS:
        ps = [r.phases[name] for r in runs if name in r.phases]
        if not ps:
            continue
        wall = _median([p.result["wall"] for p in ps])
        phases[name] = {
            "wall_s": wall,
            "walls": [round(p.result["wall"], 3) for p in ps],
            "feeds_per_s": n / wall,
            "cpu_s": _median([p.result["cpu"] for p in ps]),
            "cpu_rusage_s": _median([p.rusage_cpu for p in ps]),
            "proc_wall_s": _median([p.proc_wall for p in ps]),
            "peak_rss_mb": _median([p.peak_rss_mb for p in ps]),
            "peak_pss_mb": _median([p.peak_pss_mb for p in ps]),
            "hwm_main_mb": _median([p.result["hwm_main_mb"] for p in ps]),
            "hwm_child_mb": _median([p.result["hwm_child_mb"] for p in ps]),
            "peak_procs": max(p.peak_procs for p in ps),
            "rss_at_peak_mb": ps[-1].at_peak,
            "stories": ps[-1].result["stories"],
            "statuses": ps[-1].result["statuses"],
            "errors": ps[-1].result["errors"],
            "server": asdict(ps[-1].server),
            "server_cpu_s": _median([p.server_cpu for p in ps]),
            "child": ps[-1].result,
        }
    sizes = [len(f.raw) for f in feeds]
    corpus = {
        "feeds": n,
        "bytes": sum(sizes),
        "gzip_bytes": sum(len(f.gz) for f in feeds),
        "mean_kb": statistics.mean(sizes) / 1024,
        "median_kb": statistics.median(sizes) / 1024,
        "max_kb": max(sizes) / 1024,
        "entries": sum(f.spec.entries for f in feeds),
        "kinds": dict(Counter(f.spec.kind for f in feeds)),
        "full_content": sum(f.spec.full for f in feeds),
        "encodings": dict(Counter(f.spec.encoding for f in feeds)),
        "broken": dict(Counter(f.spec.broken for f in feeds if f.spec.broken)),
    }
    failures = [f for r in runs for f in r.failures]
    return {
        "n": n,
        "corpus": corpus,
        "phases": phases,
        "fields": runs[-1].fields,
        "failures": failures,
    }


def print_report(a: argparse.Namespace, s: dict[str, Any]) -> None:
    n, c, ph = s["n"], s["corpus"], s["phases"]
    print()
    print(
        f"== N={n} feeds on {a.hosts} hosts (127.0.0.1-{a.hosts}), {a.latency_ms:g} ms latency"
        f", {a.repeat} run(s), medians =="
    )
    print(
        f"corpus: {c['bytes'] / 1e6:.1f} MB ({c['gzip_bytes'] / 1e6:.1f} MB gzipped), "
        f"mean {c['mean_kb']:.0f} KB, median {c['median_kb']:.0f} KB, max {c['max_kb']:.0f} KB; "
        f"{c['entries']} entries; {c['kinds']}; full content {c['full_content']}; "
        f"{c['encodings']}; not well-formed {c['broken']}"
    )
    head = (
        f"{'phase':<26}{'wall s':>8}{'feeds/s':>9}{'CPU s':>8}{'tree RSS':>10}"
        f"{'tree PSS':>10}{'main HWM':>10}{'stories':>9}{'200/304/err':>14}{'conc':>6}"
        f"{'conns':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, label in PHASE_LABELS.items():
        p = ph.get(name)
        if p is None:
            continue
        sv = p["server"]
        st = p["statuses"]
        codes = f"{sv['ok']}/{sv['not_modified']}/{st.get('error', 0)}"
        print(
            f"{label:<26}{p['wall_s']:>8.2f}{p['feeds_per_s']:>9.1f}{p['cpu_s']:>8.2f}"
            f"{p['peak_rss_mb']:>9.0f}M{p['peak_pss_mb']:>9.0f}M{p['hwm_main_mb']:>9.0f}M"
            f"{p['stories']:>9}{codes:>14}{sv['peak_in_flight']:>6}{sv['connections']:>7}"
        )
    if "reader-1" in ph:
        print("ratios, reader / ours (above 1: ours is better):")
        for mine, theirs, what in (("ours-1", "reader-1", "first"), ("ours-2", "reader-2", "2nd")):
            if mine not in ph or theirs not in ph:
                continue
            o, r = ph[mine], ph[theirs]
            print(
                f"  {what:<6} wall {r['wall_s'] / o['wall_s']:6.2f}x   "
                f"CPU {r['cpu_s'] / max(o['cpu_s'], 1e-9):6.2f}x   "
                f"peak tree RSS {r['peak_rss_mb'] / o['peak_rss_mb']:5.2f}x"
            )
    for name in ("ours-1", "reader-1"):
        if name in ph:
            parts = ", ".join(f"{k} {v}" for k, v in sorted(ph[name]["rss_at_peak_mb"].items()))
            print(f"RSS MB by process at the sampled peak, {PHASE_LABELS[name]}: {parts}")
    for failure in s["failures"]:
        print(f"FAILED: {failure}")
    if "ours-1" not in ph:
        return
    child = ph["ours-1"]["child"]
    eff = min(child["max_connections"], child["per_host"] * a.hosts)
    per_host_rounds = math.ceil(n / a.hosts) / child["per_host"]
    lat = a.latency_ms / 1000
    bound = max(n * lat / eff, per_host_rounds * lat)
    print(
        f"bars (effective concurrency = min(global {child['max_connections']}, per-host "
        f"{child['per_host']} x {a.hosts} hosts) = {eff}):"
    )
    if "ours-2" in ph:
        second = ph["ours-2"]["wall_s"]
        _bar(
            second <= 1.5 * bound,
            f"second poll {second:.2f} s <= 1.5 x {bound:.3f} s = {1.5 * bound:.2f} s "
            f"(bound = N x latency / concurrency = {n} x {a.latency_ms:g} ms / {eff})",
        )
    peak = max(ph[k]["peak_rss_mb"] for k in ("ours-1", "ours-2") if k in ph)
    _bar(peak < 300, f"peak RSS of our process tree {peak:.0f} MB < 300 MB (sampled sum)")
    if "reader-1" in ph:
        speedup = ph["reader-1"]["wall_s"] / ph["ours-1"]["wall_s"]
        _bar(
            speedup >= 5,
            f"first poll {speedup:.2f}x faster than reader (workers={a.reader_workers}); need 5x",
        )
    f = s["fields"]
    if f:
        print(
            f"no field lost ({f['feeds']} sample feeds, {f['matched']} entries matched; "
            f"reader-only {f['only_reader']}, ours-only {f['only_ours']}): "
            f"mismatches {f['mismatches']}; lost {f['lost'] or 'none'}; "
            f"ours has where reader has not {f['extra'] or 'none'}; "
            f"links differ {f['link_differs']}"
        )
        for ex in f["examples"]:
            print(f"    {ex}")
    model = child["model"] or f"none ({child['model_error'] or 'no manifest'})"
    print(f"classifier model during our polls: {model}")
    print(f"our fetcher: {child['fetch']}")
    if "poll" in child:  # the most the first poll held at once (its memory bounds)
        # ahead_peak / parsing_peak: the most it held; stored / transactions: feeds with
        # stories and the transactions they were written in
        print(f"our first poll: {child['poll']}")
    for name in ("ours-1", "ours-2", "reader-1"):
        if name in ph and ph[name]["errors"]:
            print(f"{name} errors (first 5): {ph[name]['errors']}")


def _bar(ok: bool, text: str) -> None:
    print(f"  [{'PASS' if ok else 'FAIL'}] {text}")


# --- profiling --------------------------------------------------------------------------------


def profile_run(
    a: argparse.Namespace, n: int, feeds: list[ServedFeed], server: FeedServer, workdir: Path
) -> dict[str, Any]:
    pdir = workdir / f"profile-n{n}"
    shutil.rmtree(pdir, ignore_errors=True)
    pdir.mkdir(parents=True)
    urls = server.serve(feeds)
    feeds_yaml = pdir / "feeds.yaml"
    feeds_yaml.write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in urls))
    env = child_env(a)
    prof = pdir / "main.prof"
    cmd = [sys.executable, str(HERE), "--child", "ours", "--data-dir", str(pdir / "ours")]
    cmd += ["--feeds-file", str(feeds_yaml), "--cprofile", str(prof)]
    phase = run_child("profile-ours-1", cmd, env, server, pdir)
    out: dict[str, Any] = {"run": phase.result, "main_thread": _main_thread_profile(prof)}
    prof2 = pdir / "main-second.prof"
    cmd[-1] = str(prof2)  # the same database again: the all-304 poll
    second = run_child("profile-ours-2", cmd, env, server, pdir)
    out["second"] = {"run": second.result, "main_thread": _main_thread_profile(prof2)}
    manifest = pdir / "manifest.json"
    manifest.write_text(
        json.dumps([{**asdict(f.spec), "updated": None, "size": len(f.raw)} for f in feeds])
    )
    corpus = corpus_dir(workdir, a.seed)
    cmd = [sys.executable, str(HERE), "--child", "parse", "--manifest", str(manifest)]
    cmd += ["--corpus", str(corpus), "--cprofile", str(pdir / "parse.prof")]
    out["parse"] = run_child("profile-parse", cmd, env, server, pdir).result
    if a.py_spy:
        raw = pdir / "py-spy.txt"
        cmd = [a.py_spy, "record", "--subprocesses", "--nonblocking", "--rate", "200"]
        cmd += ["--format", "raw", "-o", str(raw), "--", sys.executable, str(HERE)]
        cmd += ["--child", "ours", "--data-dir", str(pdir / "ours-spy")]
        cmd += ["--feeds-file", str(feeds_yaml)]
        run_child("profile-py-spy", cmd, env, server, pdir)
        out["py_spy"] = _py_spy_breakdown(raw)
    return out


# Stages by the frames that name them; a stack goes to the first stage any of its frames
# matches, so the order matters (classify inside a parse job counts as classify).
STAGES = (
    ("parse: feedparser", ("feedparser/",)),
    ("parse: sanitize (nh3)", ("_sanitize", "_html_of", "html_to_text (aggregator/textutil")),
    ("parse: identity (dedupe)", ("story_drafts",)),
    ("classify (sklearn)", ("classify.py", "_predict", "classify_docs", "sklearn/")),
    ("plain text + simhash", ("simhash", "textutil.py")),
    ("parse job: other", ("parse_job", "parse_feed", "aggregator/jobs.py")),
    ("worker IPC (pickle)", ("_worker_main", "_reply")),
    ("store: save_update/known/post_dates", ("save_update", "known_stories", "post_dates")),
    ("store: other (claim, batched checks)", ("aggregator/store/",)),
    ("schedule", ("schedule.py",)),
    ("fetch: httpx/httpcore/h11", ("httpx/", "httpcore/", "h11/")),
    ("fetch: decode/hash (fetch.py)", ("aggregator/fetch.py",)),
    ("fetch: asyncio loop", ("asyncio/",)),
    ("pool dispatcher", ("aggregator/workers.py",)),
    ("startup: yaml (feeds.yaml, taxonomy)", ("yaml/",)),
    ("startup/imports", ("<frozen importlib", "_find_and_load")),
)


def _py_spy_breakdown(raw: Path) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, num = line.rpartition(" ")
        if not num.isdigit():
            continue
        k = int(num)
        total += k
        frames = stack.split(";")
        label = "other"
        for name, needles in STAGES:
            if any(needle in fr for fr in frames for needle in needles):
                label = name
                break
        counts[label] += k
    return {"samples": total, "shares": {k: v / max(total, 1) for k, v in counts.most_common()}}


MAIN_FUNCS = (
    ("save_update", "store/writes.py"),
    ("known_stories", "store/writes.py"),
    ("post_dates", "store/feeds.py"),
    ("html_to_text", "textutil.py"),
    ("simhash", "neardup.py"),
    ("_finish", "outcomes.py"),
    ("after_success", "schedule.py"),
    ("_handle", "polling.py"),
    ("get", "queue.py"),
    ("_assign_clusters", "store/writes.py"),
    ("save_checks", "store/writes.py"),
    ("_write_topics", "store/base.py"),
    ("_post_dates", "outcomes.py"),
    ("write_search_index", "store/search.py"),
    ("_apply_check", "store/writes.py"),
    ("claim_due", "store/feeds.py"),
    ("flush", "orm/session.py"),
    ("commit", "orm/session.py"),
    ("_ensure_pool", "app.py"),
    ("_ensure_fetcher", "app.py"),
)


def _main_thread_profile(path: Path) -> dict[str, Any]:
    import pstats

    st = pstats.Stats(str(path))
    raw = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    cum: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in raw.items():
        for name, where in MAIN_FUNCS:
            if func == name and file.endswith(where):
                cum[f"{where}:{name}"] = cum.get(f"{where}:{name}", 0.0) + ct
    top = sorted(
        ((f"{Path(f).name}:{fn}", v[2]) for (f, _l, fn), v in raw.items()), key=lambda r: -r[1]
    )[:12]
    return {"total_s": total, "cumulative_s": cum, "tottime_top": top}


def print_profile(n: int, p: dict[str, Any]) -> None:
    r = p["run"]
    print()
    print(f"== profile of our first poll, N={n} (cProfile on the main thread inflates it) ==")
    print(
        f"wall {r['wall']:.2f} s (profiled), tree CPU {r['cpu']:.2f} s; first result after "
        f"{r['first_result']:.2f} s"
    )
    threads = ", ".join(
        f"{k} {v:.2f}"
        for k, v in sorted(r["cpu_threads"].items(), key=lambda kv: -kv[1])
        if v >= 0.01
    )
    print(f"CPU s by thread of the main process: {threads}")
    workers = ", ".join(f"{v:.2f}" for v in r["cpu_workers"])
    print(
        f"CPU s by worker process ({r['workers']}): {workers}; other descendants "
        f"{r['cpu_other_descendants']:.2f}"
    )
    mt = p["main_thread"]
    print(f"main thread, cumulative s (of {mt['total_s']:.2f} s profiled):")
    for name, v in sorted(mt["cumulative_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<36}{v:8.2f}")
    print("main thread, top self time: " + ", ".join(f"{k} {v:.2f}" for k, v in mt["tottime_top"]))
    ps = p["parse"]
    t = ps["totals"]
    print(
        f"parse microbenchmark, one process, {ps['feeds']} feeds (CPU s): parse_feed "
        f"{t['parse_feed']:.2f} (feedparser alone {t['feedparser_only']:.2f}), story_drafts "
        f"{t['story_drafts']:.2f}, pickling body+result {t['pickle']:.2f}; result pickles "
        f"{ps['pickled_result_mb']:.1f} MB"
    )
    print(
        "  parse_feed ms per feed by kind: "
        + ", ".join(f"{k} {v:.1f} (n={ps['by_kind_n'][k]})" for k, v in ps["by_kind_ms"].items())
    )
    print(
        "  top self time in parse (cProfile shares): "
        + ", ".join(f"{k} {v:.0%}" for k, v in ps["tottime_top"][:10])
    )
    if "job_with_model" in t:
        print(
            f"  whole worker parse job (CPU s): {t['job_with_model']:.2f} with the classifier, "
            f"{t['job_without_model']:.2f} without; so classify "
            f"{t['job_with_model'] - t['job_without_model']:.2f}, plain text + SimHash + rest "
            f"{t['job_without_model'] - t['parse_feed'] - t['story_drafts']:.2f}, parse_feed "
            f"{t['parse_feed']:.2f} (feedparser {t['feedparser_only']:.2f}), story_drafts "
            f"{t['story_drafts']:.2f}"
        )
    if "second" in p:
        r2, mt2 = p["second"]["run"], p["second"]["main_thread"]
        print(
            f"second poll (all 304) under cProfile: wall {r2['wall']:.2f} s, first result after "
            f"{r2['first_result']:.2f} s; main thread cumulative s (wall, waiting included):"
        )
        for name, v in sorted(mt2["cumulative_s"].items(), key=lambda kv: -kv[1]):
            if v >= 0.01:
                print(f"  {name:<36}{v:8.2f}")
    if "py_spy" in p:
        sp = p["py_spy"]
        print(f"py-spy, all threads and processes ({sp['samples']} samples, idle excluded):")
        for k, v in sp["shares"].items():
            print(f"  {k:<36}{v:7.1%}")


# --- entry point ------------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and whether aggregator/ or models/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "aggregator", "models"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    return (
        f"{head or 'unknown'}{' + uncommitted changes in aggregator/ or models/' if dirty else ''}"
    )


def _json_doc(summaries: list[dict[str, Any]], profiles: dict[int, Any]) -> dict[str, Any]:
    return {"code": code_version(), "runs": summaries, "profiles": profiles}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, nargs="+", default=[200, 1000], help="corpus sizes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hosts", type=int, default=100, help="127.0.0.1..127.0.0.HOSTS")
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--repeat", type=int, default=1, help="runs per size; medians reported")
    p.add_argument("--sample", type=int, default=50, help="feeds in the field comparison")
    p.add_argument("--reader-python", default=DEFAULT_READER_PYTHON)
    p.add_argument("--reader-workers", type=int, default=16)
    p.add_argument("--skip-reader", action="store_true")
    p.add_argument(
        "--models-dir", type=Path, default=None, help="AGGREGATOR_MODELS_DIR for our polls"
    )
    p.add_argument("--profile", action="store_true", help="add a profiled first poll")
    p.add_argument("--py-spy", default=None, help="path to py-spy, for --profile")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    p.add_argument("--keep", action="store_true", help="keep databases and the workdir")
    p.add_argument("--json", type=Path, default=None, help="write all figures here")
    # the children
    p.add_argument("--child", choices=["ours", "reader", "parse"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--feeds-file", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--add", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dump", help=argparse.SUPPRESS)
    p.add_argument("--sample-file", help=argparse.SUPPRESS)
    p.add_argument("--cprofile", help=argparse.SUPPRESS)
    p.add_argument("--manifest", help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.child:
        fn = {"ours": child_ours, "reader": child_reader, "parse": child_parse}[a.child]
        Path(a.result).write_text(json.dumps(fn(a)))
        return 0
    if not a.skip_reader and not Path(a.reader_python).exists():
        print(
            f"NOTE: {a.reader_python} not found, so reader is skipped; create it with "
            "`python3.11 -m venv /tmp/readervenv && /tmp/readervenv/bin/pip install "
            "reader==3.26 sgmllib3k` (or pass --reader-python)",
            flush=True,
        )
        a.skip_reader = True
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}; code: {code_version()}", flush=True)
    server = FeedServer(a.hosts, a.latency_ms / 1000)
    server.start()
    summaries = []
    profiles = {}
    try:
        t0 = time.perf_counter()
        all_feeds = build_corpus(a.seed, max(a.feeds), a.hosts, corpus_dir(workdir, a.seed))
        print(f"corpus of {len(all_feeds)} feeds ready in {time.perf_counter() - t0:.1f} s")
        server.serve(all_feeds)
        print(server_selfcheck(server, all_feeds), flush=True)
        for n in a.feeds:
            feeds = all_feeds[:n]
            runs = [one_run(a, n, rep, feeds, server, workdir) for rep in range(a.repeat)]
            summary = summarize(a, n, runs, feeds)
            summaries.append(summary)
            print_report(a, summary)
            if a.json:  # after each size, so a later failure keeps what was measured
                a.json.write_text(json.dumps(_json_doc(summaries, profiles), indent=1))
            if a.profile:
                profiles[n] = profile_run(a, n, feeds, server, workdir)
                print_profile(n, profiles[n])
    finally:
        server.stop()
        if not a.keep and a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(_json_doc(summaries, profiles), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
