"""Total cost (AI + allocated infrastructure) is the headline of every run surface: run history
(columns, sort by total, AI or infrastructure cost, pages through a cost cursor), its CSV, the
runs API and run details; budgets may count total cost. Only the tenant's own runs appear."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.selectors.budgets import budget_status
from billing.services import budget_set
from billing.tests.test_costs_exports import PERIOD, month  # noqa: F401  (fixture)
from tests.support import bearer, host_client, key_for, logged_in_client

pytestmark = pytest.mark.django_db

# The month fixture: AI 1 / 2 / 4 / 8 and infrastructure 10 / 20 / 30 / 40 for its four runs.
TOTALS = {"stop": "48.00", "bad": "34.00", "ok-2": "22.00", "ok-1": "11.00"}
START = {"start": "2026-09-01", "end": "2026-09-30"}


def test_runs_api_sorts_by_total_cost_and_pages_by_it(month, alpha):  # noqa: F811
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    seen, cursor = [], None
    while True:
        query = {**START, "sort": "costliest", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/runs", query, **bearer(raw)).json()
        seen += [(r["run_id"], r["total_cost"], r["infrastructure_cost"]) for r in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(run, Decimal(total)) for run, total, _ in seen] == [
        (run, Decimal(total)) for run, total in TOTALS.items()
    ]
    assert seen[0][2] == "40.00"
    cheapest = client.get("/api/v1/runs", {**START, "sort": "cheapest"}, **bearer(raw)).json()
    assert [r["run_id"] for r in cheapest["results"]] == list(TOTALS)[::-1]
    detail = client.get("/api/v1/runs/stop", **bearer(raw)).json()
    assert (detail["infrastructure_cost"], Decimal(detail["total_cost"])) == ("40.00", 48)
    bad = client.get("/api/v1/runs", {"sort": "costliest", "cursor": "bm9wZQ"}, **bearer(raw))
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"


def test_run_history_shows_and_sorts_total_cost(month, alpha, beta):  # noqa: F811
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = admin.get("/runs/", {"sort": "costliest", "from": "2026-09-01"}).content.decode()
    positions = [page.index(f"<code>{run}</code>") for run in TOTALS]
    assert positions == sorted(positions)
    assert "$48.00" in page and "Total cost" in page
    download = admin.get("/runs.csv", {"sort": "ai_costliest"})
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [r["run_id"] for r in rows][:2] == ["stop", "bad"]
    assert {r["run_id"]: Decimal(r["total_cost_usd"]) for r in rows} == {
        run: Decimal(total) for run, total in TOTALS.items()
    }
    detail = admin.get("/runs/ok-2/").content.decode()
    assert 'data-testid="run-total">$22.00' in detail
    other = logged_in_client(beta.host, beta.admin_email).get("/runs/", {"sort": "costliest"})
    assert all(f"<code>{run}</code>" not in other.content.decode() for run in TOTALS)


def test_a_budget_may_count_total_cost(month, alpha):  # noqa: F811
    with schema_context(alpha.schema):
        ai = budget_status(
            budget_set(amount=Decimal(100), project="web"),
            tenant=alpha.tenant,
            today=date(2026, 9, 20),
        )
        total = budget_status(
            budget_set(amount=Decimal(100), project="web", basis="total"),
            tenant=alpha.tenant,
            today=date(2026, 9, 20),
        )
    assert ai.spent == Decimal(7)  # web's AI: 1 + 2 + 4
    assert total.spent == Decimal(67)  # and its $60 of allocated infrastructure
    assert date(2026, 9, 1) == PERIOD
