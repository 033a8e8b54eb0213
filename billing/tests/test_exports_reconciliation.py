"""Exports finance can reconcile: AI cost by token kind at list and contracted prices (FOCUS
ListCost vs BilledCost), unpriced calls counted, a stable reference per tenant-month, styled
Excel sheets; every format agrees with the others and with the cost report to the cent."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from billing.exports import FOCUS_COLUMNS, USD_FORMAT, write_csv, write_focus, write_xlsx
from billing.operator.models import PriceBookEntry, TenantPriceOverride
from billing.selectors.costs import cost_report, report_reference
from factory_portal.money import quantize_cents
from tests.support import bearer, host_client, key_for, llm_event_in
from usage.pricing import pricer_for
from usage.selectors import llm_cost_groups
from usage.services.ingest import events_ingest
from usage.services.reprice import llm_reprice

pytestmark = pytest.mark.django_db

PERIOD = date(2026, 9, 1)
T = datetime(2026, 9, 8, 10, tzinfo=UTC)
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
# USD per million tokens of a model only these tests price.
PRICES = {"input": "2", "output": "8", "cache_read": "0.5", "cache_write": "2.5"}
FOCUS_SPEC = Path("/work/shared/data/focus/columns_v1.2.txt")


@pytest.fixture
def book():
    return {
        kind: PriceBookEntry.objects.create(
            provider="acme",
            model="m1",
            token_kind=kind,
            price_per_mtok=Decimal(price),
            effective_from=EPOCH,
            source=PriceBookEntry.Source.OPERATOR,
        )
        for kind, price in PRICES.items()
    }


def _call(event_id, **fields):
    values = {
        "provider": "acme",
        "model": "m1",
        "input_tokens": 1_000_000,
        "cached_input_tokens": 200_000,
        "cache_write_tokens": 100_000,
        "output_tokens": 50_000,
    }
    values.update(fields)
    return llm_event_in(event_id, T, project="web", **values)


def _ingest(tenant, events):
    with schema_context(tenant.schema):
        events_ingest(events=events, pricer=pricer_for(tenant.tenant))


def _exports(tenant):
    with schema_context(tenant.schema):
        report = cost_report(tenant=tenant.tenant, period=PERIOD)
        text, focus, workbook = io.StringIO(), io.StringIO(), io.BytesIO()
        csv_total = write_csv(report, text)
        focus_total = write_focus(report, focus)
        write_xlsx(report, workbook)
    charges = pd.read_csv(io.StringIO(text.getvalue()), dtype=str, keep_default_na=False)
    rows = pd.read_csv(io.StringIO(focus.getvalue()), dtype=str, keep_default_na=False)
    assert csv_total == focus_total == quantize_cents(report.total)
    return report, charges, rows, load_workbook(io.BytesIO(workbook.getvalue()))


def _dec(values) -> Decimal:
    return sum((Decimal(v) for v in values if v != ""), Decimal(0))


def _ai(rows):
    return rows[rows["ServiceName"] == "AI model usage"]


def test_a_discount_is_list_minus_billed_per_token_kind(alpha, book):
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant, discount_percent=Decimal(20), effective_from=EPOCH
    )
    _ingest(alpha, [_call("d1"), _call("d2", output_tokens=12_345, cached_input_tokens=0)])
    report, charges, rows, _ = _exports(alpha)
    ai = _ai(rows)
    by_kind = {
        kind: group
        for kind, group in ai.groupby(ai["Tags"].map(lambda t: json.loads(t)["x_token_kind"]))
    }
    assert set(by_kind) == {"input", "output", "cache_read", "cache_write"}
    # tokens: uncached input 700k + 900k, cache read 200k, cache write 200k, output 62,345
    assert _dec(by_kind["input"]["ConsumedQuantity"]) == 1_600_000
    assert _dec(by_kind["output"]["ConsumedQuantity"]) == 62_345
    output = by_kind["output"].iloc[0]
    assert Decimal(output["ListUnitPrice"]) == 8
    assert Decimal(output["ContractedUnitPrice"]) == Decimal("6.4")
    assert output["SkuPriceId"] == str(book["output"].pk)
    assert output["PricingUnit"] == "1000000 Tokens"
    assert Decimal(output["PricingQuantity"]) == Decimal("0.062345")
    # list: 1.6*2 + 0.2*0.5 + 0.2*2.5 + 0.062345*8 = 4.29876; billed 80 % of it
    assert _dec(ai["ListCost"]) == Decimal("4.30")
    billed = _dec(ai["BilledCost"])
    assert billed == quantize_cents(report.token_cost) == Decimal("3.44")
    ai_csv = charges[charges["category"] == "AI"]
    assert _dec(ai_csv["amount_usd"]) == billed
    for _, row in ai.iterrows():
        assert row["EffectiveCost"] == row["ContractedCost"] == row["BilledCost"]
        discount = Decimal(row["ListCost"]) - Decimal(row["BilledCost"])
        assert abs(discount - Decimal(row["ListCost"]) * Decimal("0.2")) <= Decimal("0.01")


def test_without_contract_terms_list_equals_billed_and_kinds_add_up(alpha, book):
    _ingest(alpha, [_call(f"n{i}", output_tokens=1_000 + i) for i in range(7)])
    report, _, rows, workbook = _exports(alpha)
    ai = _ai(rows)
    assert len(ai) == 4
    assert list(ai["ListCost"]) == list(ai["BilledCost"])
    assert _dec(ai["BilledCost"]) == quantize_cents(report.token_cost)
    assert (ai["ListUnitPrice"] == ai["ContractedUnitPrice"]).all()
    summary = {r[0]: r[1] for r in workbook["Summary"].iter_rows(values_only=True)}
    assert summary["Contract discount on AI (USD)"] == 0


def test_custom_contract_prices_against_the_book(alpha, book):
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant,
        provider="acme",
        model="m1",
        input_per_mtok=Decimal(1),
        output_per_mtok=Decimal(4),
        effective_from=EPOCH,
    )
    _ingest(alpha, [_call("c1", cached_input_tokens=0, cache_write_tokens=0)])
    _, _, rows, _ = _exports(alpha)
    ai = _ai(rows).set_index(_ai(rows)["Tags"].map(lambda t: json.loads(t)["x_token_kind"]))
    assert set(ai.index) == {"input", "output"}
    # billed 1 * 1 + 0.05 * 4 = 1.20; list 1 * 2 + 0.05 * 8 = 2.40
    assert ai.loc["input", "BilledCost"] == "1.00" and ai.loc["input", "ListCost"] == "2.00"
    assert ai.loc["output", "BilledCost"] == "0.20" and ai.loc["output", "ListCost"] == "0.40"
    assert ai.loc["output", "ContractedUnitPrice"] == "4.00"
    assert ai.loc["output", "SkuPriceId"].startswith("contract-")


def test_client_supplied_costs_have_no_list_price(alpha):
    _ingest(alpha, [_call("k1", provider="acme", model="own", cost=Decimal("0.75"))])
    _, _, rows, _ = _exports(alpha)
    (row,) = _ai(rows).to_dict("records")
    assert row["BilledCost"] == row["ListCost"] == "0.75"
    assert row["ListUnitPrice"] == "" and row["PricingCategory"] == "Other"
    assert json.loads(row["Tags"])["x_cost_source"] == "client"
    assert "cost supplied by the client" in row["ChargeDescription"]
    assert row["ConsumedQuantity"] == "1050000"


def test_unpriced_calls_are_counted_in_every_format_and_on_the_costs_page(alpha, book, people):
    _ingest(
        alpha,
        [
            _call("p1"),
            _call(
                "u1",
                model="nobody-prices-this",
                input_tokens=300,
                cached_input_tokens=0,
                cache_write_tokens=0,
                output_tokens=20,
            ),
            _call(
                "u2",
                model="nobody-prices-this",
                input_tokens=700,
                cached_input_tokens=0,
                cache_write_tokens=0,
                output_tokens=0,
            ),
        ],
    )
    _report, charges, rows, workbook = _exports(alpha)
    line = charges[charges["item"] == "acme/nobody-prices-this"].iloc[0]
    assert (line["amount_usd"], line["unpriced_calls"], line["unpriced_tokens"]) == (
        "0.00",
        "2",
        "1020",
    )
    unpriced = rows[rows["ChargeDescription"].str.contains("unpriced")]
    (row,) = unpriced.to_dict("records")
    assert row["BilledCost"] == row["ListCost"] == "0.00"
    assert row["ConsumedQuantity"] == "1020"
    assert "2 calls" in row["ChargeDescription"] and "not in any cost" in row["ChargeDescription"]
    summary = {r[0]: r[1] for r in workbook["Summary"].iter_rows(values_only=True)}
    assert summary["Unpriced calls (not in any total)"] == 2
    assert summary["Unpriced tokens (not in any total)"] == 1020
    models = list(workbook["Models"].iter_rows(values_only=True))
    assert models[0][4:6] == ("unpriced_calls", "unpriced_tokens")
    page = people["finance"].get("/costs/?month=2026-09")
    text = page.content.decode()
    assert 'data-testid="unpriced"' in text and "not in the AI cost or any total" in text
    assert "acme/nobody-prices-this" in text


def test_the_costs_page_says_nothing_when_every_call_is_priced(alpha, book, people):
    _ingest(alpha, [_call("p1")])
    page = people["finance"].get("/costs/?month=2026-09")
    assert 'data-testid="unpriced"' not in page.content.decode()


def test_a_corrected_call_is_split_by_its_new_terms(alpha, book):
    _ingest(alpha, [_call("r1")])
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant, discount_percent=Decimal(50), effective_from=EPOCH
    )
    with schema_context(alpha.schema):
        llm_reprice(
            start=T - timedelta(days=1),
            end=T + timedelta(days=1),
            pricer=pricer_for(alpha.tenant),
            reason="late contract",
        )
    report, _, rows, _ = _exports(alpha)
    ai = _ai(rows)
    # list 0.7*2 + 0.2*0.5 + 0.1*2.5 + 0.05*8 = 2.15, billed half of it (1.075): billed and
    # discount are each rounded to the cent (1.08 + 1.08), so the list total is 2.16
    assert _dec(ai["BilledCost"]) == quantize_cents(report.token_cost) == Decimal("1.08")
    assert _dec(ai["ListCost"]) == Decimal("2.16")
    with schema_context(alpha.schema):
        (group,) = llm_cost_groups(start=PERIOD, end=date(2026, 10, 1))
    assert group.cost == Decimal("1.075") and group.override_ref is not None


def test_the_reference_is_stable_and_in_every_format(alpha, beta):
    reference = report_reference(alpha.tenant, PERIOD)
    assert uuid.UUID(reference).version == 5
    assert reference == report_reference(alpha.tenant, date(2026, 9, 1))
    assert reference != report_reference(beta.tenant, PERIOD)
    assert reference != report_reference(alpha.tenant, date(2026, 10, 1))
    _ingest(alpha, [_call("x1", cost=Decimal(1))])
    _, charges, rows, workbook = _exports(alpha)
    assert set(charges["report_id"]) == {reference}
    assert set(rows["InvoiceId"]) == {reference}
    summary = {r[0]: r[1] for r in workbook["Summary"].iter_rows(values_only=True)}
    assert summary["Reference"] == reference
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    body = client.get("/api/v1/reports/monthly?month=2026-09", **bearer(raw)).json()
    assert body["reference"] == reference
    download = client.get("/api/v1/reports/monthly?month=2026-09&format=focus", **bearer(raw))
    assert download["X-Report-Reference"] == reference


def test_the_report_api_lists_unpriced_calls(alpha, beta):
    _ingest(
        alpha,
        [_call("u1", model="nobody-prices-this", cached_input_tokens=0, cache_write_tokens=0)],
    )
    _, raw = key_for(alpha, ["read"])
    body = (
        host_client(alpha.host).get("/api/v1/reports/monthly?month=2026-09", **bearer(raw)).json()
    )
    assert body["unpriced"] == [
        {"project": "web", "provider": "acme", "model": "nobody-prices-this", "calls": 1}
    ]
    _, beta_raw = key_for(beta, ["read"])
    other = (
        host_client(beta.host)
        .get("/api/v1/reports/monthly?month=2026-09", **bearer(beta_raw))
        .json()
    )
    assert other["unpriced"] == [] and other["reference"] != body["reference"]


def test_focus_columns_are_focus_1_2_names():
    spec = {line.split("|")[0] for line in FOCUS_SPEC.read_text().splitlines() if line.strip()}
    focus_1_3 = {"AllocatedMethodId", "AllocatedMethodDetails", "ContractApplied"}
    assert set(FOCUS_COLUMNS) - spec == focus_1_3
    commitment_columns = {c for c in spec if c.startswith("CommitmentDiscount")}
    assert commitment_columns <= set(FOCUS_COLUMNS)
    assert len(FOCUS_COLUMNS) == len(set(FOCUS_COLUMNS))


def test_excel_sheets_have_formats_frozen_headers_filters_and_widths(alpha, book):
    _ingest(alpha, [_call("s1")])
    _, _, _, workbook = _exports(alpha)
    for name in ("Projects", "Models", "Token kinds", "Allocation", "Runs"):
        sheet = workbook[name]
        assert sheet.freeze_panes == "A2"
        assert (
            sheet.auto_filter.ref
            == f"A1:{sheet.cell(1, sheet.max_column).column_letter}{sheet.max_row}"
        )
        assert sheet.column_dimensions["A"].width >= 20
    kinds = workbook["Token kinds"]
    header = [c.value for c in kinds[1]]
    assert kinds.cell(2, header.index("cost_usd") + 1).number_format == USD_FORMAT
    assert kinds.cell(2, header.index("tokens") + 1).number_format == "#,##0"
    summary = {r[0].value: r[1] for r in workbook["Summary"].iter_rows()}
    assert summary["Total (USD)"].number_format == USD_FORMAT


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    calls=st.lists(
        st.tuples(
            st.integers(0, 3_000_000),  # input
            st.integers(0, 100),  # cached part, percent of input
            st.integers(0, 100),  # cache-write part, percent of the rest
            st.integers(0, 500_000),  # output
            st.sampled_from(["web", "api"]),
        ),
        min_size=1,
        max_size=12,
    ),
    discount=st.sampled_from([None, Decimal(0), Decimal("12.5"), Decimal(100)]),
)
def test_kind_rows_add_up_to_the_ai_charge_exactly(alpha, book, calls, discount):
    with schema_context(alpha.schema):
        from usage.models import LlmUsageDaily, LlmUsageEvent, LlmUsageHourly

        LlmUsageEvent.objects.all().delete()
        LlmUsageDaily.objects.all().delete()
        LlmUsageHourly.objects.all().delete()
    TenantPriceOverride.objects.filter(tenant=alpha.tenant).delete()
    if discount is not None:
        TenantPriceOverride.objects.create(
            tenant=alpha.tenant, discount_percent=discount, effective_from=EPOCH
        )
    events = []
    for i, (tokens, cached_pct, write_pct, output, project) in enumerate(calls):
        cached = tokens * cached_pct // 100
        write = (tokens - cached) * write_pct // 100
        events.append(
            llm_event_in(
                f"h{i}",
                T + timedelta(minutes=i),
                project=project,
                provider="acme",
                model="m1",
                input_tokens=tokens,
                cached_input_tokens=cached,
                cache_write_tokens=write,
                output_tokens=output,
            )
        )
    _ingest(alpha, events)
    report, charges, rows, workbook = _exports(alpha)
    ai = _ai(rows)
    billed = _dec(ai["BilledCost"])
    assert billed == _dec(charges[charges["category"] == "AI"]["amount_usd"])
    assert billed == quantize_cents(report.token_cost)
    ai_csv = charges[charges["category"] == "AI"]
    for project, group in ai.groupby("ResourceId"):
        assert _dec(group["BilledCost"]) == _dec(ai_csv[ai_csv["project"] == project]["amount_usd"])
    discount_total = _dec(ai["ListCost"]) - billed
    kinds = list(workbook["Token kinds"].iter_rows(values_only=True))[1:]
    assert sum((Decimal(str(r[8])) for r in kinds), Decimal(0)) == discount_total
    assert sum((Decimal(str(r[9])) for r in kinds), Decimal(0)) == billed
    if not discount:
        assert discount_total == 0


def test_another_tenants_unpriced_calls_are_not_on_the_costs_page(alpha, beta, people):
    _ingest(
        beta, [_call("b1", model="nobody-prices-this", cached_input_tokens=0, cache_write_tokens=0)]
    )
    page = people["finance"].get("/costs/?month=2026-09")
    assert page.status_code == 200
    assert 'data-testid="unpriced"' not in page.content.decode()
