"""Settings: environment variables -> ``Settings``, and the values users give on the
command line or in a URL (spans like ``7d``, dates, database and base URLs) checked into
what the rest of the code takes. The feed list (feeds.yaml, OPML) is ``feedlist.py``'s.

Owns the names of every ``AGGREGATOR_*`` variable. Must not do I/O beyond reading the
files it is pointed at, and must stay cheap to import (the CLI loads it on every command).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from . import modeldir
from .credentials import display_url
from .errors import ConfigError

#: libyaml's safe loader where PyYAML was built with it (~9x faster: the taxonomy is
#: read by every command, feeds.yaml by every sync), else the pure-Python one.
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ENV_PREFIX = "AGGREGATOR_"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_MODELS_DIR = PACKAGE_DIR.parent / "models"


def _env_bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{ENV_PREFIX}{name}: expected a boolean (1/0, true/false), got {value!r}")


#: The ``aggregator evaluate`` history's file name (``Settings.evaluations_path``).
EVALUATIONS_FILE = "evaluations.json"


#: The polling interval's default bounds (DESIGN.md: [5 min, 24 h])
MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(hours=24)
#: The settings in seconds, by the variable that sets them (also the name errors use:
#: the CLI's own flags check their values themselves).
_SECONDS = {
    "timeout_s": f"{ENV_PREFIX}TIMEOUT",
    "parse_timeout_s": f"{ENV_PREFIX}PARSE_TIMEOUT",
    "extract_timeout_s": f"{ENV_PREFIX}EXTRACT_TIMEOUT",
    "extract_budget_s": f"{ENV_PREFIX}EXTRACT_BUDGET",
}
#: The longest any of them may be: a day. Past threading's longest wait (~292 years) a
#: worker's limit failed every feed of a poll, and no fetch or parse is worth a day.
MAX_SECONDS = 86_400
#: The counts, with their bounds: a typo (a few zeros too many) must not start 100,000
#: worker processes or open a million connections.
_COUNTS = {
    "workers": (f"{ENV_PREFIX}WORKERS", 1, 256),
    "per_host": (f"{ENV_PREFIX}PER_HOST", 1, 64),
    "max_connections": (f"{ENV_PREFIX}MAX_CONNECTIONS", 1, 4096),
    "max_body_bytes": (f"{ENV_PREFIX}MAX_BODY_BYTES", 1024, 1 << 30),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every knob, with the defaults DESIGN.md promises users."""

    data_dir: Path = Path("data")
    database_url: str | None = None
    feeds_path: Path = Path("feeds.yaml")
    # Whether the feeds file was named (AGGREGATOR_FEEDS, --feeds): then it must exist;
    # the default ./feeds.yaml may be absent (the feeds are then the database's own).
    feeds_given: bool = False
    models_dir: Path = REPO_MODELS_DIR
    allow_private_addresses: bool = False
    user_agent: str | None = None
    timeout_s: float = 20.0
    max_body_bytes: int = 10 * 1024 * 1024
    per_host: int = 2
    max_connections: int = 64
    default_interval: timedelta = timedelta(minutes=60)
    min_interval: timedelta = MIN_INTERVAL
    max_interval: timedelta = MAX_INTERVAL
    disable_after: timedelta = timedelta(days=30)
    parse_timeout_s: float = 60.0  # one feed's parse job in a worker (killed past it)
    extract: bool = True
    extract_timeout_s: float = 15.0
    # How long one feed's article pages may take in all before its stories are stored
    # without the rest, which wait for a later try (the daemon's, or `aggregator extract`).
    extract_budget_s: float = 120.0
    extract_min_chars: int = 600  # feed content shorter than this gets its page fetched
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    # Story retention: None keeps everything; else the daemon (daily) and `aggregator
    # prune` delete stories older than this, except each feed's newest keep_per_feed and
    # every story a user labelled.
    retention: timedelta | None = None
    keep_per_feed: int = 200
    # The public URL `serve` is reached at behind a reverse proxy (parse_base_url).
    base_url: str | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL: AGGREGATOR_DATABASE_URL, else SQLite under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'aggregator.db').as_posix()}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL and in-memory databases."""
        if not self.database_url:
            return self.data_dir / "aggregator.db"
        if not self.database_url.startswith("sqlite"):
            return None
        from sqlalchemy.engine import make_url

        database = make_url(self.database_url).database
        return Path(database) if database and database != ":memory:" else None

    @property
    def trained_models_dir(self) -> Path:
        """Where ``aggregator train`` writes the user's model (beside the database)."""
        return self.data_dir / "models"

    @property
    def evaluations_path(self) -> Path:
        """The history of ``aggregator evaluate`` results (beside the user's model, outside
        ``classifier/``, which training replaces as a whole)."""
        return self.trained_models_dir / EVALUATIONS_FILE

    @property
    def active_models_dir(self) -> Path:
        """The models directory whose ``classifier/`` is used: the user's trained model
        when there is one, else the one shipped in ``models/``. A ``train`` killed in the
        middle of putting its model in place is finished first (:mod:`.modeldir`)."""
        classifier = self.trained_models_dir / "classifier"
        if (classifier / "manifest.json").exists() or modeldir.recover(classifier):
            return self.trained_models_dir
        return self.models_dir

    @property
    def taxonomy_path(self) -> Path:
        return self.models_dir / "taxonomy.yaml"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``AGGREGATOR_*`` variables, then explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        def get(name: str) -> str | None:
            v = env.get(ENV_PREFIX + name)
            return v if v not in (None, "") else None

        if (v := get("DATA_DIR")) is not None:
            values["data_dir"] = Path(v)
        if (v := get("DATABASE_URL")) is not None:
            values["database_url"] = v
        if (v := get("FEEDS")) is not None:
            values["feeds_path"] = Path(v)
            values["feeds_given"] = True
        if (v := get("MODELS_DIR")) is not None:
            values["models_dir"] = Path(v)
        if (v := get("ALLOW_PRIVATE_ADDRESSES")) is not None:
            values["allow_private_addresses"] = _env_bool(v, "ALLOW_PRIVATE_ADDRESSES")
        if (v := get("USER_AGENT")) is not None:
            values["user_agent"] = v
        if (v := get("EXTRACT")) is not None:
            values["extract"] = _env_bool(v, "EXTRACT")

        def number(name: str, key: str, kind: type[int] | type[float], what: str) -> None:
            if (v := get(name)) is None:
                return
            try:
                values[key] = kind(v.strip())
            except (ValueError, OverflowError):
                raise ConfigError(f"{ENV_PREFIX}{name}: expected {what}, got {v!r}") from None

        seconds, whole = "a number of seconds", "a whole number"
        number("TIMEOUT", "timeout_s", float, seconds)
        number("MAX_BODY_BYTES", "max_body_bytes", int, f"{whole} of bytes")
        number("PER_HOST", "per_host", int, whole)
        number("MAX_CONNECTIONS", "max_connections", int, whole)
        number("WORKERS", "workers", int, whole)
        number("PARSE_TIMEOUT", "parse_timeout_s", float, seconds)
        number("EXTRACT_TIMEOUT", "extract_timeout_s", float, seconds)
        number("EXTRACT_BUDGET", "extract_budget_s", float, seconds)
        number("KEEP_PER_FEED", "keep_per_feed", int, whole)
        number("DEFAULT_INTERVAL", "default_interval", float, "a number of minutes")
        if "default_interval" in values:  # minutes; checked before timedelta overflows
            minutes = values["default_interval"]
            low, high = (t.total_seconds() / 60 for t in (MIN_INTERVAL, MAX_INTERVAL))
            if not low <= minutes <= high:  # NaN too
                raise ConfigError(
                    f"{ENV_PREFIX}DEFAULT_INTERVAL must be between {low:,g} and {high:,g} "
                    f"minutes, got {get('DEFAULT_INTERVAL')!r}"
                )
            values["default_interval"] = timedelta(minutes=minutes)
        if (v := get("RETENTION")) is not None:
            values["retention"] = parse_span(v, name=ENV_PREFIX + "RETENTION")
        if (v := get("BASE_URL")) is not None:
            values["base_url"] = v
        values.update({k: v for k, v in overrides.items() if v is not None})
        if overrides.get("feeds_path") is not None:
            values.setdefault("feeds_given", True)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for key, name in _SECONDS.items():
            value = getattr(self, key)
            if not 0 < value <= MAX_SECONDS:  # NaN and infinity too
                raise ConfigError(
                    f"{name} must be a positive number of seconds up to {MAX_SECONDS:,} "
                    f"(a day), got {value:g}"
                )
        for key, (name, low, high) in _COUNTS.items():
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low:,} and {high:,}, got {value:,}")
        if self.user_agent is not None and not all(
            " " <= c <= "~" or c == "\t" for c in self.user_agent
        ):
            # It is every request's User-Agent header: a character beyond ASCII was a
            # traceback from the HTTP client at the first fetch, a line break failed
            # every feed as "bad HTTP response".
            raise ConfigError(
                f"{ENV_PREFIX}USER_AGENT must be printable ASCII (it is sent as an HTTP "
                f"header), got {self.user_agent!r}"
            )
        if self.keep_per_feed < 0:
            raise ConfigError(
                f"{ENV_PREFIX}KEEP_PER_FEED must be 0 or more, got {self.keep_per_feed:,}"
            )
        if self.retention is not None and self.retention <= timedelta(0):
            raise ConfigError("retention must be a positive span such as 180d")
        if self.database_url:
            check_database_url(self.database_url)
        if self.base_url:
            parse_base_url(self.base_url)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


