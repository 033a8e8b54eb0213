"""The run details page (web.dashboards.run_detail): jobs with every attempt, LLM calls, cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from tests.support import llm_event_in, logged_in_client
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)


def test_run_details_with_jobs_calls_and_cost(alpha):
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    0,
                    "r-1",
                    "web",
                    "Succeeded",
                    T0 + timedelta(minutes=5),
                    started_at=T0,
                    finished_at=T0 + timedelta(minutes=5),
                    trace_id="ab" * 16,
                    jobs=(
                        JobUpdate(
                            "build",
                            1,
                            "Failed",
                            T0 + timedelta(minutes=1),
                            "build",
                            T0,
                            T0 + timedelta(minutes=1),
                            failure_type="llm_timeout",
                        ),
                        JobUpdate(
                            "build",
                            2,
                            "Succeeded",
                            T0 + timedelta(minutes=4),
                            "build",
                            T0 + timedelta(minutes=2),
                            T0 + timedelta(minutes=4),
                        ),
                    ),
                )
            ]
        )
        from decimal import Decimal

        events_ingest(
            events=[
                llm_event_in(
                    "c1",
                    T0 + timedelta(minutes=3),
                    project="web",
                    run_id="r-1",
                    cost=Decimal("0.42"),
                )
            ],
            pricer=pricer_for(alpha.tenant),
        )
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    assert "$0.42" in page and "llm_timeout" in page and "ab" * 16 in page
    assert "build #2" in page  # the timeline shows both attempts
