"""Two batches carrying the same event at the same moment: the events insert has no ``ON
CONFLICT`` clause, so the one that waited for the other's commit fails on the event key, runs
again (in a savepoint, keeping what its caller wrote before) and counts the event as a duplicate;
every event is stored and rolled up once. A race that outlasts the retries is a retryable 503."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django_tenants.utils import schema_context

from factory_portal.errors import is_conflict
from tests.support import bearer, host_client, in_own_connection, key_for, llm_event_in
from usage.models import LlmUsageEvent, LlmUsageHourly, Project
from usage.pricing import pricer_for
from usage.services import entry
from usage.services.ingest import EventRace, IngestResult, events_ingest

pytestmark = pytest.mark.django_db

SLUG = "race"
MARKER = "race-caller"  # a project the losing batch's caller creates before ingesting


# One time for every batch: a re-sent event is the same id at the same time (with another time
# the key cannot catch a concurrent copy; see the README's partitions section).
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def _events(*names: str) -> list:
    return [llm_event_in(f"race-{name}", AT, project=SLUG) for name in names]


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _cleanup(schema: str) -> None:
    with schema_context(schema), connection.cursor() as cursor:
        project = "(SELECT id FROM usage_project WHERE slug = %s)"
        for table in ("usage_llmusageevent", "usage_llmusagehourly", "usage_llmusagedaily"):
            cursor.execute(f"DELETE FROM {table} WHERE project_id IN {project}", [SLUG])  # noqa: S608
        cursor.execute("DELETE FROM usage_project WHERE slug IN (%s, %s)", [SLUG, MARKER])


def test_the_batch_that_loses_the_race_for_an_event_counts_it_as_a_duplicate(alpha):
    stored, release = threading.Event(), threading.Event()
    racer_pid: list[int] = []
    outcome: list[IngestResult] = []

    def winner() -> None:  # stores a and b, and commits only when released
        with schema_context(alpha.schema), transaction.atomic():
            events_ingest(events=_events("a", "b"), pricer=pricer_for(alpha.tenant))
            stored.set()
            release.wait(30)

    def loser() -> None:  # a caller's transaction: its own write, then a and c
        with schema_context(alpha.schema), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                racer_pid.append(cursor.fetchone()[0])
            Project.objects.create(slug=MARKER, name=MARKER)
            outcome.append(events_ingest(events=_events("a", "c"), pricer=pricer_for(alpha.tenant)))

    holder = threading.Thread(target=lambda: in_own_connection(winner))
    holder.start()
    try:
        assert stored.wait(30)
        racer = threading.Thread(target=lambda: in_own_connection(loser))
        racer.start()
        # Released only once the loser waits for the winner's uncommitted event: the race itself.
        deadline = time.monotonic() + 20
        while not (racer_pid and _waiting_on_a_lock(racer_pid[0])):
            assert time.monotonic() < deadline, "the second batch never waited for the first"
            time.sleep(0.02)
        release.set()
        racer.join(60)
        assert outcome == [IngestResult(accepted=1, duplicates=1)]

        def check() -> None:
            with schema_context(alpha.schema):
                events = LlmUsageEvent.objects.filter(project__slug=SLUG)
                assert sorted(events.values_list("event_id", flat=True)) == [
                    "race-a",
                    "race-b",
                    "race-c",
                ]
                calls = LlmUsageHourly.objects.filter(project__slug=SLUG).aggregate(n=Sum("calls"))
                assert calls["n"] == 3
                # The retry ran in a savepoint: the caller's earlier write was kept.
                assert Project.objects.filter(slug=MARKER).exists()

        in_own_connection(check)
    finally:
        release.set()
        holder.join(60)
        in_own_connection(_cleanup, alpha.schema)


def test_a_race_is_a_conflict_and_one_that_outlasts_the_retries_is_a_retryable_503(
    alpha, monkeypatch
):
    assert is_conflict(EventRace("Key (event_id, occurred_at)=(x, y) already exists."))

    def always_lost(**kwargs):  # type: ignore[no-untyped-def]
        raise EventRace("Key (event_id, occurred_at)=(x, y) already exists.")

    monkeypatch.setattr(entry, "events_ingest", always_lost)
    _, raw = key_for(alpha, ["ingest"])
    client = host_client(alpha.host)
    client.raise_request_exception = False
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    event = {"type": "llm", "event_id": "race-api", "timestamp": at, "project": SLUG}
    body = json.dumps({"events": [{**event, "provider": "openai", "model": "gpt-4.1"}]})
    response = client.post("/api/v1/events", body, content_type="application/json", **bearer(raw))
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert "conflicted with concurrent writes" in response.json()["detail"]
