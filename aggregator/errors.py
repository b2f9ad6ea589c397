"""The exception tree. Stdlib only; every module raises these, never bare library errors.

``App`` catches :class:`FeedError` per feed and :class:`ExtractError` per story, records
them and carries on; any other exception while taking up one feed's outcome is contained
the same way (rolled back, recorded on that feed, logged) so that one bad feed never stops
a poll; elsewhere anything else is a bug and propagates. The CLI maps
:class:`AggregatorError` to one line on stderr and an exit status.
"""

from __future__ import annotations

from .credentials import display_url


class AggregatorError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AggregatorError, ValueError):
    """Bad feeds.yaml / OPML, settings or CLI input."""


class UnknownTopicError(ConfigError):
    """A topic named that the taxonomy does not have: bad input to the CLI (exit 2, as
    any ConfigError), a resource that does not exist to ``serve`` (404, not 400)."""


class FeedError(AggregatorError):
    """A problem with one feed; recorded on that feed, never fatal to the cycle."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{display_url(url)}: {message}")
        self.url = url
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:  # survive pickling across worker processes
        return (self.__class__, (self.url, self.message), self.__dict__)


class FetchError(FeedError):
    """Network, TLS, HTTP status, refused address, size or time cap.

    ``http_status`` is set for HTTP error responses; ``retry_after_s`` when the server
    asked us to come back later (429/503 Retry-After); ``gone`` for 410; ``unanswered``
    when no answer came at all (the connection failed, or the request outlasted its
    deadline): what tells a host that is down or hanging from one that answers badly.
    ``host`` names the host that answered so (or did not answer): after a redirect, not
    the URL's own.
    """

    def __init__(
        self,
        url: str,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        gone: bool = False,
        unanswered: bool = False,
        host: str | None = None,
    ) -> None:
        super().__init__(url, message)
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.gone = gone
        self.unanswered = unanswered
        self.host = host

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (self.url, self.message), self.__dict__)


class ParseError(FeedError):
    """The body is not a feed (HTML page, broken XML/JSON, empty)."""


class ExtractError(AggregatorError):
    """An article page was unusable; the story is kept without full text."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (self.url, self.message), self.__dict__)


class ModelError(AggregatorError):
    """Missing or incompatible classifier artifact, or taxonomy mismatch."""


class StoreError(AggregatorError):
    """Wraps SQLAlchemy / driver errors."""


class StoreUnavailableError(StoreError):
    """The database cannot answer now (unreachable, restarting, locked): the request was
    fine and may be made again."""


class NotFoundError(StoreError):
    """A story, feed or topic that does not exist."""
