"""Many tenants on one database: schema creation and migration time, catalog size, beat fan-out
enqueue time and page p95 at ``--tenants`` tenants (1,000 by default; 10,000 with the flag).

Usage (the server of ``$DATABASE_URL``; Redis of ``$REDIS_URL`` as the broker):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/tenants.py [--tenants 1000]

Works in a scratch database (``<name>_bench_tenants`` on the same server), dropped afterwards
unless ``--keep``: at 1,000 tenants it is several GB, most of it the catalog. Prints one line a
figure; ratios are against a baseline measured in the same run (migrating a schema against
cloning it; the standard executor against multiprocessing; one message a tenant against the
chunked fan-out). The 10,000-tenant lines it prints from a smaller run are extrapolations
(linear in the tenant count, said so on each line), not measurements.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")

PASSWORD = secrets.token_urlsafe(16)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _scratch_database(url: str, name: str, *, drop: bool = False) -> str:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"benchmark stopped: {what} failed")


def _merged(parts: list) -> object:
    """One answer of several schemas' answers (dicts by schema, or sets)."""
    if parts and isinstance(parts[0], set):
        return set().union(*parts)
    merged: dict = {}
    for part in parts:
        merged.update(part)
    return merged


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1_000, help="10000 for the full figure")
    parser.add_argument("--migrated", type=int, default=3, help="schemas made by migrating")
    parser.add_argument("--repeat", type=int, default=20, help="requests per page")
    parser.add_argument(
        "--chunk", type=int, default=0, help="fan-out chunk size (default TENANT_FAN_OUT_CHUNK)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/factory_portal")
    scratch = urlsplit(base_url).path.lstrip("/") + "_bench_tenants"
    os.environ["DATABASE_URL"] = _scratch_database(base_url, scratch)
    print(f"scratch database {scratch}; {_load()}", flush=True)
    try:
        _measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _scratch_database(base_url, scratch, drop=True)
            print(f"scratch database {scratch} dropped")


