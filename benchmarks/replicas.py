"""Page and read-API latency with and without a streaming read replica, under a mixed write load.

Usage (DEBUG=0; the environment of the tests, e.g. DATABASE_URL of a scratch database; run as a
user that may edit the server's pg_hba.conf, see tests/replica_support.py):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/replicas.py [--runs 3000] [--seconds 30]

Creates (or with ``--reuse`` keeps) the tenant ``bench-replicas`` with ``--runs`` demo runs over
``--days`` days, starts a hot standby of the server (``pg_basebackup``, a second ``postgres`` on
a free port), then runs the same phase twice on the production server (gunicorn): once with no
replica, once with ``DATABASE_REPLICA_URLS`` set to the standby. In a phase ``--readers``
threads request pages (signed in) and read-API endpoints (an API key) in a loop while a writer
posts ingest batches of 100 events at ``--ingest-rate`` batches/s. Prints the reads' p50/p95 both
ways and their ratio, and the share of the read requests' SQL statements the replica answered
(the ``db_reads`` metric scraped from the server). The machine is shared: the load average is
printed with the figures. Drops the tenant afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # shared with the server

PASSWORD = secrets.token_urlsafe(16)
METRICS_TOKEN = secrets.token_urlsafe(24)
RAISED_RATE = "1000000/min"
PAGES = ("/", "/runs/", "/usage/", "/costs/", "/budgets/")
API = (
    "/api/v1/projects",
    "/api/v1/runs?limit=50",
    "/api/v1/usage?start={start}&group_by=project,model",
    "/api/v1/costs?start={start}&group_by=model",
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _request(
    port: int, host: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Host": host, **headers},
        method="POST" if body else "GET",
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, (time.perf_counter() - started) * 1000


def _replica_share(port: int, host: str) -> dict[str, float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Host": host, "Authorization": f"Bearer {METRICS_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        text = answer.read().decode()
    found: dict[str, float] = {}
    for target, value in re.findall(r'^db_reads_total\{target="([^"]+)"\} (\S+)$', text, re.M):
        found[target] = found.get(target, 0.0) + float(value)
    for reason, value in re.findall(
        r'^db_replica_fallbacks_total\{reason="([^"]+)"\} (\S+)$', text, re.M
    ):
        found[f"fallback {reason}"] = float(value)
    return found


def _phase(
    *,
    label: str,
    env: dict[str, str],
    args: argparse.Namespace,
    host: str,
    session: str,
    reader_key: str,
    ingest_key: str,
) -> tuple[list[float], dict[str, float], int]:
    from benchmarks.server import gunicorn

    metrics_dir = tempfile.mkdtemp(prefix="fp-bench-metrics-")
    start = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    reads = [(p, {"Cookie": session}) for p in PAGES] + [
        (p.format(start=start), {"Authorization": f"Bearer {reader_key}"}) for p in API
    ]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    server_env = {
        **env,
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "API_RATE_READ": RAISED_RATE,
        "API_RATE_INGEST": RAISED_RATE,
    }
    try:
        with gunicorn(workers=args.workers, env=server_env, args=["--threads", "4"]) as port:
            for path, headers in reads:  # warm every worker's connections and caches
                for _ in range(args.workers):
                    _request(port, host, path, headers)
            stop = time.monotonic() + args.seconds

            def reader(offset: int) -> None:
                nonlocal errors
                index = offset
                while time.monotonic() < stop:
                    path, headers = reads[index % len(reads)]
                    index += 1
                    status, ms = _request(port, host, path, headers)
                    with lock:
                        latencies.append(ms)
                        errors += status != 200

            def writer() -> None:
                nonlocal errors
                interval = 1 / args.ingest_rate
                next_at = time.monotonic()
                while time.monotonic() < stop:
                    now = datetime.now(UTC)
                    body = json.dumps(
                        {
                            "events": [
                                {
                                    "event_id": f"bench-replicas-{uuid.uuid4().hex}",
                                    "timestamp": now.isoformat(),
                                    "project": "replica-load",
                                    "type": "llm",
                                    "provider": "openai",
                                    "model": "gpt-4o-mini",
                                    "operation": "chat",
                                    "input_tokens": 900,
                                    "output_tokens": 150,
                                }
                                for _ in range(100)
                            ]
                        }
                    ).encode()
                    status, _ = _request(
                        port,
                        host,
                        "/api/v1/events",
                        {
                            "Authorization": f"Bearer {ingest_key}",
                            "Content-Type": "application/json",
                        },
                        body,
                    )
                    if status >= 300:
                        with lock:
                            errors += 1
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.monotonic()))

            threads = [
                threading.Thread(target=reader, args=(i,), daemon=True) for i in range(args.readers)
            ]
            threads.append(threading.Thread(target=writer, daemon=True))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            share = _replica_share(port, host)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    print(f"# {label}: {len(latencies)} reads, {errors} errors, metrics {share}", flush=True)
    return latencies, share, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ingest-rate", type=float, default=2.0, help="batches of 100 a second")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from factory_portal.accounts.models import User
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.services import tenant_delete, tenant_domain
    from tests.replica_support import streaming_replica

    if settings.DATABASE_REPLICA_URLS:
        raise SystemExit("unset DATABASE_REPLICA_URLS: the benchmark sets it for its second phase")
    slug = "bench-replicas"
    started = time.monotonic()
    tenant = big_tenant(
        slug=slug, runs=args.runs, days=args.days, password=PASSWORD, reuse=args.reuse
    )
    host = tenant_domain(slug)
    with schema_context(tenant.schema_name):
        _, reader_key = api_key_create(name="bench reader", scopes=["read"])
        _, ingest_key = api_key_create(name="bench ingest", scopes=["ingest"])
        admin = User.objects.filter(is_active=True).order_by("pk").first()
        if admin is None:
            raise SystemExit(f"{slug} has no user to sign in")
        store = SessionStore()
        store[SESSION_KEY] = str(admin.pk)
        store[BACKEND_SESSION_KEY] = next(  # the one that loads users (not the lock-out's)
            b for b in settings.AUTHENTICATION_BACKENDS if b.endswith("ModelBackend")
        )
        store[HASH_SESSION_KEY] = admin.get_session_auth_hash()
        store.create()
        session = f"{settings.SESSION_COOKIE_NAME}={store.session_key}"
    print(f"# tenant {slug}: ready in {time.monotonic() - started:.0f} s", flush=True)
    primary = connection.settings_dict
    try:
        started = time.monotonic()
        with streaming_replica(
            host=primary["HOST"] or "127.0.0.1", port=int(primary["PORT"] or 5432)
        ) as replica:
            print(
                f"# replica on port {replica.port}: started in {time.monotonic() - started:.0f} s"
            )
            common = {"session": session, "reader_key": reader_key, "ingest_key": ingest_key}
            load_before = os.getloadavg()
            without, _, errors_without = _phase(
                label="primary only",
                env={"DATABASE_REPLICA_URLS": ""},
                args=args,
                host=host,
                **common,
            )
            replica_url = replica.url(primary["NAME"], primary["USER"] or "postgres")
            with_replica, share, errors_with = _phase(
                label="with replica",
                env={"DATABASE_REPLICA_URLS": replica_url},
                args=args,
                host=host,
                **common,
            )
            load_after = os.getloadavg()
    finally:
        if not args.keep:
            connection.set_schema_to_public()
            tenant_delete(tenant=tenant)

    p95_without, p95_with = _percentile(without, 0.95), _percentile(with_replica, 0.95)
    on_replica = sum(v for k, v in share.items() if k.startswith("replica_"))
    total = on_replica + share.get("primary", 0.0)
    for label, values, errors in (
        ("primary only", without, errors_without),
        ("with replica", with_replica, errors_with),
    ):
        median = statistics.median(values)
        print(f"reads p50 {label}: {median:.1f} ms ({len(values)} reads, {errors} errors)")
    print(f"reads p95 primary only: {p95_without:.1f} ms")
    print(f"reads p95 with replica: {p95_with:.1f} ms")
    print(f"reads p95 with replica / primary only: {p95_with / p95_without:.2f}x")
    print(
        f"read statements served by the replica: {on_replica / total:.0%}"
        if total
        else "no reads counted"
    )
    fallbacks = {k: v for k, v in share.items() if k.startswith("fallback")}
    print(f"replica fallbacks (requests): {fallbacks or 'none'}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    main()
