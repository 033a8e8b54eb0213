"""``/healthz`` (liveness) and ``/readyz`` (database and broker reachable), answered before tenant
routing so that load balancers and process managers can probe any host name, including an IP."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

READY_TIMEOUT_SECONDS = 2.0


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
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=READY_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def readiness() -> tuple[bool, dict[str, dict[str, object]]]:
    checks: dict[str, dict[str, object]] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        started = time.perf_counter()
        error = check()
        checks[name] = {
            "ok": error is None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            **({"error": error} if error else {}),
        }
    return all(c["ok"] for c in checks.values()), checks


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ok, checks = readiness()
            return JsonResponse(
                {"status": "ready" if ok else "not ready", "checks": checks},
                status=200 if ok else 503,
            )
        return self.get_response(request)
