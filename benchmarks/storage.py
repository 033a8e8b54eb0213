"""Storage per LLM event: what a million calls cost on disk, raw table and indexes apart.

Usage (with the demo's environment; use a scratch database, the tenant is created and dropped):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/storage.py [--runs 10000] [--days 30]
        [--keep]

Creates a scratch tenant ``bench-storage`` with ``--runs`` runs of the demo generator (about 28
LLM calls a run: the same token, model and project mix the page benchmark uses), loaded the way
the demo loads (COPY, then the rollups and the run ledger rebuilt), runs ``VACUUM ANALYZE`` on its
schema and prints, from PostgreSQL's own sizes:

- the raw LLM event table: rows, heap bytes per row (TOAST included), index bytes per row and
  each index's size, and the total per million events;
- every other table of the schema, grouped (runs and jobs, rollups and ledger, the rest), per
  million LLM events, and the schema's whole size per million events.

Drops the tenant afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")

MB = 1024 * 1024
RAW = "usage_llmusageevent"
GROUPS = {
    "runs_and_jobs": ("usage_run", "usage_job"),
    "infra_events": ("usage_infrausageevent",),
}


def _group(table: str) -> str:
    for name, tables in GROUPS.items():
        if table in tables:
            return name
    if table.endswith(("daily", "hourly", "ledger")) or "rollup" in table or "ledger" in table:
        return "rollups_and_ledger"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the tenant afterwards")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from factory_portal.tenants.services import tenant_delete

    print(f"load average {os.getloadavg()}")
    tenant = big_tenant(
        slug="bench-storage",
        runs=args.runs,
        days=args.days,
        password=secrets.token_urlsafe(16),
        reuse=False,
    )
    schema = tenant.schema_name
    try:
        with schema_context(schema), connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {RAW}")  # noqa: S608 - a constant
            (rows,) = cursor.fetchone()
            cursor.execute(
                "SELECT c.relname FROM pg_class c"
                " WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'",
                [schema],
            )
            tables = [name for (name,) in cursor.fetchall()]
            for table in tables:
                cursor.execute(f'VACUUM ANALYZE "{schema}"."{table}"')
            cursor.execute(
                "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid)"
                " FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'",
                [schema],
            )
            sizes = {name: (heap, index) for name, heap, index in cursor.fetchall()}
            cursor.execute(
                "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = %s::regclass ORDER BY 2 DESC",
                [f'"{schema}".{RAW}'],
            )
            raw_indexes = cursor.fetchall()
    finally:
        if not args.keep:
            tenant_delete(tenant=tenant)

    if not rows:
        sys.exit("no LLM events were loaded")
    per_million = 1_000_000 / rows
    heap, index = sizes[RAW]
    print(f"llm_events {rows}")
    print(f"llm_table_bytes_per_row {heap / rows:.0f}")
    print(f"llm_index_bytes_per_row {index / rows:.0f}")
    print(f"llm_total_bytes_per_row {(heap + index) / rows:.0f}")
    print(f"llm_table_mb_per_million {heap * per_million / MB:.0f}")
    print(f"llm_indexes_mb_per_million {index * per_million / MB:.0f}")
    print(f"llm_total_mb_per_million {(heap + index) * per_million / MB:.0f}")
    for name, size in raw_indexes:
        print(f"llm_index {name} mb_per_million {size * per_million / MB:.1f}")
    grouped: dict[str, int] = {}
    for table, (table_heap, table_index) in sizes.items():
        if table != RAW:
            grouped[_group(table)] = grouped.get(_group(table), 0) + table_heap + table_index
    for name, size in sorted(grouped.items()):
        print(f"{name}_mb_per_million_llm_events {size * per_million / MB:.0f}")
    total = sum(h + i for h, i in sizes.values())
    print(f"schema_total_mb_per_million_llm_events {total * per_million / MB:.0f}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
