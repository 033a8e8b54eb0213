"""Prepaid commitments across apps: the tenant page and ``GET /api/v1/commitments`` show a
tenant's own commitments only (never another tenant's, whatever the id), to finance and admin
(members get 403), read-only; the drawdown of a month reconciles with the monthly report to the
cent (AI per day, the month's allocated infrastructure on its last day); the FOCUS export gets
drawdown lines at no cost, so every total stays what it was."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pytest
from django_tenants.utils import schema_context

from billing.exports import write_csv, write_focus
from billing.operator.models import Commitment, CostPool
from billing.operator.services.allocation import allocation_run
from billing.selectors.commitments import commitments_status, month_drawdown
from billing.selectors.costs import cost_report
from billing.selectors.periods import month_cost
from factory_portal.money import quantize_cents
from tests.support import bearer, host_client, key_for, llm_spend, response_text

pytestmark = pytest.mark.django_db

SEPTEMBER = date(2026, 9, 1)


def _commitment(tenant, name="Q3 prepaid", amount="100000", **kw) -> Commitment:
    values = {
        "name": name,
        "amount": Decimal(amount),
        "currency": "USD",
        "start_date": date(2026, 7, 1),
        "end_date": date(2026, 9, 30),
        "covers": "total",
    }
    values.update(kw)
    return Commitment.objects.create(tenant=tenant, **values)


@pytest.fixture
def september(alpha, beta):
    llm_spend(alpha, datetime(2026, 9, 10, 9, tzinfo=UTC), "1.2345", "0.50")
    llm_spend(alpha, datetime(2026, 9, 29, 9, tzinfo=UTC), "3.3333")
    llm_spend(beta, datetime(2026, 9, 20, 9, tzinfo=UTC), "0.333")
    CostPool.objects.create(
        period=SEPTEMBER,
        name="GPU inference",
        provider="AWS",
        service_category="AI and Machine Learning",
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal("100.01"),
        effective_cost=Decimal("100.01"),
        list_cost=Decimal("100.01"),
        rows=1,
    )
    allocation_run(period=SEPTEMBER)


def test_a_months_drawdown_is_the_monthly_report_to_the_cent(alpha, september):
    total = _commitment(alpha.tenant)
    ai = _commitment(alpha.tenant, name="AI only", covers="ai", kind="credit", amount="2.00")
    with schema_context(alpha.schema):
        cost = month_cost(tenant=alpha.tenant, month=SEPTEMBER)
        assert cost.infra > 0
        drawn = {d.commitment.pk: d for d in month_drawdown(tenant=alpha.tenant, month=SEPTEMBER)}
        # The credit draws first (2.00 of the AI cost), the commitment the rest of the month.
        assert drawn[ai.pk].used == Decimal("2.00") and drawn[ai.pk].unused == Decimal(0)
        assert quantize_cents(drawn[ai.pk].used + drawn[total.pk].used) == quantize_cents(
            cost.total
        )
        # The infrastructure is spend of September 30 (the month's last day).
        [status] = [
            s
            for s in commitments_status(tenant=alpha.tenant, today=date(2026, 10, 5))
            if s.commitment.pk == total.pk
        ]
        last = status.drawdown.days[-1]
        assert last.day == date(2026, 9, 30) and last.drawn == cost.infra
        assert status.state == "ended"


def test_focus_export_has_drawdown_lines_and_unchanged_totals(alpha, september):
    with schema_context(alpha.schema):
        report = cost_report(tenant=alpha.tenant, period=SEPTEMBER)
        before = io.StringIO()
        before_total = write_focus(report, before)
    commitment = _commitment(alpha.tenant, amount="5.00")  # less than September's total
    with schema_context(alpha.schema):
        report = cost_report(tenant=alpha.tenant, period=SEPTEMBER)
        focus, charges = io.StringIO(), io.StringIO()
        focus_total = write_focus(report, focus)
        csv_total = write_csv(report, charges)
    assert focus_total == csv_total == before_total == quantize_cents(report.total)
    rows = pd.read_csv(io.StringIO(focus.getvalue()), dtype=str, keep_default_na=False)
    old = pd.read_csv(io.StringIO(before.getvalue()), dtype=str, keep_default_na=False)
    for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        assert sum(Decimal(v) for v in rows[column]) == sum(Decimal(v) for v in old[column])
    lines = rows[rows["CommitmentDiscountId"] != ""]
    assert list(lines["CommitmentDiscountStatus"]) == ["Used"]  # all 5.00 used: nothing unused
    [line] = lines.to_dict("records")
    assert line["CommitmentDiscountId"] == commitment.reference
    assert line["CommitmentDiscountName"] == "Q3 prepaid"
    assert line["CommitmentDiscountCategory"] == "Spend"
    assert line["CommitmentDiscountType"] == "Prepaid commitment"
    assert line["CommitmentDiscountQuantity"] == "5.00"
    assert line["CommitmentDiscountUnit"] == "USD"
    assert Decimal(line["BilledCost"]) == Decimal(line["EffectiveCost"]) == 0
    applied = json.loads(line["ContractApplied"])
    assert applied["ContractCommitmentId"] == commitment.reference
    assert applied["ContractCommitmentAppliedCost"] == "5.00"


def test_an_unused_rest_is_a_line_of_the_month_it_ends(alpha, september):
    _commitment(alpha.tenant, amount="500.00")
    with schema_context(alpha.schema):
        report = cost_report(tenant=alpha.tenant, period=SEPTEMBER)
        out = io.StringIO()
        write_focus(report, out)
    rows = pd.read_csv(io.StringIO(out.getvalue()), dtype=str, keep_default_na=False)
    lines = rows[rows["CommitmentDiscountId"] != ""].set_index("CommitmentDiscountStatus")
    used = Decimal(lines.loc["Used", "CommitmentDiscountQuantity"])
    unused = Decimal(lines.loc["Unused", "CommitmentDiscountQuantity"])
    assert used == quantize_cents(report.total)
    assert used + unused == Decimal("500.00")


def test_page_and_api_show_only_the_tenants_own(alpha, beta, people):
    mine = _commitment(alpha.tenant, name="Alpha prepaid", end_date=date(2099, 12, 31))
    theirs = _commitment(beta.tenant, name="Beta secret", end_date=date(2099, 12, 31))
    page = response_text(people["finance"].get("/costs/commitments/"))
    assert "Alpha prepaid" in page and "Beta secret" not in page
    assert people["admin"].get("/costs/commitments/").status_code == 200
    assert people["member"].get("/costs/commitments/").status_code == 403
    _, raw = key_for(alpha, ["read"])
    body = host_client(alpha.host).get("/api/v1/commitments", **bearer(raw)).json()
    assert [c["id"] for c in body["results"]] == [mine.reference]
    assert body["results"][0]["amount"] == "100000.00"
    assert body["results"][0]["state"] == "active"
    assert theirs.reference not in json.dumps(body)
    _, beta_raw = key_for(beta, ["read"])
    other = host_client(beta.host).get("/api/v1/commitments", **bearer(beta_raw)).json()
    assert [c["id"] for c in other["results"]] == [theirs.reference]
    # alpha's key on beta's host is refused; the list is read-only
    refused = host_client(beta.host).get("/api/v1/commitments", **bearer(raw))
    assert refused.status_code in (401, 403)
    assert host_client(alpha.host).post("/api/v1/commitments", **bearer(raw)).status_code == 405


def test_empty_state_and_pages(alpha, people):
    assert "No prepaid commitments" in response_text(people["finance"].get("/costs/commitments/"))
    for n in range(3):
        _commitment(alpha.tenant, name=f"c{n}", end_date=date(2099, 12, 1 + n))
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    first = client.get("/api/v1/commitments?limit=2", **bearer(raw)).json()
    assert [c["name"] for c in first["results"]] == ["c0", "c1"]
    rest = client.get(
        f"/api/v1/commitments?limit=2&cursor={first['next_cursor']}", **bearer(raw)
    ).json()
    assert [c["name"] for c in rest["results"]] == ["c2"] and rest["next_cursor"] is None
    bad = client.get("/api/v1/commitments?limit=0", **bearer(raw))
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
