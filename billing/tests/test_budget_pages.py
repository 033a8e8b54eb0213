"""Budget pages: finance sees budgets read-only; admins create, edit and delete them; what the
form refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.models import Budget
from tests.support import (
    response_text,
)
from usage.models import Project

pytestmark = pytest.mark.django_db


def test_finance_sees_budgets_read_only(alpha, people):
    with schema_context(alpha.schema):
        budget = Budget.objects.create(project="", amount=Decimal("300.00"), thresholds=[80])
    page = response_text(people["finance"].get("/budgets/"))
    assert "$300.00" in page and "Whole tenant" in page
    assert "Add a budget" not in page and f"/budgets/{budget.pk}/delete/" not in page
    assert people["finance"].get(f"/budgets/{budget.pk}/").status_code == 403
    assert people["finance"].post(f"/budgets/{budget.pk}/delete/").status_code == 403
    with schema_context(alpha.schema):
        assert Budget.objects.filter(pk=budget.pk).exists()


def test_budget_create_edit_delete(alpha, people):
    admin = people["admin"]
    assert "No budgets yet" in response_text(admin.get("/budgets/"))
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web shop")
    created = admin.post(
        "/budgets/", {"scope": "web", "amount": "1250.50", "thresholds": "50%, 80 ,100"}
    )
    assert created.status_code == 302
    admin.post("/budgets/", {"scope": "", "amount": "5000", "thresholds": "100"})
    with schema_context(alpha.schema):
        budget = Budget.objects.get(project="web")
        assert budget.amount == Decimal("1250.50") and budget.thresholds == [50, 80, 100]
        assert Budget.objects.get(project="").amount == Decimal("5000.00")
    page = response_text(admin.get("/budgets/"))
    assert "Project Web shop" in page and "$1,250.50" in page and "$5,000.00" in page
    assert "On track" in page and page.count('data-testid="budget"') == 2

    form = admin.get(f"/budgets/{budget.pk}/")
    assert form.status_code == 200 and 'value="50, 80, 100"' in response_text(form)
    edited = admin.post(f"/budgets/{budget.pk}/", {"amount": "900", "thresholds": "90, 95"})
    assert edited.status_code == 302
    with schema_context(alpha.schema):
        budget.refresh_from_db()
        assert budget.amount == Decimal("900.00") and budget.thresholds == [90, 95]
        assert budget.project == "web"
    bad_edit = admin.post(f"/budgets/{budget.pk}/", {"amount": "-1", "thresholds": "90"})
    assert bad_edit.status_code == 400 and "positive amount" in response_text(bad_edit)

    assert admin.get(f"/budgets/{budget.pk}/delete/").status_code == 200  # confirm
    deleted = admin.post(f"/budgets/{budget.pk}/delete/", follow=True)
    assert "deleted" in response_text(deleted)
    with schema_context(alpha.schema):
        assert not Budget.objects.filter(pk=budget.pk).exists()
    assert admin.get(f"/budgets/{budget.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "0"}, "A budget is a positive amount"),
        ({"amount": "-5"}, "A budget is a positive amount"),
        ({"amount": "12.345"}, "Use at most 2 decimals (cents)."),
        ({"amount": "abc"}, "Enter an amount in USD"),
        ({"amount": "NaN"}, "Enter an amount in USD"),
        ({"amount": ""}, "Enter the monthly amount."),
        ({"amount": "1" * 15}, "That amount is too large."),
        ({"thresholds": "50, abc"}, "not understood: “abc”"),
        ({"thresholds": "50.5"}, "not understood: “50.5”"),
        ({"thresholds": "0, 80, 1200"}, "out of range: 0, 1200"),
        ({"thresholds": " , "}, "Give at least one threshold"),
        ({"scope": "no-such-project"}, "Choose the whole tenant or one of your projects."),
        ({"scope": "existing"}, "already has a budget"),
    ],
)
def test_budget_validation_errors(alpha, people, data, message):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("10.00"), thresholds=[100])
    fields = {"scope": "web", "amount": "100", "thresholds": "50, 100"} | data
    if fields["scope"] == "existing":
        fields["scope"] = ""
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web")
    response = people["admin"].post("/budgets/", fields)
    assert response.status_code == 400
    assert message in response_text(response)
    with schema_context(alpha.schema):
        assert list(Budget.objects.values_list("project", flat=True)) == [""]


def test_the_add_form_offers_a_scope_that_has_no_budget(alpha, people):
    """Scopes that have a budget say so and the first that has none is chosen: the form
    offered the whole tenant, which had a budget, so sending it as offered was refused."""
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web shop")
        Budget.objects.create(project="", amount=Decimal("300.00"), thresholds=[80])
    page = response_text(people["admin"].get("/budgets/"))
    assert '<option value="">Whole tenant (has a budget)</option>' in page
    assert '<option value="web" selected>Project Web shop (web)</option>' in page
