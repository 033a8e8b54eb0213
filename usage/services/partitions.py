"""Monthly partitions of the raw event tables in the current tenant schema, and their retention.

``usage_llmusageevent`` and ``usage_infrausageevent`` are ``PARTITION BY RANGE (occurred_at)``
with one partition per UTC calendar month and a DEFAULT partition (migration 0010). This module
creates months ahead (and for any batch that needs one), moves rows that landed in DEFAULT into
their month, and drops whole months past the tenant's retention: DETACH then DROP, never a
row-by-row DELETE. It never touches the run ledger or the rollups, which keep history forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from factory_portal import periods
from factory_portal.tenants.models import Tenant
from usage.domain import retention
from usage.models import InfraUsageEvent, LlmUsageEvent

RAW_EVENT_TABLES = (LlmUsageEvent._meta.db_table, InfraUsageEvent._meta.db_table)

# Months known to have partitions, per (database, schema): ingest checks a batch's months here
# before asking the catalog. Filled when the transaction that saw them commits (a rolled-back
# CREATE leaves nothing behind); a dropped month is forgotten.
_known: set[tuple[str, str, date]] = set()


def _schema_key() -> tuple[str, str]:
    return (str(connection.settings_dict["NAME"]), connection.schema_name)


def _existing_months(table: str) -> set[date]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    return {m for m in (retention.partition_month(table, n) for n in names) if m is not None}


def _lock(table: str) -> None:
    """Serialise partition changes of ``table`` in this schema (held to the transaction's end)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || %s))", [table]
        )


def _partition_create(table: str, month: date) -> None:
    """Create ``table``'s partition for ``month``; rows of that month waiting in DEFAULT are
    moved into it (PostgreSQL refuses a new partition while DEFAULT holds its rows)."""
    start, end = retention.month_bounds(month)
    name = retention.partition_name(table, month)
    default = f"{table}{retention.DEFAULT_SUFFIX}"
    bounds = {"start": start, "end": end}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {default}"  # noqa: S608 - names from the models
            " WHERE occurred_at >= %(start)s AND occurred_at < %(end)s)",
            bounds,
        )
        waiting = cursor.fetchone()[0]
        if waiting:
            cursor.execute(
                f"CREATE TEMP TABLE partition_moving ON COMMIT DROP AS"  # noqa: S608
                f" WITH moved AS (DELETE FROM {default}"
                " WHERE occurred_at >= %(start)s AND occurred_at < %(end)s RETURNING *)"
                " SELECT * FROM moved",
                bounds,
            )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table}"
            f" FOR VALUES FROM (%(start)s) TO (%(end)s)",
            bounds,
        )
        if waiting:
            cursor.execute(f"INSERT INTO {table} SELECT * FROM partition_moving")  # noqa: S608
            cursor.execute("DROP TABLE partition_moving")


def partitions_ensure_months(months: Iterable[date]) -> list[str]:
    """Make sure every event table has a partition for each UTC month in ``months`` (first days);
    idempotent and cheap once known. Answers the partitions created."""
    db, schema = _schema_key()
    wanted = sorted({m for m in months if (db, schema, m) not in _known})
    created: list[str] = []
    if not wanted:
        return created
    with transaction.atomic():
        for table in RAW_EVENT_TABLES:
            if set(wanted) <= _existing_months(table):
                # Made ahead (the beat) or by another process: no lock, which a batch would
                # hold to its commit and make the other processes' first batches wait behind.
                continue
            _lock(table)
            existing = _existing_months(table)  # again, under the lock
            for month in wanted:
                if month not in existing:
                    _partition_create(table, month)
                    created.append(retention.partition_name(table, month))
    transaction.on_commit(lambda: _known.update((db, schema, m) for m in wanted))
    return created


def partitions_ensure_between(start: datetime, end: datetime) -> list[str]:
    """Partitions for every UTC month that ``[start, end]`` touches; answers those created."""
    return partitions_ensure_months(retention.months_between(start, end))


def _default_months(table: str) -> list[date]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', occurred_at, 'UTC')::date"  # noqa: S608
            f" FROM {table}{retention.DEFAULT_SUFFIX}"
        )
        return [row[0] for row in cursor.fetchall()]


def partitions_drop(table: str, months: Iterable[date]) -> list[str]:
    """Detach and drop ``table``'s partitions of ``months`` (whole months, no row deletes)."""
    dropped = []
    db, schema = _schema_key()
    with transaction.atomic():
        _lock(table)
        existing = _existing_months(table)
        with connection.cursor() as cursor:
            for month in sorted(set(months) & existing):
                name = retention.partition_name(table, month)
                cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
                cursor.execute(f"DROP TABLE {name}")
                dropped.append(name)
                _known.discard((db, schema, month))
    return dropped


def partitions_maintain(*, tenant: Tenant, now: datetime | None = None) -> list[str]:
    """In the current schema (``tenant``'s; the beat's task runs there): partitions for this
    month and ``PARTITIONS_AHEAD_MONTHS`` ahead, rows in DEFAULT moved to their months, and
    months past the tenant's retention detached and dropped. ``raw_retained_from`` becomes the
    first kept instant once anything was dropped, and then follows the window forward (never
    back). Answers the partitions dropped."""
    now = now or timezone.now()
    tz = periods.zone(tenant.timezone)
    this_month = retention.utc_month(now)
    ahead = [this_month]
    for _ in range(settings.PARTITIONS_AHEAD_MONTHS):
        ahead.append(periods.next_month(ahead[-1]))
    kept_from = retention.retained_from(months=tenant.raw_retention_months, now=now, tz=tz)
    dropped: list[str] = []
    with transaction.atomic():
        stray = {m for table in RAW_EVENT_TABLES for m in _default_months(table)}
        _known.difference_update({(*_schema_key(), m) for m in stray})
        partitions_ensure_months([*ahead, *stray])
        for table in RAW_EVENT_TABLES:
            expired = retention.expired_months(
                _existing_months(table),
                retention_months=tenant.raw_retention_months,
                now=now,
                tz=tz,
            )
            dropped += partitions_drop(table, expired)
        previous = tenant.raw_retained_from
        if (previous is None and dropped) or (previous is not None and kept_from > previous):
            Tenant.objects.filter(pk=tenant.pk).update(raw_retained_from=kept_from)
            tenant.raw_retained_from = kept_from
    return dropped


def partitions_known_clear() -> None:
    """Forget which months are known to have partitions (after schemas were dropped)."""
    _known.clear()
