"""Raw event partitions: dropping an expired month whole vs deleting its rows, bytes per million
events, how long migration 0010 takes to partition an existing table, and what ingest's lookup of
stored event ids costs with every retained month against one month.

Usage (with the portal's environment; DATABASE_URL names the server, a scratch database
``bench_partitions`` is created on it and dropped at the end unless ``--keep``):
    .venv/bin/python benchmarks/partitions.py [--rows 1000000] [--months 4]

Prints one line per figure. The three ways of removing a month are timed in the same run on
months of the same size (``rows / months`` LLM calls each), so their ratios compare like with like:
DETACH + DROP of the month's partition, DELETE of its rows, and DELETE followed by VACUUM (what
giving the space back to the table takes). The migration is timed on the same rows, loaded into
the unpartitioned table of migration 0009 first. The id lookup (``usage.services.ingest.
stored_ids``, 5,000 new ids, median of 7) probes every partition (the months loaded, this
month's and next month's, the default one), since an event id is unique in all months; its
baseline in the same run is the same statement on the one partition of the month with the most
rows: the ratio is how many times one month's probe every batch pays. ``--months 13`` loads as
many months of rows as a tenant at the default retention holds (12 past months and the current
one; here the current month's partition is an empty one more).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")

SCRATCH = "bench_partitions"
SLUG = "bench-part"
SCHEMA = "bench_part"

# ``months`` months of LLM calls ending last month (UTC), evenly spread, one project, 5,000 runs.
ROWS_SQL = """
INSERT INTO usage_llmusageevent (event_id, occurred_at, job_ref, provider, model, operation,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, cost, cost_source,
    price_ref, override_ref, run_type, template, received_at, job_id, project_id, run_id)
SELECT md5((g + %(offset)s)::text)::uuid::text,
       %(start)s::timestamptz + (%(span)s::interval * g / %(rows)s),
       'job-' || (g %% 40000), 'openai', 'gpt-4.1-mini', 'generation',
       3000 + g %% 1000, 200 + g %% 50, g %% 500, 0, 0.0012345678, 'price_book',
       17, NULL, 'build', 'tpl-' || (g %% 20), now(), NULL, %(project)s, 1 + g %% 5000
