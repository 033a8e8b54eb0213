"""Error pages: API paths answer ``application/problem+json`` even when no view ran (unknown
URL, server error); pages get the portal's HTML error pages.

``ApiProblemMiddleware`` makes that hold whatever produced the error: with ``DEBUG`` on Django
answers 404 and 500 with its own HTML pages without calling the handlers below, and a request
Django refuses itself (400) or a tenant host that does not exist never reaches them either.

A database that cannot be reached (restarting, failing over, connection lost mid-request) is a
retryable ``503`` with ``Retry-After``, not a 500: the request's transaction was rolled back, so
sending the same request again is safe (ingest is idempotent by event id).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from http import HTTPStatus

import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

# Not imported from factory_portal.api: that module imports rest_framework.views, whose settings
# import factory_portal.api again; this module is loaded first, as a middleware.
PROBLEM_CONTENT_TYPE = "application/problem+json"
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


def _problem_body(status: int, title: str, detail: str) -> str:
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})


def _problem(status: int, title: str, detail: str) -> HttpResponse:
    body = _problem_body(status, title, detail)
    return HttpResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


class WriteRace(OperationalError):
    """A write lost a race: a concurrent transaction committed the same key first. Nothing is
    wrong with the database; the write run again sees the winner's rows."""


def is_conflict(error: BaseException | None) -> bool:
    """A deadlock, a serialization failure or a lost race (``WriteRace``): the database is fine,
    concurrent writes collided."""
    if isinstance(error, WriteRace):
        return True
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


def _title_and_detail(request: HttpRequest, status: int) -> tuple[str, str]:
    try:
        title, detail = HTTPStatus(status).phrase.capitalize(), HTTPStatus(status).description
    except ValueError:
        title, detail = "Error", ""
    if status == 404:
        detail = f"No API resource at {request.path}."
    elif status == 405:
        detail = f"{request.method} is not allowed here."
    elif status >= 500:
        detail = "The server failed; the request was not applied."
    return title, detail


class ApiProblemMiddleware:
    """Rewrite an error answer of an API path that is not ``application/problem+json`` into one
    of the same status (the other headers, e.g. ``Allow`` or the security headers, are kept).
    Placed before tenant routing, so an unknown host's 404 is covered too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        status = response.status_code
        if (
            status < 400
            or not _is_api(request)
            or response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return response
        body = _problem_body(status, *_title_and_detail(request, status))
        if response.streaming:
            problem = HttpResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if response.has_header(header):
                    problem[header] = response[header]
            return problem
        response.content = body.encode()
        response["Content-Type"] = PROBLEM_CONTENT_TYPE
        response.headers.pop("Content-Disposition", None)
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response
