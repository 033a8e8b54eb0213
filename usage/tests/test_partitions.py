"""Raw event tables partitioned by month; partitions created ahead, expired months dropped whole."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.tenants.models import Tenant
from tests.support import bearer, host_client, key_for, llm_event_in
from usage.models import LlmUsageDaily, LlmUsageEvent, RunLedger
from usage.pricing import pricer_for
from usage.selectors.partitions import partition_months, partitions_list
from usage.services.ingest import events_ingest
from usage.services.partitions import (
    RAW_EVENT_TABLES,
    partitions_ensure_between,
    partitions_ensure_months,
    partitions_known_clear,
    partitions_maintain,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_cache():
    partitions_known_clear()
    yield
    partitions_known_clear()


def _store(tenant, *moments: datetime, run_id: str = "") -> None:
    events = [
        llm_event_in(f"e-{i}-{m:%Y%m%d%H}", m, cost=Decimal("0.5"), run_id=run_id, position=i)
        for i, m in enumerate(moments)
    ]
    with schema_context(tenant.schema_name):
        events_ingest(events=events, pricer=pricer_for(tenant))


def _maintain(tenant, now: datetime) -> list[str]:
    with schema_context(tenant.schema_name):
        return partitions_maintain(tenant=tenant, now=now)


def _where_rows_are(table: str = "usage_llmusageevent") -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1"  # noqa: S608
        )
        return {name.rsplit(".", 1)[-1]: n for name, n in cursor.fetchall()}


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relname LIKE 'usage\\_%%event\\_%%'"
        )
        return {row[0] for row in cursor.fetchall()}


def test_event_tables_are_partitioned_with_the_month_in_the_key(alpha):
    with schema_context(alpha.schema), connection.cursor() as cursor:
        for table in RAW_EVENT_TABLES:
            cursor.execute(
                "SELECT c.relkind, pg_get_partkeydef(c.oid),"
                " pg_get_constraintdef(k.oid)"
                " FROM pg_class c JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'"
                " WHERE c.oid = %s::regclass",
                [table],
            )
            assert cursor.fetchone() == (
                "p",
                "RANGE (occurred_at)",
                "PRIMARY KEY (event_id, occurred_at)",
            )
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = %s",
                [table],
            )
            indexes = [row[0] for row in cursor.fetchall()]
            # The key and the run: no prefix copy of the id, no second run index, and none on
            # the project or the job (together a fifth of the events insert's time).
            assert sorted(i.split(" USING btree ")[1] for i in indexes) == [
                "(event_id, occurred_at)",
                "(run_id)",
            ]
            assert f"{table}_default" in _tables()


def test_external_calls_have_no_foreign_keys_and_one_run_index(alpha):
    """Like the raw events, written only by an ingest that resolves its run and job: checking
    the keys at commit cost a fifth of a 1,000-span request's database time."""
    with schema_context(alpha.schema), connection.cursor() as cursor:
        cursor.execute(
            "SELECT contype FROM pg_constraint WHERE conrelid = 'usage_externalcall'::regclass"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == ["p", "u"]
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = 'usage_externalcall'"
        )
        assert sorted(row[0].split(" USING btree ")[1] for row in cursor.fetchall()) == [
            "(id)",
            "(run_id, started_at)",
            "(trace_id, span_id)",
        ]


def test_a_new_tenant_has_this_month_and_the_next_ones(alpha):
    this = timezone.now().date().replace(day=1)
    with schema_context(alpha.schema):
        months = {p.month for p in partitions_list()}
    assert this in months
    assert max(m for m in months if m) > this


def _advisory_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_ensuring_months_that_exist_takes_no_lock_a_missing_one_does(alpha):
    """A batch holds the partitions lock to its commit: when its months exist (the beat makes
    them ahead) it takes none, so other processes' first batches of the month never wait."""
    this = timezone.now().date().replace(day=1)
    with schema_context(alpha.schema):
        before = _advisory_locks_held()
        assert partitions_ensure_months([this]) == []
        assert _advisory_locks_held() == before
        partitions_known_clear()
        assert partitions_ensure_months([date(2019, 3, 1)]) == [
            f"{table}_p2019_03" for table in RAW_EVENT_TABLES
        ]
        assert _advisory_locks_held() == before + len(RAW_EVENT_TABLES)


def test_rows_go_to_their_month_and_resending_changes_nothing(alpha):
    tenant = alpha.tenant
    _store(tenant, datetime(2025, 3, 31, 23, tzinfo=UTC), datetime(2025, 4, 1, 1, tzinfo=UTC))
    _store(tenant, datetime(2025, 3, 31, 23, tzinfo=UTC))  # the same event again
    with schema_context(alpha.schema):
        assert _where_rows_are() == {
            "usage_llmusageevent_p2025_03": 1,
            "usage_llmusageevent_p2025_04": 1,
        }
        assert LlmUsageDaily.objects.aggregate(n=Sum("calls"))["n"] == 2


def test_an_id_already_stored_in_another_month_is_a_duplicate(alpha):
    tenant = alpha.tenant
    first = datetime(2025, 3, 31, 23, tzinfo=UTC)
    _store(tenant, first)
    again = llm_event_in(f"e-0-{first:%Y%m%d%H}", datetime(2025, 4, 2, tzinfo=UTC), position=0)
    with schema_context(alpha.schema):
        result = events_ingest(events=[again], pricer=pricer_for(tenant))
        assert (result.accepted, result.duplicates) == (0, 1)
        assert _where_rows_are() == {"usage_llmusageevent_p2025_03": 1}
        assert LlmUsageDaily.objects.aggregate(n=Sum("calls"))["n"] == 1