FROM generate_series(0, %(rows)s - 1) g
"""


def _server_url(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _timed(cursor, sql: str, params: dict | None = None) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    cursor.execute(sql, params)
    return time.perf_counter() - started


def _best_insert(cursor, batch: dict, project: int, empty: str) -> float:  # type: ignore[no-untyped-def]
    """The best of 5 inserts of a 5,000-call batch into an empty table (``empty`` truncated)."""
    times = []
    for attempt in range(5):
        times.append(_timed(cursor, ROWS_SQL, {**batch, "project": project, "offset": -attempt}))
        cursor.execute(f"TRUNCATE {empty} CASCADE")  # the corrections table is empty
    return min(times)


_ONE_PARTITION = "SELECT event_id FROM {table} WHERE event_id = ANY(string_to_array(%s, chr(31)))"


def _lookup_ms(partition: str | None) -> float:
    """Median ms over 7 lookups of 5,000 new ids: ingest's own (every partition), or, given a
    ``partition``, the same statement on that partition alone (a baseline), prepared and bound
    on the server as ingest's is."""
    import statistics
    import uuid

    from django.db import transaction

    from factory_portal.pg import local_setting, prepared_cursor
    from usage.models import LlmUsageEvent
    from usage.services.ingest import stored_ids

    times = []
    for _ in range(7):
        ids = sorted(str(uuid.uuid4()) for _ in range(5000))
        with transaction.atomic(), prepared_cursor() as cursor:
            started = time.perf_counter()
            if partition is None:
                found = stored_ids({LlmUsageEvent: ids})
            else:
                with local_setting(cursor, "enable_seqscan", "off"):
                    cursor.execute(_ONE_PARTITION.format(table=partition), ["\x1f".join(ids)])
                    found = {row[0] for row in cursor.fetchall()}
            times.append(time.perf_counter() - started)
        if found:
            raise SystemExit("a new id was found: the lookup is not what it claims")
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if args.months < 3:
        parser.error("--months must be at least 3 (one month for each way of removing it)")

    _admin(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    _admin(f"CREATE DATABASE {SCRATCH}")
    os.environ["DATABASE_URL"] = _server_url(SCRATCH)

    import django

    django.setup()
    from datetime import UTC, datetime

    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import schema_context

    from factory_portal import periods
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create
    from usage.domain import retention
    from usage.models import Project

    try:
        call_command("migrate_schemas", "--shared", verbosity=0)
        public_tenant_ensure()
        tenant = tenant_create(slug=SLUG, name="Partitions", admin_email="b@bench.test").tenant

        this_month = retention.utc_month(datetime.now(UTC))
        months = periods.months_ending(periods.previous_month(this_month), args.months)
        start = retention.month_bounds(months[0])[0]
        span = retention.month_bounds(months[-1])[1] - start
        params = {"start": start, "span": span, "rows": args.rows, "offset": 0}
        batch = {"start": retention.month_bounds(this_month)[0], "span": "1 day", "rows": 5000}

        # Migration 0010 on the rows: back to 0009's plain table, load, migrate forward.
        call_command("migrate_schemas", "--schema", SCHEMA, "usage", "0009", verbosity=0)
        with schema_context(SCHEMA):
            project = Project.objects.create(slug="bench", name="bench").pk
            with connection.cursor() as cursor:
                insert_before = _best_insert(cursor, batch, project, "usage_llmusageevent")
                load = _timed(cursor, ROWS_SQL, {**params, "project": project})
                cursor.execute("ANALYZE usage_llmusageevent")
        started = time.perf_counter()
        call_command("migrate_schemas", "--schema", SCHEMA, "usage", verbosity=0)
        migrate_seconds = time.perf_counter() - started
        started = time.perf_counter()  # the command's own cost: the same call with nothing to do
        call_command("migrate_schemas", "--schema", SCHEMA, "usage", verbosity=0)
        noop_seconds = time.perf_counter() - started

        with schema_context(SCHEMA), connection.cursor() as cursor:
            cursor.execute("ANALYZE usage_llmusageevent")
            insert_after = _best_insert(
                cursor, batch, project, retention.partition_name("usage_llmusageevent", this_month)
            )
            sizes = []
            for month in months:
                name = retention.partition_name("usage_llmusageevent", month)
                cursor.execute(
                    f"SELECT count(*), pg_total_relation_size('{name}') FROM {name}"  # noqa: S608
                )
                sizes.append(cursor.fetchone())
            # Before any month is removed: every month holds rows.
            biggest = months[max(range(len(months)), key=lambda n: sizes[n][0])]
            lookup_all = _lookup_ms(None)
            cursor.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'usage_llmusageevent'::regclass"
            )
            (probed,) = cursor.fetchone()
            lookup_one = _lookup_ms(retention.partition_name("usage_llmusageevent", biggest))
            drop_month, delete_month, vacuum_month = months[:3]
            drop_name = retention.partition_name("usage_llmusageevent", drop_month)
            detach_drop = _timed(
                cursor, f"ALTER TABLE usage_llmusageevent DETACH PARTITION {drop_name}"
            ) + _timed(cursor, f"DROP TABLE {drop_name}")
            low, high = retention.month_bounds(delete_month)
            delete = _timed(
                cursor,
                "DELETE FROM usage_llmusageevent WHERE occurred_at >= %(low)s"
                " AND occurred_at < %(high)s",
                {"low": low, "high": high},
            )
            low, high = retention.month_bounds(vacuum_month)
            vacuum_name = retention.partition_name("usage_llmusageevent", vacuum_month)
            delete_vacuum = _timed(
                cursor,
                "DELETE FROM usage_llmusageevent WHERE occurred_at >= %(low)s"
                " AND occurred_at < %(high)s",
                {"low": low, "high": high},
            ) + _timed(cursor, f"VACUUM {vacuum_name}")  # autocommit: outside a transaction
        del tenant
    finally:
        connection.close()
        if not args.keep:
            _admin(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")

    rows_per_month = sum(n for n, _ in sizes) / len(sizes)
    bytes_per_million = sum(b for _, b in sizes) / sum(n for n, _ in sizes) * 1_000_000
    print(f"load_average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"rows {args.rows}")
    print(f"rows_per_month {rows_per_month:,.0f}")
    print(f"load_rows_seconds {load:.2f}")
    print(f"migration_0010_seconds {migrate_seconds:.2f}")
    print(f"migrate_command_noop_seconds {noop_seconds:.2f}")
    print(f"insert_5000_unpartitioned_ms {insert_before * 1000:.1f}")
    print(f"insert_5000_partitioned_ms {insert_after * 1000:.1f}")
    print(f"insert_partitioned_vs_unpartitioned_ratio {insert_after / insert_before:.2f}")
    print(f"bytes_per_million_llm_events {bytes_per_million:,.0f}")
    print(f"month_detach_drop_seconds {detach_drop:.3f}")
    print(f"month_delete_seconds {delete:.3f}")
    print(f"month_delete_vacuum_seconds {delete_vacuum:.3f}")
    print(f"delete_vs_detach_drop_ratio {delete / detach_drop:.1f}")
    print(f"delete_vacuum_vs_detach_drop_ratio {delete_vacuum / detach_drop:.1f}")
    print(f"id_lookup_partitions_probed {probed} ({len(months)} months of rows)")
    print(f"id_lookup_5000_ms_all_{len(months)}_months {lookup_all:.1f}")
    print(f"id_lookup_5000_ms_one_month {lookup_one:.1f}")
    print(f"id_lookup_all_vs_one_month_ratio {lookup_all / lookup_one:.1f}")


if __name__ == "__main__":
    main()
