"""URLs that carry credentials (``https://user:secret@host/feed``, as private feeds are
often given): how they are shown and what leaves the machine.

The fetcher sends the credentials as HTTP Basic auth (``fetch.py``); everywhere else a
feed URL is shown (``feeds list``, ``poll``, logs, error messages) the password becomes
``***`` (a user name without a password, often a token, too), and story output and
exports carry the feed URL without them. ``feeds export`` (OPML) keeps them: it is the
user's own subscription list. Stdlib only: errors.py imports this.
"""

from __future__ import annotations

import re

__all__ = ["display_url", "without_credentials"]

# scheme "://" userinfo "@": the userinfo runs to the authority's last "@" (a raw "@" in
# a password is invalid but common, and that is how URL parsers split it too). A
# ``feed:`` in front (``feed:https://ann:secret@host/``, a browser's subscribe link) is
# part of the scheme: the password was shown.
_USERINFO = re.compile(r"((?:[fF][eE][eE][dD]:)?[a-zA-Z][a-zA-Z0-9+.\-]*://)([^/?#]*)@")


def display_url(url: str) -> str:
    """``url`` fit to show or log: ``https://ann:***@host/feed``, ``https://***@host/``."""
    match = _USERINFO.match(url)
    if match is None:
        return url
    user, colon, _ = match.group(2).partition(":")
    shown = f"{user}:***" if colon else "***"
    return f"{match.group(1)}{shown}@{url[match.end() :]}"


def without_credentials(url: str) -> str:
    """``url`` without its userinfo: what may be published (exports, story output)."""
    match = _USERINFO.match(url)
    return url if match is None else match.group(1) + url[match.end() :]
