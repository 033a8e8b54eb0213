"""Who the client is, by address: one rule for every place that decides by it (the login
lock-out's per-address count, the networks allowed to scrape ``/metrics``)."""

from __future__ import annotations

import contextlib
import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: the TCP peer, or behind our TLS proxy (``PORTAL_BEHIND_TLS_PROXY``)
    the last ``X-Forwarded-For`` entry, the one that proxy appended (entries to its left are
    whatever the client sent). Behind the proxy the peer is the proxy itself, so deciding by
    ``REMOTE_ADDR`` there would treat every visitor as the proxy."""
    address: str = request.META.get("REMOTE_ADDR", "")
    if settings.PORTAL_BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        with contextlib.suppress(ValueError):  # no usable entry: the peer is all we know
            address = str(ipaddress.ip_address(forwarded))
    return address
