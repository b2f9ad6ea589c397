"""Where a fetch may connect, and how: host names resolved on threads of our own, every
address vetted against the fetch options, connections made only to the addresses checked,
and proxies from the environment mounted so that a request no proxy takes stays on the
checking path. Used by :mod:`aggregator.fetch`; it fetches nothing itself.

Every hop is checked: literal IP hosts (in any form the C resolver accepts, such as
``2130706433`` or ``0x7f.1``) before connecting; host names when the connection is made.
The transport's network backend resolves the name once through the fetcher's own resolver
(:class:`Resolver`: threads of its own, one lookup per name at a time, so a dead name
server delays only the feeds of its names), refuses if ANY address is non-public, and
connects to the addresses it checked, so DNS rebinding cannot slip in between check and
connect. When the environment configures a proxy (``HTTP_PROXY`` and friends, with
``trust_env``), the proxy resolves names itself; each hop is then resolved and checked
here first, which leaves a rebinding gap between our lookup and the proxy's. A request no
proxy takes (a ``NO_PROXY`` host, a scheme without a proxy) still goes through the
checking backend, pinned (:func:`proxy_mounts`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import httpcore
import httpx

from aggregator.addresses import IPAddress, parse_ip_host
from aggregator.errors import ConfigError
from aggregator.netstream import AsyncioBackend


class Policy(Protocol):
    """What the checks need of the fetch options (``fetch.FetchOptions``)."""

    def refusal(self, ip: IPAddress) -> str | None: ...


class Refused(Exception):
    """A host resolved to an address the options refuse; becomes a FetchError."""


def check_all(options: Policy, host: str, addresses: Iterable[IPAddress]) -> None:
    for ip in addresses:
        reason = options.refusal(ip)
        if reason is not None:
            shown = "" if parse_ip_host(host) == ip else f" (resolved from {host})"
            raise Refused(f"refused {reason} address {ip}{shown}")


def _getaddrinfo(host: str) -> tuple[IPAddress, ...]:
    """The system resolver's addresses for ``host``, in its order; blocks its thread."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            found[ipaddress.ip_address(sockaddr[0])] = None
    return tuple(found)


#: How long a finished lookup keeps answering for its name: about one poll, so the feeds
#: of a host share one lookup (and those of a dead name fail at once instead of each
#: waiting out its deadline), while a host that moves is seen by a later poll.
RESOLVED_FOR = 30.0


class Resolver:
    """Host names to addresses, on threads of its own; one lookup per name at a time.

    ``getaddrinfo`` holds a thread for as long as the system resolver waits: tens of
    seconds behind a dead name server. A fetch's deadline stops waiting for it but cannot
    stop the thread. On the loop's default executor (cpu + 4 threads, shared with other
    work such as the store's) a few such names took every thread, and every other host's
    lookup queued behind them until its feeds timed out too. So here:

    - IP literals (every spelling :func:`parse_ip_host` knows) are never looked up;
    - a name has at most one lookup in flight, which all of its callers await (through
      a shield: a caller that gives up does not cancel it for the others), and its
      answer or error then serves the name for ``RESOLVED_FOR`` seconds;
    - lookups run on this resolver's executor of ``threads`` threads, ended by
      :meth:`close` (a thread stuck in ``getaddrinfo`` ends when that returns).

    A slow name thus holds one thread however many feeds it has, and delays those feeds
    only: others wait for a thread only if ``threads`` distinct names are stuck at once.
    This caches lookups, not verdicts: callers check the addresses on every hop.
    """

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="aggregator-resolve")
        self._lookups: dict[str, asyncio.Future[tuple[IPAddress, ...]]] = {}

    async def resolve(self, host: str) -> tuple[IPAddress, ...]:
        ip = parse_ip_host(host)
        if ip is not None:
            return (ip,)
        lookup = self._lookups.get(host)
        if lookup is None:
            lookup = self._lookups[host] = self._start(host)
        return await asyncio.shield(lookup)

    def _start(self, host: str) -> asyncio.Future[tuple[IPAddress, ...]]:
        loop = asyncio.get_running_loop()
        lookup = loop.run_in_executor(self._executor, _getaddrinfo, host)

        def finished(done: asyncio.Future[tuple[IPAddress, ...]]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: every caller may have given up already
            loop.call_later(RESOLVED_FOR, self._forget, host, done)

        lookup.add_done_callback(finished)
        return lookup

    def _forget(self, host: str, lookup: asyncio.Future[tuple[IPAddress, ...]]) -> None:
        if self._lookups.get(host) is lookup:
            del self._lookups[host]

    def close(self) -> None:
        """End the threads without waiting for lookups stuck in the system resolver."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class CheckingBackend(AsyncioBackend):
    """Resolves once, refuses if any address is non-public, then connects to the
    checked addresses in resolver order, so there is nothing left to rebind."""

    def __init__(self, options: Policy, resolver: Resolver) -> None:
        self._options = options
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolver.resolve(host)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from e
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e.strerror or e}") from e
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no IP addresses")
        check_all(self._options, host, addresses)
        error: Exception | None = None
        for ip in addresses:  # like urllib3: each address in turn, each with the timeout
            try:
                return await super().connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        assert error is not None
        raise error


def proxy_mounts(limits: httpx.Limits) -> dict[str, httpx.AsyncBaseTransport | None]:
    """httpx ``mounts`` for the proxies the environment configures: a proxy transport per
    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY``, and None (no proxy) for each
    ``NO_PROXY`` host, with the patterns httpx itself derives (``get_environment_proxies``,
    after curl's rules); ``NO_PROXY=*`` means no proxy at all.

    httpx reads the environment only when it builds the client's default transport, and
    a request no proxy takes goes to that default. Ours is the checking one; httpx's
    resolved the name again when connecting, so with any proxy variable set a NO_PROXY
    host, or every http:// feed under HTTPS_PROXY alone, could rebind past the check to
    an internal address. So we build the mounts and give the client our transport."""
    env = urllib.request.getproxies()
    no_proxy = [host.strip() for host in env.get("no", "").split(",") if host.strip()]
    if "*" in no_proxy:
        return {}
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for scheme in ("http", "https", "all"):
        if proxy := env.get(scheme):
            try:
                mounts[f"{scheme}://"] = httpx.AsyncHTTPTransport(
                    proxy=proxy if "://" in proxy else f"http://{proxy}", limits=limits
                )
            except (ValueError, ImportError) as e:
                # a scheme httpx has no transport for; socks5:// without its SOCKS extra.
                # A traceback ended the daemon at its first cycle; httpx's URL in the
                # message hides a password.
                raise ConfigError(
                    f"{scheme.upper()}_PROXY in the environment cannot be used: {e}"
                ) from e
    for host in no_proxy:
        try:
            ip: IPAddress | None = ipaddress.ip_address(host.split("/")[0])
        except ValueError:
            ip = None
        if "://" in host:
            mounts[host] = None
        elif isinstance(ip, ipaddress.IPv6Address):
            mounts[f"all://[{host}]"] = None
        elif ip is not None or host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:  # a domain: itself and its subdomains
            mounts[f"all://*{host}"] = None
    return mounts
