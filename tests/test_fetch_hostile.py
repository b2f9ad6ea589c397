"""The fetcher against hostile servers and URLs: its safety rules (only public addresses,
checked on the address actually connected to, with or without a proxy configured; the
body cap and the deadline) attacked through real requests to real servers on 127.0.0.0/8.

127.0.0.1 stands for the public internet (allowed explicitly) and 127.0.0.2 for an
internal service the fetcher must never reach. Host names are answered by the OS resolver
seam (``socket.getaddrinfo``), as in test_fetch.py, never by /etc/hosts. What
test_fetch.py already shows (the common IP spellings, scheme and hop limits, credentials
across origins, single-coding bombs) is not repeated here."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import brotli
import pytest
from httpserver import LocalServer, closed_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, FetchOptions
from aggregator.types import FetchResult

T = TypeVar("T")
MiB = 1024 * 1024
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PUBLIC = "127.0.0.1"  # allowed by every Fetcher here
INTERNAL = "127.0.0.2"  # refused: loopback, and not in allowed_networks


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def options(**overrides: Any) -> FetchOptions:
    return FetchOptions(**{"allowed_networks": (f"{PUBLIC}/32",), "timeout": 5.0, **overrides})


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def fetch(url: str, **overrides: Any) -> FetchResult:
    async with Fetcher(options(**overrides)) as fetcher:
        return await fetcher.fetch(url)


def fetch_error(url: str, **overrides: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(fetch(url, **overrides))
    assert type(info.value) is FetchError
    return info.value


class Trap:
    """The internal service: a listener on ``host``:``port`` that counts connections and
    answers each with a page of its own, so reaching it shows as a result, not a hang."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_server((host, port))
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # closed by close()
            while True:
                conn, _ = self._sock.accept()
                self.connections += 1
                with conn:
                    conn.settimeout(2)
                    with contextlib.suppress(OSError):
                        conn.recv(65536)
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n"
                            b"Connection: close\r\n\r\nINTERNAL"
                        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone does not
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def trap(server: LocalServer) -> Iterator[Trap]:
    """The internal service on 127.0.0.2 at the public server's port: a URL's port then
    does not tell which of the two the fetcher connected to."""
    try:
        t = Trap(INTERNAL, server.port)
    except OSError:
        pytest.skip(f"cannot bind {INTERNAL}:{server.port} on this system")
    yield t
    t.close()


