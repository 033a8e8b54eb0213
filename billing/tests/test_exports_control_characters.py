"""Finance exports of a month whose client strings carry control characters (OTLP spans keep
everything but NUL in run ids, templates and model names): the XLSX is still written."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context
from openpyxl import load_workbook

from factory_portal.spreadsheets import cell
from tests.support import llm_event_in, logged_in_client
from usage.domain.runs import RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

T = datetime(2026, 9, 8, 10, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_cell_replaces_what_xml_cannot_hold_and_keeps_formulas_text():
    assert cell("run\x07one\x1b[31m") == "run one [31m"
    assert cell("tab\tand\nnew line") == "tab\tand\nnew line"
    assert cell("=1+1") == "'=1+1"
    assert cell("\x01=1+1") == " =1+1"
    assert cell(Decimal("-1")) == Decimal("-1")
    # Client text that looks like a number is text too (an id "-02" must not become -2).
    assert cell("-8.06") == "'-8.06" and cell("-1-1") == "'-1-1"


def test_xlsx_report_with_control_characters_in_client_strings(alpha):
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    0,
                    "run\x07bell",
                    "web",
                    "Succeeded",
                    T + timedelta(minutes=5),
                    template_recipe_id="tmpl\x0bvt",
                    run_type="front\x1bend",
                    requested_at=T,
                    started_at=T,
                    finished_at=T + timedelta(minutes=5),
                )
            ]
        )
        call = llm_event_in(
            "c1", T, project="web", run_id="run\x07bell", model="gpt\x01x", cost=Decimal("2")
        )
        events_ingest(events=[call], pricer=pricer_for(alpha.tenant))

    response = logged_in_client(alpha.host, alpha.admin_email).get("/reports/2026-09/xlsx")

    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    runs = list(book["Runs"].iter_rows(values_only=True))
    assert runs[1][:4] == ("run bell", "web", "front end", "tmpl vt")
    models = list(book["Models"].iter_rows(values_only=True))
    assert models[1][1] == "openai/gpt x"


def test_exports_do_not_carry_formulas(alpha):
    from billing.exports import cell
    from billing.selectors.costs import cost_report

    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("claude") == "claude" and cell(Decimal("-1")) == Decimal("-1")
    with schema_context(alpha.schema):
        events_ingest(
            events=[llm_event_in("f", NOW, provider="=cmd|'/c calc'!a1", cost=Decimal(1))],
            pricer=pricer_for(alpha.tenant),
        )
        import io

        from billing.exports import write_csv

        out = io.StringIO()
        write_csv(cost_report(tenant=alpha.tenant, period=date(2026, 11, 1)), out)
    assert ",'=cmd" in out.getvalue()  # the item starts with the provider, then the model
    assert ",=cmd" not in out.getvalue()


def test_csv_cells_split_at_a_semicolon_carry_no_formula(alpha):
    """Where the list separator is ";" (German, French Excel), a double-clicked CSV is split at
    every ";", inside a comma-separated field too: the run history CSV, the finance CSV and the
    FOCUS file give no piece that starts a formula (a review found ``=1+1`` as a cell)."""
    import csv

    from billing.exports import write_csv, write_focus
    from billing.selectors.costs import cost_report
    from factory_portal.spreadsheets import FORMULA_STARTS, csv_cell

    assert csv_cell("ZQ;=1+1;x") == "ZQ;'=1+1;x" and csv_cell("a;'b") == "a;''b"
    assert csv_cell("=a;-b") == "'=a;'-b" and csv_cell("a; =b") == "a; =b"
    assert cell("a;=1") == "a;=1"  # an XLSX cell is never split: left as it is
    hostile = "m;=4+4;"
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(0, "ZQ;=1+1;x", "web", "Failed", NOW, template_recipe_id="t;@SUM(1)")
            ]
        )
        events_ingest(
            events=[llm_event_in("s", NOW, run_id="ZQ;=1+1;x", model=hostile, cost=Decimal(1))],
            pricer=pricer_for(alpha.tenant),
        )
        report = cost_report(tenant=alpha.tenant, period=date(2026, 11, 1))
        finance, focus = io.StringIO(), io.StringIO()
        write_csv(report, finance)
        write_focus(report, focus)
    runs = logged_in_client(alpha.host, alpha.admin_email).get("/runs.csv", {"from": "2026-11-01"})
    files = {
        "runs": b"".join(runs.streaming_content).decode(),
        "finance": finance.getvalue(),
        "focus": focus.getvalue(),
    }
    assert "ZQ;'=1+1;x" in files["runs"] and "m;'=4+4;" in files["finance"]
    for name, text in files.items():
        pieces = [c for row in csv.reader(io.StringIO(text), delimiter=";") for c in row]
        assert not [c for c in pieces if c.startswith(FORMULA_STARTS)], name
