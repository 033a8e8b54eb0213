"""Operator console pages for billing (billing.operator.views): cost per customer (page and CSV),
the price book and contract terms, cost pools with FOCUS uploads."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.operator.models import (
    CostPool,
    FocusImport,
    PriceBookEntry,
    TenantPriceOverride,
)
from billing.operator.services.allocation import allocation_run
from billing.selectors.costs import cost_report
from billing.tests.focus_bills import FOCUS_HEADER, FOCUS_ROWS
from factory_portal.money import quantize_cents, usd
from tests.support import llm_spend

pytestmark = pytest.mark.django_db

SEPTEMBER = date(2026, 9, 1)


def _text(response) -> str:
    return html.unescape(response.content.decode())


# --- cost per customer ----------------------------------------------------------------------


def test_customer_costs_without_usage_show_zero_and_no_allocation(operator, alpha, beta):
    page = _text(operator.get("/customer-costs/?month=2026-09"))
    assert "September 2026" in page and "not run yet" in page
    assert alpha.tenant.name in page and beta.tenant.name in page
    total = re.search(r'data-testid="month-total">([^<]+)<', page).group(1)
    assert total == usd(Decimal(0))


def test_customer_costs_agree_with_the_cost_report_and_csv(operator, alpha, beta, tmp_path):
    llm_spend(alpha, datetime(2026, 9, 10, 9, tzinfo=UTC), "1.2345", "0.50")
    llm_spend(alpha, datetime(2026, 8, 31, 23, tzinfo=UTC), "2.00")  # previous month
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
    reports = {}
    for tenant in (alpha, beta):
        with schema_context(tenant.schema):
            reports[tenant.tenant.slug] = cost_report(tenant=tenant.tenant, period=SEPTEMBER)
    assert all(r.infra_cost > 0 for r in reports.values())

    page = _text(operator.get("/customer-costs/?month=2026-09"))
    month_table = page[page.index('data-testid="month-table"') :]
    for slug, report in reports.items():
        row = re.search(rf"{slug}</span>.*?</tr>", month_table, re.S).group(0)
        for amount in (report.token_cost, report.infra_cost, report.total):
            assert usd(amount) in row, (slug, amount)
    # The total adds each customer's figures in cents, as each is billed: the rows add up to it
    # (here 1.73 + 0.33 + 100.01, where the exact figures' sum rounds to 102.08).
    billed = {
        slug: (quantize_cents(r.token_cost), quantize_cents(r.infra_cost))
        for slug, r in reports.items()
    }
    total = sum((ai + infra for ai, infra in billed.values()), Decimal(0))
    assert total != quantize_cents(sum((r.total for r in reports.values()), Decimal(0)))
    assert re.search(r'data-testid="month-total">([^<]+)<', page).group(1) == usd(total)
    assert "draft" in page
    # The trend table has six months; August holds alpha's earlier call.
    trend = page[page.index('data-testid="trend-table"') :]
    assert trend.count('scope="col" class="num"') == 6 and "Aug 2026" in trend
    with schema_context(alpha.schema):
        august = cost_report(tenant=alpha.tenant, period=date(2026, 8, 1))
    assert usd(august.total) in trend

    response = operator.get("/customer-costs.csv?month=2026-09")
    assert response["Content-Disposition"] == 'attachment; filename="customers-2026-09.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["tenant"] for r in rows] == ["alpha", "beta"]
    for row in rows:  # each customer's own figures, to the cent (none moved to another)
        ai, infra = billed[row["tenant"]]
        assert (Decimal(row["ai_usd"]), Decimal(row["infrastructure_usd"])) == (ai, infra)
        assert Decimal(row["total_usd"]) == ai + infra
    assert sum(Decimal(r["total_usd"]) for r in rows) == total
    # The download is exactly what the operator's report command writes.
    command_file = tmp_path / "customers.csv"
    call_command(
        "report", "--customers", "--month", "2026-09", "-o", str(command_file), stdout=io.StringIO()
    )
    assert response.content == command_file.read_bytes()


@pytest.mark.parametrize(
    ("month", "reason"),
    [
        ("someday", "'someday' is not a month"),
        ("1999-01", "outside the supported months"),
        ("2026-13", "'2026-13' is not a month"),
    ],
)
def test_a_bad_month_is_said_on_the_page_and_refused_for_the_csv(operator, alpha, month, reason):
    """The page shows this month with the reason; the CSV, which is a month's file, is a 404
    (both showed this month's figures unsaid before)."""
    response = operator.get("/customer-costs/", {"month": month})
    assert response.status_code == 200
    page = _text(response)
    assert timezone.now().strftime("%B %Y") in page
    assert reason in page and "Showing this month." in page
    assert operator.get("/customer-costs.csv", {"month": month}).status_code == 404
    pools = _text(operator.get("/pools/", {"period": month}))
    assert reason in pools and "Showing every period." in pools


# --- price book -----------------------------------------------------------------------------


def test_price_book_searches_and_pages(operator, django_assert_max_num_queries):
    matching = PriceBookEntry.objects.filter(
        Q(model__icontains="gpt") | Q(provider__icontains="gpt")
    )
    models = matching.values("provider", "model").distinct().count()
    assert models > 50  # the catalogue has many GPT models: more than one page
    assert matching.count() > models  # several entries (token kinds, tiers) per model
    with django_assert_max_num_queries(12):
        response = operator.get("/price-book/?q=gpt")
    page = _text(response)
    assert f"{models:,} models match" in page
    rows = re.findall(r"<tr>\s*<td>", page[page.index('data-testid="price-table"') :])
    assert len(rows) == 50  # one row per model
    assert 'data-testid="next-page"' in page and "Page 1 of" in page
    last = (models - 1) // 50 + 1
    with django_assert_max_num_queries(12):
        final = _text(operator.get(f"/price-book/?q=gpt&page={last}"))
    assert len(re.findall(r"<tr>\s*<td>", final[final.index('data-testid="price-table"') :])) == (
        models - 50 * (last - 1)
    )
    assert 'data-testid="next-page"' not in final
    entry = matching.order_by("provider", "model").first()
    narrowed = _text(operator.get(f"/price-book/?q={entry.model}&provider={entry.provider}"))
    assert entry.model in narrowed and "Cache write" in narrowed
    history = _text(
        operator.get("/price-book/", {"provider": entry.provider, "model": entry.model})
    )
    assert "in force" in history and "/ MTok" in history and "every price" in history
    assert "No model matches" in _text(operator.get("/price-book/?q=no-such-model-anywhere"))


def test_price_book_refresh_button_reloads_the_catalogue(operator):
    removed = PriceBookEntry.objects.filter(model__icontains="gpt").order_by("pk").first()
    removed.delete()
    response = operator.post("/price-book/refresh", follow=True)
    assert response.status_code == 200
    assert "Price book refreshed from genai-prices" in _text(response)
    assert "1 new" in _text(response)
    assert PriceBookEntry.objects.filter(
        provider=removed.provider,
        model=removed.model,
        token_kind=removed.token_kind,
        tier_start=removed.tier_start,
        effective_from=removed.effective_from,
    ).exists()


def test_contract_term_form_adds_a_discount_and_custom_prices(operator, alpha):
    empty = _text(operator.get("/price-book/"))
    assert "No contract terms" in empty
    response = operator.post(
        "/price-book/overrides",
        {
            "tenant": "alpha",
            "provider": "openai",
            "discount_percent": "12.5",
            "effective_from": "2026-10-01",
            "note": "framework agreement",
        },
    )
    assert response.status_code == 302
    discount = TenantPriceOverride.objects.get()
    assert (discount.tenant.slug, discount.provider, discount.model) == ("alpha", "openai", "")
    assert discount.discount_percent == Decimal("12.5")
    assert discount.effective_from == datetime(2026, 10, 1, tzinfo=UTC)
    response = operator.post(
        "/price-book/overrides",
        {
            "tenant": "alpha",
            "provider": "self-hosted",
            "model": "coder-ft",
            "input_per_mtok": "0.2",
            "output_per_mtok": "0.35",
        },
    )
    assert response.status_code == 302
    custom = TenantPriceOverride.objects.get(model="coder-ft")
    assert (custom.input_per_mtok, custom.output_per_mtok) == (Decimal("0.2"), Decimal("0.35"))
    assert custom.discount_percent is None
    listing = _text(operator.get("/price-book/"))
    assert "12.5% off book prices" in listing and "framework agreement" in listing
    assert "input $0.20, output $0.35" in listing


def test_a_contract_terms_day_starts_at_the_tenants_midnight(operator, alpha, monkeypatch):
    from factory_portal.tenants.services import tenant_timezone_set

    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    tenant_timezone_set(tenant=alpha.tenant, timezone="America/New_York")
    response = operator.post(
        "/price-book/overrides",
        {"tenant": "alpha", "discount_percent": "10", "effective_from": "2026-10-01"},
        follow=True,
    )
    term = TenantPriceOverride.objects.get()
    assert term.effective_from == datetime(2026, 10, 1, 4, tzinfo=UTC)
    page = _text(response)
    assert "from 2026-10-01 00:00 America/New_York" in page  # the message
    listed = '<td>2026-10-01 00:00 <span class="muted">America/New_York</span></td>'
    assert listed in page.split("Contract terms (")[1]
    # A day before any time in the tenant's zone: said on the form (it answered 500).
    tenant_timezone_set(tenant=alpha.tenant, timezone="Asia/Tokyo")
    early = operator.post(
        "/price-book/overrides",
        {"tenant": "alpha", "discount_percent": "10", "effective_from": "0001-01-01"},
    )
    assert early.status_code == 400 and "outside the supported days" in _text(early)
    # No tenant: the form says so, and nothing is added.
    refused = operator.post(
        "/price-book/overrides", {"discount_percent": "10", "effective_from": "2026-10-01"}
    )
    assert refused.status_code == 400 and TenantPriceOverride.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tenant": "alpha"}, "Give either a discount or custom prices"),
        ({"tenant": "alpha", "discount_percent": "5", "input_per_mtok": "1"}, "not both"),
        ({"tenant": "alpha", "input_per_mtok": "1"}, "both an input and an output price"),
        ({"tenant": "alpha", "discount_percent": "120"}, "less than or equal to 100"),
        ({"tenant": "alpha", "output_per_mtok": "-1", "input_per_mtok": "1"}, "greater than"),
        ({"tenant": "nobody", "discount_percent": "5"}, "No tenant has the slug nobody."),
        ({"tenant": "alpha", "discount_percent": "5", "effective_from": "soon"}, "valid date"),
    ],
)
def test_contract_term_form_shows_errors(operator, alpha, data, message):
    response = operator.post("/price-book/overrides", data)
    assert response.status_code == 400
    assert message in _text(response)
    assert not TenantPriceOverride.objects.exists()