def _measure(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from factory_portal.accounts.models import Role
    from factory_portal.accounts.services import user_create
    from factory_portal.celery import app
    from factory_portal.tenants import fanout
    from factory_portal.tenants.models import Domain, Tenant
    from factory_portal.tenants.selectors import customer_tenants
    from factory_portal.tenants.services import (
        operator_ensure,
        public_tenant_ensure,
        tenant_domain,
    )
    from usage.selectors import operator as across
    from usage.tasks import tenant_freshness_refresh

    n = args.tenants
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    public_tenant_ensure()
    operator_ensure(email="operator@bench.test", password=PASSWORD)

    def tenant_make(i: int) -> Tenant:
        slug = f"t{i:05d}"
        tenant = Tenant(schema_name=slug, slug=slug, name=f"Tenant {i:05d}")
        tenant.save(verbosity=0)
        Domain.objects.create(domain=tenant_domain(slug), tenant=tenant, is_primary=True)
        return tenant

    # --- schema creation: migrating (the baseline) against cloning the template --------------
    with override_settings(TENANT_CLONE_TEMPLATE=False):
        started = time.perf_counter()
        for i in range(args.migrated):
            tenant_make(i)
        migrate_s = (time.perf_counter() - started) / args.migrated
    started = time.perf_counter()  # the first clone makes the template: timed apart
    tenant_make(args.migrated)
    template_s = time.perf_counter() - started
    started = time.perf_counter()
    report_every = max(n // 10, 1)
    for i in range(args.migrated + 1, n):
        tenant_make(i)
        if i % report_every == 0:
            print(f"  {i} tenants, {_load()}", flush=True)
    clone_s = (time.perf_counter() - started) / max(n - args.migrated - 1, 1)
    print(
        f"schema creation, migrating: {migrate_s * 1000:,.0f} ms/tenant ({args.migrated} schemas)"
    )
    print(f"schema creation, first clone (makes the template): {template_s * 1000:,.0f} ms")
    print(
        f"schema creation, cloning the template: {clone_s * 1000:,.0f} ms/tenant "
        f"({clone_s / migrate_s:.3f}x migrating) over {n - args.migrated - 1:,} tenants; {_load()}"
    )
    print(f"time to create {n:,} tenants by cloning: {clone_s * n / 60:,.1f} min")
    if n < 10_000:
        print(
            f"time to create 10,000 tenants by cloning: {clone_s * 10_000 / 60:,.0f} min "
            f"(extrapolated, linear), by migrating {migrate_s * 10_000 / 3600:,.1f} h"
        )

    # --- migrating every schema at head: the per-schema cost of a deploy's migrate ------------
    runs: dict[str, float] = {}
    for label, executor, skip in (
        ("standard", "standard", False),
        ("multiprocessing", "multiprocessing", False),
        ("standard, current schemas skipped", "standard", True),
    ):
        connection.close()
        with override_settings(TENANT_MIGRATE_SKIP_CURRENT=skip):
            started = time.perf_counter()
            call_command(
                "migrate_schemas", tenant=True, executor=executor, interactive=False, verbosity=0
            )
            runs[label] = spent = time.perf_counter() - started
        connection.close()
        print(
            f"migrate_schemas over {n:,} schemas at head, {label} executor: {spent:,.1f} s, "
            f"{spent / n * 1000:,.1f} ms/schema ({spent / runs['standard']:.3f}x standard); "
            f"{_load()}"
        )
    print(
        f"multiprocessing ran {settings.TENANT_MULTIPROCESSING_MAX_PROCESSES} processes on "
        f"{os.cpu_count()} cores shared with the database server"
    )
    if n < 10_000:
        print(
            f"migrate_schemas over 10,000 schemas at head (extrapolated, linear): standard "
            f"{runs['standard'] / n * 10_000 / 60:,.0f} min, skipping current schemas "
            f"{runs['standard, current schemas skipped'] / n * 10_000:,.0f} s"
        )

    # --- catalog size --------------------------------------------------------------------------
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class")
        (pg_class,) = cursor.fetchone()
        cursor.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'"
        )
        catalog_bytes = int(cursor.fetchone()[0])
        cursor.execute("SELECT pg_database_size(current_database())")
        (db_bytes,) = cursor.fetchone()
    mb = 1024 * 1024
    print(
        f"catalog at {n:,} tenants: pg_class {pg_class:,} rows, "
        f"pg_catalog {catalog_bytes / mb:,.0f} MB, database {db_bytes / mb:,.0f} MB"
    )
    if n < 10_000:
        k = 10_000 / n
        print(
            f"catalog at 10,000 tenants (extrapolated, linear): pg_class {pg_class * k:,.0f} rows, "
            f"pg_catalog {catalog_bytes * k / mb:,.0f} MB, database {db_bytes * k / mb:,.0f} MB"
        )

    # --- beat fan-out: one message a tenant (baseline) against chunks ---------------------------
    app.control.purge()
    with override_settings(TENANT_FAN_OUT_CHUNK=10**9):
        started = time.perf_counter()
        fanout.tenants_fan_out(tenant_freshness_refresh, tenants="all", spread_s=0)
        flat_s = time.perf_counter() - started
    app.control.purge()
    chunk = args.chunk or settings.TENANT_FAN_OUT_CHUNK
    with override_settings(TENANT_FAN_OUT_CHUNK=chunk):
        started = time.perf_counter()
        fanout.tenants_fan_out(tenant_freshness_refresh, tenants="all", spread_s=150)
        chunked_s = time.perf_counter() - started
    started = time.perf_counter()
    plan = fanout.fan_out_plan(fanout.fan_out_schemas("all"), chunk=chunk, spread_s=150)
    from factory_portal.tenants.tasks import publish_in_schemas

    publish_in_schemas(tenant_freshness_refresh.name, [], plan[0][1])
    chunk_s = time.perf_counter() - started
    app.control.purge()
    print(
        f"beat fan-out at {n:,} tenants, one message a tenant from the beat: "
        f"{flat_s * 1000:,.0f} ms"
    )
    print(
        f"beat fan-out at {n:,} tenants, chunked ({len(plan)} chunk tasks of "
        f"{chunk}): {chunked_s * 1000:,.0f} ms in the beat "
        f"({chunked_s / flat_s:.3f}x), one chunk task {chunk_s * 1000:,.0f} ms; {_load()}"
    )

    # --- pages at this many tenants -------------------------------------------------------------
    some = Tenant.objects.get(slug=f"t{n // 2:05d}")
    with schema_context(some.schema_name):
        user_create(email="admin@bench.test", role=Role.ADMIN, password=PASSWORD)
    tenant_client = Client(HTTP_HOST=tenant_domain(some.slug))
    login = {"username": "admin@bench.test", "password": PASSWORD}
    _check(tenant_client.post("/login/", login).status_code == 302, "tenant login")
    operator = Client(HTTP_HOST=settings.PORTAL_BASE_DOMAIN)
    login = {"username": "operator@bench.test", "password": PASSWORD}
    _check(operator.post("/login/", login).status_code == 302, "operator login")
    this_month = f"{timezone.now():%Y-%m}"
    worst = ("", 0.0)
    for client, path in [
        (tenant_client, "/"),
        (tenant_client, "/costs/"),
        (tenant_client, "/runs/"),
        (tenant_client, "/usage/"),
        (tenant_client, "/status/"),
        (operator, "/"),
        (operator, f"/?page={max(n // 50, 1)}"),
        (operator, "/?q=t0099"),
        (operator, "/health/"),
        (operator, "/customer-costs/"),
        (operator, f"/allocation/{this_month}/?what_if=1"),
        (operator, f"/billed/{this_month}/"),
        (operator, "/price-book/?in_use=1"),
    ]:
        for _ in range(2):
            _check(client.get(path).status_code == 200, path)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            _check(response.status_code == 200, path)
        where = "operator" if client is operator else "tenant"
        p95 = _p95(times)
        print(
            f"page p95 at {n:,} tenants, {where} {path}: {p95:,.0f} ms "
            f"(p50 {statistics.median(times):,.0f} ms)"
        )
        if where == "tenant" and p95 > worst[1]:
            worst = (path, p95)
    print(f"worst tenant page p95 at {n:,} tenants: {worst[1]:,.0f} ms ({worst[0]}); {_load()}")

    # --- reads of every tenant: UNION ALL statements against a schema at a time ----------------
    schemas = list(customer_tenants().values_list("schema_name", flat=True))
    start = timezone.now().date().replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    reads = {
        "allocation drivers": lambda some: across.tenants_allocation_drivers(
            some, start=start, end=end
        ),
        "bill estimates": lambda some: across.tenants_estimated_cost(some, start=start, end=end),
        "monthly AI cost": lambda some: across.tenants_monthly_token_cost(
            some, start=start, end=end
        ),
        "models in use": across.tenants_models_seen,
    }
    for name, read in reads.items():
        started = time.perf_counter()
        together = read(schemas)
        together_s = time.perf_counter() - started
        started = time.perf_counter()
        parts = []
        for schema in schemas:  # the baseline: each schema in turn, as the code read them
            with schema_context(schema):
                parts.append(read([schema]))
        apart = _merged(parts)
        apart_s = time.perf_counter() - started
        _check(together == apart, f"{name} read together and apart")
        print(
            f"{name} of {len(schemas):,} tenants: {together_s * 1000:,.0f} ms in statements of "
            f"{across.LOCKS_PER_STATEMENT:,} relation locks, {apart_s * 1000:,.0f} ms a schema "
            f"at a time ({together_s / apart_s:.2f}x); {_load()}"
        )


if __name__ == "__main__":
    main()
