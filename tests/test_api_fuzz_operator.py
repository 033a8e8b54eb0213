"""Property-based fuzzing of the operator host's API (the bare base domain) from its own OpenAPI
schema (``web.urls_public``, served at ``/api/schema/`` there): the allocation rules
with an operator's browser session, platform ingest (events, runs, traces, logs) and whoami with the
platform key. The same checks as the tenant API's fuzz: no 5xx, answers that match the documented
schema, documented content types. Bounded: a few examples per operation (about half a minute).

Rule ids are either generated or, half the time, the id of a rule the fixture made, so changes
reach a real rule, not only 404s. Everything the fuzz writes is rolled back with the test.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from hypothesis import HealthCheck, settings

from billing.operator.services.rules import allocation_rule_create
from factory_portal.accounts.services import api_key_create
from tests.fuzzing import CHECKS, fuzzed_schema
from tests.support import OPERATOR_EMAIL, host_client, logged_in_client
from web.urls_public import OPERATOR_SCHEMA_SETTINGS

pytestmark = pytest.mark.django_db

with patched_settings(OPERATOR_SCHEMA_SETTINGS):
    OPERATOR_SCHEMA = SchemaGenerator(urlconf="web.urls_public").get_schema(
        request=None, public=True
    )
schema, EXISTING_IDS = fuzzed_schema(OPERATOR_SCHEMA)


@pytest.fixture
def operator_credentials(public_host, alpha):
    """Host, an operator's session cookie and the platform key (alpha exists for ingest to
    route to)."""
    session = logged_in_client(public_host, OPERATOR_EMAIL).cookies["sessionid"].value
    with schema_context("public"):
        _, platform_key = api_key_create(name="factory", scopes=["ingest"])
    rule = allocation_rule_create(name="shared GPUs", method="proportional", driver="even")
    EXISTING_IDS["/api/v1/allocation-rules/{id}"] = rule.pk
    yield public_host, session, platform_key
    EXISTING_IDS.clear()


def credentials_for(case: Any, session: str, platform_key: str) -> dict[str, Any]:
    """What the operation documents: the platform key (ingest, whoami) or an operator's session
    (allocation rules; a cookie the WSGI client sends, it drops a ``Cookie`` header)."""
    if {"apiKey": []} in case.operation.definition.raw.get("security", []):
        return {"headers": {"Authorization": f"Bearer {platform_key}"}}
    return {"headers": {}, "cookies": {"sessionid": session}}


def test_the_schema_covers_the_operator_api(tmp_path):
    operations = {
        (path, method, tuple(next(iter(s)) for s in operation.get("security", [])))
        for path, methods in OPERATOR_SCHEMA["paths"].items()
        for method, operation in methods.items()
    }
    assert operations == {
        ("/api/v1/allocation-rules", "get", ("cookieAuth",)),
        ("/api/v1/allocation-rules", "post", ("cookieAuth",)),
        ("/api/v1/allocation-rules/{id}", "get", ("cookieAuth",)),
        ("/api/v1/allocation-rules/{id}", "patch", ("cookieAuth",)),
        ("/api/v1/billed-imports", "post", ("cookieAuth",)),
        ("/api/v1/billed-drift/{period}", "get", ("cookieAuth",)),
        ("/api/v1/billed-drift/{period}/true-up", "post", ("cookieAuth",)),
        ("/api/v1/events", "post", ("apiKey",)),
        ("/api/v1/runs", "post", ("apiKey",)),
        ("/v1/traces", "post", ("apiKey",)),
        ("/v1/logs", "post", ("apiKey",)),
        ("/v1/metrics", "post", ("apiKey",)),
        ("/api/v1/whoami", "get", ("apiKey", "cookieAuth")),
    }
    call_command(
        "spectacular",
        "--urlconf",
        "web.urls_public",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "operator.yml"),
    )


def test_the_operator_host_serves_its_schema(public_host):
    response = host_client(public_host).get("/api/schema/?format=json")
    assert response.status_code == 200
    served = response.json()
    assert served["info"]["title"] == OPERATOR_SCHEMA_SETTINGS["TITLE"]
    assert served["paths"].keys() == OPERATOR_SCHEMA["paths"].keys()
    assert "swagger-ui" in host_client(public_host).get("/api/docs/").content.decode()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operator_operation_never_fails_and_matches_the_schema(case, operator_credentials):
    host, session, platform_key = operator_credentials
    credentials = credentials_for(case, session, platform_key)
    headers = {"Host": host, **credentials.pop("headers")}
    case.call_and_validate(headers=headers, checks=CHECKS, **credentials)
