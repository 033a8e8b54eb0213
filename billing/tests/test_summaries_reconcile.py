"""The costs page's per-template and per-run-type rows equal the Excel runs sheet's rows of the
same group, to the cent, and add up to the month's total (runs with fractions of a cent)."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context
from openpyxl import load_workbook

from billing.exports import write_xlsx
from billing.selectors.costs import cost_report
from billing.selectors.summaries import OUTSIDE_RUNS, groups_to_cents
from tests.support import llm_event_in
from usage.domain.runs import RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

MONTH = date(2026, 9, 1)
T = datetime(2026, 9, 3, 9, tzinfo=UTC)


def test_groups_equal_the_runs_sheet_and_the_total(alpha):
    rng = random.Random(15)  # noqa: S311 - test data
    templates = ["spa", "api", "docs"]
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    n,
                    f"r{n:02d}",
                    "web",
                    "Succeeded",
                    T + timedelta(minutes=n, seconds=30),
                    template_recipe_id=templates[n % 3],
                    run_type=f"type-{n % 2}",
                    requested_at=T + timedelta(minutes=n),
                )
                for n in range(40)
            ]
        )
        events = [
            llm_event_in(
                f"c{n}",
                T + timedelta(minutes=n % 40, seconds=10),
                project="web",
                run_id=f"r{n % 40:02d}",
                cost=Decimal(rng.randrange(1, 10**9)) / 10**10,  # up to ten cents, 10 places
            )
            for n in range(120)
        ]
        events.append(llm_event_in("out", T, project="web", cost=Decimal("0.0049999999")))
        events_ingest(events=events, pricer=pricer_for(alpha.tenant))
        report = cost_report(tenant=alpha.tenant, period=MONTH)
        buffer = io.BytesIO()
        write_xlsx(report, buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)["Runs"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    by_run = {r[header.index("run_id")]: r for r in rows[1:]}
    for attribute in ("template", "run_type"):
        sheet_groups: dict[str, Decimal] = defaultdict(Decimal)
        for run in report.runs:
            row = by_run[run.run_id]
            sheet_groups[getattr(run, attribute)] += Decimal(str(row[header.index("total_usd")]))
        outside = by_run["(usage outside runs)"]
        sheet_groups[OUTSIDE_RUNS] = Decimal(str(outside[header.index("total_usd")]))
        page = {name: unit.total for name, unit in groups_to_cents(report, attribute)}
        assert page == dict(sheet_groups)
        assert sum(page.values()) == report.total.quantize(Decimal("0.01"))
