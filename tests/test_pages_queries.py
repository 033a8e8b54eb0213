"""The tenant pages of every app and the web layer make as many queries with 33 runs as with 3:
no page queries once per row; the overview and the costs page make no more queries than they
need."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.services import budget_set
from tests.support import llm_event_in, logged_in_client, run_finished, run_update
from usage.domain.errors import ErrorIn, fingerprint
from usage.pricing import pricer_for
from usage.services.errors import span_errors_ingest
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

PAGES_WITHOUT_N_PLUS_ONE = [
    "/",
    "/runs/",
    "/runs/active/",
    "/usage/",
    "/costs/",
    "/costs/quotes/",
    "/costs/savings/",
    "/runs/r-0/",
    "/errors/",
    f"/errors/{fingerprint('E0', 'failed', '').value}/",
]


def _error(run_id: str, n: int, at: datetime) -> ErrorIn:
    """An error of run ``run_id``: one of 5 groups, of 3 templates' steps."""
    return ErrorIn(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        seq=0,
        run_id=run_id,
        project=f"p{n % 4}",
        job_id=f"job-{n % 3}",
        step_name=f"step-{n % 3}",
        attempt=1,
        span_name="factory.job.execute",
        source="status",
        occurred_at=at,
        type=f"E{n % 5}",
        message="failed",
        stacktrace="",
    )


@pytest.mark.parametrize("path", PAGES_WITHOUT_N_PLUS_ONE)
def test_page_queries_do_not_grow_with_the_data(alpha, path):
    now = timezone.now()

    def add(first: int, count: int) -> None:
        with schema_context(alpha.schema):
            for n in range(first, first + count):
                requested = now - timedelta(hours=n + 1)
                run_finished(f"r-{n}", "Succeeded", requested, 5, project=f"p{n % 4}")
                events_ingest(
                    events=[
                        llm_event_in(
                            f"e-{n}",
                            requested,
                            project=f"p{n % 4}",
                            run_id=f"r-{n}",
                            model=("gpt-4.1", "gpt-4.1-mini")[n % 2],
                        )
                    ],
                    pricer=pricer_for(alpha.tenant),
                )
                span_errors_ingest(errors=[_error(f"r-{n}", n, requested)])
            run_update(f"live-{first}", "Running", now, project="p0", requested_at=now)

    client = logged_in_client(alpha.host, alpha.admin_email)
    add(0, 3)
    client.get(path)  # warm caches that are filled once (sessions, cost summary)
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    add(3, 30)
    client.get(path)
    with CaptureQueriesContext(connection) as many:
        assert client.get(path).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


# The queries of the busiest pages, a budget of the tenant and one of a project set: a query
# repeated within the request (the costs page's cache fingerprints, the overview's freshness or
# the tenant's month cost, forecast and reservation read again for its budget) fails here.
QUERY_BOUNDS = {"/": 30, "/costs/": 16}


@pytest.mark.parametrize("path", QUERY_BOUNDS)
def test_busy_pages_make_no_more_queries_than_they_need(alpha, path):
    now = timezone.now()
    with schema_context(alpha.schema):
        for n in range(3):
            requested = now - timedelta(hours=n + 1)
            run_finished(f"r-{n}", "Succeeded", requested, 5, project=f"p{n % 2}")
            events_ingest(
                events=[llm_event_in(f"e-{n}", requested, project=f"p{n % 2}", run_id=f"r-{n}")],
                pricer=pricer_for(alpha.tenant),
            )
        budget_set(amount=Decimal(100))
        budget_set(amount=Decimal(50), project="p0")
    client = logged_in_client(alpha.host, alpha.admin_email)
    client.get(path)  # warm caches that are filled once (sessions, cost summary, forecasts)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    assert len(queries) <= QUERY_BOUNDS[path], [q["sql"][:120] for q in queries.captured_queries]
