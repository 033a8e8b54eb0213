"""FOCUS import: the real FinOps sample reconciles to the last decimal; quirks are tolerated."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from billing.operator.models import CostPool, FocusImport
from billing.operator.services.focus import FocusImportError, focus_import

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent / "data" / "focus_sample_1.0.csv"


def _independent_totals(path: Path) -> dict[str, Decimal]:
    totals = {"BilledCost": Decimal(0), "EffectiveCost": Decimal(0)}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for column in totals:
                totals[column] += Decimal(row[column])
    return totals


def test_the_real_sample_reconciles_to_the_last_decimal():
    result = focus_import(path=SAMPLE)
    expected = _independent_totals(SAMPLE)
    record = result.focus_import
    assert record.rows == 1000
    assert record.billed_cost == expected["BilledCost"] == Decimal("20.52022672899")
    assert record.effective_cost == expected["EffectiveCost"] == Decimal("14.97651418586")
    assert record.list_cost == Decimal("20.39090575119")
    pools = CostPool.objects.filter(source=record)
    sums = pools.aggregate(
        billed=Sum("billed_cost"), effective=Sum("effective_cost"), rows=Sum("rows")
    )
    assert sums == {
        "billed": expected["BilledCost"],
        "effective": expected["EffectiveCost"],
        "rows": 1000,
    }
    assert result.rows_by_period == {date(2024, 9, 1): 999, date(2024, 10, 1): 1}
    assert set(pools.values_list("provider", flat=True)) == {"AWS", "Microsoft", "Oracle"}
    assert set(pools.values_list("charge_category", flat=True)) == {"Usage", "Adjustment", "Credit"}
    assert pools.filter(billed_cost__lt=0).exists()  # credits stay negative


def test_importing_the_same_file_twice_changes_nothing():
    first = focus_import(path=SAMPLE)
    pools = CostPool.objects.count()
    again = focus_import(path=SAMPLE)
    assert again.created is False
    assert again.focus_import.pk == first.focus_import.pk
    assert CostPool.objects.count() == pools
    assert FocusImport.objects.count() == 1


def test_period_override_and_pools_by_tag():
    result = focus_import(path=SAMPLE, period=date(2024, 9, 1), pool_tag="business_unit")
    assert result.rows_by_period == {date(2024, 9, 1): 1000}
    pools = CostPool.objects.filter(source=result.focus_import)
    assert pools.exclude(tag_value="").count() > 10
    assert pools.filter(tag_value="ViennaAI").exists()
    assert pools.aggregate(s=Sum("billed_cost"))["s"] == Decimal("20.52022672899")


HEADER_12 = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingPeriodStart,"
    "BillingPeriodEnd,ChargeCategory,ServiceCategory,ProviderName,PricingCurrency,Tags\n"
)


def _write(tmp_path: Path, body: str, header: str = HEADER_12) -> Path:
    path = tmp_path / "bill.csv"
    path.write_text(header + body)
    return path


def test_focus_12_file_with_quirks(tmp_path):
    path = _write(
        tmp_path,
        (
            "1.50,1.25,NULL,usd,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,usage,compute,AWS,USD,"
            '"{""team"": ""a"", ""team"": ""b""}"\n'
            "-0.25,-0.25,,USD,2026-10-01 00:00:00,2026-11-01 00:00:00,CREDIT,Compute,AWS,USD,NULL\n"
        ),
    )
    result = focus_import(path=path, pool_tag="team")
    assert result.focus_import.focus_version == "1.2"
    pools = {
        (p.charge_category, p.tag_value): p
        for p in CostPool.objects.filter(source=result.focus_import)
    }
    assert pools[("Usage", "b")].billed_cost == Decimal("1.50")  # duplicated key: last wins
    assert pools[("Credit", "")].effective_cost == Decimal("-0.25")
    assert pools[("Usage", "b")].service_category == "Compute"
    assert pools[("Usage", "b")].currency == "USD"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "abc,1,1,USD,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n",
            "line 3, column BilledCost",
        ),
        ("1,1,1,USD,someday,2026-11-01,Usage,Compute,AWS,USD,NULL\n", "column BillingPeriodStart"),
        ("1,1,1,US,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n", "BillingCurrency"),
        ("1,NULL,1,USD,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n", "EffectiveCost"),
        ("", "no charges"),
    ],
)
def test_bad_rows_import_nothing(tmp_path, body, words):
    path = _write(
        tmp_path,
        "1,1,1,USD,2026-10-01,2026-11-01,Usage,Compute,AWS,USD,NULL\n" + body if body else "",
    )
    with pytest.raises(FocusImportError, match=words):
        focus_import(path=path)
    assert not FocusImport.objects.exists()
    assert not CostPool.objects.exists()


def test_missing_columns_are_named(tmp_path):
    path = _write(tmp_path, "1\n", header="BilledCost\n")
    with pytest.raises(FocusImportError, match=r"missing column.*EffectiveCost"):
        focus_import(path=path)


def test_command_reports_totals_and_is_idempotent():
    out = io.StringIO()
    call_command("import_focus", str(SAMPLE), stdout=out, stderr=io.StringIO())
    assert "Imported 1,000 charges (FOCUS 1.0)" in out.getvalue()
    assert "BilledCost 20.52022672899, EffectiveCost 14.97651418586" in out.getvalue()
    again = io.StringIO()
    call_command("import_focus", str(SAMPLE), stdout=again, stderr=io.StringIO())
    assert "nothing changed" in again.getvalue()


def test_command_rejects_a_bad_period():
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("import_focus", str(SAMPLE), "--period", "Sept", stdout=io.StringIO())


def test_non_usd_bills_are_refused(tmp_path):
    from billing.operator.services.focus import FocusImportError, focus_import

    path = tmp_path / "eur.csv"
    path.write_text(
        "BilledCost,EffectiveCost,BillingCurrency,BillingPeriodStart,ChargeCategory,"
        "ServiceCategory,ProviderName\n1,1,EUR,2026-10-01,Usage,Compute,X\n"
    )
    with pytest.raises(FocusImportError, match="EUR bills are not supported"):
        focus_import(path=path)


def test_a_bill_of_more_than_ten_thousand_rows_imports_with_progress(tmp_path):
    """Progress is reported every 10,000 rows: the position in the file could not be told
    while its rows were read, so any real bill of that size failed (a review found it)."""
    lines = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    big = tmp_path / "big.csv"
    big.write_text(header + "".join(rows * 11), encoding="utf-8")
    seen: list[tuple[int, int, int]] = []
    result = focus_import(path=big, progress=lambda *step: seen.append(step))
    assert result.focus_import.rows == 11_000
    assert result.focus_import.billed_cost == _independent_totals(big)["BilledCost"]
    size = big.stat().st_size
    assert seen[0][0] == 10_000 and 0 < seen[0][1] < size and seen[-1] == (11_000, size, size)


def test_names_alike_up_to_what_a_pool_keeps_are_one_pool(tmp_path):
    """Providers alike in their first 100 characters were two pools with one key after the
    cut, and the import failed (an operator review found it as a traceback and a 500)."""
    with SAMPLE.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        row = next(reader)
        columns = reader.fieldnames
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for end in "xy":
        writer.writerow({**row, "ProviderName": "B" * 100 + end, "BilledCost": "1.5"})
    path = tmp_path / "alike.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    result = focus_import(path=path)
    [pool] = CostPool.objects.filter(source=result.focus_import)
    assert (pool.provider, pool.billed_cost, pool.rows) == ("B" * 100, Decimal("3.0"), 2)


def test_importing_a_file_again_with_other_options_says_so():
    """A second import with another --period or --pool-tag said "nothing changed" and left the
    operator believing the new options applied (an operator review)."""
    focus_import(path=SAMPLE)
    with pytest.raises(FocusImportError, match="with pool tag 'none'; importing it again with"):
        focus_import(path=SAMPLE, pool_tag="team")
    with pytest.raises(FocusImportError, match="importing it again into 2030-01 changes nothing"):
        focus_import(path=SAMPLE, period=date(2030, 1, 1))
    assert not focus_import(path=SAMPLE).created  # the same options: a no-op, as before
    assert FocusImport.objects.count() == 1


def test_a_file_imported_with_a_period_again_without_it_says_so():
    """Imported into a period, then again without ``--period``: a silent no-op left the
    operator believing the charges now sat in their own months (left alone in a review: the
    import kept no record of its options)."""
    first = focus_import(path=SAMPLE, period=date(2030, 1, 1))
    assert first.focus_import.period_given == date(2030, 1, 1)
    with pytest.raises(FocusImportError, match=r"into 2030-01 \(--period\); importing it again"):
        focus_import(path=SAMPLE)
    assert not focus_import(path=SAMPLE, period=date(2030, 1, 1)).created
    assert set(CostPool.objects.values_list("period", flat=True)) == {date(2030, 1, 1)}