#: A span as users write it: a number and a unit (``90m``, ``36h``, ``7d``, ``2w``)
SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.I)
SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_span(value: str, *, name: str = "--older-than") -> timedelta | None:
    """'180d', '26w', '12h' (as ``--since`` reads them) -> a span; 'off', 'never' or
    '0' -> None (keep everything)."""
    if value.strip().lower() in {"off", "never", "none", "0"}:
        return None
    m = SPAN.match(value)
    if not m:
        raise ConfigError(f"{name}: cannot read {value!r} as a span: use 180d, 26w or 12h")
    if m.group(2).lower() == "m":
        # `--since 30m` is minutes; a retention of `6m` read so deleted every story older
        # than six minutes, where a user meant six months
        raise ConfigError(
            f"{name}: {value.strip()} could be minutes or months: say 180d, 26w or 12h"
        )
    try:
        span = timedelta(**{SPAN_UNITS[m.group(2).lower()]: float(m.group(1))})
    except OverflowError as e:
        raise ConfigError(f"{name}: {value.strip()} is too long") from e
    if span <= timedelta(0):
        raise ConfigError(f"{name}: {value.strip()} is not a positive span")
    try:
        datetime.now(UTC) - span
    except OverflowError as e:
        # Refused where it is read: AGGREGATOR_RETENTION=999999999d was taken, and then
        # every prune failed, the daemon's once a day in its log, naming no setting.
        raise ConfigError(f"{name}: {value.strip()} reaches before year 1") from e
    return span


