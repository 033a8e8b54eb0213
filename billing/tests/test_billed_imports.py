"""Importing AI providers' bills, matching them with every tenant's estimate, drift alerts and
true-ups (billing.operator.services.billed, billed_selectors)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from billing.operator.billed_selectors import billed_costs, billed_drift
from billing.operator.models import BilledCost, BilledDriftAlert, BilledImport, TrueUp
from billing.operator.services.billed import (
    BilledImportError,
    billed_drift_check,
    billed_import,
    billed_upload_import,
    month_trueup,
)
from tests.support import OPERATOR_EMAIL, llm_event_in, llm_spend
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "billed"
SEPTEMBER = date(2026, 9, 1)
SEP10 = date(2026, 9, 10)
AT = datetime(2026, 9, 10, 9, tzinfo=UTC)


def _openai_bill(tmp_path: Path, *amounts: str, name: str = "openai.csv") -> Path:
    path = tmp_path / name
    lines = ["start_time,line_item,amount_value,amount_currency"]
    lines += [f'1788998400,"gpt-4.1-2025-04-14, input",{a},usd' for a in amounts]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("name", "layout", "rows", "amount"),
    [
        ("focus_ai_1.2.csv", "focus", 3, Decimal("2.35")),
        ("openai_costs.csv", "openai", 3, Decimal("2.1123456")),
        ("openai_costs.json", "openai", 3, Decimal("2.1123456")),
        ("anthropic_cost_report.csv", "anthropic", 3, Decimal("2.115")),
        ("anthropic_cost_report.json", "anthropic", 3, Decimal("2.115")),
    ],
)
def test_each_layout_imports_once(name, layout, rows, amount, tmp_path):
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    result = billed_import(path=path)
    record = result.billed_import
    assert result.created and (record.layout, record.rows, record.amount) == (layout, rows, amount)
    assert result.months == [SEPTEMBER]
    stored = BilledCost.objects.count()
    again = billed_import(path=path, filename="renamed.csv")
    assert not again.created and again.billed_import == record
    assert BilledCost.objects.count() == stored and BilledImport.objects.count() == 1


def test_bad_rows_are_listed_and_nothing_is_imported(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "start_time,line_item,amount_value,amount_currency\n"
        '1788998400,"gpt-4.1, input",1.00,usd\n'
        '1788998400,"gpt-4.1, input",lots,usd\n'
        'tomorrow,"gpt-4.1, input",1.00,usd\n'
        '1788998400,"gpt-4.1, input",1.00,eur\n'
    )
    with pytest.raises(BilledImportError) as caught:
        billed_import(path=path)
    assert caught.value.lines() == [
        "3 rows are invalid",
        "line 3, column amount_value: 'lots' is not a decimal number",
        "line 4, column start_time: 'tomorrow' is not a date and time",
        "line 5, column amount_currency: EUR bills are not supported: the portal counts USD",
    ]
    assert not BilledImport.objects.exists() and not BilledCost.objects.exists()


def test_files_that_are_not_bills_or_too_large_are_refused(tmp_path, settings):
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BilledImportError, match="not a UTF-8 text file"):
        billed_import(path=binary)
    other = tmp_path / "other.csv"
    other.write_text("date,cost\n2026-09-01,1\n")
    with pytest.raises(BilledImportError, match="not a known bill layout"):
        billed_import(path=other)
    settings.BILLED_IMPORT_MAX_BYTES = 100
    with pytest.raises(BilledImportError, match="more than 100 bytes") as caught:
        billed_upload_import(chunks=[b"x" * 60, b"x" * 60], filename="big.csv")
    assert caught.value.too_large
    assert not BilledImport.objects.exists()


def test_names_alike_up_to_what_is_kept_and_totals_too_large(tmp_path):
    """Two models alike in their first 128 characters were two charges with one key (the
    import failed on the unique key), and a thousand rows just below the row limit overflowed
    the stored sum (an operator review found both as tracebacks)."""
    alike = tmp_path / "alike.csv"
    lines = ["start_time,line_item,amount_value,amount_currency"]
    lines += [f'1788998400,"{"m" * 128}{end}, input",1.25,usd' for end in "xy"]
    alike.write_text("\n".join(lines) + "\n")
    billed_import(path=alike)
    [charge] = BilledCost.objects.all()
    assert (charge.model, charge.amount, charge.rows) == ("m" * 128, Decimal("2.50"), 2)
    huge = _openai_bill(tmp_path, *["999999999999999"] * 1001, name="huge.csv")
    with pytest.raises(BilledImportError, match="too large to be a real bill"):
        billed_import(path=huge)
    assert BilledImport.objects.count() == 1


def test_a_newer_import_replaces_the_bill_of_the_days_it_covers(tmp_path):
    billed_import(path=_openai_bill(tmp_path, "1.00", name="first.csv"))
    billed_import(path=_openai_bill(tmp_path, "1.25", name="second.csv"))
    assert billed_costs(SEPTEMBER) == {("openai", "gpt-4.1", SEP10): Decimal("1.25")}


def test_bills_match_the_estimate_summed_over_tenants(alpha, beta, tmp_path):
    llm_spend(alpha, AT, "1.00", "0.20")
    llm_spend(beta, AT, "0.90")
    billed_import(path=_openai_bill(tmp_path, "2.00", "0.10"))
    [line] = billed_drift(SEPTEMBER).lines
    assert (line.provider, line.model) == ("openai", "gpt-4.1")
    assert (line.billed, line.estimated, line.difference) == (
        Decimal("2.10"),
        Decimal("2.10"),
        Decimal(0),
    )
    assert line.within and not billed_drift(SEPTEMBER).unmatched_billed
    assert not BilledDriftAlert.objects.exists()


def test_drift_outside_tolerance_alerts_the_operators_once(
    alpha, tmp_path, django_capture_on_commit_callbacks
):
    llm_spend(alpha, AT, "1.00")
    with django_capture_on_commit_callbacks(execute=True):
        result = billed_import(path=_openai_bill(tmp_path, "1.05"))  # +5% > 2%
    assert result.created
    alert = BilledDriftAlert.objects.get()
    assert (alert.provider, alert.model, alert.percent) == ("openai", "gpt-4.1", Decimal("5.00"))
    [message] = mail.outbox
    assert "AI bill drift 2026-09: openai/gpt-4.1 +5.00%" in message.subject
    assert message.to == [OPERATOR_EMAIL]
    with django_capture_on_commit_callbacks(execute=True):
        assert billed_drift_check(period=SEPTEMBER) == []
    assert len(mail.outbox) == 1


def test_a_provider_without_a_bill_yet_is_not_drift(alpha, tmp_path):
    """One provider's bill imported: the others' estimates wait for their bills rather than
    alert at -100% (a review found them alerted, and kept so after their bills came)."""
    from django_tenants.utils import schema_context

    from tests.support import llm_event_in
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest

    llm_spend(alpha, AT, "1.00")
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                llm_event_in(
                    "claude-1", AT, provider="anthropic", model="claude-sonnet-4-5", cost=Decimal(3)
                )
            ],
            pricer=pricer_for(alpha.tenant),
        )
    before = billed_drift(SEPTEMBER)
    assert not before.any_billed and before.outside == []
    billed_import(path=_openai_bill(tmp_path, "1.00"))
    drift = billed_drift(SEPTEMBER)
    assert {(line.provider, line.within, line.provider_billed) for line in drift.lines} == {
        ("openai", True, True),
        ("anthropic", False, False),  # shown as not billed on the drift page
    }
    assert drift.any_billed and drift.outside == []
    assert billed_drift_check(period=SEPTEMBER) == []
    assert not BilledDriftAlert.objects.exists()


def test_the_month_page_and_api_say_which_providers_have_no_bill(
    operator, alpha, tmp_path, public_host
):
    """The page showed every model of a month without any bill "outside" at -100% and offered a
    true-up to a bill that was not there."""
    import html

    from django_tenants.utils import schema_context

    from tests.support import llm_event_in
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest

    llm_spend(alpha, AT, "1.00")
    page = html.unescape(operator.get("/billed/2026-09/").content.decode())
    assert "No bill imported for September 2026 yet" in page and "True up" not in page
    assert ">no bill<" in page and ">outside<" not in page
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                llm_event_in(
                    "claude-2", AT, provider="anthropic", model="claude-sonnet-4-5", cost=Decimal(3)
                )
            ],
            pricer=pricer_for(alpha.tenant),
        )
    billed_import(path=_openai_bill(tmp_path, "1.50"))  # 50% over the estimate
    page = html.unescape(operator.get("/billed/2026-09/").content.decode())
    assert "True up September 2026 to the bill" in page
    assert page.count(">no bill<") == 1 and page.count(">outside<") == 1
    lines = operator.get("/api/v1/billed-drift/2026-09").json()["lines"]
    assert {(x["provider"], x["within_tolerance"], x["provider_billed"]) for x in lines} == {
        ("openai", False, True),
        ("anthropic", None, False),  # not compared: neither within nor outside
    }


def test_trueup_splits_the_difference_by_share_exactly(alpha, beta, tmp_path):
    llm_spend(alpha, AT, "1.20")
    llm_spend(beta, AT, "0.90")
    billed_import(path=_openai_bill(tmp_path, "2.20"))  # estimated 2.10: +0.10
    [trueup] = month_trueup(period=SEPTEMBER)
    lines = {line.tenant.slug: line.amount for line in trueup.lines.all()}
    assert lines == {"alpha": Decimal("0.06"), "beta": Decimal("0.04")}
    assert trueup.amount == Decimal("0.10") == sum(lines.values())
    month_trueup(period=SEPTEMBER)  # again: replaced, not added
    assert TrueUp.objects.count() == 1


def test_the_readme_worked_example(alpha, beta, tmp_path):
    for tenant, gpt, claude in ((alpha, "1.20", "3.00"), (beta, "0.90", "2.05")):
        llm_spend(tenant, AT, gpt)
        with schema_context(tenant.schema):
            events_ingest(
                events=[
                    llm_event_in(
                        f"c-{tenant.tenant.slug}",
                        AT,
                        provider="anthropic",
                        model="claude-sonnet-4-5-20250929",
                        cost=Decimal(claude),
                    )
                ],
                pricer=pricer_for(tenant.tenant),
            )
    billed_import(path=_openai_bill(tmp_path, "2.20"))
    anthropic = tmp_path / "anthropic.csv"
    anthropic.write_text(
        "starting_at,model,currency,amount\n2026-09-10T00:00:00Z,claude-sonnet-4-5,USD,500\n"
    )
    billed_import(path=anthropic)
    drift = {line.model: line for line in billed_drift(SEPTEMBER).lines}
    assert (drift["gpt-4.1"].percent, drift["gpt-4.1"].within) == (Decimal("4.76"), False)
    claude = drift["claude-sonnet-4-5"]
    assert (claude.difference, claude.percent, claude.within) == (
        Decimal("-0.05"),
        Decimal("-0.99"),
        True,
    )
    lines = {
        (t.model, line.tenant.slug): line.amount
        for t in month_trueup(period=SEPTEMBER)
        for line in t.lines.all()
    }
    assert lines == {
        ("gpt-4.1", "alpha"): Decimal("0.06"),
        ("gpt-4.1", "beta"): Decimal("0.04"),
        ("claude-sonnet-4-5", "alpha"): Decimal("-0.03"),
        ("claude-sonnet-4-5", "beta"): Decimal("-0.02"),
    }


def test_the_import_command(tmp_path, capsys):
    path = _openai_bill(tmp_path, "1.00")
    call_command("import_billed", str(path))
    assert "Imported 1 AI charges (openai, 1.00" in capsys.readouterr().out
    call_command("import_billed", str(path))
    assert "Already imported" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("date,cost\n")
    with pytest.raises(CommandError, match="not a known bill layout"):
        call_command("import_billed", str(bad))
