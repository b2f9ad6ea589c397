"""Which IP addresses a fetch may contact: literal IP hosts in every spelling the C
resolver accepts, and the kinds of non-public address (loopback, private, link-local,
CGNAT, NAT64/6to4/mapped forms judged by their IPv4 address, ...) refused by default."""

from __future__ import annotations

import ipaddress
import re
import socket

__all__ = ["IPAddress", "IPNetwork", "address_refusal", "parse_ip_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: embeds an IPv4 address
_NON_PUBLIC_V6 = (ipaddress.IPv6Network("64:ff9b:1::/48"),)  # RFC 8215 local-use NAT64
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598 shared address space
_NUMERIC_V4 = re.compile(r"[0-9a-fA-FxX.]+")


def parse_ip_host(host: str) -> IPAddress | None:
    """The IP address a URL host denotes as a literal, or None for a name.

    Accepts every form the C resolver's ``inet_aton`` does (``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``, ``127.1``) so odd spellings cannot dodge the check.
    """
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(h) and h.count(".") <= 3:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """The kind of non-public address ``ip`` is ("loopback", "private", ...), or None
    when it is a public unicast address. IPv4 embedded in IPv6 (mapped, 6to4, NAT64)
    is judged by the IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded)
        if ip.is_site_local or any(ip in net for net in _NON_PUBLIC_V6):
            return "private"
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "shared (CGNAT)"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "non-global"),
    )
    return next((reason for hit, reason in checks if hit), None)
