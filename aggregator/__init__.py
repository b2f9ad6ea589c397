"""aggregator: fetch, parse, extract, classify and store internet-industry news.

The public entry point is :func:`aggregator.app.make_app`; the CLI, daemon and HTTP
server are thin front ends over it.
"""

__version__ = "0.1.0"
