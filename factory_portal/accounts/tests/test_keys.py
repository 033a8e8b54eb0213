"""API keys: hashed, scoped, revocable, valid only on their own tenant's host."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.services import api_key_revoke
from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db


def test_key_works_on_its_own_tenant(alpha):
    api_key, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get("/api/v1/whoami", **bearer(raw))
    assert response.status_code == 200
    assert response.json()["tenant"] == "alpha"
    assert response.json()["api_key"]["prefix"] == api_key.prefix
    assert raw.startswith(f"fp_{api_key.prefix}_")


@pytest.mark.parametrize("path", ["/api/v1/whoami", "/api/v1/projects"])
def test_key_of_tenant_a_gets_401_on_tenant_b(alpha, beta, path):
    _, raw = key_for(alpha, ["read", "ingest"])
    response = host_client(beta.host).get(path, **bearer(raw))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "unknown API key for this host" in response.json()["detail"]


def test_tenant_key_gets_401_on_the_operator_host(alpha, public_host):
    _, raw = key_for(alpha, ["read"])
    assert host_client(public_host).get("/api/v1/whoami", **bearer(raw)).status_code == 401


def test_revoked_key_gets_401(alpha):
    api_key, raw = key_for(alpha, ["read"])
    with schema_context(alpha.schema):
        api_key_revoke(api_key=api_key)
    assert host_client(alpha.host).get("/api/v1/whoami", **bearer(raw)).status_code == 401


def test_key_without_read_scope_gets_403(alpha):
    _, raw = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).get("/api/v1/projects", **bearer(raw))
    assert response.status_code == 403
    assert "'read' scope" in response.json()["detail"]


def test_key_with_read_scope_lists_projects(alpha):
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get("/api/v1/projects", **bearer(raw))
    assert response.status_code == 200
    assert {"results", "next", "next_cursor"} <= set(response.json())


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer a b",
        "Bearer fp_short_x",
        "Bearer not-a-key",
        "Bearer fp_abcdefgh_" + "A" * 43,
    ],
)
def test_malformed_or_unknown_keys_get_401(alpha, header):
    response = host_client(alpha.host).get("/api/v1/whoami", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_no_credentials_get_401(alpha):
    response = host_client(alpha.host).get("/api/v1/whoami")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_key_is_stored_hashed(alpha):
    api_key, raw = key_for(alpha, ["read"])
    with schema_context(alpha.schema):
        stored = ApiKey.objects.get(pk=api_key.pk)
    secret = raw.split("_", 2)[2]
    assert secret not in stored.key_hash
    assert raw not in stored.key_hash
    assert len(stored.key_hash) == 64


def test_key_use_is_recorded(alpha):
    api_key, raw = key_for(alpha, ["read"])
    host_client(alpha.host).get("/api/v1/whoami", **bearer(raw))
    with schema_context(alpha.schema):
        assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


def test_unknown_scope_is_refused(alpha):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Scopes must be"):
        key_for(alpha, ["write"])


def test_apikey_create_command_prints_the_key_once(alpha):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "apikey_create", "--tenant", "alpha", "--scopes", "ingest,read", stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    response = host_client(alpha.host).get("/api/v1/whoami", **bearer(raw))
    assert response.status_code == 200
    assert response.json()["api_key"]["scopes"] == ["ingest", "read"]


def test_apikey_create_command_rejects_unknown_tenant(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command(
            "apikey_create", "--tenant", "nope", stdout=io.StringIO(), stderr=io.StringIO()
        )