# --- cost pools and FOCUS uploads -----------------------------------------------------------


def _upload(client, content: bytes, name: str = "bill.csv", **fields: str):
    return client.post(
        "/pools/upload", {"file": SimpleUploadedFile(name, content, "text/csv"), **fields}
    )


def test_pools_page_is_empty_before_any_import(operator, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = _text(operator.get("/pools/"))
    assert "No cost pools yet" in page and "No FOCUS file imported yet" in page
    assert '<label for="id_file"' in page and 'enctype="multipart/form-data"' in page


def test_uploading_a_focus_bill_creates_pools(operator, django_assert_max_num_queries):
    response = _upload(operator, (FOCUS_HEADER + FOCUS_ROWS).encode(), "october bill.csv")
    assert response.status_code == 302
    record = FocusImport.objects.get()
    assert (record.filename, record.rows) == ("october bill.csv", 3)
    pools = CostPool.objects.filter(source=record)
    expected = {
        (p.provider, p.charge_category, p.effective_cost)
        for p in pools  # independent of the page: straight from the rows above
    }
    assert expected == {
        ("AWS", "Usage", Decimal("9.25")),
        ("GCP", "Usage", Decimal("4.125")),
        ("AWS", "Credit", Decimal("-1")),
    }
    with django_assert_max_num_queries(12):
        page = _text(operator.get("/pools/"))
    assert "Imported 3 charges (FOCUS 1.2) from october bill.csv into 3 cost pools" in page
    assert "October 2026" in page and "not allocated" in page
    assert usd(record.effective_cost) in page and usd(Decimal("-1")) in page
    assert "GCP" in page and "october bill.csv" in page

    again = _upload(operator, (FOCUS_HEADER + FOCUS_ROWS).encode(), "copy.csv")
    assert again.status_code == 302
    assert "already imported" in _text(operator.get("/pools/"))
    assert FocusImport.objects.count() == 1


def test_upload_with_a_period_and_pool_tag(operator):
    rows = (
        "1,1,1,USD,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,"
        '"{""team"": ""search""}"\n'
        "2,2,2,USD,2026-11-01,2026-12-01,Usage,Compute,AWS,USD,"
        '"{""team"": ""ads""}"\n'
    )
    response = _upload(operator, (FOCUS_HEADER + rows).encode(), period="2026-10", pool_tag="team")
    assert response.status_code == 302
    pools = CostPool.objects.all()
    assert {p.period for p in pools} == {date(2026, 10, 1)}
    assert {p.tag_value for p in pools} == {"search", "ads"}
    filtered = _text(operator.get("/pools/?period=2026-10"))
    assert "team=search" in filtered and "Cost pools of October 2026" in filtered
    assert "No cost pools in December 2026" in _text(operator.get("/pools/?period=2026-12"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "not a UTF-8 text file"),
        (b"name,amount\nfoo,1\n", "missing column(s) BilledCost"),
        (
            (
                FOCUS_HEADER + "abc,1,1,USD,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n"
            ).encode(),
            "line 2, column BilledCost",
        ),
        (
            (
                FOCUS_HEADER + "1,1,1,EUR,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n"
            ).encode(),
            "EUR bills are not supported",
        ),
        (
            (
                FOCUS_HEADER + "1e20,1,1,USD,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n"
            ).encode(),
            "too large to be a real bill",
        ),
        (
            (
                FOCUS_HEADER + "1,1,1,USD,9999-12-01,9999-12-31,Usage,Compute,AWS,USD,NULL\n"
            ).encode(),
            "outside the supported days",
        ),
        (FOCUS_HEADER.encode(), "no charges"),
        (b"", "The submitted file is empty"),
    ],
)
def test_bad_focus_files_get_a_clear_error_and_import_nothing(operator, content, message):
    response = _upload(operator, content)
    assert response.status_code == 400
    page = _text(response)
    assert message in page
    if content:
        assert "Nothing was imported" in page
    assert not FocusImport.objects.exists() and not CostPool.objects.exists()


