"""Feed rows: subscriptions (feeds.yaml, ``feeds add``/``enable``/``remove``), what is
due, the leases that keep several daemons off one feed, and the fetch log. A feed's
polling state is written with its stories by ``writes.PollWrites``, not here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, type_coerce, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from sqlmodel import select as mselect

from ..credentials import without_credentials
from ..errors import NotFoundError
from ..feedlist import feed_key, host_key, url_host
from ..types import Feed, FeedSource
from . import dialect, search
from .base import _ARCHIVE, FC, LGC, SC, StoreBase, root_link
from .rows import (
    FEED,
    aware,
    chunks,
    feed_from_row,
    interval_seconds,
    login_moved,
    new_feed_row,
    shortened,
    utc,
)
from .tables import FeedRow, FetchLogRow, HostHoldRow, LabelArchiveRow, StoryRow, UTCDateTime, table

HOLD = table(HostHoldRow)

#: How far ahead of the clock a feed's last check may be before ``rebase_clock`` takes it
#: for the clock having stepped back: pollers on hosts whose clocks differ by seconds
#: should not rewrite each other's schedules.
CLOCK_SLACK = timedelta(minutes=1)

# A feed's columns but its listed keys (only prune reads those; up to tens of KB a feed)
_FEED_POLL_COLS = [c for c in FEED.c if c.name != "listed"]


def _feed_ref(ref: int | str) -> Any:
    """A feed by id, or by URL: its current one or the one it was subscribed under."""
    if isinstance(ref, int):
        return FC.id == ref
    return or_(FC.url == ref, FC.source_url == ref)


def process_stamp(pid: int) -> str | None:
    """When process ``pid`` started, as ``BOOT.TICKS`` (Linux: the first 8 digits of
    this boot's id and the clock ticks from boot to the process's start), which no
    other process that ever has this pid shares; None when ``/proc`` cannot tell (no
    such process, not Linux, a ``/proc`` of another PID namespace). ``App.owner`` ends
    with its own (``host:pid:tag@stamp``), so that ``release_dead_leases`` tells a lease
    of an ended process from one of the live process given its pid since: a container's
    daemon is pid 1 again after a restart (in a PID namespace that may reuse the old
    one's number), and a machine's reboot gives its pids out again, and the dead
    daemon's leases were taken for the live process's, holding its feeds for the whole
    15 minutes."""
    try:
        # a /proc of another PID namespace (``unshare --pid`` without mounting one) names
        # other processes by these numbers: their starts say nothing of ours
        if os.readlink("/proc/self") != str(os.getpid()):
            return None
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip().replace("-", "")[:8]
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # the fields after the command, which is in parentheses and may hold anything
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or not fields[19].isdigit() or not boot:
        return None
    return f"{boot}.{fields[19]}"  # field 22, starttime: the 20th after the command


def _dead_owner_on(host: str, owner: str) -> bool:
    """Whether a lease owner ``host:pid:tag`` is a process of ``host`` that has ended: no
    process has its pid, or (a tag ending ``@stamp``) the one that has it is another
    that started later (``process_stamp``)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    name, pid_text, tag = parts
    if name != host or not pid_text.isdigit() or int(pid_text) <= 0:
        return False
    stamp = tag.rpartition("@")[2] if "@" in tag else None
    if stamp and (now_there := process_stamp(int(pid_text))) is not None:
        return now_there != stamp
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: it runs, as another user
        return False
    return False


def _dead_owners(s: Session, host: str, *where: Any) -> list[str]:
    """The lease owners (of the feeds ``where`` selects) that are ended processes of
    ``host`` (``_dead_owner_on``), sorted."""
    owners = s.execute(
        select(FC.lease_owner).where(col(FC.lease_owner).is_not(None), *where).distinct()
    ).scalars()
    return sorted(o for o in owners if o and _dead_owner_on(host, o))


def _reactivate(row: FeedRow, now: datetime, holds: dict[str, datetime]) -> None:
    if row.status in ("disabled", "gone", "error"):
        row.status = "active"
    row.error_count, row.first_error_at, row.next_check = 0, None, now
    _hold_new(row, now, holds)


def _shortened(row: FeedRow, interval: timedelta) -> None:
    """A polled feed whose feeds.yaml ``interval`` became ``interval``: its next check at
    most that long after its last one (no sooner than its Retry-After). The old
    interval's next check stood, up to a day after `interval: 24h` became `30m`, until
    that poll came. A failing feed keeps its backoff."""
    checked, due, not_before = utc(row.last_check), utc(row.next_check), utc(row.not_before)
    if (sooner := shortened(row.status, checked, due, not_before, interval)) is not None:
        row.next_check = sooner


def _hold_new(row: FeedRow, now: datetime, holds: dict[str, datetime]) -> None:
    """A feed that becomes due now (added, or turned back on) waits for its own
    Retry-After and for its host's hold (``held_hosts``): no poll had it when the host
    asked to be left alone, and asking the host at once is what the host asked not."""
    own = utc(row.not_before)
    until = max(own or now, holds.get(url_host(row.url), now))
    if until > now:
        row.not_before = until
        row.next_check = until  # what `feeds list` shows: not "due"


def _relink_archive(conn: Any, urls: Sequence[str]) -> None:
    """Point the archived labels of a removed feed at ``urls``, the feeds just added,
    when one is that feed spelled another way (``feed_key``: http or https, host case, a
    trailing slash, a login): a returning story finds its labels by its feed's URL as
    the archive keeps it (without credentials), and the feed added again as a site's
    page or another feeds.yaml spells it got them back never. Once an addition: the
    archive holds a URL per removed feed with labels, a handful."""
    wanted = {feed_key(plain): plain for plain in map(without_credentials, urls)}
    if not wanted:
        return
    for (archived,) in conn.execute(select(_ARCHIVE.c.feed_url).distinct()).all():
        plain = wanted.get(feed_key(archived))
        if plain is not None and plain != archived:
            conn.execute(
                update(_ARCHIVE).where(_ARCHIVE.c.feed_url == archived).values(feed_url=plain)
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLogEntry:
    at: datetime
    outcome: str
    http_status: int | None
    ms: int
    new: int
    updated: int
    error: str | None


class FeedStore(StoreBase):
    """Subscriptions, leases and the fetch log."""

    def upsert_feeds(
        self,
        sources: Sequence[FeedSource],
        now: datetime,
        *,
        min_interval: timedelta = timedelta(0),
    ) -> tuple[int, int]:
        """Add the sources' feeds and update the settings they carry (name, topics,
        interval, enabled), and the site's page an OPML names (``FeedSource.site``) for a
        feed whose site is not known yet. A feed is found by its URL or by the URL it was subscribed
        under before a permanent redirect was adopted, else as the same feed spelled
        differently (``feedlist.feed_key``: http or https, host case, a trailing slash),
        which then takes the source's spelling, as the user has edited the URL (a feed a
        redirect moved keeps its URL: the spelling becomes the one it was subscribed
        under, which is matched by its key too, so it is not added again). Only the
        user's settings are compared: the 30-day rule's ``disabled`` status stays until
        the file turns the feed from ``enabled: false`` to true or ``feeds enable`` is
        run. An ``interval`` made shorter brings a polled feed's next check forward
        (``_shortened``; at least ``min_interval``, the schedule's floor, after its last
        check)."""
        added = changed = 0
        new_urls: list[str] = []
        with self._write() as s:
            self._one_at_a_time(s)
            rows: dict[str, FeedRow] = {}
            by_key: dict[str, FeedRow] = {}
            stored = list(s.exec(mselect(FeedRow)))
            holds = self._held_hosts(s, now)
            for r in stored:
                rows[r.url] = r
                if r.source_url:
                    rows.setdefault(r.source_url, r)
                by_key.setdefault(feed_key(r.url), r)
            for r in stored:  # the subscribed URL respelled, after a redirect moved the feed
                if r.source_url:
                    by_key.setdefault(feed_key(r.source_url), r)
            # the URL a permanent redirect is about to move a feed to (as `feeds add` finds
            # it): listed, it made a second feed, and the move then never happened
            for r in stored:
                if r.redirect_url:
                    by_key.setdefault(feed_key(r.redirect_url), r)
            next_id = dialect.next_feed_id(s.connection())
            for src in sources:
                row = rows.get(src.url)
                updated = False  # counted once, respelled or with new settings or both
                if row is None and (row := by_key.get(feed_key(src.url))) is not None:
                    rows[src.url] = row
                    if row.source_url:  # url is where a redirect moved it: it stays there
                        row.url = login_moved(row.url, row.source_url, src.url)
                        row.source_url = src.url
                    else:
                        row.url = src.url
                    updated = True
                interval_s = interval_seconds(src.interval)
                if row is None:
                    rows[src.url] = row = new_feed_row(src, now)
                    if next_id is not None:  # never a removed feed's (dialect.keep_feed_ids)
                        row.id, next_id = next_id, next_id + 1
                    _hold_new(row, now, holds)
                    s.add(row)
                    new_urls.append(row.url)
                    added += 1
                    continue
                new = (src.name, list(src.topics), interval_s, src.enabled)
                if (row.name, row.topics, row.interval_s, row.enabled) != new:
                    if src.enabled and not row.enabled:
                        _reactivate(row, now, holds)
                    elif interval_s is not None and interval_s != row.interval_s:
                        _shortened(row, max(timedelta(seconds=interval_s), min_interval))
                    row.name, row.topics, row.interval_s, row.enabled = new
                    updated = True
                if src.site and not row.site:
                    # an OPML's htmlUrl, until a poll stores the feed's own link
                    row.site = src.site
                    updated = True
                changed += updated
            _relink_archive(s.connection(), new_urls)
        return added, changed

    def enable_feed(self, ref: int | str, now: datetime) -> Feed:
        """Turn a feed back on, whatever stopped it (``enabled: false``, the 30-day rule,
        410 Gone): due at once, its error count cleared."""
        with self._write() as s:
            row = s.exec(mselect(FeedRow).where(_feed_ref(ref))).first()
            if row is None:
                raise NotFoundError(f"no feed {ref}")
            row.enabled = True
            _reactivate(row, now, self._held_hosts(s, now))
            s.flush()
            return feed_from_row(row, 0)

    def add_feed(self, source: FeedSource, now: datetime) -> tuple[Feed, bool]:
        with self._write() as s:
            self._one_at_a_time(s)
            row = s.exec(mselect(FeedRow).where(_feed_ref(source.url))).first()
            created = row is None
            if row is None:
                row = new_feed_row(source, now)
                # never a removed feed's id (dialect.keep_feed_ids)
                row.id = dialect.next_feed_id(s.connection())
                _hold_new(row, now, self._held_hosts(s, now))
                s.add(row)
                s.flush()
                _relink_archive(s.connection(), [row.url])
            return feed_from_row(row, 0), created

    def remove_feed(self, url: str, now: datetime) -> int:
        """Delete a feed and its stories; the labels users gave any of them move to the
        label archive with the text training reads (returns how many stories had
        labels)."""
        with self._write() as s:
            # after a poll writing this feed (see writes._FEED_URLS_LOCKED), whose stories and
            # restored labels are then read here
            row = s.exec(mselect(FeedRow).where(_feed_ref(url)).with_for_update()).first()
            if row is None:
                raise NotFoundError(f"no feed with URL {url}")
            kept = self._labels_of(s, SC.feed_id == row.id)
            for ls in kept:
                st = ls.story
                s.add(
                    LabelArchiveRow(
                        feed_url=without_credentials(row.url),  # kept forever: no password
                        link=st.link,
                        title=st.title,
                        summary=st.summary,
                        content=st.content,
                        full_text=st.full_text,
                        categories=list(st.categories),
                        positive=list(ls.positive),
                        negative=list(ls.negative),
                        published=st.published,
                        first_seen=st.first_seen,
                        archived=now,
                    )
                )
            conn = s.connection()
            gone = conn.execute(
                select(SC.id, SC.cluster_id, SC.link, SC.entry_link).where(SC.feed_id == row.id)
            ).all()
            dialect.keep_story_ids(conn)
            dialect.keep_feed_ids(conn)
            search.delete_search_index(conn, [int(i) for i, *_ in gone])
            s.execute(delete(StoryRow).where(col(SC.feed_id) == row.id))
            self._rehome_clusters(
                conn, {int(i): root_link(link, el) for i, c, link, el in gone if c == i}
            )
            s.delete(row)
        return len(kept)

    def feeds(self) -> list[Feed]:
        with self._read() as s:
            counts = dict(s.execute(select(SC.feed_id, func.count()).group_by(SC.feed_id)).all())
            # Core rows, as claim_due reads them: ORM objects cost more than the count
            rows = s.execute(select(*_FEED_POLL_COLS).order_by(FEED.c.id)).all()
            return [feed_from_row(r, counts.get(r.id, 0)) for r in rows]

    def get_feed(self, ref: int | str) -> Feed:
        with self._read() as s:
            row = s.exec(mselect(FeedRow).where(_feed_ref(ref))).first()
            if row is None:
                raise NotFoundError(f"no feed {ref}")
            n = s.execute(
                select(func.count()).select_from(StoryRow).where(SC.feed_id == row.id)
            ).scalar_one()
            return feed_from_row(row, int(n))

    @staticmethod
    def _due(now: datetime, include_not_due: bool) -> Any:
        q = select(FC.id).where(
            FC.enabled == True,  # noqa: E712
            col(FC.status).in_(("active", "error")),
            or_(col(FC.lease_until).is_(None), col(FC.lease_until) < now),
        )
        if not include_not_due:
            q = q.where(or_(col(FC.next_check).is_(None), col(FC.next_check) <= now))
        # a server's Retry-After binds `poll --all` and `feeds enable` too
        q = q.where(or_(col(FC.not_before).is_(None), col(FC.not_before) <= now))
        return q.order_by(col(FC.next_check).asc().nulls_first(), FC.id)

    def due_feed_ids(
        self, now: datetime, *, limit: int | None = None, include_not_due: bool = False
    ) -> list[int]:
        """The ids ``claim_due`` would lease now, most overdue first, without leasing
        them: a poll claims them a chunk at a time as it makes room."""
        q = self._due(now, include_not_due)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as s:
            return list(s.execute(q).scalars())

    def claim_due(
        self,
        now: datetime,
        *,
        owner: str,
        lease: timedelta,
        limit: int | None = None,
        include_not_due: bool = False,
        ids: Sequence[int] | None = None,
    ) -> list[Feed]:
        """Lease due feeds to ``owner`` so that several daemons never poll one feed at once.
        PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the IMMEDIATE write lock. A lease
        that is not released (a daemon died) expires after ``lease``. With ``ids``, only
        those of them still due and not leased to anyone else."""
        with self._write() as s:
            q = self._due(now, include_not_due)
            if ids is not None:
                if not ids:
                    return []
                q = q.where(col(FC.id).in_(list(ids)))
            if limit is not None:
                q = q.limit(limit)
            if self.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(s.execute(q).scalars())
            if not ids:
                return []
            s.execute(
                update(FeedRow)
                .where(col(FC.id).in_(ids))
                .values(lease_owner=owner, lease_until=now + lease)
            )
            # Core rows, not ORM objects: the same attributes at a fraction of the cost
            # (a poll of 1,000 feeds claims them all)
            rows = s.execute(select(*_FEED_POLL_COLS).where(FEED.c.id.in_(ids))).all()
            by_id = {r.id: r for r in rows}
            return [feed_from_row(by_id[i], 0) for i in ids]

    def release(self, feed_ids: Sequence[int], owner: str) -> None:
        if not feed_ids:
            return
        with self._write() as s:
            s.execute(
                update(FeedRow)
                .where(col(FC.id).in_(list(feed_ids)), FC.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def renew_leases(self, feed_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Extend ``owner``'s leases on ``feed_ids`` to ``until`` (a poll still holding
        them); returns how many it still held."""
        if not feed_ids:
            return 0
        renewed = 0
        with self._write() as s:
            for chunk in chunks(sorted(feed_ids), 500):
                done = s.execute(
                    update(FeedRow)
                    .where(col(FC.id).in_(chunk), FC.lease_owner == owner)
                    .values(lease_until=until)
                )
                renewed += int(done.rowcount or 0)  # type: ignore[attr-defined]
        return renewed

    def held_hosts(self, now: datetime) -> dict[str, datetime]:
        """The hosts that asked to be left alone (``hold_host``) and are held still, by
        ``feedlist.host_key``, each until when."""
        with self._read() as s:
            return self._held_hosts(s, now)

    @staticmethod
    def _held_hosts(s: Any, now: datetime) -> dict[str, datetime]:
        """The ``host_hold`` rows not over yet. They were read off the enabled feeds'
        ``not_before``, each as a hold of its URL's host: a feed redirected to a host
        that answered 429 made its own host look held (its site refused by `feeds add`,
        its new feeds held), and the host that asked, with no feed of its own, held by
        nothing."""
        rows = s.execute(select(HOLD.c.host, HOLD.c.held_until).where(HOLD.c.held_until > now))
        return {host: until for host, value in rows if (until := utc(value)) is not None}

    def hold_host(self, host: str, until: datetime, *, now: datetime) -> int:
        """No request before ``until`` for any enabled feed of ``host`` (its URL's host,
        compared as the poll's per-host limit compares it), where its own ``not_before``
        is not later already: the host asked to be left alone (``schedule.host_wait``),
        and a later poll, by this process or another, must not ask it for another feed
        meanwhile. Its next check moves to ``until`` when sooner. The host's hold is kept
        (``held_hosts``) whether it has feeds or not: after a redirect, the host that
        asked is not the feed's. The holds over by ``now`` are deleted here, where
        holds are written (migration 23 aside, the only place): nothing reads them, and a
        daemon's table kept a row for every host that had ever asked. Returns how many
        feeds it held."""
        host = host_key(host)
        with self._write() as s:
            s.execute(
                delete(HOLD).where(or_(HOLD.c.held_until.is_(None), HOLD.c.held_until <= now))
            )
            insert = pg_insert if s.connection().dialect.name == "postgresql" else sqlite_insert
            ins = insert(HOLD).values(host=host, held_until=until)
            later = case(
                (HOLD.c.held_until < ins.excluded.held_until, ins.excluded.held_until),
                else_=HOLD.c.held_until,
            )
            s.execute(
                ins.on_conflict_do_update(index_elements=[HOLD.c.host], set_={"held_until": later})
            )
            # every URL is read: SQL cannot tell that ``BÜCHER.example.`` is
            # ``xn--bcher-kva.example`` (a substring filter missed such spellings)
            rows = s.execute(
                select(FC.id, FC.url).where(
                    FC.enabled == True,  # noqa: E712
                    col(FC.status).in_(("active", "error")),
                )
            ).all()
            ids = sorted(i for i, url in rows if url_host(url) == host)
            held = 0
            for chunk in chunks(ids, 500):
                done = s.execute(
                    update(FeedRow)
                    .where(
                        col(FC.id).in_(chunk),
                        or_(col(FC.not_before).is_(None), col(FC.not_before) < until),
                    )
                    .values(
                        not_before=until,
                        # what `feeds list` shows as its next check, and when it is
                        next_check=case(
                            (
                                or_(col(FC.next_check).is_(None), col(FC.next_check) < until),
                                until,
                            ),
                            else_=FC.next_check,
                        ),
                    )
                )
                held += int(done.rowcount or 0)  # type: ignore[attr-defined]
        return held

    def rebase_clock(self, now: datetime) -> int:
        """After the clock stepped back (an NTP correction, a restored VM): the feeds
        last checked after ``now`` (by more than ``CLOCK_SLACK``) get their next check
        and Retry-After moved back by as much, to the wait they were given measured from
        ``now``, and their last check to ``now``; the host holds as much as the largest
        such step. Left as the old clock set them, a feed polled daily waited the step
        on top of its day (three days back: four days without a poll). When such a feed
        began failing and first met its pending permanent redirect move back with its
        last check: left ahead of the clock, the 30-day rule and the redirect's span
        counted the step short. The feeds never checked move back by the largest
        step (a feed added just before waited the step for its first poll), as the
        host holds do. A lease ending more than that step from ``now`` was
        given by the old clock (one given since ends within a lease's length) and moves
        back by the step: a poll that died holding it, on a host whose pids this one
        cannot ask about, kept its feeds from every poll for the step. Their last check
        set to ``now``, a second call finds nothing to move. Returns how many feeds
        moved."""
        with self._read() as s:
            rows = s.execute(
                select(
                    FC.id,
                    FC.last_check,
                    FC.next_check,
                    FC.not_before,
                    FC.first_error_at,
                    FC.redirect_first_seen,
                ).where(col(FC.last_check) > now + CLOCK_SLACK)
            ).all()
        if not rows:
            return 0
        step = timedelta(0)

        def back(at: datetime | None, shift: timedelta) -> datetime | None:
            return None if (t := utc(at)) is None else min(now, t - shift)

        moved = 0
        with self._write() as s:
            for feed_id, checked, next_check, not_before, failing, redirected in rows:
                shift = utc(checked) - now  # type: ignore[operator]
                nc, nb = utc(next_check), utc(not_before)
                done = s.execute(
                    update(FeedRow)
                    .where(col(FC.id) == feed_id, col(FC.last_check) == checked)
                    .values(
                        last_check=now,
                        next_check=None if nc is None else max(now, nc - shift),
                        not_before=None if nb is None else max(now, nb - shift),
                        first_error_at=back(failing, shift),
                        redirect_first_seen=back(redirected, shift),
                    )
                )
                # only the feeds this call moved: another process's poll may have moved
                # them since they were read here, and the holds and leases with them
                if done.rowcount:  # type: ignore[attr-defined]
                    moved += 1
                    step = max(step, shift)
            if not moved:
                return 0
            # the feeds never checked yet, due when the old clock added them (or held
            # as their host was): by the step the checked ones show, as the holds
            fresh = s.execute(
                select(FC.id, FC.next_check, FC.not_before).where(
                    col(FC.last_check).is_(None), col(FC.next_check) > now + CLOCK_SLACK
                )
            ).all()
            for feed_id, next_check, not_before in fresh:
                nb = utc(not_before)
                done = s.execute(
                    update(FeedRow)
                    .where(col(FC.id) == feed_id, col(FC.next_check) == next_check)
                    .values(
                        next_check=max(now, utc(next_check) - step),  # type: ignore[operator]
                        not_before=None if nb is None else max(now, nb - step),
                    )
                )
                moved += int(done.rowcount or 0)  # type: ignore[attr-defined]
            # the largest shift: the step at least (the feed checked last, by the old
            # clock, was checked at most as late as it read when it stepped)
            leases = s.execute(
                select(FC.id, FC.lease_until).where(col(FC.lease_until) > now + step)
            ).all()
            for feed_id, until in leases:
                s.execute(
                    update(FeedRow)
                    .where(col(FC.id) == feed_id, col(FC.lease_until) == until)
                    .values(lease_until=utc(until) - step)  # type: ignore[operator]
                )
            holds = s.execute(
                select(HOLD.c.host, HOLD.c.held_until).where(HOLD.c.held_until > now)
            ).all()
            for host, value in holds:
                if (until := utc(value)) is not None:
                    s.execute(
                        update(HOLD)
                        .where(HOLD.c.host == host)
                        .values(held_until=max(now, until - step))
                    )
        return moved

    def release_dead_leases(self, host: str, now: datetime) -> int:
        """Release the leases of crashed processes of this host: owners are
        ``host:pid:tag@stamp`` (``App.owner``); those named ``host`` whose pid no longer
        runs, or runs another process than the one that started at ``stamp``
        (``process_stamp``: a restarted container's daemon, pid 1 again), would otherwise
        keep their unstored feeds from every poll until the leases expire. Other hosts'
        leases are never touched (their pids mean nothing here). Returns how many feeds
        were released."""
        with self._read() as s:
            dead = _dead_owners(s, host, col(FC.lease_until) > now)
        if not dead:
            return 0
        with self._write() as s:
            done = s.execute(
                update(FeedRow)
                .where(col(FC.lease_owner).in_(dead))
                .values(lease_owner=None, lease_until=None)
            )
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def next_due(self, *, host: str | None = None) -> datetime | None:
        """When the next enabled feed can be claimed: the earliest over the active and
        error feeds of the latest of its ``next_check``, ``not_before`` (a server's
        Retry-After) and ``lease_until`` (another daemon's, or a dead one's, lease). A
        past time means something is due now. Ignoring leases and ``not_before`` made a
        daemon beside another one busy-loop: the feeds the other held stayed "due".
        With ``host`` (``App.owner``'s), the leases of that host's ended processes
        (``release_dead_leases`` judges them so) are no wait: the next poll releases
        them before it claims, and a daemon whose cycle ran while a `poll` beside it was
        killed slept until --max-sleep (or the lease's end) before that poll came."""
        nc, nb, lu, lo = FC.next_check, FC.not_before, FC.lease_until, FC.lease_owner
        with self._read() as s:
            dead = _dead_owners(s, host) if host is not None else []
            leased = and_(lu.is_not(None), col(lo).not_in(dead)) if dead else lu.is_not(None)
            # CASE, not greatest()/max(): SQLite's scalar max() is NULL if any argument is.
            checked = case((and_(nb.is_not(None), or_(nc.is_(None), nb > nc)), nb), else_=nc)
            claimable = case(
                (and_(leased, or_(checked.is_(None), lu > checked)), lu), else_=checked
            )
            v = s.execute(
                select(func.min(type_coerce(claimable, UTCDateTime))).where(
                    FC.enabled == True,  # noqa: E712
                    col(FC.status).in_(("active", "error")),
                )
            ).scalar_one_or_none()
            return utc(v)

    def fetch_log(self, feed_id: int, limit: int = 20) -> list[FetchLogEntry]:
        with self._read() as s:
            rows = s.exec(
                mselect(FetchLogRow)
                .where(LGC.feed_id == feed_id)
                .order_by(col(LGC.at).desc(), col(LGC.id).desc())
                .limit(limit)
            )
            return [
                FetchLogEntry(
                    at=aware(r.at),
                    outcome=r.outcome,
                    http_status=r.http_status,
                    ms=r.ms,
                    new=r.new,
                    updated=r.updated,
                    error=r.error,
                )
                for r in rows
            ]

    def quiet_post_dates(
        self, feed_ids: Sequence[int], since: datetime
    ) -> dict[int, list[datetime]]:
        """For each of ``feed_ids``: the dates of its stories since ``since`` and its
        newest date of all (older, when it has been quiet since), sorted; one statement
        for the feeds of a batch of 304s (``schedule.after_success``), where a query per
        feed cost ~0.45 ms each."""
        out: dict[int, set[datetime]] = {i: set() for i in feed_ids}
        with self._read() as s:
            for part in chunks(sorted(out), 500):
                recent = select(SC.feed_id, SC.sort_date).where(
                    col(SC.feed_id).in_(part), col(SC.sort_date) >= since
                )
                newest = (
                    select(SC.feed_id, type_coerce(func.max(SC.sort_date), UTCDateTime()))
                    .where(col(SC.feed_id).in_(part))
                    .group_by(SC.feed_id)
                )
                for feed_id, at in s.execute(union_all(recent, newest)).all():
                    if at is not None:
                        out[int(feed_id)].add(aware(at))
        return {i: sorted(dates) for i, dates in out.items()}

    def post_dates(self, feed_id: int, since: datetime) -> list[datetime]:
        """Dates (published, else first seen) of the feed's stories since ``since``, for
        adaptive polling."""
        with self._read() as s:
            rows = s.execute(
                select(SC.sort_date).where(SC.feed_id == feed_id, col(SC.sort_date) >= since)
            ).scalars()
            return sorted(aware(r) for r in rows if r is not None)
