"""``/api/v1/budgets``: moving a budget to another scope (``billing.services.budget_change``)."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing.models import Budget
from tests.support import bearer, host_client, key_for
from usage.models import Project

pytestmark = pytest.mark.django_db


def _post(client, manager, data):
    return client.post("/api/v1/budgets", data, content_type="application/json", **bearer(manager))


def _patch(client, manager, budget_id, data):
    return client.patch(
        f"/api/v1/budgets/{budget_id}", data, content_type="application/json", **bearer(manager)
    )


def test_a_budget_moved_to_a_project_replaces_the_tenant_budget(alpha):
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web shop")
    client = host_client(alpha.host)
    _, manager = key_for(alpha, ["manage"])
    created = _post(client, manager, {"amount": "250", "thresholds": [80, 100]}).json()
    moved = _patch(client, manager, created["id"], {"project": "web"})
    assert moved.status_code == 200, moved.content
    assert moved.json()["project"] == "web" and moved.json()["amount"] == "250.00"
    assert moved.json()["thresholds"] == [80, 100]
    with schema_context(alpha.schema):
        assert list(Budget.objects.values_list("project", "amount")) == [("web", 250)]


def test_a_budget_is_not_moved_onto_a_scope_that_has_one(alpha):
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web shop")
    client = host_client(alpha.host)
    _, manager = key_for(alpha, ["manage"])
    tenant_wide = _post(client, manager, {"amount": "250"}).json()
    assert _post(client, manager, {"amount": "100", "project": "web"}).status_code == 201
    clash = _patch(client, manager, tenant_wide["id"], {"project": "web"})
    assert clash.status_code == 400 and "already has a budget" in clash.content.decode()
    with schema_context(alpha.schema):
        assert sorted(Budget.objects.values_list("project", "amount")) == [("", 250), ("web", 100)]


def test_a_refusal_of_the_service_reads_as_a_sentence(alpha):
    """Not the repr of a list of error details (a review found
    ``[ErrorDetail(string="No project 'hx2' in this tenant.", code='invalid')]``)."""
    _, manager = key_for(alpha, ["manage"])
    refused = _post(host_client(alpha.host), manager, {"amount": "10", "project": "hx2"})
    assert refused.status_code == 400
    assert refused["Content-Type"].startswith("application/problem+json")
    assert refused.json()["detail"] == "No project 'hx2' in this tenant."
