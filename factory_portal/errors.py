"""Error pages: API paths answer ``application/problem+json`` even when no view ran (unknown
URL, server error); pages get the portal's HTML error pages."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from factory_portal.api import PROBLEM_CONTENT_TYPE

API_PREFIXES = ("/api/", "/v1/")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def _problem(status: int, title: str, detail: str) -> HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _problem(404, "Not found", f"No API resource at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _problem(500, "Server error", "The server failed; the request was not applied.")
    return defaults.server_error(request)
