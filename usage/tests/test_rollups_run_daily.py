"""The run rollup written by one upsert per batch equals the rollup rebuilt from the runs: new
stubs, status moves, durations and lead times in their buckets, rows stored with a short
histogram, and new runs' counts written after the batch's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from factory_portal.tenants.connection import connection_zone
from tests.support import llm_event_in
from usage.domain.durations import BUCKETS
from usage.domain.runs import RunUpdate
from usage.models import Project, RunDaily
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.rollups import rollups_rebuild
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

AT = datetime(2026, 10, 5, 12, tzinfo=UTC)


def _update(run_id: str, status: str, minutes: int, position: int = 0) -> RunUpdate:
    finished = status in ("Succeeded", "Failed", "Cancelled")
    return RunUpdate(
        position=position,
        run_id=run_id,
        project="web",
        status=status,
        timestamp=AT + timedelta(minutes=minutes),
        template_recipe_id="spa",
        run_type="app",
        requested_at=AT,
        started_at=AT + timedelta(minutes=1),
        finished_at=AT + timedelta(minutes=minutes) if finished else None,
        duration_ms=minutes * 60_000 if finished else None,
    )


def _snapshot() -> list[tuple]:
    return sorted(
        (
            r.day,
            r.project_id,
            r.run_type,
            r.template,
            r.status,
            r.runs,
            r.duration_ms_total,
            list(r.duration_histogram) + [0] * (BUCKETS - len(r.duration_histogram)),
            list(r.lead_time_histogram) + [0] * (BUCKETS - len(r.lead_time_histogram)),
        )
        for r in RunDaily.objects.all()
        if r.runs or r.duration_ms_total
    )


def test_run_rollup_upserts_equal_a_rebuild(alpha) -> None:
    with schema_context(alpha.schema):
        # Stubs from events (counted after the events), then lifecycles moving them.
        events_ingest(
            events=[llm_event_in(f"e-{n}", AT, project="web", run_id=f"r-{n}") for n in range(4)],
            pricer=pricer_for(alpha.tenant),
        )
        # A row stored with empty histograms (as rows written before the lead time existed).
        RunDaily.objects.create(
            day=AT.date(),
            project=Project.objects.get(slug="web"),
            run_type="app",
            template="spa",
            status="Succeeded",
            duration_histogram=[],
            lead_time_histogram=[],
        )
        runs_ingest(updates=[_update("r-0", "Running", 2), _update("r-1", "Succeeded", 7)])
        assert len(RunDaily.objects.get(status="Succeeded").lead_time_histogram) == BUCKETS
        runs_ingest(
            updates=[
                _update("r-0", "Failed", 30, 0),
                _update("r-2", "Succeeded", 90, 1),
                _update("r-3", "Cancelled", 3, 2),
                _update("r-4", "Succeeded", 7, 3),  # new, and finished in the same batch
            ]
        )
        stored = _snapshot()
        assert {row[4]: row[5] for row in stored} == {"Succeeded": 3, "Failed": 1, "Cancelled": 1}
        assert sum(sum(row[7]) for row in stored) == 5  # five finished runs' durations
        rollups_rebuild(zone=connection_zone())
        assert _snapshot() == stored


def test_a_lead_time_at_a_bucket_edge_stays_in_its_bucket_on_a_rebuild(alpha) -> None:
    """Lead times are whole milliseconds cut down, counted incrementally and rebuilt alike: the
    rebuild rounded (1,189.6 ms went to the bucket from 1,190 ms), so a time-zone change moved
    such a run (a review found it)."""
    from dataclasses import replace

    edge = replace(
        _update("edge", "Succeeded", 0),
        finished_at=AT + timedelta(microseconds=1_189_600),
        duration_ms=1189,
    )
    with schema_context(alpha.schema):
        runs_ingest(updates=[edge])
        stored = _snapshot()
        rollups_rebuild(zone=connection_zone())
        assert _snapshot() == stored
