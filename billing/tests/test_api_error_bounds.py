"""Validation errors of the budget API stay bounded however long the bad list (issue 13.9)."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import schema_context

from billing.models import Budget
from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db


def test_a_budget_with_a_huge_thresholds_list_is_refused_by_its_length(alpha):
    _, raw = key_for(alpha, ["read", "manage"])
    response = host_client(alpha.host).post(
        "/api/v1/budgets",
        data=json.dumps({"amount": "100", "thresholds": ["x"] * 100_000}),
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert len(response.content) < 4096
    body = response.json()
    assert body["errors"] == {"thresholds": ["Ensure this field has no more than 20 elements."]}
    assert body["errors_total"] == 1
    with schema_context(alpha.schema):
        assert not Budget.objects.exists()
