"""Handing work to Celery from request paths without ever making a request wait on the broker.

Only work that is also recorded durably goes through here (outbox rows, rules the beat re-runs),
so a broker that is down costs a delay, never data. After a failed publish the broker is taken
as down for ``BACKOFF_S`` seconds in this process and publishes are skipped at once; kombu's own
reconnect attempts (several seconds each) would otherwise stall every request during an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from django_tenants.utils import schema_context

logger = logging.getLogger(__name__)
BACKOFF_S = 10.0
_lock = threading.Lock()
_down_until = 0.0


def enqueue(task: Any, *, schema: str, args: Sequence[Any] = (), countdown: float = 0) -> bool:
    """Publish ``task(*args)`` to run in ``schema``; False when the broker is (taken as) down."""
    global _down_until
    if time.monotonic() < _down_until:
        return False
    try:
        with schema_context(schema):
            task.apply_async(args=list(args), countdown=countdown or None, retry=False)
    except Exception as exc:
        with _lock:
            _down_until = time.monotonic() + BACKOFF_S
        logger.warning(
            "broker unavailable (%s): %s not enqueued; the outbox or the beat catches up, "
            "next try in %.0f s",
            type(exc).__name__,
            task.name,
            BACKOFF_S,
        )
        return False
    return True


def broker_reset() -> None:
    """Forget a recorded outage (tests)."""
    global _down_until
    _down_until = 0.0
