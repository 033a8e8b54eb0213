"""Scope, role and isolation matrix of the API.

Keys: every endpoint with {no key, revoked key, wrong scope, another tenant's key} answers 401/403
problem+json and never data; the right key of the right tenant gets 200 (or a documented 404 when
the resource does not exist yet).

Browser sessions: every operation by {member, finance, admin, a user of another tenant, anonymous}
answers what the page role table (``permissions.AREAS``) says for the area of the page that shows
the same data — and that page answers the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import get_resolver, resolve
from django.utils import timezone
from django_tenants.utils import schema_context
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from alerts.oncall.models import Silence
from alerts.oncall.tests.incident_rows import incident_make
from alerts.services.settings import webhook_create
from billing.services import budget_set, run_budget_set
from factory_portal.accounts.authentication import (
    ApiAccess,
    ApiKeyPrincipal,
    DeclaredAccess,
)
from factory_portal.accounts.models import Role, User
from factory_portal.accounts.permissions import AREAS
from factory_portal.accounts.services import api_key_create, api_key_revoke, user_create
from tests.support import (
    OPERATOR_EMAIL,
    PASSWORD,
    bearer,
    host_client,
    key_for,
    logged_in_client,
)
from usage.models import Project

pytestmark = pytest.mark.django_db

# path, scope that reads it, answers acceptable with the right key
ENDPOINTS = [
    ("/api/v1/whoami", "read", {200}),
    ("/api/v1/projects", "read", {200}),
    ("/api/v1/usage", "read", {200}),
    ("/api/v1/steps", "read", {200}),
    ("/api/v1/costs", "read", {200}),
    ("/api/v1/costs/change", "read", {200}),
    ("/api/v1/savings", "read", {200}),
    ("/api/v1/runs", "read", {200}),
    ("/api/v1/errors", "read", {200}),
    ("/api/v1/runs/run-x", "read", {404}),
    ("/api/v1/forecast", "read", {404}),
    ("/api/v1/reports/monthly?month=2026-10", "read", {200}),
    ("/api/v1/notifications", "read", {200}),
    ("/api/v1/budgets", "read", {200}),
    ("/api/v1/commitments", "read", {200}),
    ("/api/v1/run-budgets", "read", {200}),
    ("/api/v1/runs/run-x/guard", "read", {404}),
    ("/api/v1/webhooks", "manage", {200}),
    ("/api/v1/alerts", "read", {200}),
    ("/api/v1/alerts/1", "read", {404}),
    ("/api/v1/silences", "read", {200}),
]
WRONG_SCOPE = {"read": ["ingest"], "manage": ["read", "ingest"]}


@pytest.mark.parametrize(("path", "scope", "ok"), ENDPOINTS)
def test_every_endpoint_refuses_every_wrong_credential(alpha, beta, path, scope, ok):
    client = host_client(alpha.host)
    with schema_context(alpha.schema):
        revoked, revoked_raw = api_key_create(name="old", scopes=["read", "manage"])
        api_key_revoke(api_key=revoked)
    _, wrong = key_for(alpha, WRONG_SCOPE[scope])
    _, other_tenant = key_for(beta, ["read", "manage", "ingest"])
    _, right = key_for(alpha, [scope])

    answers = {
        "no key": client.get(path),
        "revoked": client.get(path, **bearer(revoked_raw)),
        "other tenant": client.get(path, **bearer(other_tenant)),
    }
    for name, response in answers.items():
        assert response.status_code == 401, (name, response.status_code)
        assert response["Content-Type"] == "application/problem+json"
        assert "results" not in response.json() and "tokens" not in response.json()
    wrong_scope = client.get(path, **bearer(wrong))
    if path != "/api/v1/whoami":  # any valid key may ask who it is
        assert wrong_scope.status_code == 403
        assert wrong_scope["Content-Type"] == "application/problem+json"
    assert client.get(path, **bearer(right)).status_code in ok


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_wrong_methods_are_problems(alpha, method):
    _, raw = key_for(alpha, ["read", "manage"])
    response = getattr(host_client(alpha.host), method)("/api/v1/usage", **bearer(raw))
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"


@dataclass(frozen=True)
class Operation:
    """One API operation; ``area`` is the role table's area of ``page``, the page that shows (or
    changes) the same data (``None``: no browser session may, keys only). ``ok`` is what a role
    the table admits gets."""

    method: str
    path: str
    area: str | None
    page: str | None
    ok: int
    body: dict[str, object] = field(default_factory=dict)


SAVINGS_KEY = "model-0123456789abcdef"  # a well-formed recommendation key
WEBHOOK_URL = "https://1.1.1.1/hook"  # a public address literal: no DNS in the test
OPERATIONS = [
    Operation("get", "/api/v1/whoami", "signed_in", "GET /", 200),
    Operation("get", "/api/v1/projects", "signed_in", "GET /", 200),
    Operation("get", "/api/v1/notifications", "signed_in", "GET /notifications/", 200),
    Operation("get", "/api/v1/usage", "runs", "GET /usage/", 200),
    Operation("get", "/api/v1/steps", "runs", "GET /steps/", 200),
    Operation("get", "/api/v1/runs", "runs", "GET /runs/", 200),
    Operation("get", "/api/v1/errors", "runs", "GET /errors/", 200),
    Operation("get", "/api/v1/runs/run-x", "runs", "GET /runs/run-x/", 404),
    Operation("get", "/api/v1/status", "runs", "GET /status/", 200),
    Operation("get", "/api/v1/costs", "costs", "GET /costs/", 200),
    Operation("get", "/api/v1/costs/change", "costs", "GET /costs/", 200),
    Operation("get", "/api/v1/forecast", "costs", "GET /costs/", 404),
    Operation(
        "post",
        "/api/v1/quotes",
        "costs",
        "GET /costs/quotes/",
        422,  # the project has no finished run to quote from
        {"project": "checkout", "template": "spa", "run_type": "feature"},
    ),
    Operation("get", "/api/v1/savings?range=7d", "costs", "GET /costs/savings/", 200),
    Operation(
        "post",
        f"/api/v1/savings/recommendations/{SAVINGS_KEY}/dismiss",
        "admin",
        f"POST /costs/savings/{SAVINGS_KEY}/dismiss",
        201,
        {"note": "not now"},
    ),
    Operation(
        "delete",
        f"/api/v1/savings/recommendations/{SAVINGS_KEY}/dismiss",
        "admin",
        f"POST /costs/savings/{SAVINGS_KEY}/restore",
        404,  # nothing dismissed under this key: every role meets the same data
    ),
    Operation("get", "/api/v1/reports/monthly?month=2026-10", "costs", "GET /reports/", 200),
    Operation("get", "/api/v1/budgets", "budgets", "GET /budgets/", 200),
    Operation("get", "/api/v1/commitments", "costs", "GET /costs/commitments/", 200),
    Operation("get", "/api/v1/budgets/{budget}", "budgets", "GET /budgets/", 200),
    Operation("post", "/api/v1/budgets", "admin", "POST /budgets/", 201, {"amount": "5.00"}),
    Operation(
        "patch",
        "/api/v1/budgets/{budget}",
        "admin",
        "POST /budgets/{budget}/",
        200,
        {"amount": "7"},
    ),
    Operation("delete", "/api/v1/budgets/{budget}", "admin", "POST /budgets/{budget}/delete/", 204),
    Operation("get", "/api/v1/run-budgets", "budgets", "GET /budgets/runs/", 200),
    Operation("get", "/api/v1/run-budgets/{run_budget}", "budgets", "GET /budgets/runs/", 200),
    Operation(
        "post", "/api/v1/run-budgets", "admin", "POST /budgets/runs/", 201, {"amount": "5.00"}
    ),
    Operation(
        "patch",
        "/api/v1/run-budgets/{run_budget}",
        "admin",
        "POST /budgets/runs/",
        200,
        {"warn_percent": 70},
    ),
    Operation(
        "delete",
        "/api/v1/run-budgets/{run_budget}",
        "admin",
        "POST /budgets/runs/{run_budget}/delete/",
        204,
    ),
    Operation("get", "/api/v1/runs/run-x/guard", "runs", "GET /runs/run-x/", 404),
    Operation("get", "/api/v1/webhooks", "admin", "GET /settings/webhooks/", 200),
    Operation(
        "post",
        "/api/v1/webhooks",
        "admin",
        "POST /settings/webhooks/",
        201,
        {"name": "ops", "url": WEBHOOK_URL},
    ),
    Operation(
        "get", "/api/v1/webhooks/{webhook}", "admin", "GET /settings/webhooks/{webhook}/", 200
    ),
    Operation(
        "patch",
        "/api/v1/webhooks/{webhook}",
        "admin",
        "POST /settings/webhooks/{webhook}/toggle",
        200,
        {"enabled": False},
    ),
    Operation(
        "delete",
        "/api/v1/webhooks/{webhook}",
        "admin",
        "POST /settings/webhooks/{webhook}/delete",
        204,
    ),
    Operation("get", "/api/v1/alerts", "signed_in", "GET /alerts/", 200),
    Operation("get", "/api/v1/alerts/{incident}", "signed_in", "GET /alerts/{incident}/", 200),
    Operation(
        "post", "/api/v1/alerts/{incident}/ack", "oncall", "POST /alerts/{incident}/ack/", 200
    ),
    Operation("get", "/api/v1/silences", "signed_in", "GET /alerts/silences/", 200),
    Operation(
        "post",
        "/api/v1/silences",
        "oncall",
        "POST /alerts/silences/",
        201,
        {"duration": "1h", "reason": "maintenance"},
    ),
    Operation(
        "delete",
        "/api/v1/silences/{silence}",
        "oncall",
        "POST /alerts/silences/{silence}/expire/",
        204,
    ),
    Operation("post", "/api/v1/events", None, None, 200, {"events": []}),
    Operation("post", "/api/v1/runs", None, None, 200, {"runs": []}),
    Operation("post", "/v1/traces", None, None, 200, {}),
    Operation("post", "/v1/logs", None, None, 200, {}),
    Operation("post", "/v1/metrics", None, None, 200, {}),
]
TENANT_ROLES = (Role.MEMBER, Role.FINANCE, Role.ADMIN)


def _signed_in(tenant, email: str) -> Client:  # type: ignore[no-untyped-def]
    """A client with a session of ``email`` on ``tenant``'s host (the login form and its password
    hashing are tested elsewhere; here they would only cost time)."""
    client = host_client(tenant.host)
    with schema_context(tenant.schema):
        client.force_login(User.objects.get(email=email))
    return client


def _people(alpha, beta) -> dict[str, Client]:  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        for role in (Role.MEMBER, Role.FINANCE):
            user_create(email=f"{role}@alpha.test", role=role)
    clients = {
        Role.MEMBER: _signed_in(alpha, "member@alpha.test"),
        Role.FINANCE: _signed_in(alpha, "finance@alpha.test"),
        Role.ADMIN: _signed_in(alpha, alpha.admin_email),
        "anonymous": host_client(alpha.host),
    }
    # beta's admin, signed in on beta, sends that session cookie to alpha's host
    other = _signed_in(beta, beta.admin_email)
    other.defaults["HTTP_HOST"] = alpha.host
    clients["other tenant"] = other
    return clients


def _call(client: Client, method: str, path: str, body: dict[str, object]):  # type: ignore[no-untyped-def]
    """One request whose writes are rolled back afterwards, so every role meets the same data."""
    with transaction.atomic():
        if method == "get":
            response = client.get(path)
        elif method == "POST-form":
            response = client.post(path, body)
        else:
            response = getattr(client, method)(
                path, data=json.dumps(body), content_type="application/json"
            )
        transaction.set_rollback(True)
    return response


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_sessions_obey_the_page_role_table(alpha, beta, op):
    people = _people(alpha, beta)
    with schema_context(alpha.schema):
        Project.objects.create(slug="checkout", name="Checkout")
        budget = budget_set(amount=Decimal(100), project="checkout")
        run_budget = run_budget_set(template="spa", amount=Decimal(9))
        webhook = webhook_create(name="ops", url=WEBHOOK_URL)
        incident = incident_make()
        silence = Silence.objects.create(
            ends_at=timezone.now() + timedelta(hours=1), reason="r", created_by="ops@alpha.test"
        )
    ids = {
        "budget": budget.pk,
        "run_budget": run_budget.pk,
        "webhook": webhook.pk,
        "incident": incident.pk,
        "silence": silence.pk,
    }
    path = op.path.format(**ids)

    for who, client in people.items():
        response = _call(client, op.method, path, op.body)
        if who in TENANT_ROLES:
            allowed = op.area is not None and who in AREAS[op.area]
            expected = op.ok if allowed else 403
        else:  # anonymous, or a session of another tenant (unknown here)
            expected = 401
        assert response.status_code == expected, (who, op.method, path, response.content)
        if expected in (401, 403):
            assert response["Content-Type"] == "application/problem+json", who
            body = response.json()
            assert not {"results", "tokens", "run_id", "amount", "secret"} & set(body), who
        if expected == 403 and op.area is not None:
            detail = response.json()["detail"]
            assert all(str(role) in detail for role in AREAS[op.area]), detail

    if op.page is None:
        return
    page_method, page_path = op.page.split(" ", 1)
    page_path = page_path.format(**ids)
    for who in TENANT_ROLES:
        kind = "get" if page_method == "GET" else "POST-form"
        page = _call(people[who], kind, page_path, {})
        allowed = who in AREAS[op.area]
        assert (page.status_code == 403) == (not allowed), (who, op.page, page.status_code)


def test_the_leaks_named_in_the_issue_are_closed(alpha, beta):
    people = _people(alpha, beta)
    member, finance = people[Role.MEMBER], people[Role.FINANCE]
    for path in ("/api/v1/costs", "/api/v1/budgets", "/api/v1/reports/monthly?month=2026-10"):
        refused = member.get(path)
        assert refused.status_code == 403, path
        assert refused["Content-Type"] == "application/problem+json"
        assert "finance and admin roles" in refused.json()["detail"]
    assert member.get("/costs/").status_code == 403
    assert member.get("/budgets/").status_code == 403
    refused = finance.get("/api/v1/runs")
    assert refused.status_code == 403
    assert "member and admin roles" in refused.json()["detail"]
    assert finance.get("/runs/").status_code == 403
    assert finance.get("/api/v1/costs").status_code == 200
    assert finance.get("/api/v1/budgets").status_code == 200
    assert member.get("/api/v1/runs").status_code == 200
    # finance reads budgets but, as on the page, may not change them
    changed = finance.post("/api/v1/budgets", {"amount": "10"}, content_type="application/json")
    assert changed.status_code == 403 and "admin role" in changed.json()["detail"]


def test_session_writes_need_the_csrf_token(alpha):
    signed_in = logged_in_client(alpha.host, alpha.admin_email)
    strict = Client(HTTP_HOST=alpha.host, enforce_csrf_checks=True)
    strict.cookies = signed_in.cookies
    body = json.dumps({"amount": "12.00"})
    forged = strict.post("/api/v1/budgets", body, content_type="application/json")
    assert forged.status_code == 403
    assert forged["Content-Type"] == "application/problem+json"
    assert "CSRF" in forged.json()["detail"]
    strict.get("/budgets/")  # the page sets the CSRF cookie, as a browser would get it
    token = strict.cookies["csrftoken"].value
    made = strict.post(
        "/api/v1/budgets", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert made.status_code == 201, made.content


def test_operator_api_obeys_the_same_table(public_host):
    user_create(email="viewer@portal.test", role=Role.MEMBER, password=PASSWORD)
    viewer = logged_in_client(public_host, "viewer@portal.test")
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    assert operator.get("/api/v1/allocation-rules").status_code == 200
    refused = viewer.get("/api/v1/allocation-rules")
    assert refused.status_code == 403 and "operator role" in refused.json()["detail"]
    assert viewer.get("/pools/").status_code == 403  # the console page agrees
    _, platform_key = api_key_create(name="factory", scopes=["ingest", "read", "manage"])
    by_key = host_client(public_host).get("/api/v1/allocation-rules", **bearer(platform_key))
    assert by_key.status_code == 403
    assert host_client(public_host).get("/api/v1/allocation-rules").status_code == 401


def _api_views() -> list[tuple[str, type[APIView]]]:
    views = []
    for urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
        for pattern in get_resolver(urlconf).url_patterns:
            view = getattr(pattern.callback, "cls", None)
            documentation = (SpectacularAPIView, SpectacularSwaggerView)
            if view and issubclass(view, APIView) and not issubclass(view, documentation):
                views.append((f"{urlconf}: {pattern.pattern}", view))
    return views


def test_every_api_view_declares_who_may_use_it():
    views = _api_views()
    assert len(views) >= 17
    assert [DeclaredAccess] == api_settings.DEFAULT_PERMISSION_CLASSES
    for route, view in views:
        assert isinstance(getattr(view, "access", None), ApiAccess), route
        assert view.permission_classes == [DeclaredAccess], route
        assert view.get_permissions is APIView.get_permissions, route
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                kind = view.access.read if method == "get" else view.access.write
                assert kind is not None, f"{route} handles {method} without declaring it"
    # ...and the session matrix above exercises every one of the tenant host
    tenant_views = {view for route, view in views if route.startswith(settings.ROOT_URLCONF)}
    exercised = {
        resolve(
            op.path.split("?")[0].format(budget=1, run_budget=1, webhook=1, incident=1, silence=1)
        ).func.cls
        for op in OPERATIONS
    }
    assert tenant_views <= exercised, tenant_views - exercised


def test_a_view_that_declares_nothing_refuses_everyone(alpha):
    class Forgotten(APIView):
        def get(self, request):  # type: ignore[no-untyped-def]
            return Response({"secret": 1})

    with schema_context(alpha.schema):
        admin = User.objects.get(email=alpha.admin_email)
        key, _ = api_key_create(name="all", scopes=["ingest", "read", "manage"])
        for user, auth in ((admin, None), (ApiKeyPrincipal(key), key)):
            request = APIRequestFactory().get("/api/v1/forgotten", HTTP_HOST=alpha.host)
            force_authenticate(request, user=user, token=auth)
            response = Forgotten.as_view()(request)
            assert response.status_code == 403
            assert "declares no access" in str(response.data["detail"])