def test_rows_waiting_in_default_move_to_their_new_month(alpha):
    with schema_context(alpha.schema):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO usage_project (slug, name, created_at) VALUES ('p', 'p', now())"
                " RETURNING id"
            )
            project = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO usage_infrausageevent (event_id, occurred_at, job_ref, resource_type,"
                " quantity, unit, run_type, template, received_at, project_id)"
                " SELECT 'i' || g, '2024-06-10'::timestamptz + g * interval '1 hour', '',"
                " 'compute', 1, 'cpu_seconds', '', '', now(), %s FROM generate_series(1, 5) g",
                [project],
            )
        assert _where_rows_are("usage_infrausageevent") == {"usage_infrausageevent_default": 5}
        created = partitions_ensure_between(
            datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC)
        )
        assert "usage_infrausageevent_p2024_06" in created
        assert _where_rows_are("usage_infrausageevent") == {"usage_infrausageevent_p2024_06": 5}
        assert (
            partitions_ensure_between(  # idempotent
                datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC)
            )
            == []
        )


def test_maintain_creates_ahead_and_drops_expired_months_whole(alpha):
    tenant = alpha.tenant
    Tenant.objects.filter(pk=tenant.pk).update(raw_retention_months=3)
    tenant.refresh_from_db()
    with schema_context(alpha.schema):
        from usage.models import Project, Run

        project = Project.objects.create(slug="p", name="p")
        Run.objects.create(
            run_id="r1", project=project, status="Succeeded", requested_at=NOW, updated_at=NOW
        )
    moments = [datetime(2026, m, 10, tzinfo=UTC) for m in (8, 9, 10, 11, 12)]
    _store(tenant, *moments, run_id="r1")
    with schema_context(alpha.schema):
        daily_before = LlmUsageDaily.objects.aggregate(n=Sum("calls"), c=Sum("cost"))
        ledger_before = RunLedger.objects.aggregate(n=Sum("calls"), c=Sum("cost"))

    dropped = _maintain(tenant, NOW)

    assert sorted(dropped) == sorted(f"{t}_p2026_{m:02d}" for t in RAW_EVENT_TABLES for m in (8, 9))
    tenant.refresh_from_db()
    assert tenant.raw_retained_from == datetime(2026, 10, 1, tzinfo=UTC)
    with schema_context(alpha.schema):
        tables = _tables()
        assert "usage_llmusageevent_p2026_08" not in tables  # dropped, not only detached
        assert {"usage_llmusageevent_p2027_01", "usage_llmusageevent_p2027_02"} <= tables
        assert LlmUsageEvent.objects.count() == 3
        assert min(LlmUsageEvent.objects.values_list("occurred_at", flat=True)) == moments[2]
        # The rollups and the run ledger keep their history.
        assert LlmUsageDaily.objects.aggregate(n=Sum("calls"), c=Sum("cost")) == daily_before
        assert RunLedger.objects.aggregate(n=Sum("calls"), c=Sum("cost")) == ledger_before
        assert daily_before["n"] == 5
        months = [m.month for m in partition_months()]
        assert date(2026, 9, 1) not in months
        assert months[-1] is None  # DEFAULT last


def test_maintain_again_later_only_moves_retained_from_forward(alpha):
    tenant = alpha.tenant
    Tenant.objects.filter(pk=tenant.pk).update(raw_retention_months=2)
    tenant.refresh_from_db()
    _store(tenant, datetime(2026, 9, 10, tzinfo=UTC))
    _maintain(tenant, NOW)
    assert tenant.raw_retained_from == datetime(2026, 11, 1, tzinfo=UTC)
    tenant.raw_retention_months = 6  # a longer retention cannot bring dropped rows back
    assert _maintain(tenant, NOW + timedelta(days=40)) == []
    tenant.refresh_from_db()
    assert tenant.raw_retained_from == datetime(2026, 11, 1, tzinfo=UTC)


def test_maintain_with_nothing_expired_leaves_retained_from_unset(alpha):
    tenant = alpha.tenant
    _store(tenant, NOW - timedelta(days=3))
    assert _maintain(tenant, NOW) == []
    tenant.refresh_from_db()
    assert tenant.raw_retained_from is None


def test_api_refuses_only_the_events_past_retention(alpha):
    kept_from = timezone.now() - timedelta(days=30)
    Tenant.objects.filter(pk=alpha.tenant.pk).update(raw_retained_from=kept_from)
    _, raw = key_for(alpha, ["ingest"])

    def event(event_id: str, at: datetime) -> dict[str, object]:
        return {
            "type": "llm",
            "event_id": event_id,
            "timestamp": at.isoformat(),
            "project": "checkout",
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "input_tokens": 100,
            "output_tokens": 10,
        }

    body = {
        "events": [
            event("new-1", timezone.now() - timedelta(minutes=5)),
            event("old-1", kept_from - timedelta(seconds=1)),
            event("new-2", kept_from + timedelta(seconds=1)),
        ]
    }
    response = host_client(alpha.host).post(
        "/api/v1/events", data=json.dumps(body), content_type="application/json", **bearer(raw)
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["accepted"] == 2
    assert problem["duplicates"] == 0
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(1, "timestamp")]
    assert "retention" in problem["errors"][0]["message"]
    with schema_context(alpha.schema):
        assert sorted(LlmUsageEvent.objects.values_list("event_id", flat=True)) == [
            "new-1",
            "new-2",
        ]
