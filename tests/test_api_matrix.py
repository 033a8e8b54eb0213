"""Scope and isolation matrix of the read API: every endpoint with {no key, revoked key, wrong
scope, another tenant's key} answers 401/403 problem+json and never data; the right key of the
right tenant gets 200 (or a documented 404 when the resource does not exist yet)."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.services import api_key_create, api_key_revoke
from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db

# path, scope that reads it, answers acceptable with the right key
ENDPOINTS = [
    ("/api/v1/whoami", "read", {200}),
    ("/api/v1/projects", "read", {200}),
    ("/api/v1/usage", "read", {200}),
    ("/api/v1/costs", "read", {200}),
    ("/api/v1/runs", "read", {200}),
    ("/api/v1/runs/run-x", "read", {404}),
    ("/api/v1/forecast", "read", {404}),
    ("/api/v1/reports/monthly?month=2026-10", "read", {200}),
    ("/api/v1/notifications", "read", {200}),
    ("/api/v1/budgets", "read", {200}),
    ("/api/v1/webhooks", "manage", {200}),
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