class Names:
    """The OS resolver with names under ``.test`` answered from ``answers``: each lookup
    of a name takes its next answer (the last one repeats), as a DNS server under the
    attacker's control would give them. Other names resolve for real. Counts lookups."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self._names: list[str] = []  # list.append is atomic across resolver threads
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if not name.endswith(".test"):
                return real(host, port, *args, **kwargs)
            self._names.append(name)
            queue = self.answers[name]
            ips = queue.pop(0) if len(queue) > 1 else queue[0]
            port = int(port or 0)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    @property
    def lookups(self) -> Counter[str]:
        return Counter(self._names)


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    return Names(monkeypatch)


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("[::127.0.0.2]", id="v4-compatible-v6"),
        pytest.param("[::ffff:0:7f00:2]", id="v4-translated-v6"),
        pytest.param("[64:ff9b::7f00:2]", id="nat64"),
        pytest.param("[64:ff9b:1::7f00:2]", id="local-nat64"),
        pytest.param("[2002:7f00:2::]", id="6to4"),
        pytest.param("[2001:0:7f00:2::]", id="teredo"),
        pytest.param("[fe80::1%25lo]", id="scoped-link-local"),
        pytest.param("[::ffff:127.0.0.2%25lo]", id="scoped-mapped"),
        pytest.param("0", id="zero"),
        pytest.param("0x7F.0x0.0x0.0x2", id="hex-octets"),
        pytest.param("0x7f000002", id="hex-whole"),
        pytest.param("x@127.0.0.2", id="userinfo"),
        pytest.param("127.0.0.1@127.0.0.2", id="ip-as-userinfo"),
    ],
)
@pytest.mark.parametrize("hop", ["asked", "redirect"])
def test_internal_address_spellings_are_refused(
    server: LocalServer, trap: Trap, host: str, hop: str
) -> None:
    target = f"http://{host}:{server.port}/feed.xml"
    url = server.redirect("/hop", target) if hop == "redirect" else target
    error = fetch_error(url)
    assert error.message.startswith("refused ") and " address " in error.message
    assert trap.connections == 0
    assert [r.path for r in server.requests] == (["/hop"] if hop == "redirect" else [])


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("//127.0.0.2:{port}/feed.xml", id="protocol-relative"),
        pytest.param("http://127.0.0.2:{port}#@127.0.0.1:{port}/", id="fragment-before-at"),
        pytest.param("http://127.0.0.2:{port}?@127.0.0.1:{port}/", id="query-before-at"),
        pytest.param("  HTTP://127.0.0.2:{port}/feed.xml  ", id="spaces-and-case"),
    ],
)
def test_redirect_spellings_of_an_internal_address_are_refused(
    server: LocalServer, trap: Trap, location: str
) -> None:
    url = server.redirect("/hop", location.format(port=server.port))
    assert "refused loopback address 127.0.0.2" in fetch_error(url).message
    assert trap.connections == 0


@pytest.mark.parametrize(
    ("location", "message"),
    [
        pytest.param("gopher://127.0.0.2:70/_x", "unsupported URL scheme", id="gopher"),
        pytest.param("dict://127.0.0.2:11211/", "unsupported URL scheme", id="dict"),
        pytest.param("/feed.xml\rX-Injected: 1", "invalid URL in redirect", id="bare-cr"),
        pytest.param("http:\\\\127.0.0.2:{port}\\feed.xml", "HTTP 404", id="backslashes"),
        pytest.param("/\\127.0.0.2:{port}/feed.xml", "HTTP 404", id="slash-backslash"),
    ],
)
def test_odd_redirect_targets_never_reach_the_internal_address(
    server: LocalServer, trap: Trap, location: str, message: str
) -> None:
    """Backslashes are path characters to httpx (not slashes, as in WHATWG URLs), so
    those Locations stay on the origin; whatever a URL parses to, the connection goes to
    the host it parsed to, after the check."""
    raw = f"HTTP/1.1 302 Found\r\nLocation: {location.format(port=server.port)}\r\n"
    url = server.route("/hop", raw=(raw + "Content-Length: 0\r\n\r\n").encode("latin-1"))
    assert message in fetch_error(url).message
    assert trap.connections == 0


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "0"])
@pytest.mark.parametrize("hop", ["asked", "redirect"])
def test_a_port_out_of_range_is_an_invalid_url(server: LocalServer, port: str, hop: str) -> None:
    """Such a port escaped fetch() as OverflowError from connect() (0 became port 80)."""
    target = f"http://{PUBLIC}:{port}/feed.xml"
    url = server.redirect("/hop", target) if hop == "redirect" else target
    where = " in redirect" if hop == "redirect" else ""
    assert fetch_error(url).message == f"invalid URL{where}: port {port} out of range"


# --------------------------------------------------------------------------- names


def test_a_name_with_any_internal_address_is_refused_whole(
    server: LocalServer, trap: Trap, names: Names
) -> None:
    names.answers["mixed.test"] = [[PUBLIC, INTERNAL]]
    server.route("/feed.xml", body=FEED)
    error = fetch_error(f"http://mixed.test:{server.port}/feed.xml")
    assert error.message == "refused loopback address 127.0.0.2 (resolved from mixed.test)"
    assert server.requests == [] and trap.connections == 0


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({}, id="without-proxy"),
        pytest.param({"HTTP_PROXY": "{proxy}", "NO_PROXY": "rebind.test"}, id="no-proxy-host"),
        pytest.param({"HTTP_PROXY": "{proxy}", "NO_PROXY": "*"}, id="no-proxy-star"),
        pytest.param({"HTTPS_PROXY": "{proxy}"}, id="proxy-for-https-only"),
    ],
)
def test_the_connection_goes_to_the_address_that_was_checked(
    server: LocalServer,
    trap: Trap,
    names: Names,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
) -> None:
    """DNS rebinding: the name answers a public address to the check and an internal one
    to any later lookup. The fetcher must connect to the address it checked, also when
    the environment configures a proxy that this request does not use (a NO_PROXY host,
    or a proxy for https only): httpx's own connection pool, which served such requests,
    looked the name up again and connected to 127.0.0.2."""
    proxy = f"http://{PUBLIC}:{closed_port()}"  # a request sent there would fail
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(proxy=proxy))
    names.answers["rebind.test"] = [[PUBLIC], [INTERNAL]]
    server.route("/feed.xml", body=FEED)
    result = run(fetch(f"http://rebind.test:{server.port}/feed.xml"))
    assert result.body == FEED
    assert trap.connections == 0
    assert names.lookups["rebind.test"] == 1
    assert [(r.host, r.proxied) for r in server.requests] == [("rebind.test", False)]


# --------------------------------------------------------------------------- bodies


def _gzip_with_comment(data: bytes, comment_size: int) -> bytes:
    """A gzip member whose header carries a comment (FLG.FCOMMENT, RFC 1952 §2.3.1) of
    ``comment_size`` bytes: input a decoder consumes without producing any output."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x10" + b"\0\0\0\0" + b"\0\xff" + b"c" * comment_size + b"\0"
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


def _brotli(data: bytes) -> bytes:
    return bytes(brotli.compress(data, quality=1))


SWALLOWED = 32 * MiB  # what the outer coding expands to, none of it output at the end