def describe_span(span: timedelta) -> str:
    """180 days, 12 hours, 1.5 days: a span as ``parse_span`` reads it, for messages."""
    days = span.total_seconds() / 86400
    if days >= 1:
        return f"{days:g} day{'s' if days != 1 else ''}"
    hours = span.total_seconds() / 3600
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def feed_refs(refs: Iterable[str]) -> tuple[str, ...]:
    """``StoryQuery.feeds`` of the ``--feed`` options (or ``?feed=`` parameters) given:
    an empty one (an HTML form's empty field) names no feed and filters nothing, as no
    option does; as a part of a name it matched every feed. Each once: a feed named
    again is the same filter (the export's title named it each time)."""
    return tuple(dict.fromkeys(r for r in refs if r.strip()))


def parse_when(
    value: str | None, *, now: datetime | None = None, option: str = "--since"
) -> datetime | None:
    """'7d', '24h', '30m', '2w', or an ISO date / datetime (UTC when no zone is given).

    ``option`` names the value in errors (``--until``, or ``since`` for a query parameter):
    a span reaching before year 1 (``999999999d``) is a ConfigError, not an OverflowError.
    """
    if value is None or not value.strip():
        return None
    now = now or datetime.now(UTC)
    m = SPAN.match(value)
    if m:
        n, unit = float(m.group(1)), m.group(2).lower()
        try:
            # Only the unit given: timedelta(days=n) overflows long before weeks=n does.
            return now - timedelta(**{SPAN_UNITS[unit]: n})
        except OverflowError as e:
            raise ConfigError(f"{option} {value.strip()} is too far back") from e
    try:
        # RFC 3339 (5.6) allows a lower-case "z", which fromisoformat refuses
        dt = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", value.strip()))
    except ValueError as e:
        # The option named, as the errors above and parse_span's do: given --since and
        # --until, the quoted value alone left the user to work out which one it was.
        raise ConfigError(
            f"{option}: cannot read {value!r} as a time: use 7d, 24h, 30m, 2w or 2026-11-01"
        ) from e
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError as e:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ConfigError(f"{option} {value.strip()} is out of range") from e


