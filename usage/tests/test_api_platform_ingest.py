"""Platform ingest: the factory's one key on the operator host routes items to their tenants."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from factory_portal.accounts.services import api_key_create
from tests.support import bearer, host_client, key_for
from usage.models import LlmUsageEvent, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform_key(db):
    with schema_context("public"):
        _, raw = api_key_create(name="factory", scopes=["ingest"])
    return raw


def llm(event_id, tenant, **extra):
    return {
        "type": "llm",
        "event_id": event_id,
        "timestamp": "2026-11-02T10:00:00Z",
        "project": "shared-name",
        "provider": "openai",
        "model": "gpt-4.1",
        "input_tokens": 1000,
        "output_tokens": 100,
        "tenant": tenant,
        **extra,
    }


def post(host, path, key, payload):
    return host_client(host).post(
        path, data=json.dumps(payload), content_type="application/json", **bearer(key)
    )


def test_one_request_is_split_across_tenants(platform_key, public_host, alpha, beta):
    response = post(
        public_host,
        "/api/v1/events",
        platform_key,
        {"events": [llm("a1", "alpha"), llm("b1", "beta"), llm("a2", "alpha")]},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0}
    with schema_context(alpha.schema):
        assert set(LlmUsageEvent.objects.values_list("event_id", flat=True)) == {"a1", "a2"}
    with schema_context(beta.schema):
        assert set(LlmUsageEvent.objects.values_list("event_id", flat=True)) == {"b1"}
    again = post(public_host, "/api/v1/events", platform_key, {"events": [llm("b1", "beta")]})
    assert again.json() == {"accepted": 0, "duplicates": 1}


def test_unknown_tenant_rejects_the_whole_request(platform_key, public_host, alpha):
    response = post(
        public_host,
        "/api/v1/events",
        platform_key,
        {"events": [llm("a1", "alpha"), llm("x1", "nobody")]},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 1, "field": "tenant", "message": "unknown or inactive tenant 'nobody'"}
    ]
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()


def test_a_request_writes_a_bounded_number_of_tenants(
    platform_key, public_host, alpha, beta, settings
):
    """Every tenant's items share one transaction: 250 tenants exhausted PostgreSQL's lock
    table, a 503 no retry could mend (an operator review). Past the limit, the request is
    refused with the reason at each extra tenant's first item; spans and metric points of the
    extra tenants are rejected with it (usage/tests/test_api_traces.py, runtime/tests)."""
    settings.PLATFORM_MAX_TENANTS_PER_REQUEST = 1
    events = [llm("a1", "alpha"), llm("b1", "beta"), llm("b2", "beta")]
    response = post(public_host, "/api/v1/events", platform_key, {"events": events})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (1, "tenant")
    assert "names 2 tenants; one platform request stores at most 1" in error["message"]
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()
    runs = [
        {"run_id": "r1", "project": "p", "status": "Running", "tenant": tenant}
        for tenant in ("beta", "alpha")
    ]
    refused = post(public_host, "/api/v1/runs", platform_key, {"runs": runs})
    assert refused.status_code == 422 and refused.json()["errors"][0]["index"] == 0
    settings.PLATFORM_MAX_TENANTS_PER_REQUEST = 2
    assert post(public_host, "/api/v1/events", platform_key, {"events": events}).status_code == 200


def test_items_without_tenant_are_refused(platform_key, public_host):
    event = llm("a1", "alpha")
    del event["tenant"]
    response = post(public_host, "/api/v1/events", platform_key, {"events": [event]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tenant"


def test_run_updates_are_routed_too(platform_key, public_host, alpha, beta):
    runs = [
        {
            "run_id": "r1",
            "project": "p",
            "status": "Running",
            "timestamp": "2026-11-02T10:00:00Z",
            "tenant": t,
        }
        for t in ("alpha", "beta")
    ]
    response = post(public_host, "/api/v1/runs", platform_key, {"runs": runs})
    assert response.json() == {"accepted": 2, "duplicates": 0}
    for tenant in (alpha, beta):
        with schema_context(tenant.schema):
            assert Run.objects.get().status == "Running"


def test_tenant_key_is_not_a_platform_key(alpha, public_host):
    _, raw = key_for(alpha, ["ingest"])
    response = post(public_host, "/api/v1/events", raw, {"events": [llm("a1", "alpha")]})
    assert response.status_code == 401


def test_platform_key_is_not_valid_on_a_tenant_host(platform_key, alpha):
    response = post(alpha.host, "/api/v1/events", platform_key, {"events": [llm("a1", "alpha")]})
    assert response.status_code == 401


def test_operator_session_cannot_ingest(public_host):
    from tests.support import OPERATOR_EMAIL, logged_in_client

    client = logged_in_client(public_host, OPERATOR_EMAIL)
    response = client.post(
        "/api/v1/events", data=json.dumps({"events": []}), content_type="application/json"
    )
    assert response.status_code == 403


def test_apikey_create_platform_command(public_host):
    out = io.StringIO()
    call_command(
        "apikey_create", "--platform", "--scopes", "ingest", stdout=out, stderr=io.StringIO()
    )
    raw = out.getvalue().strip()
    response = host_client(public_host).get("/api/v1/whoami", **bearer(raw))
    assert response.status_code == 200
    assert response.json()["tenant"] == "public"
