"""Webhook payloads and their signatures (pure).

Every request carries ``X-Portal-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 with the endpoint's secret over ``"<t>.<raw body>"``. A receiver recomputes it from
the raw body, compares in constant time, and rejects timestamps older than a few minutes (replay).
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


def address_private(address: str) -> bool:
    """Loopback, private, link-local, reserved or multicast: not a public internet address."""
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    return [a for a in addresses if address_private(a)]


def retry_delay_s(attempt: int, *, base_s: int = 30, cap_s: int = 3600) -> int:
    """Exponential backoff after failed attempt ``attempt`` (1-based): 30 s, 1 min, 2 min, …"""
    return min(cap_s, base_s * 2 ** (attempt - 1))
