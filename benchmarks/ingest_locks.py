"""Lock waits of concurrent ingest batches, read from pg_stat_activity.

Usage (PostgreSQL as configured by DATABASE_URL):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/ingest_locks.py [--batches 6]
        [--batch-size 2000] [--new-runs 20]

Creates a scratch tenant ``bench-locks``; two threads each store ``batches`` batches of LLM events
of one project and day (each batch starting ``new-runs`` runs, as a factory's traffic does)
through ``events_ingest`` in the ingest transaction, while a third samples pg_stat_activity every
10 ms. Prints the events/s, how many samples of the two writers' backends were waiting on a lock,
and the statements they waited in (most first), with the load average. Drops the tenant.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")

APPLICATION = "bench-ingest-locks"
SAMPLE = (
    "SELECT wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
    " FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND application_name = %s"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--new-runs", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    import psycopg
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.pricing.book import pricebook_refresh
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
    from usage.domain.events import LlmEventIn
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest
    from usage.services.routing import ingest_transaction

    public_tenant_ensure()
    pricebook_refresh()
    if (old := tenant_by_slug("bench-locks")) is not None:
        tenant_delete(tenant=old)
    tenant = tenant_create(slug="bench-locks", name="Benchmark", admin_email="b@bench.test").tenant
    at = timezone.now() - timedelta(minutes=5)

    def batch(writer: int, number: int) -> list[LlmEventIn]:
        return [
            LlmEventIn(
                n,
                str(uuid.uuid4()),
                at,
                "shared",
                f"run-{writer}-{number}-{n % args.new_runs}",
                "",
                "",
                "openai",
                "gpt-4o",
                "generation",
                1000,
                100,
                0,
                0,
                None,
            )
            for n in range(args.batch_size)
        ]

    work = {w: [batch(w, b) for b in range(args.batches)] for w in range(2)}
    stop = threading.Event()
    samples = 0
    waits: dict[tuple[str, str], int] = {}
    dsn = connection.settings_dict

    def sampler() -> None:
        nonlocal samples
        with psycopg.connect(
            dbname=dsn["NAME"],
            user=dsn["USER"],
            host=dsn["HOST"] or None,
            port=dsn["PORT"] or None,
            password=dsn["PASSWORD"] or None,
            autocommit=True,
        ) as conn:
            while not stop.is_set():
                for kind, event, query in conn.execute(SAMPLE, [APPLICATION]).fetchall():
                    samples += 1
                    if kind == "Lock":
                        waits[(event, query)] = waits.get((event, query), 0) + 1
                time.sleep(0.01)

    def writer(number: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('application_name', %s, false)", [APPLICATION])
        with schema_context(tenant.schema_name):
            pricer = pricer_for(tenant)
            for events in work[number]:
                ingest_transaction(
                    lambda events=events: events_ingest(events=events, pricer=pricer)
                )
        connection.close()

    watching = threading.Thread(target=sampler)
    watching.start()
    started = time.perf_counter()
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    seconds = time.perf_counter() - started
    stop.set()
    watching.join()
    tenant_delete(tenant=tenant)

    load = f"load={os.getloadavg()[0]:.2f}"
    waiting = sum(waits.values())
    print(
        f"ingest_locks_events_per_second {2 * args.batches * args.batch_size / seconds:,.0f} {load}"
    )
    print(f"ingest_locks_active_samples {samples} {load}")
    print(f"ingest_locks_waiting_share {waiting / max(1, samples):.2f} {load}")
    for (event, query), count in sorted(waits.items(), key=lambda item: -item[1])[:5]:
        print(f"ingest_locks_wait {count} {event} {query!r}")


if __name__ == "__main__":
    main()
