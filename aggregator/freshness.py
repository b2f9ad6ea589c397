"""What a response says about when to ask again: Retry-After, and freshness from
Cache-Control / Expires (RFC 9111), with HTTP dates read leniently."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.types import utc_now

__all__ = ["cache_lifetime", "parse_retry_after"]

#: RFC 9111 §1.2.2: delta-seconds beyond 2**31 are taken as 2**31 (68 years).
DELTA_MAX = 2**31


def _delta_seconds(value: str) -> int | None:
    """A delta-seconds value (RFC 9111 §1.2.2: ASCII digits only), capped at DELTA_MAX;
    None otherwise. ``str.isdigit`` also takes '²' or '٣', which ``int()`` refuses or
    reads, and ``int()`` refuses over 4,300 digits: a header value must not fail a feed."""
    v = value.strip()
    if not v or not v.isascii() or not v.isdigit():
        return None
    v = v.lstrip("0") or "0"
    return DELTA_MAX if len(v) > len(str(DELTA_MAX)) else min(int(v), DELTA_MAX)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_retry_after(
    value: str | None, *, date: str | None = None, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date, the
    latter measured from the response's Date header (so clock skew cancels out), else
    from ``now``. None when absent or unparseable; never negative."""
    if value is None or not value.strip():
        return None
    seconds = _delta_seconds(value)
    if seconds is not None:
        return float(seconds)
    when = _http_date(value.strip())
    if when is None:
        return None
    reference = _http_date(date) or now or utc_now()
    return min(max(0.0, (when - reference).total_seconds()), float(DELTA_MAX))


def cache_lifetime(headers: Mapping[str, str], now: datetime | None = None) -> timedelta | None:
    """How long from now the response stays fresh, from Cache-Control and Expires.

    RFC 9111: no-store/no-cache mean zero (a no-cache naming fields does not); s-maxage
    beats max-age (we are a shared cache: one fetch serves every reader of a merged
    feed); either beats Expires, which is measured from the Date header (else ``now``)
    and counts as expired when unparseable. The Age header is subtracted. None when the
    response says nothing.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    directives: dict[str, str] = {}
    for part in lower.get("cache-control", "").split(","):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name and name not in directives:
            directives[name] = value.strip().strip('"')
    lifetime: float | None = None
    # no-cache naming fields (no-cache="Set-Cookie", as AWS load balancers send with
    # their cookie) is the qualified form: only those fields need revalidating, the
    # response stays fresh (RFC 9111 5.2.2.4). Read as a bare no-cache, it lost max-age.
    if "no-store" in directives or directives.get("no-cache") == "":
        return timedelta(0)
    for name in ("s-maxage", "max-age"):
        if (seconds := _delta_seconds(directives.get(name, ""))) is not None:
            lifetime = float(seconds)
            break
    if lifetime is None and "expires" in lower:
        expires = _http_date(lower["expires"])
        reference = _http_date(lower.get("date")) or now or utc_now()
        lifetime = 0.0 if expires is None else (expires - reference).total_seconds()
    if lifetime is None:
        return None
    age = _delta_seconds(lower.get("age", ""))
    if age is not None:
        lifetime -= age
    # RFC 9111 1.2.2: treat delta-seconds beyond 2**31 as 2**31 (and keep timedelta sane).
    return timedelta(seconds=min(max(0.0, lifetime), float(DELTA_MAX)))
