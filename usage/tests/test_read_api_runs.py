"""``GET /api/v1/runs`` (filters, keyset cursor, numbers equal the run history's) and
``GET /api/v1/runs/{run_id}``; ``POST /api/v1/runs`` still ingests; scopes and isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for, llm_event_in, run_update
from usage import selectors
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

T = datetime(2026, 11, 2, 10, tzinfo=UTC)


@pytest.fixture
def runs(alpha):
    with schema_context(alpha.schema):
        for n in range(7):
            status = "Failed" if n % 3 == 0 else "Succeeded"
            at = T + timedelta(minutes=n)
            run_update(
                f"run-{n}",
                status,
                at + timedelta(seconds=30),
                project="web",
                requested_at=at,
                started_at=at,
                finished_at=at + timedelta(seconds=30 + n),
                template_recipe_id="spa",
                trace_id=f"{n:032x}",
            )
        events_ingest(
            events=[llm_event_in("c1", T, project="web", run_id="run-6", cost=Decimal("0.75"))],
            pricer=pricer_for(alpha.tenant),
        )
    _, raw = key_for(alpha, ["read"])
    return host_client(alpha.host), bearer(raw)


def test_pages_follow_the_cursor_without_overlap(runs, alpha):
    client, auth = runs
    seen, cursor = [], ""
    for _ in range(5):
        body = client.get(f"/api/v1/runs?limit=3{cursor}", **auth).json()
        seen += [r["run_id"] for r in body["results"]]
        if not body["next_cursor"]:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == [f"run-{n}" for n in range(6, -1, -1)]
    with schema_context(alpha.schema):
        history = [r.run_id for r in selectors.runs_iter(selectors.RunFilters())]
    assert seen == history
    first = client.get("/api/v1/runs?limit=1", **auth).json()["results"][0]
    assert first == {
        "run_id": "run-6",
        "project": "web",
        "template": "spa",
        "run_type": "",
        "status": "Failed",
        "requested_at": "2026-11-02T10:06:00Z",
        "duration_ms": 36000,
        "failure_type": "",
        "ai_cost": "0.7500000000",
        "infrastructure_cost": "0.00",  # its month is not allocated
        "total_cost": "0.7500000000",
    }


def test_filters_and_sort(runs):
    client, auth = runs
    failed = client.get("/api/v1/runs?status=Failed", **auth).json()["results"]
    assert [r["run_id"] for r in failed] == ["run-6", "run-3", "run-0"]
    longest = client.get("/api/v1/runs?sort=longest&limit=2", **auth).json()["results"]
    assert [r["run_id"] for r in longest] == ["run-6", "run-5"]
    none = client.get("/api/v1/runs?project=api", **auth).json()
    assert none == {"results": [], "next": None, "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=Done", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=%%%", "cursor"),
        ("start=2026-11-05&end=2026-11-01", "start"),
    ],
)
def test_bad_parameters_are_named(runs, query, field):
    client, auth = runs
    response = client.get(f"/api/v1/runs?{query}", **auth)
    assert response.status_code == 400 and field in response.json()["errors"]


def test_run_detail_and_missing_run(runs):
    client, auth = runs
    detail = client.get("/api/v1/runs/run-6", **auth).json()
    assert detail["trace_id"] == f"{6:032x}" and detail["ai_cost"] == "0.7500000000"
    assert detail["models"][0]["model"] == "gpt-4.1" and detail["models"][0]["calls"] == 1
    missing = client.get("/api/v1/runs/nope", **auth)
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"


def test_scopes_and_isolation(runs, alpha, beta):
    client, _ = runs
    _, ingest = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["read", "ingest"])
    assert client.get("/api/v1/runs", **bearer(ingest)).status_code == 403
    assert client.get("/api/v1/runs/run-6", **bearer(ingest)).status_code == 403
    assert client.get("/api/v1/runs", **bearer(beta_key)).status_code == 401
    assert host_client(beta.host).get("/api/v1/runs/run-6", **bearer(beta_key)).status_code == 404
    # POST on the same path is still the lifecycle ingest (scope ingest).
    posted = client.post(
        "/api/v1/runs",
        {
            "runs": [
                {
                    "run_id": "new-1",
                    "project": "web",
                    "status": "Requested",
                    "timestamp": "2026-11-03T00:00:00Z",
                }
            ]
        },
        content_type="application/json",
        **bearer(ingest),
    )
    assert posted.status_code in (200, 202), posted.content
