"""Operator commands answer bad input with one line saying what is wrong, never a traceback
(an operator review found NaN budgets and prices, over-long tenant names and unwritable report
paths failing with Python's or PostgreSQL's own errors)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from billing.models import Budget
from billing.operator.models import TenantPriceOverride
from factory_portal.tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1e30", "0", "-5"])
def test_budget_set_refuses_amounts_that_are_not_a_budget(alpha, amount):
    with pytest.raises(CommandError, match="budget"):
        call_command("budget_set", "--tenant", "alpha", f"--amount={amount}", stdout=io.StringIO())
    with schema_context(alpha.schema):
        assert not Budget.objects.exists()


@pytest.mark.parametrize(
    "prices",
    [
        ["--discount", "NaN"],
        ["--discount", "Infinity"],
        ["--input", "NaN", "--output", "1"],
        ["--input", "1", "--output", "1e30"],
    ],
)
def test_price_override_refuses_prices_that_are_not_numbers(alpha, prices):
    with pytest.raises(CommandError, match="must be a number from 0"):
        call_command("price_override", "--tenant", "alpha", *prices, stdout=io.StringIO())
    assert not TenantPriceOverride.objects.exists()


def test_tenant_create_refuses_a_name_longer_than_it_keeps():
    with pytest.raises(CommandError, match="at most 200 characters"):
        call_command(
            "tenant_create", "--slug", "longname", "--name", "N" * 201,
            "--admin-email", "a@longname.test", stdout=io.StringIO(),
        )  # fmt: skip
    assert not Tenant.objects.filter(slug="longname").exists()


@pytest.mark.parametrize("where", ["dir", "missing"])
def test_report_says_when_it_cannot_write_its_file(alpha, tmp_path, where):
    target = tmp_path if where == "dir" else tmp_path / "nowhere" / "x.csv"
    reason = "is a directory" if where == "dir" else "does not exist"
    for scope in (["--customers"], ["--tenant", "alpha"]):
        with pytest.raises(CommandError, match=reason):
            call_command(
                "report", *scope, "--month", "2026-10", "-o", str(target), stdout=io.StringIO()
            )
