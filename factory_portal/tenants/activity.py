"""When each tenant last sent data, kept cheaply, so the beat's fan-outs can skip idle tenants.

Ingest calls ``activity_touch`` after a batch commits: one cache write per tenant and process at
most every ``TOUCH_EVERY_S`` (a process ingesting all day writes a tenant's key 288 times, not
once per batch). The fan-out reads every tenant's key in one ``get_many`` (one Redis MGET).

The cache is not a durable store, so a tenant counts as active when any of these is recent
(``TENANT_IDLE_AFTER_DAYS``): its cache mark, its ``usage_complete_until`` (the newest usage
timestamp, kept on its row), or its creation. When the cache has no marks to go by (flushed,
unreachable, or kept for less than the idle window), every tenant counts as active.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

KEY_PREFIX = "tenant-activity:"
SINCE_KEY = "tenant-activity-since"  # when marks started to be kept in this cache
TOUCH_EVERY_S = 300.0
_last_touch: dict[str, float] = {}


@dataclass(frozen=True)
class TenantActivityRow:
    schema_name: str
    created_at: datetime | None
    usage_complete_until: datetime | None


def idle_after() -> timedelta:
    return timedelta(days=int(getattr(settings, "TENANT_IDLE_AFTER_DAYS", 7)))


def activity_touch(schema_name: str, *, now: datetime | None = None) -> bool:
    """Mark ``schema_name`` as having sent data now; ``True`` when the cache was written (at
    most every ``TOUCH_EVERY_S`` per tenant and process). A cache that fails costs nothing."""
    clock = time.monotonic()
    last = _last_touch.get(schema_name)
    if last is not None and clock - last < TOUCH_EVERY_S:
        return False
    _last_touch[schema_name] = clock
    stamp = (now or timezone.now()).timestamp()
    try:
        cache.set(KEY_PREFIX + schema_name, stamp, timeout=None)
        cache.add(SINCE_KEY, stamp, timeout=None)
    except Exception:  # the cache is an optimisation: ingest never fails for it
        logger.warning("tenant activity not recorded", exc_info=True)
        return False
    return True


def activity_forget_local() -> None:
    """Forget this process's touch times (tests; a process that changes its cache)."""
    _last_touch.clear()


def active_schemas(rows: Iterable[TenantActivityRow], *, now: datetime) -> list[str]:
    """The schemas among ``rows`` (in their order) that sent data, or were created, within the
    idle window; all of them when the cache cannot tell."""
    rows = list(rows)
    cutoff = now - idle_after()
    try:
        since = cache.get(SINCE_KEY)
        marks = cache.get_many([KEY_PREFIX + r.schema_name for r in rows]) if rows else {}
    except Exception:
        logger.warning("tenant activity unreadable: every tenant counts as active", exc_info=True)
        return [r.schema_name for r in rows]
    if since is None or float(since) > cutoff.timestamp():
        return [r.schema_name for r in rows]
    active = []
    for row in rows:
        mark = marks.get(KEY_PREFIX + row.schema_name)
        if (
            (mark is not None and float(mark) >= cutoff.timestamp())
            or (row.usage_complete_until is not None and row.usage_complete_until >= cutoff)
            or (row.created_at is not None and row.created_at >= cutoff)
        ):
            active.append(row.schema_name)
    return active
