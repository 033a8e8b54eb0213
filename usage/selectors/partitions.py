"""The monthly partitions of the current schema's raw event tables, for the operator console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connection

from factory_portal import periods
from factory_portal.tenants.models import Tenant
from usage.domain import retention
from usage.domain.retention import RawEventsExpired, raw_period_check
from usage.models import InfraUsageEvent, LlmUsageEvent

__all__ = ["RawEventsExpired", "partition_months", "partitions_list", "raw_month_check"]

RAW_EVENT_TABLES = (LlmUsageEvent._meta.db_table, InfraUsageEvent._meta.db_table)


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    month: date | None  # None: the DEFAULT partition
    # The planner's estimate (pg_class.reltuples); None before the first VACUUM or ANALYZE of
    # the partition (reltuples -1): not "0 rows" when it holds gigabytes.
    rows_estimate: int | None
    size_bytes: int  # table, indexes and TOAST


@dataclass(frozen=True)
class PartitionMonth:
    """A month's partitions of both event tables together."""

    month: date | None
    rows_estimate: int | None  # None: a partition of the month was never analysed
    size_bytes: int


def partitions_list() -> list[Partition]:
    """Every partition of both event tables in the current schema, by table then month."""
    found = []
    with connection.cursor() as cursor:
        for table in RAW_EVENT_TABLES:
            cursor.execute(
                "SELECT c.relname, CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END,"
                " pg_total_relation_size(c.oid)"
                " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
                [table],
            )
            for name, rows, size in cursor.fetchall():
                month = retention.partition_month(table, name)
                found.append(Partition(table, name, month, rows, int(size)))
    return found


def partition_months() -> list[PartitionMonth]:
    """Rows and bytes per month over both tables, newest first; DEFAULT last."""
    rows: dict[date | None, int | None] = {}
    sizes: dict[date | None, int] = {}
    for p in partitions_list():
        known = rows.get(p.month, 0)
        rows[p.month] = (
            None if known is None or p.rows_estimate is None else known + p.rows_estimate
        )
        sizes[p.month] = sizes.get(p.month, 0) + p.size_bytes
    months = sorted((m for m in rows if m is not None), reverse=True)
    ordered: list[date | None] = [*months, *([None] if None in rows else [])]
    return [PartitionMonth(m, rows[m], sizes[m]) for m in ordered]


def raw_month_check(*, tenant: Tenant, month: date) -> None:
    """Raise ``RawEventsExpired`` when ``tenant``'s month ``month`` (first day, its time zone)
    begins before its first kept raw event (what needs the month's calls one by one)."""
    start = periods.local_day_start(month, periods.zone(tenant.timezone))
    raw_period_check(start=start, retained_from=tenant.raw_retained_from)
