"""Webhook payloads, their signatures and the addresses a webhook may reach (pure).

Every request carries ``X-Portal-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 with the endpoint's secret over ``"<t>.<raw body>"``. A receiver recomputes it from
the raw body, compares in constant time, and rejects timestamps older than a few minutes (replay).

``address_public`` is the address rule; resolving and connecting are the services' business
(``alerts.services.webhook_http``), never this module's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

SIGNATURE_HEADER = "X-Portal-Signature"
EVENT_HEADER = "X-Portal-Event"
ID_HEADER = "X-Portal-Delivery"
SCHEMA_VERSION = "1"


def payload_body(
    *, alert_id: str, kind: str, created_at: datetime, tenant: str, title: str, data: dict[str, Any]
) -> bytes:
    """The JSON body (stable schema, version 1): ``id`` is the alert's id, the same on every
    retry, so receivers can de-duplicate."""
    document = {
        "id": alert_id,
        "schema_version": SCHEMA_VERSION,
        "type": kind,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "tenant": tenant,
        "title": title,
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def signature_valid(
    secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300
) -> bool:
    """What a receiver does: parse the header, check the age, compare in constant time."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, header)


# Never public, whatever the running Python's ``is_global`` table says (it changed between
# releases: 3.11 calls site-local fec0::/10 and 64:ff9b:1::/48 global). Broadcast
# 255.255.255.255 is in 240.0.0.0/4; multicast is refused by ``is_multicast``.
_REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local (cloud metadata services)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "240.0.0.0/4",  # reserved, and the limited broadcast address
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "::ffff:0:0/96",  # IPv4-mapped: a public host publishes its IPv4 in an A record
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
    )
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def address_public(address: str) -> bool:
    """Whether a webhook may connect to ``address``: a global unicast address, and for NAT64
    (64:ff9b::/96) and 6to4 (2002::/16) addresses the IPv4 address they embed is one too.

    Refused: private, loopback, link-local, site-local, unique-local, carrier-grade NAT,
    multicast, broadcast, unspecified, reserved and documentation addresses; IPv4-mapped and
    IPv4-compatible IPv6, local-use NAT64 and Teredo; scoped IPv6 addresses (``%eth0``).
    Raises ``ValueError`` for text that is not an IP address.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        if ip in _NAT64_WELL_KNOWN:  # inside ::/8, which ``is_reserved`` counts as reserved
            return address_public(str(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)))
        if ip.sixtofour is not None and not address_public(str(ip.sixtofour)):
            return False
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return False
    return not any(ip in net for net in _REFUSED_NETWORKS if net.version == ip.version)


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    return [a for a in addresses if not address_public(a)]


def retry_delay_s(attempt: int, *, base_s: int = 30, cap_s: int = 3600) -> int:
    """Exponential backoff after failed attempt ``attempt`` (1-based): 30 s, 1 min, 2 min, …"""
    delay: int = base_s * 2 ** (attempt - 1)  # an int: attempt >= 1, so no negative power
    return min(cap_s, delay)
