"""``/healthz`` (liveness) and ``/readyz`` (readiness), answered before tenant routing so that
load balancers and process managers can probe any host name, including an IP.

``/readyz`` checks the database and the broker. Only the database makes an instance unready
(503): without Redis the portal still serves pages and ingest (deferred work waits in its
outboxes), so taking every instance out of the load balancer during a Redis outage would turn a
degraded service into an outage. The broker's state is reported (``"status": "degraded"``).

The answer is public (probes carry no credentials), so it says only which check failed
(``"error": "unavailable"``); the exception, which names hosts, ports and users, goes to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 1.0
UNAVAILABLE = "unavailable"


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not ready"
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def _check_broker() -> str | None:
    from factory_portal.celery import app

    try:
        with app.connection_for_write(
            connect_timeout=READY_TIMEOUT_SECONDS,
            transport_options={"socket_connect_timeout": READY_TIMEOUT_SECONDS},
        ) as conn:
            # No retries: an unreachable broker is the answer, not something to wait out.
            conn.ensure_connection(max_retries=0, timeout=READY_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def readiness() -> tuple[str, dict[str, dict[str, object]]]:
    """``ready``, ``degraded`` (broker down: still serving) or ``not ready`` (no database)."""
    checks: dict[str, dict[str, object]] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        started = time.perf_counter()
        error = check()
        if error:
            logger.warning("readiness: the %s check failed: %s", name, error)
        checks[name] = {
            "ok": error is None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            **({"error": UNAVAILABLE} if error else {}),
        }
    if not checks["database"]["ok"]:
        return "not ready", checks
    return ("ready" if checks["broker"]["ok"] else "degraded"), checks


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            status, checks = readiness()
            return JsonResponse(
                {"status": status, "checks": checks}, status=503 if status == "not ready" else 200
            )
        return self.get_response(request)