@pytest.mark.parametrize(
    ("codings", "body"),
    [
        pytest.param(
            "gzip, br",
            lambda: _brotli(gzip.compress(FEED) + b"\0" * SWALLOWED),
            id="br-over-gzip-then-padding",
        ),
        pytest.param(
            "gzip, br",
            lambda: _brotli(_gzip_with_comment(FEED, SWALLOWED)),
            id="br-over-gzip-comment",
        ),
        pytest.param(
            "gzip, gzip",
            lambda: gzip.compress(gzip.compress(FEED) + b"\0" * SWALLOWED, 1),
            id="gzip-over-gzip-then-padding",
        ),
    ],
)
def test_every_decoding_step_counts_against_the_cap(
    server: LocalServer, codings: str, body: Callable[[], bytes]
) -> None:
    """A stacked coding whose inner step swallows what the outer one expands to (bytes
    after the inner stream's end, which are ignored, or a gzip header comment) gave a
    tiny decoded body: only the last step's output was counted, so the outer step could
    inflate without limit. Under brotli that ran synchronously on the event loop: 13 KB
    inflating to 8 GiB held every feed's fetching for 17.7 s, against a 2 s deadline."""
    encoded = body()
    assert len(encoded) < MiB // 4
    url = server.route("/bomb", body=encoded, headers={"Content-Encoding": codings})
    error = fetch_error(url, max_body=MiB)
    assert error.message == f"body too large: more than {MiB} bytes decoded"


@pytest.mark.parametrize(("layers", "ok"), [(5, True), (6, False), (1000, False)])
def test_at_most_five_content_codings(server: LocalServer, layers: int, ok: bool) -> None:
    """As curl (CVE-2022-32206) and urllib3 (CVE-2025-66418): each coding is a decoder
    and a step of work per read. A thousand nested gzip layers (a 22 KB body, a 6 KB
    header) escaped fetch() as RecursionError."""
    body = FEED
    for _ in range(layers):
        body = gzip.compress(body, mtime=0)
    url = server.route(
        "/nested", body=body, headers={"Content-Encoding": ", ".join(["gzip"] * layers)}
    )
    if ok:
        assert run(fetch(url)).body == FEED
    else:
        error = fetch_error(url)
        assert error.message == f"too many content codings: {layers} (at most 5)"


_FETCH_IN_A_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from aggregator.errors import FetchError
    from aggregator.fetch import Fetcher, FetchOptions

    async def main() -> None:
        options = FetchOptions(allowed_networks=("127.0.0.1/32",), timeout=1.0)
        async with Fetcher(options) as fetcher:
            try:
                await fetcher.fetch(sys.argv[1])
            except FetchError as e:
                print(e.message)

    asyncio.run(main())
    """
)


def test_a_negative_chunk_size_is_refused_within_the_deadline(server: LocalServer) -> None:
    """A chunk size of -5 spun the event loop: no await, so neither the deadline nor any
    other feed's fetch could run again. In a child process, so the spin cannot take the
    test run with it."""
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\naaaaa\r\n0\r\n\r\n"
    url = server.route("/chunks", raw=raw)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _FETCH_IN_A_CHILD, url],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the fetch outlived its 1 s deadline by 9 s")
    assert "bad chunk size" in child.stdout, child.stderr


# --------------------------------------------------------------------------- generated

# Weighted toward the forms that parse to a host and port (the http scheme, the server's
# port), so that most examples get as far as the address check.
_SCHEMES = ["http://"] * 8 + ["https://", "HTTP://", "http:/", "http:", "//", "http:\\\\"]
_SCHEMES += ["", "ftp://", "javascript:", "data:text/xml,", "file://", " http://", "http://\t"]
_HOSTS = ["{internal}"] * 4 + ["{public}", "localhost", "[::1]", "[::ffff:{internal}]", "[::1"]
_HOSTS += ["0x7f.0.0.2", "2130706434", "127.1", "%31%32%37.0.0.2", "user:pw@{internal}"]
_HOSTS += ["{public}@{internal}", "{internal}#@{public}", "例え.テスト", "a..b", "", "%zz"]
_HOSTS += ["{public}.", "xn--", "{internal}\u3002", "[fe80::1%25eth0]", "127.0.0.2."]
_PORTS = [":{port}"] * 8 + ["", ":0", ":99999", ":abc", ":", ":+80", ": 80"]
_PATHS = ["/feed.xml"] * 4 + ["", "/%00", "/\x7f", "/é", "/sp ace", "?q=1#frag", "/../../x"]
_PATHS += ["/%2e%2e/", "\\..\\x", "/\r\nX: y", "/" + "a" * 3000]


@pytest.mark.filterwarnings("ignore")
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(_SCHEMES),
    st.sampled_from(_HOSTS),
    st.sampled_from(_PORTS),
    st.sampled_from(_PATHS),
    st.sampled_from([301, 302, 307, 308]),
)
def test_a_generated_redirect_target_is_followed_or_refused_and_never_reaches_inside(
    server: LocalServer, trap: Trap, scheme: str, host: str, port: str, path: str, status: int
) -> None:
    """Any Location, put together from the spellings attackers and broken servers use:
    the fetch ends in a result or a FetchError, never another exception, and never with a
    connection to the internal address."""
    fill = {"public": PUBLIC, "internal": INTERNAL, "port": server.port}
    location = (scheme + host + port + path).format(**fill)
    raw = f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    url = server.route("/hop", raw=raw.encode("utf-8"))
    with contextlib.suppress(FetchError):
        run(fetch(url, timeout=2.0))
    assert trap.connections == 0, location