def check_database_url(url: str) -> None:
    """Refuse a database URL the store could not open, as one clear ConfigError: one that
    does not parse (a port that is not a number), another database, or a driver that is
    not installed (``postgresql+psycopg2``; aggregator ships psycopg 3). Loads SQLAlchemy,
    and a driver other than the shipped ones, only when a URL is set."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        port = parsed.port
    except (ArgumentError, ValueError) as e:
        # The URL is not echoed: it may hold a password.
        bad_port = re.search(r"with base 10: (.*)$", str(e))
        why = f"the port {bad_port.group(1)} is not a number" if bad_port else str(e)
        raise ConfigError(f"cannot read the database URL: {why}") from e
    shown = parsed.render_as_string(hide_password=True)
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database URL {shown}: use sqlite:///PATH or postgresql+psycopg://…"
        )
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"database URL {shown}: port {port} is out of range (1-65535)")
    if driver in ("", "psycopg" if backend == "postgresql" else "pysqlite"):
        return
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as e:
        use = "postgresql+psycopg://… (psycopg 3)" if backend == "postgresql" else "sqlite:///PATH"
        raise ConfigError(
            f"database driver {driver!r} ({shown}) is not available: use {use}"
        ) from e


def parse_base_url(url: str) -> str:
    """The public URL of ``aggregator serve`` behind a reverse proxy, path prefix included
    (``https://news.example.org/feeds/``), without its trailing slash: request paths are
    appended to it. It goes into every feed's self link, so it must be one a reader can
    follow (:func:`parse_public_url`), and it has no query or fragment (the request's own
    follow it)."""
    url = parse_public_url(url, "base URL")
    if "?" in url or "#" in url:
        raise ConfigError(
            f"base URL {display_url(url)!r} must not have a query or fragment: "
            "each request's own path and query are appended to it"
        )
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def parse_public_url(url: str, what: str) -> str:
    """``url`` stripped, where it names where a document lives for its readers (``serve
    --base-url``, ``export --url``, ``--home-url``: it is written into feeds that readers
    keep): http or https, a host, a valid port, no user name or password (every reader
    would see them), no space or control character; ``what`` names it in the error."""
    url = url.strip()
    shown = repr(display_url(url))
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise ConfigError(f"{what} {shown} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as e:  # an unclosed "[" of an IPv6 address
        raise ConfigError(f"cannot read {what} {shown}: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{what} {shown} must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{what} {shown} must not hold a user name or password: every reader would see them"
        )
    if not parts.hostname:
        raise ConfigError(f"{what} {shown} has no host")
    try:
        port_ok = parts.port != 0
    except ValueError:  # not a number, or past 65535
        port_ok = False
    if not port_ok:
        raise ConfigError(f"{what} {shown}: the port must be a number from 1 to 65535")
    return url
