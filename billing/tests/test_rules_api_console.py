"""Allocation rules (operator API and console) and report downloads (tenant finance)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.operator.models import AllocationRule, CostPool
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import (
    PASSWORD,
    bearer,
    host_client,
    key_for,
    logged_in_client,
)

pytestmark = pytest.mark.django_db


def _post(client, body):
    return client.post(
        "/api/v1/allocation-rules", data=json.dumps(body), content_type="application/json"
    )


def test_operator_creates_and_changes_rules(operator):
    response = _post(
        operator,
        {
            "name": "control plane",
            "service_category": "Compute",
            "method": "fixed_variable",
            "driver": "tokens",
            "fixed_amount": "3000.00",
        },
    )
    assert response.status_code == 201, response.content
    rule = response.json()
    assert rule["version"] == 1
    patched = operator.patch(
        f"/api/v1/allocation-rules/{rule['id']}",
        data=json.dumps({"fixed_amount": "2500.00"}),
        content_type="application/json",
    )
    assert patched.json()["version"] == 2
    same = operator.patch(
        f"/api/v1/allocation-rules/{rule['id']}",
        data=json.dumps({"fixed_amount": "2500.00"}),
        content_type="application/json",
    )
    assert same.json()["version"] == 2  # no change, no new version
    assert [r["name"] for r in operator.get("/api/v1/allocation-rules").json()["results"]] == [
        "control plane"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "method": "fixed_variable", "driver": "tokens"}, "method"),
        ({"name": "x", "method": "usage", "driver": "runs"}, "driver"),
        ({"name": "x", "method": "teleport", "driver": "tokens"}, "method"),
    ],
)
def test_invalid_rules_get_422_or_400(operator, body, field):
    response = _post(operator, body)
    assert response.status_code in (400, 422)
    assert field in json.dumps(response.json())
    assert not AllocationRule.objects.exists()


def test_tenant_users_cannot_manage_rules(alpha, public_host):
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    assert tenant_admin.get("/api/v1/allocation-rules").status_code == 404  # not on tenant hosts
    anonymous = host_client(public_host)
    assert anonymous.get("/api/v1/allocation-rules").status_code in (401, 403)


def test_console_pages(operator, alpha):
    CostPool.objects.create(
        period=date(2026, 9, 1),
        name="AWS Compute",
        provider="AWS",
        service_category="Compute",
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(10),
        effective_cost=Decimal(10),
        list_cost=Decimal(10),
        rows=1,
    )
    page = operator.get("/allocation/")
    assert page.status_code == 200 and "September 2026" in page.content.decode()
    added = operator.post(
        "/allocation/",
        {"name": "by tokens", "method": "usage", "driver": "tokens", "fixed_split": "even"},
    )
    assert added.status_code == 302
    assert operator.post("/allocation/2026-09/run").status_code == 302
    detail = operator.get("/allocation/2026-09/?what_if=1").content.decode()
    assert "What-if" in detail and "unallocated" in detail
    assert logged_in_client(alpha.host, alpha.admin_email).get("/allocation/").status_code == 404


def test_report_download_by_role(alpha, beta):
    with schema_context(alpha.schema):
        user_create(email="cfo@alpha.test", role=Role.FINANCE, password=PASSWORD)
        user_create(email="dev@alpha.test", role=Role.MEMBER, password=PASSWORD)
    finance = logged_in_client(alpha.host, "cfo@alpha.test")
    response = finance.get("/reports/2026-09/csv")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="alpha-2026-09.csv"')
    assert b"".join(response.streaming_content).startswith(b"report_id,month,tenant,category")
    xlsx = finance.get("/reports/2026-09/xlsx")
    assert b"".join(xlsx.streaming_content)[:2] == b"PK"
    assert finance.get("/reports/2026-09/pdf").status_code == 404
    member = logged_in_client(alpha.host, "dev@alpha.test")
    assert member.get("/reports/2026-09/csv").status_code == 403
    # the session of alpha means nothing on beta's host
    assert finance.get("/reports/2026-09/csv", HTTP_HOST=beta.host).status_code == 302


def test_an_unknown_rule_is_a_404_problem_that_says_so(operator):
    # found reading the operator API fuzz: Django's 404 was answered with title "Error", no detail
    for response in (
        operator.get("/api/v1/allocation-rules/999999"),
        operator.patch(
            "/api/v1/allocation-rules/999999", data="{}", content_type="application/json"
        ),
    ):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["title"] == "Not found"
        assert problem["detail"] == "No allocation rule with id '999999' here."


def test_an_unknown_budget_is_a_404_problem_that_says_so(alpha):
    # the tenant API's generic views raise the same Django 404 (get_object)
    _, raw = key_for(alpha, ["read", "manage"])
    response = host_client(alpha.host).get("/api/v1/budgets/999999", **bearer(raw))
    assert response.status_code == 404
    problem = response.json()
    assert problem["title"] == "Not found"
    assert problem["detail"] == "No budget with id '999999' here."
