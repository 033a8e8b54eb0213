"""Error pages: API paths answer ``application/problem+json`` even when no view ran (unknown
URL, server error); pages get the portal's HTML error pages.

A database that cannot be reached (restarting, failing over, connection lost mid-request) is a
retryable ``503`` with ``Retry-After``, not a 500: the request's transaction was rolled back, so
sending the same request again is safe (ingest is idempotent by event id).
"""

from __future__ import annotations

import json
import sys

import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from factory_portal.api import PROBLEM_CONTENT_TYPE

API_PREFIXES = ("/api/", "/v1/")
# Django wraps driver errors of its own cursors; the ingest's binary COPY talks to psycopg directly.
DATABASE_UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
RETRY_AFTER_SECONDS = 2


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def _problem(status: int, title: str, detail: str) -> HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


def is_conflict(error: BaseException | None) -> bool:
    """A deadlock or serialization failure: the database is fine, concurrent writes collided."""
    cause = getattr(error, "__cause__", None) or error
    return isinstance(cause, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))


def unavailable(request: HttpRequest) -> HttpResponse:
    """503 for a database that cannot be reached (or a write conflict that outlived its
    retries); the page needs no database to render."""
    if _is_api(request):
        reason = (
            "The request conflicted with concurrent writes"
            if is_conflict(sys.exc_info()[1])
            else "The database is not reachable right now"
        )
        response = _problem(
            503,
            "Service unavailable",
            f"{reason}; nothing was stored. Retry the same request after {RETRY_AFTER_SECONDS} s.",
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _problem(404, "Not found", f"No API resource at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return unavailable(request)
    if _is_api(request):
        return _problem(500, "Server error", "The server failed; the request was not applied.")
    return defaults.server_error(request)