def test_upload_without_a_file_or_with_a_bad_period(operator):
    assert "This field is required" in _text(operator.post("/pools/upload", {}))
    response = _upload(operator, (FOCUS_HEADER + FOCUS_ROWS).encode(), period="October")
    assert response.status_code == 400 and "is not a month (YYYY-MM" in _text(response)
    assert not FocusImport.objects.exists()


def test_with_many_tenants_a_term_names_its_tenant_by_slug_and_terms_are_paged(
    operator, alpha, beta, monkeypatch
):
    """At ten thousand tenants the term form listed every one of them in a select (a megabyte
    of every price book page) and the terms were one list."""
    from billing.operator import forms
    from billing.operator import selectors as operator_selectors

    listed = _text(operator.get("/price-book/"))
    assert '<select name="tenant"' in listed and ">Beta Inc<" in listed
    monkeypatch.setattr(forms, "TENANT_CHOICES_UP_TO", 1)
    monkeypatch.setattr(operator_selectors, "PAGE_SIZE", 1)
    typed = _text(operator.get("/price-book/"))
    assert '<select name="tenant"' not in typed and ">Beta Inc<" not in typed
    assert re.search(r'<input type="text" name="tenant"[^>]*placeholder="the tenant', typed)
    unknown = operator.post("/price-book/overrides", {"tenant": "gamma", "discount_percent": "5"})
    assert unknown.status_code == 400 and "No tenant has the slug gamma." in _text(unknown)
    for slug in ("alpha", "beta"):
        done = operator.post("/price-book/overrides", {"tenant": slug, "discount_percent": "5"})
        assert done.status_code == 302
    first = _text(operator.get("/price-book/"))
    terms = first.split("Contract terms (")[1]
    assert "Alpha Inc" in terms and "Beta Inc" not in terms
    assert 'href="?terms_page=2#terms-heading"' in terms and "(2 terms)" in terms
    second = _text(operator.get("/price-book/", {"terms_page": "2"})).split("Contract terms (")[1]
    assert "Beta Inc" in second and "Alpha Inc" not in second
