"""Every answer of an ``/api/`` or ``/v1/`` path that is an error is ``application/problem+json``
(RFC 9457), whatever produced it and with ``DEBUG`` on as off: unknown paths, ids that do not
match the route, methods a route does not have, unknown tenant hosts, server errors."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from factory_portal.accounts.api import WhoAmIApi
from tests.support import bearer, key_for

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture(params=[False, True], ids=["DEBUG=0", "DEBUG=1"])
def debug(request):
    with override_settings(DEBUG=request.param):
        yield request.param


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/v1/nope",
        "/api/",
        "/api/v1/budgets/null,null",
        "/api/v1/webhooks/1.5",
        "/api/v1/webhooks/abc",
        "/api/v1/whoami/",
        "/v1/traces/extra",
    ],
)
def test_unknown_api_paths_answer_a_problem(alpha, debug, path):
    _, raw = key_for(alpha, ["read"])
    response = Client(HTTP_HOST=alpha.host).get(path, **bearer(raw))
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404 and body["title"] == "Not found"
    assert body["detail"] == f"No API resource at {path}."


def test_api_paths_of_an_unknown_host_answer_a_problem(debug):
    response = Client(HTTP_HOST="nobody.localhost").get("/api/v1/whoami")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_pages_keep_html_errors(alpha, debug):
    response = Client(HTTP_HOST=alpha.host).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_the_route_lacks_answers_a_problem_with_allow(alpha, debug):
    _, raw = key_for(alpha, ["read"])
    response = Client(HTTP_HOST=alpha.host).delete("/api/v1/whoami", **bearer(raw))
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert "GET" in response["Allow"]


def test_a_server_error_answers_a_problem_without_internals(alpha, debug, monkeypatch):
    def fail(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(WhoAmIApi, "get", fail)
    _, raw = key_for(alpha, ["read"])
    client = Client(HTTP_HOST=alpha.host, raise_request_exception=False)
    response = client.get("/api/v1/whoami", **bearer(raw))
    assert response.status_code == 500
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == "The server failed; the request was not applied."
    assert b"secret internals" not in response.content


@pytest.mark.parametrize(
    ("path", "scopes", "named"),
    [
        ("/api/v1/webhooks/99999999", ["manage"], "webhook endpoint"),
        ("/api/v1/budgets/99999999", ["read"], "budget"),
    ],
)
def test_a_missing_object_is_named_in_the_problem(alpha, debug, path, scopes, named):
    """Views' own 404s (a pk that matches the route but no row) say what is missing; they
    answered {"title": "Error", "status": 404} with no detail."""
    _, raw = key_for(alpha, scopes)
    response = Client(HTTP_HOST=alpha.host).get(path, **bearer(raw))
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["title"] == "Not found"
    assert body["detail"] == f"No {named} with id '99999999' here."
