"""Static HTTP server for the bundled offline demo (``aggregator/demo/``).

Owns: serving the demo's feeds and article pages from 127.0.0.1 so that the whole
pipeline (fetch, parse, extract, classify) can run without a network. Feed and page
files are templates: the literal token ``{{BASE}}`` is replaced on the fly with the
server's own origin (``http://127.0.0.1:PORT``), so links work whatever port the OS
picked. Each response carries a strong ETag (a hash of the body actually served) and a
fixed Last-Modified, and conditional requests are answered with 304 (RFC 9110 §13),
which is what the fetcher's caching path needs to be exercised end to end.

Must not: import anything from ``aggregator`` (it is a leaf, usable from tests and
benchmarks), touch the network beyond its own socket, or log per request unless asked.
Stdlib only.

    python -m aggregator.demo_server [--port N] [--root DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import threading
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

__all__ = ["BASE_TOKEN", "DEMO_ROOT", "LAST_MODIFIED", "DemoServer", "main"]

log = logging.getLogger(__name__)

DEMO_ROOT = Path(__file__).resolve().parent / "demo"
BASE_TOKEN = "{{BASE}}"
# Fixed rather than the files' mtimes, which depend on how the package was installed;
# a little after the newest demo story.
LAST_MODIFIED = datetime(2025, 6, 15, 8, 0, 0, tzinfo=UTC)

_TEXT = "; charset=utf-8"
CONTENT_TYPES: dict[str, str] = {
    ".xml": "application/rss+xml" + _TEXT,
    ".rss": "application/rss+xml" + _TEXT,
    ".atom": "application/atom+xml" + _TEXT,
    ".rdf": "application/rdf+xml" + _TEXT,
    ".json": "application/json" + _TEXT,
    ".html": "text/html" + _TEXT,
    ".htm": "text/html" + _TEXT,
    ".yaml": "application/yaml" + _TEXT,
    ".yml": "application/yaml" + _TEXT,
    ".md": "text/markdown" + _TEXT,
    ".txt": "text/plain" + _TEXT,
}
FEED_JSON_TYPE = "application/feed+json" + _TEXT


def content_type(rel: PurePosixPath) -> str:
    """Media type for a file under the root; JSON under ``feeds/`` is JSON Feed."""
    suffix = rel.suffix.lower()
    if suffix == ".json" and rel.parts[:1] == ("feeds",):
        return FEED_JSON_TYPE
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): ignore ``W/``."""
    if header.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in header.split(","))


def _not_modified_since(header: str) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False  # an invalid date is ignored (RFC 9110 §13.1.3)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since >= LAST_MODIFIED


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Port 0 asks for a fresh port; reusing a TIME_WAIT one is fine for a fixed --port.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], root: Path, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.root = root
        self.verbose = verbose
        host, port = self.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "aggregator-demo/1"
    protocol_version = "HTTP/1.1"

    @property
    def _srv(self) -> _Server:
        assert isinstance(self.server, _Server)
        return self.server

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        if self._srv.verbose:
            log.info("%s %s", self.address_string(), format % args)

    def _respond(self, *, send_body: bool) -> None:
        found = self._resolve()
        if found is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain" + _TEXT, send_body)
            return
        body, ctype = found
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(LAST_MODIFIED, usegmt=True),
            "Cache-Control": "no-cache",
        }
        # If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 §13.2.2).
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (inm is not None and _etag_matches(inm, etag)) or (
            inm is None and ims is not None and _not_modified_since(ims)
        ):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        self._send(HTTPStatus.OK, body, ctype, send_body, headers)

    def _resolve(self) -> tuple[bytes, str] | None:
        """Map the request path to (served body, content type), or None for 404."""
        path = unquote(urlsplit(self.path).path)  # the query (utm_* etc.) is ignored
        if path in ("", "/"):
            return self._index(), "text/html" + _TEXT
        rel = PurePosixPath(path.lstrip("/"))
        if any(part in ("", ".", "..") or part.startswith(".") for part in rel.parts):
            return None
        root = self._srv.root
        file = (root / rel).resolve()
        if not file.is_file() or not file.is_relative_to(root):
            return None
        ctype = content_type(rel)
        data = file.read_bytes()
        if "charset=utf-8" in ctype:
            data = data.replace(BASE_TOKEN.encode(), self._srv.base_url.encode())
        return data, ctype

    def _index(self) -> bytes:
        feeds = sorted((self._srv.root / "feeds").glob("*"))
        items = "".join(
            f'<li><a href="/feeds/{escape(f.name)}">{escape(f.name)}</a></li>' for f in feeds
        )
        return (
            "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<title>aggregator demo</title></head><body><h1>aggregator offline demo</h1>"
            f"<ul>{items}</ul><p><a href=/feeds.yaml>feeds.yaml</a></p></body></html>"
        ).encode()

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        ctype: str,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class DemoServer:
    """The demo site on 127.0.0.1, in a background thread.

    >>> with DemoServer() as demo:          # doctest: +SKIP
    ...     urlopen(demo.base_url + "/feeds/circlenet.xml")
    """

    def __init__(
        self,
        root: Path | None = None,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        self.root = (root if root is not None else DEMO_ROOT).resolve()
        self.host = host
        self.port = port
        self.verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once started; what ``{{BASE}}`` is replaced with."""
        if self._server is None:
            raise RuntimeError("DemoServer is not started")
        return self._server.base_url

    def url(self, path: str) -> str:
        """Absolute URL of a path on the server, e.g. ``url("/feeds/govwire.xml")``."""
        return self.base_url + "/" + path.lstrip("/")

    def substitute(self, text: str) -> str:
        """Replace ``{{BASE}}`` in a template (e.g. the demo feeds.yaml) with base_url."""
        return text.replace(BASE_TOKEN, self.base_url)

    def feeds_yaml(self) -> str:
        """The root's feeds.yaml with ``{{BASE}}`` substituted: ready for config loading."""
        return self.substitute((self.root / "feeds.yaml").read_text(encoding="utf-8"))

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("DemoServer is already started")
        if not self.root.is_dir():
            raise FileNotFoundError(f"demo root is not a directory: {self.root}")
        self._server = _Server((self.host, self.port), self.root, self.verbose)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-server", daemon=True
        )
        self._thread.start()
        log.debug("demo server listening at %s", self._server.base_url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aggregator.demo_server",
        description="Serve the offline demo feeds and pages on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port (0 = random; default 8765)")
    parser.add_argument("--root", type=Path, default=None, help="directory to serve")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    demo = DemoServer(args.root, args.port, verbose=args.verbose)
    # Announce the address before blocking; with --port 0 the port is only known after bind.
    demo.start()
    print(f"Serving {demo.root} at {demo.base_url}/ (Ctrl-C to stop)", flush=True)
    for feed in sorted((demo.root / "feeds").glob("*")):
        print(f"  {demo.url('/feeds/' + feed.name)}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
