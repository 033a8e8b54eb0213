"""The sharding path rehearsed on real Citus: a coordinator and two workers started here, the
portal migrated through the coordinator, tenants whose schemas are distributed, ingest and pages.

Usage (as root or as the postgres OS user; Citus built for the system PostgreSQL):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/citus_rehearsal.py [--runs 1000]
        [--port 5701] [--keep]

Starts three private clusters (``initdb`` under a temporary directory, ports ``--port`` to
``--port``+2, ``shared_preload_libraries = citus``; fsync off on all three, the same for every
figure), joins the workers to the coordinator, sets ``citus.enable_schema_based_sharding`` on
the portal's database and runs the portal against the coordinator:

1. ``migrate_schemas --shared``: the public schema stays on the coordinator as plain tables;
2. three tenants: ``dist-a`` created with schema sharding on (its schema is distributed when it
   is created), ``dist-b`` created with it off and moved with ``citus_schema_distribute``, and
   ``local-c`` left on the coordinator (the same-run baseline);
3. each loaded with ``--runs`` runs of the demo generator (COPY, sequences set, rollups rebuilt);
4. ``POST /api/v1/events`` batches, tenant pages and the operator console through Django's full
   stack, and a primary-key read of a run, per tenant;
5. ``citus_schema_undistribute`` and ``DETACH PARTITION ... CONCURRENTLY`` on a distributed schema
   (both expected to be refused; the message is printed).

Prints one line per step: ``step <name>: OK|FAIL <seconds> <detail>`` and one line per figure;
distributed figures are also given as ratios to ``local-c`` measured in the same run. Exits 0
with a message when Citus is not installed. The clusters are stopped and removed at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = secrets.token_urlsafe(16)
DB = "portal"
TENANTS = ("dist-a", "dist-b", "local-c")


def _pg_config(flag: str) -> str:
    pg_config = shutil.which("pg_config") or "/usr/bin/pg_config"
    return subprocess.run(  # noqa: S603 - fixed arguments
        [pg_config, flag], capture_output=True, text=True, check=True
    ).stdout.strip()


def _citus_installed() -> tuple[Path, str] | None:
    """The PostgreSQL bin directory and Citus's default version, or None without Citus."""
    try:
        bindir = Path(_pg_config("--bindir"))
        control = Path(_pg_config("--sharedir")) / "extension" / "citus.control"
    except (OSError, subprocess.CalledProcessError):
        return None
    if not control.exists() or not (Path(_pg_config("--pkglibdir")) / "citus.so").exists():
        return None
    version = next(
        (
            line.split("=", 1)[1].strip().strip("'")
            for line in control.read_text().splitlines()
            if line.startswith("default_version")
        ),
        "?",
    )
    return bindir, version


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _step(name: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        detail = work()
    except Exception as exc:  # a rehearsal reports every refusal and goes on
        message = " ".join(str(exc).split())[:300]
        elapsed = time.perf_counter() - started
        print(f"step {name}: FAIL {elapsed:.2f}s {type(exc).__name__}: {message}")
        return None
    print(
        f"step {name}: OK {time.perf_counter() - started:.2f}s {detail if detail else ''}".rstrip()
    )
    return detail


@contextmanager
def _clusters(bindir: Path, port: int, keep: bool) -> Iterator[list[int]]:
    root = Path(tempfile.mkdtemp(prefix="citus-rehearsal-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    ports = [port, port + 1, port + 2]
    dirs = [root / name for name in ("coordinator", "worker1", "worker2")]
    started: list[Path] = []
    try:
        for data, p in zip(dirs, ports, strict=True):
            subprocess.run(  # noqa: S603 - our own binaries and paths
                _as_postgres(
                    [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
                ),
                check=True,
                capture_output=True,
            )
            with (data / "postgresql.conf").open("a") as conf:
                conf.write(
                    f"port = {p}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{root}'\n"
                    "shared_preload_libraries = 'citus'\nfsync = off\n"
                    "synchronous_commit = off\nmax_connections = 200\n"
                    "shared_buffers = 128MB\nmax_prepared_transactions = 100\n"
                )
            subprocess.run(  # noqa: S603 - our own binaries and paths
                _as_postgres(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-l",
                        str(data / "log"),
                        "-w",
                        "start",
                    ]
                ),
                check=True,
                capture_output=True,
            )
            started.append(data)
        yield ports
    finally:
        for data in started:
            subprocess.run(  # noqa: S603 - our own binaries and paths
                _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
            )
        if keep:
            print(f"clusters kept (stopped) under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _sql(port: int, sql: str, db: str = DB) -> list[tuple]:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/{db}", autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def _cluster_setup(ports: list[int]) -> str:
    coordinator, *workers = ports
    for p in ports:
        _sql(p, f"CREATE DATABASE {DB}", db="postgres")
        _sql(p, "CREATE EXTENSION citus")
    _sql(coordinator, f"SELECT citus_set_coordinator_host('127.0.0.1', {coordinator})")
    for p in workers:
        _sql(coordinator, f"SELECT citus_add_node('127.0.0.1', {p})")
    _sql(coordinator, f"ALTER DATABASE {DB} SET citus.enable_schema_based_sharding TO on")
    nodes = _sql(coordinator, "SELECT nodeport, shouldhaveshards FROM pg_dist_node ORDER BY 1")
    version = _sql(coordinator, "SELECT citus_version()")[0][0].split(" on ")[0]
    return f"{version}; nodes {nodes}"


def _events(count: int, rng: random.Random) -> list[dict]:
    now = datetime.now(UTC)
    models = [("openai", "gpt-4.1-mini"), ("anthropic", "claude-sonnet-4-5")]
    return [
        {
            "type": "llm",
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": (now - timedelta(seconds=rng.uniform(0, 600))).isoformat(),
            "project": f"project-{n % 5}",
            "run_id": f"run-{n % 200}",
            "provider": models[n % 2][0],
            "model": models[n % 2][1],
            "input_tokens": 3000,
            "output_tokens": 200,
            "cached_input_tokens": 1000,
        }
        for n in range(count)
    ]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rehearse(ports: list[int], runs: int, batches: int, repeat: int) -> None:
    coordinator = ports[0]
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{coordinator}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
    os.environ["PORTAL_SECURE"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access log line per request
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.services import operator_ensure, tenant_domain
    from usage.models import Run

    def sharding(on: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SET citus.enable_schema_based_sharding TO {'on' if on else 'off'}")

    _step(
        "migrate public schema", lambda: call_command("migrate_schemas", shared=True, verbosity=0)
    )
    _step(
        "public tables stay local on the coordinator",
        lambda: _sql(
            coordinator,
            "SELECT count(*) FILTER (WHERE c.oid IN (SELECT logicalrelid FROM pg_dist_partition)),"
            " count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('r', 'p')",
        ),
    )
    _step("operator", lambda: operator_ensure(email="ops@rehearsal.test", password=PASSWORD) and "")

    def create(slug: str, distributed_at_creation: bool) -> str:
        sharding(distributed_at_creation)
        try:
            tenant = big_tenant(slug=slug, runs=runs, days=30, password=PASSWORD, reuse=False)
        finally:
            sharding(True)
        return tenant.schema_name

    for slug in TENANTS:
        _step(f"create and load {slug}", lambda slug=slug: create(slug, slug == "dist-a"))
    _step(
        "distribute dist_b (citus_schema_distribute)",
        lambda: _sql(coordinator, "SELECT citus_schema_distribute('dist_b')") and "",
    )
    _step(
        "where each schema lives",
        lambda: _sql(
            coordinator,
            "SELECT split_part(table_name::text, '.', 1), nodeport, count(*),"
            " pg_size_pretty(sum(shard_size)) FROM citus_shards GROUP BY 1, 2 ORDER BY 1",
        ),
    )
    _step(
        "tables per schema (distributed / all)",
        lambda: _sql(
            coordinator,
            "SELECT n.nspname, count(p.logicalrelid), count(*) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid"
            " WHERE n.nspname IN ('dist_a', 'dist_b', 'local_c') AND c.relkind IN ('r', 'p')"
            " GROUP BY 1 ORDER BY 1",
        ),
    )

    rng = random.Random(3)
    figures: dict[str, dict[str, float]] = {slug: {} for slug in TENANTS}
    clients: dict[str, Client] = {}
    keys: dict[str, str] = {}
    run_pks: dict[str, int] = {}

    def prepare() -> str:
        for slug in TENANTS:
            host = tenant_domain(slug)
            settings.ALLOWED_HOSTS.append(host)
            with schema_context(slug.replace("-", "_")):
                _, keys[slug] = api_key_create(name="rehearsal", scopes=["ingest", "read"])
                run_pks[slug] = Run.objects.order_by("-pk").values_list("pk", flat=True).first()
            clients[slug] = Client(HTTP_HOST=host)
            login = clients[slug].post(
                "/login/", {"username": "admin@bench.test", "password": PASSWORD}
            )
            if login.status_code != 302:
                raise RuntimeError(f"{slug} login answered {login.status_code}")
        return "API keys made, admins logged in"

    _step("prepare tenants", prepare)

    # The three tenants are measured in turn, round after round, so that the load of the shared
    # machine weighs on each alike; ratios to local-c come from the same rounds.
    def ingest() -> str:
        spent = dict.fromkeys(TENANTS, 0.0)
        for n in range(batches + 1):
            for slug in TENANTS:
                body = json.dumps({"events": _events(1000, rng)})
                started = time.perf_counter()
                response = clients[slug].post(
                    "/api/v1/events",
                    body,
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {keys[slug]}",
                )
                if n:  # the first round warms caches (price book, key) untimed
                    spent[slug] += time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{slug}: {response.status_code} {response.content[:200]!r}")
        for slug in TENANTS:
            figures[slug]["ingest events/s"] = batches * 1000 / spent[slug]
        return f"{batches} rounds of a 1,000-event batch per tenant, all 200"

    _step("POST /api/v1/events, tenants in turn", ingest)

    def pages() -> str:
        paths = ("/", "/runs/", "/usage/", "/costs/", "/steps/", "/api/v1/runs")
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(repeat):
            for path in paths:
                for slug in TENANTS:
                    headers = (
                        {"HTTP_AUTHORIZATION": f"Bearer {keys[slug]}"} if "api" in path else {}
                    )
                    started = time.perf_counter()
                    response = clients[slug].get(path, **headers)
                    times.setdefault((slug, path), []).append(time.perf_counter() - started)
                    if response.status_code != 200:
                        raise RuntimeError(f"{slug} {path} answered {response.status_code}")
        for (slug, path), values in times.items():
            figures[slug][f"p95 ms {path}"] = _p(values, 0.95) * 1000
        return f"{len(paths)} pages x {repeat} per tenant, all 200"

    _step("tenant pages, tenants in turn", pages)

    def pk_read() -> str:
        import psycopg

        url = f"postgresql://postgres@127.0.0.1:{coordinator}/{DB}"
        conns = {}
        for slug in TENANTS:
            conns[slug] = psycopg.connect(url, autocommit=True)
            conns[slug].execute(f"SET search_path TO {slug.replace('-', '_')}, public")
        times: dict[str, list[float]] = {slug: [] for slug in TENANTS}
        try:
            for _ in range(1000):
                for slug in TENANTS:
                    started = time.perf_counter()
                    conns[slug].execute(
                        "SELECT * FROM usage_run WHERE id = %s", [run_pks[slug]]
                    ).fetchall()
                    times[slug].append(time.perf_counter() - started)
        finally:
            for conn in conns.values():
                conn.close()
        for slug in TENANTS:
            figures[slug]["pk read median us"] = statistics.median(times[slug]) * 1e6
        return "1,000 reads per tenant through the coordinator (psycopg, search path set)"

    _step("primary-key read of a run, tenants in turn", pk_read)

    def console() -> str:
        client = Client(HTTP_HOST=settings.PORTAL_BASE_DOMAIN)
        login = client.post("/login/", {"username": "ops@rehearsal.test", "password": PASSWORD})
        if login.status_code != 302:
            raise RuntimeError(f"operator login answered {login.status_code}")
        answers = {}
        for path in ("/", "/health/", "/customer-costs/"):
            started = time.perf_counter()
            status = client.get(path).status_code
            answers[path] = f"{status} in {(time.perf_counter() - started) * 1000:.0f} ms"
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
        return f"{answers}"

    _step("operator console and health (every tenant visited)", console)

    def platform_ingest() -> str:
        """One request naming two tenants on different workers: one transaction over both."""
        with schema_context("public"):
            _, raw = api_key_create(name="platform", scopes=["ingest"])
        client = Client(HTTP_HOST=settings.PORTAL_BASE_DOMAIN)
        events = _events(400, rng)
        for n, event in enumerate(events):
            event["tenant"] = "dist-a" if n % 2 else "dist-b"
        response = client.post(
            "/api/v1/events",
            json.dumps({"events": events}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )
        if response.status_code not in (200, 201, 202):
            raise RuntimeError(f"{response.status_code} {response.content[:300]!r}")
        return f"{response.status_code}: {response.content[:120].decode(errors='replace')}"

    _step("platform ingest across dist-a and dist-b", platform_ingest)

    def detach_concurrently() -> str:
        _sql(
            coordinator,
            "CREATE TABLE dist_a.rehearsal_events (at timestamptz NOT NULL, n int)"
            " PARTITION BY RANGE (at);"
            "CREATE TABLE dist_a.rehearsal_events_m1 PARTITION OF dist_a.rehearsal_events"
            " FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');"
            "CREATE TABLE dist_a.rehearsal_events_m2 PARTITION OF dist_a.rehearsal_events"
            " FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')",
        )
        _sql(
            coordinator,
            "ALTER TABLE dist_a.rehearsal_events DETACH PARTITION dist_a.rehearsal_events_m1",
        )
        try:
            _sql(
                coordinator,
                "ALTER TABLE dist_a.rehearsal_events"
                " DETACH PARTITION dist_a.rehearsal_events_m2 CONCURRENTLY",
            )
        except Exception as exc:
            refused = " ".join(str(exc).split())[:160]
        else:
            refused = "accepted"
        return f"plain DETACH accepted; CONCURRENTLY: {refused}"

    _step("partitions in a distributed schema: DETACH / DETACH CONCURRENTLY", detach_concurrently)

    def staging_plan() -> str:
        """How Citus runs ingest's INSERT ... SELECT: from a TEMP table (today) and from a table
        in the tenant's schema (colocated)."""
        import psycopg

        url = f"postgresql://postgres@127.0.0.1:{coordinator}/{DB}"
        methods = {}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO dist_a, public")
            conn.execute("CREATE TEMP TABLE staged_temp (LIKE usage_project)")
            conn.execute("CREATE UNLOGGED TABLE staged_here (LIKE usage_project)")
            for source in ("staged_temp", "staged_here"):
                plan = conn.execute(
                    f"EXPLAIN INSERT INTO usage_project SELECT * FROM {source}"  # noqa: S608
                    " ON CONFLICT DO NOTHING"
                ).fetchall()
                lines = [row[0].strip() for row in plan]
                method = next((x for x in lines if x.startswith("INSERT/SELECT method")), "")
                methods[source] = method or next(
                    (x for x in lines if x.startswith("Node:")), lines[0]
                )
            conn.execute("DROP TABLE staged_here")
        return f"from a TEMP table: {methods['staged_temp']}; from a table in the schema: " + (
            f"pushed down ({methods['staged_here']})"
        )

    _step("ingest staging plan (EXPLAIN INSERT ... SELECT)", staging_plan)

    def undistribute() -> str:
        try:
            _sql(coordinator, "SELECT citus_schema_undistribute('dist_b')")
        except Exception as exc:
            return "refused: " + " ".join(str(exc).split())[:200]
        return "accepted"

    _step("citus_schema_undistribute dist_b", undistribute)

    def drop_tenant() -> str:
        from factory_portal.tenants.models import Tenant
        from factory_portal.tenants.services import tenant_delete

        tenant_delete(tenant=Tenant.objects.get(slug="dist-b"))
        left = _sql(coordinator, "SELECT schema_name::text FROM citus_schemas")
        return f"distributed schemas left: {left}"

    _step("tenant_delete dist-b (DROP SCHEMA of a distributed schema)", drop_tenant)

    local = figures["local-c"]
    for slug in TENANTS:
        for name, value in figures[slug].items():
            base = local.get(name)
            ratio = f" ({value / base:.2f}x local-c)" if base and slug != "local-c" else ""
            print(f"figure {slug} {name}: {value:,.0f}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000, help="demo runs loaded per tenant")
    parser.add_argument(
        "--batches", type=int, default=10, help="ingest batches of 1,000 per tenant"
    )
    parser.add_argument("--repeat", type=int, default=20, help="requests per page")
    parser.add_argument("--port", type=int, default=5701)
    parser.add_argument("--keep", action="store_true", help="keep the stopped clusters' files")
    args = parser.parse_args()

    installed = _citus_installed()
    if installed is None:
        print("citus not installed for this PostgreSQL (no citus.control / citus.so): skipped")
        return
    bindir, version = installed
    print(f"citus extension {version}, PostgreSQL {_pg_config('--version')}")
    print(f"load average {os.getloadavg()}")
    with _clusters(bindir, args.port, args.keep) as ports:
        if _step("cluster: coordinator + 2 workers", lambda: _cluster_setup(ports)) is None:
            return
        _rehearse(ports, args.runs, args.batches, args.repeat)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
