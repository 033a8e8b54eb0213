"""A FOCUS file with many bad rows: the first 100 are listed with the count, nothing is stored."""

from __future__ import annotations

import html
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.operator.models import CostPool, FocusImport
from billing.operator.services.focus import FocusImportError, focus_import
from factory_portal.error_lists import MAX_LISTED_ERRORS
from tests.support import OPERATOR_EMAIL, logged_in_client

pytestmark = pytest.mark.django_db

HEADER = "BilledCost,EffectiveCost,BillingCurrency,BillingPeriodStart,ChargeCategory,"
HEADER += "ServiceCategory,ProviderName\n"
GOOD = "1.5,1.5,USD,2026-10-01,Usage,Compute,AWS\n"
BAD = "lots,1,USD,2026-10-01,Usage,Compute,AWS\n"


def _bill(bad_rows: int) -> bytes:
    return (HEADER + GOOD + BAD * bad_rows + GOOD).encode()


def test_the_import_lists_the_first_100_bad_rows_and_counts_them_all(tmp_path):
    path = tmp_path / "bill.csv"
    path.write_bytes(_bill(5_000))
    with pytest.raises(FocusImportError) as caught:
        focus_import(path=path)
    error = caught.value
    assert str(error) == "5,000 rows are invalid"
    assert (error.rows.total, len(error.rows.listed)) == (5_000, MAX_LISTED_ERRORS)
    lines = error.lines()
    assert lines[1] == "line 3, column BilledCost: 'lots' is not a decimal number"
    assert lines[100].startswith("line 102, column BilledCost")
    assert lines[-1] == "and 4,900 more rows"
    assert len(lines) == 1 + MAX_LISTED_ERRORS + 1
    assert not FocusImport.objects.exists() and not CostPool.objects.exists()


def test_one_bad_row_is_named_alone(tmp_path):
    path = tmp_path / "bill.csv"
    path.write_bytes(_bill(1))
    with pytest.raises(FocusImportError) as caught:
        focus_import(path=path)
    assert caught.value.lines() == ["line 3, column BilledCost: 'lots' is not a decimal number"]


def test_the_console_upload_shows_at_most_100_bad_rows(public_host):
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    upload = SimpleUploadedFile("bill.csv", _bill(5_000), "text/csv")
    response = operator.post("/pools/upload", {"file": upload})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "bill.csv: 5,000 rows are invalid. Nothing was imported." in page
    assert page.count("column BilledCost: 'lots' is not a decimal number") == MAX_LISTED_ERRORS
    assert "and 4,900 more rows" in page
    assert len(response.content) < 256 * 1024
    assert not FocusImport.objects.exists() and not CostPool.objects.exists()


def test_the_command_lists_the_bad_rows(tmp_path):
    path = tmp_path / "bill.csv"
    path.write_bytes(_bill(150))
    with pytest.raises(CommandError) as caught:
        call_command("import_focus", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    message = str(caught.value)
    assert message.startswith("bill.csv: 150 rows are invalid. Nothing was imported.\nline 3,")
    assert message.endswith("\nand 50 more rows")
