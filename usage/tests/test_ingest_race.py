"""Batches that carry the same event at the same moment. The events insert has no ``ON
CONFLICT`` clause: the batch that waited for the other's commit fails on the event key, runs
again (in a savepoint, keeping what its caller wrote before) and counts the event as a duplicate;
every event is stored and rolled up once. The insert runs before the rollups, so the waiting
batch holds no rollup row that unrelated batches need. A race that outlasts the retries is a
retryable 503."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import Sum
from django_tenants.utils import schema_context

from factory_portal.errors import is_conflict
from tests.support import bearer, host_client, in_own_connection, key_for, llm_event_in
from usage.domain.events import InfraEventIn
from usage.models import InfraUsageEvent, LlmUsageEvent, LlmUsageHourly, Project
from usage.pricing import pricer_for
from usage.services import entry
from usage.services.ingest import EventRace, IngestResult, events_ingest, stored_ids

pytestmark = pytest.mark.django_db

SLUG = "race"
MARKER = "race-caller"  # a project the losing batch's caller creates before ingesting

# One time for the batches: a re-sent event is the same id at the same time (with another time
# the key alone cannot catch a concurrent copy; see the README's partitions section).
AT = datetime.now(UTC).replace(microsecond=0, second=0) - timedelta(minutes=5)


def _events(*names: str, **fields: object) -> list:
    return [llm_event_in(f"race-{name}", AT, **{"project": SLUG, **fields}) for name in names]


def _ingest(schema: str, tenant: object, events: list) -> IngestResult:
    with schema_context(schema):
        return events_ingest(events=events, pricer=pricer_for(tenant))


def _waiting_in(pid: int) -> str | None:
    """The statement ``pid`` waits for a lock in, if it does. Within a transaction PostgreSQL
    keeps the first reading of each backend's statement (only the wait is read live), so the
    snapshot is dropped first: else a batch waiting in its insert showed the statement it ran
    at the first poll (its runs' lookup, its COPY table) and the test failed now and then."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row[1].strip() if row is not None and row[0] == "Lock" else None


def _cleanup(schema: str) -> None:
    with schema_context(schema), connection.cursor() as cursor:
        project = "(SELECT id FROM usage_project WHERE slug = %s)"
        runs = f"(SELECT id FROM usage_run WHERE project_id IN {project})"  # noqa: S608
        cursor.execute(f"DELETE FROM usage_runledger WHERE run_id IN {runs}", [SLUG])  # noqa: S608
        for table in (
            "usage_llmusageevent",
            "usage_llmusagehourly",
            "usage_llmusagedaily",
            "usage_rundaily",
            "usage_run",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE project_id IN {project}", [SLUG])  # noqa: S608
        cursor.execute("DELETE FROM usage_project WHERE slug IN (%s, %s)", [SLUG, MARKER])


def _race(
    alpha,  # type: ignore[no-untyped-def]
    first: list,
    second: Callable[[], IngestResult],
    *,
    waits_in: str,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[IngestResult]:
    """``first`` stored in an open transaction; ``second`` started in another connection, and
    once it waits for a lock in a statement starting with ``waits_in``, ``meanwhile`` runs and
    then ``first`` commits. Answers what ``second`` returned. The project exists beforehand (a
    batch creating it would make the other wait there instead)."""
    in_own_connection(_cleanup, alpha.schema)
    in_own_connection(_ingest, alpha.schema, alpha.tenant, _events("seed", model="seed"))
    stored, release = threading.Event(), threading.Event()
    pid: list[int] = []
    outcome: list[IngestResult] = []

    def winner() -> None:
        with transaction.atomic():
            _ingest(alpha.schema, alpha.tenant, first)
            stored.set()
            release.wait(30)

    def loser() -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
            outcome.append(second())

    holder = threading.Thread(target=lambda: in_own_connection(winner))
    holder.start()
    try:
        assert stored.wait(30)
        racer = threading.Thread(target=lambda: in_own_connection(loser))
        racer.start()
        deadline = time.monotonic() + 20
        while not (pid and (waiting := _waiting_in(pid[0]))):
            assert time.monotonic() < deadline, "the second batch never waited for the first"
            time.sleep(0.02)
        assert waiting.startswith(waits_in), waiting[:80]
        meanwhile()
        release.set()
        racer.join(60)
        return outcome
    finally:
        release.set()
        holder.join(60)


def _stored(schema: str) -> tuple[list[str], int]:
    """The race's stored event ids (the seed left out) and the calls its hourly rollup counts."""
    found: list[tuple[list[str], int]] = []

    def read() -> None:
        with schema_context(schema):
            events = LlmUsageEvent.objects.filter(project__slug=SLUG).exclude(event_id="race-seed")
            hourly = LlmUsageHourly.objects.filter(project__slug=SLUG).exclude(model="seed")
            found.append(
                (
                    sorted(events.values_list("event_id", flat=True)),
                    hourly.aggregate(n=Sum("calls"))["n"],
                )
            )

    in_own_connection(read)
    return found[0]


def test_the_batch_that_loses_the_race_for_an_event_counts_it_as_a_duplicate(alpha):
    def second() -> IngestResult:  # a caller's transaction: its own write, then a and c
        with schema_context(alpha.schema):
            Project.objects.create(slug=MARKER, name=MARKER)
        return _ingest(alpha.schema, alpha.tenant, _events("a", "c"))

    try:
        # It waits at the event itself, in the insert: it lost the race there.
        outcome = _race(alpha, _events("a", "b"), second, waits_in="INSERT INTO usage_llmusage")
        assert outcome == [IngestResult(accepted=1, duplicates=1)]
        assert _stored(alpha.schema) == (["race-a", "race-b", "race-c"], 3)

        def marker() -> None:  # the retry ran in a savepoint: the caller's write was kept
            with schema_context(alpha.schema):
                assert Project.objects.filter(slug=MARKER).exists()

        in_own_connection(marker)
    finally:
        in_own_connection(_cleanup, alpha.schema)


def test_a_resend_with_another_time_waiting_on_the_first_copys_new_run_is_a_duplicate(alpha):
    """The key cannot catch this one: the lookup of stored ids comes after the wait (here for
    the run both batches create), so it sees the first copy once that commits."""
    later = [llm_event_in("race-x", AT + timedelta(seconds=1), project=SLUG, run_id="race-run")]
    try:
        outcome = _race(
            alpha,
            [llm_event_in("race-x", AT, project=SLUG, run_id="race-run")],
            lambda: _ingest(alpha.schema, alpha.tenant, later),
            waits_in="INSERT INTO usage_run",
        )
        assert outcome == [IngestResult(accepted=0, duplicates=1)]
        assert _stored(alpha.schema) == (["race-x"], 1)
    finally:
        in_own_connection(_cleanup, alpha.schema)


def test_a_batch_waiting_for_a_shared_event_holds_up_no_unrelated_batch(alpha):
    """While the loser waits for the winner's event it holds no rollup row: a third batch that
    shares nothing with the winner (only its model and hour with the loser's other event)
    stores at once."""
    third: list[object] = []

    def unrelated() -> None:
        def run() -> None:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                third.append(_ingest(alpha.schema, alpha.tenant, _events("z", model="aaa")))

        try:
            in_own_connection(run)
        except OperationalError as exc:  # lock_timeout: it waited behind the loser
            third.append(exc)

    try:
        outcome = _race(
            alpha,
            _events("a"),
            lambda: _ingest(
                alpha.schema, alpha.tenant, [*_events("a"), *_events("b", model="aaa")]
            ),
            waits_in="INSERT INTO usage_llmusage",
            meanwhile=unrelated,
        )
        assert third == [IngestResult(accepted=1, duplicates=0)]
        assert outcome == [IngestResult(accepted=1, duplicates=1)]
        assert _stored(alpha.schema) == (["race-a", "race-b", "race-z"], 3)
    finally:
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


@pytest.mark.parametrize(
    "odd",
    ["a,b", '{"x"}', "back\\slash", "with spaces", "ünï ☃", "NULL", "", "unit\x1fseparator"],
)
def test_the_lookup_finds_exactly_the_stored_ids_whatever_they_hold(alpha, odd):
    """The ids go to PostgreSQL as one string split on the unit separator, or as an array when
    an id holds that separator (none that passed the id rule does)."""
    with schema_context(alpha.schema):
        stored = [f"race-{odd}-stored", f"{odd}"] if odd else ["race--stored"]
        events_ingest(
            events=[llm_event_in(i, AT, project=SLUG) for i in stored],
            pricer=pricer_for(alpha.tenant),
        )
        asked = [*stored, f"race-{odd}-new", "race-plain-new"]
        assert stored_ids({LlmUsageEvent: asked}) == set(stored)
        assert stored_ids({LlmUsageEvent: ["race-plain-new"]}) == set()
        assert stored_ids({LlmUsageEvent: []}) == set()
        assert stored_ids({}) == set()


def test_the_lookup_sends_its_ids_in_the_key_order(alpha):
    """Each partition's index scan sorts the list it is given: in the key's own order ("C", code
    point order) it is checked in one pass (5,000 ids, four partitions: 9 ms instead of 14)."""
    asked = ["b-2", "a-10", "ünï", "Z", "a-9", "☃", "a-1"]
    sent: list[str] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "event_id = ANY" in sql:
            sent.extend(params[0].split("\x1f"))
        return execute(sql, params, many, context)

    with schema_context(alpha.schema):
        with connection.execute_wrapper(capture):
            assert stored_ids({LlmUsageEvent: asked}) == set()
        with connection.cursor() as cursor:
            cursor.execute('SELECT x FROM unnest(%s::text[]) AS x ORDER BY x COLLATE "C"', [asked])
            key_order = [row[0] for row in cursor.fetchall()]
    assert sent == key_order


def test_one_lookup_answers_for_both_tables(alpha):
    """A batch of calls and infrastructure usage asks both tables in one statement: each id is
    looked for in its own table (a call's id stored as infrastructure usage is not a duplicate
    call, nor the other way round, as with one statement a table)."""
    infra = InfraEventIn(
        0, "both-infra", AT, SLUG, "", "", "", "compute", Decimal(1), "cpu_seconds"
    )
    with schema_context(alpha.schema):
        events_ingest(
            events=[llm_event_in("both-llm", AT, project=SLUG), infra],
            pricer=pricer_for(alpha.tenant),
        )
        lookups: list[str] = []

        def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            if "event_id = ANY" in sql:
                lookups.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            found = stored_ids(
                {
                    LlmUsageEvent: ["both-llm", "both-infra", "both-new"],
                    InfraUsageEvent: ["both-infra", "both-llm", "both-new-2"],
                }
            )
    assert found == {"both-llm", "both-infra"}
    assert len(lookups) == 1
    with schema_context(alpha.schema):
        assert stored_ids({InfraUsageEvent: ["both-llm"], LlmUsageEvent: ["both-infra"]}) == set()
