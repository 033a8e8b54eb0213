"""Open-loop load test of the production server: mixed traffic at a fixed rate for a fixed time.

Usage (after ``manage.py seed_demo``; DEBUG=0 so the server runs as in production):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/load.py [--tenant acme] [--rate 100]
        [--duration 60] [--warmup 10] [--mix dashboards=25,api=45,ingest=30]
        [--workers N] [--threads N] [--clients 64] [--keep-data] [--server-log FILE]
(``--workers``/``--threads``: the production defaults unless given)

Starts gunicorn with the production settings (``factory_portal/gunicorn_conf.py``: gthread
workers, JSON logs on stderr; static files collected and hashed; multi-process metrics) on a
loopback port and sends requests at fixed times: ``--rate`` a second for ``--duration`` seconds,
after an unmeasured ``--warmup``, from ``--clients`` threads with kept-alive connections. It is
open-loop: a request's latency counts from the time it was *scheduled*, so a stalled server shows
up as latency rather than as fewer requests sent (no coordinated omission). Next to it: the
service time (from the actual send) and the server's own time (``duration_ms`` of the access log,
joined by ``X-Request-ID``); their difference is time spent waiting for a free worker thread.

The traffic (``--mix``, percentages of the requests), on a tenant with the demo data:
- ``dashboards``: ``/``, ``/runs/``, ``/runs/active/``, ``/usage/``, ``/costs/`` and
  ``/runs/<run_id>/`` as the tenant's admin (a session created for the test);
- ``api``: ``GET /api/v1/usage`` (30 days by project and model), ``/api/v1/runs?limit=50``,
  ``/api/v1/runs/<run_id>``, ``/api/v1/costs`` (30 days by model; 3 months by project) and
  ``/api/v1/projects`` with an API key created for the test;
- ``ingest``: ``POST /api/v1/events``, batches of 100 fresh events (4 in 5), and
  ``POST /api/v1/runs``, lifecycle updates of new runs with their jobs (1 in 5).
The server gets ``API_RATE_READ`` and ``API_RATE_INGEST`` raised (the test measures capacity, not
throttling), and a Redis database of its own for the Celery tasks that ingest enqueues (no worker
runs here; ``--broker-db``, emptied afterwards). Ingested events and runs go to projects and
templates ``loadtest-*`` and are deleted afterwards with the rollup and ledger rows they fed
(unless ``--keep-data``), as are the key, the session and the cached cost summaries.

Prints the configuration; then per kind, per endpoint and overall the requests, the achieved
throughput (2xx answers a second), p50/p95/p99/max latency (of every request sent, time-outs
included), service and server time, errors (non-2xx or exceptions, with samples; requests the
clients could not even start within ``--timeout`` of the end count as errors too), the CPU time
per request of gunicorn, PostgreSQL and the client, the server's warning and error log lines;
and whether the target is met: no errors and p99 <= ``--target-p99`` ms at the offered rate.
Exit status 1 on errors, 2 when only p99 misses.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402  (needs ROOT on the path)
    MODELS,
    cpu_sample,
    cpu_used,
    gunicorn_pid,
)
from factory_portal import gunicorn_conf  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")
os.environ.setdefault("DEBUG", "0")
# The server must share the key: sessions are signed with it.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

# The production defaults (factory_portal/gunicorn_conf.py: 4 processes a core, one thread each).
# Earlier, at 40-50 requests/s on a slower machine, 4 x 4 had the lowest p99 and CPU per request
# of 3 x 4, 3 x 8, 2 x 8, 5 x 2, 5 x 4 and 8 x 2; on the fastest machine since, 8 x 1 spent
# 15.0-17.3 ms of machine CPU a request at 45 req/s against 18.8 for 4 x 4, and held 100 req/s
# where 4 x 4 and 8 x 2 did not (README, Faster ingest, eleventh pass).
DEFAULT_WORKERS = gunicorn_conf.workers
DEFAULT_THREADS = gunicorn_conf.threads
RAISED_RATE = "1000000/min"
PROJECT_PREFIX = "loadtest-"
EVENTS_PER_BATCH = 100
# Templates of their own: the step rollup is keyed by day, template and step (not project), and
# the clean-up deletes the test's rows by this prefix instead of leaving them in the demo's.
TEMPLATES = [
    ("frontend", f"{PROJECT_PREFIX}react-spa"),
    ("library", f"{PROJECT_PREFIX}python-library"),
    ("pipeline", f"{PROJECT_PREFIX}dbt-pipeline"),
    ("microservice", f"{PROJECT_PREFIX}python-fastapi-service"),
]
STEPS = ("plan", "implement", "write-tests", "review")
# Endpoints of each kind: name -> (method, path template, weight). ``{run}`` is a demo run id.
ENDPOINTS: dict[str, dict[str, tuple[str, str, int]]] = {
    "dashboards": {
        "overview": ("GET", "/", 1),
        "runs": ("GET", "/runs/", 1),
        "runs active": ("GET", "/runs/active/", 1),
        "usage": ("GET", "/usage/", 1),
        "costs": ("GET", "/costs/", 1),
        "run detail": ("GET", "/runs/{run}/", 1),
    },
    "api": {
        "api usage 30d": ("GET", "/api/v1/usage?start={start_30}&group_by=project,model", 2),
        "api runs": ("GET", "/api/v1/runs?limit=50", 2),
        "api run": ("GET", "/api/v1/runs/{run}", 2),
        "api costs 30d": ("GET", "/api/v1/costs?start={start_30}&group_by=model", 1),
        "api costs months": (
            "GET",
            "/api/v1/costs?granularity=month&start={months_3}&group_by=project",
            1,
        ),
        "api projects": ("GET", "/api/v1/projects", 2),
    },
    "ingest": {
        "ingest events": ("POST", "/api/v1/events", 4),
        "ingest runs": ("POST", "/api/v1/runs", 1),
    },
}


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the start of the phase
    kind: str
    name: str
    method: str
    path: str
    body: bytes | None


@dataclass
class Outcome:
    planned: Planned
    request_id: str
    sent: bool = False
    status: int = 0  # 0: no answer
    latency_ms: float = 0.0  # from the scheduled time
    service_ms: float = 0.0  # from the actual send
    lag_ms: float = 0.0  # actual send - scheduled
    error: str | None = None
    server_ms: float | None = None
    server_cpu_ms: float | None = None  # the request's thread CPU (access log ``cpu_ms``)

    @property
    def ok(self) -> bool:
        return self.error is None


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in ENDPOINTS or not value:
            raise argparse.ArgumentTypeError(
                f"--mix takes kind=percent pairs with kinds {', '.join(ENDPOINTS)}; got {part!r}"
            )
        mix[name] = float(value)
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("--mix needs a positive share")
    return {name: share / sum(mix.values()) for name, share in mix.items() if share > 0}


# --- The plan: every request of a phase, with its time and body, built before it starts --------


class Traffic:
    """Builds the requests of a phase; ingest bodies carry fresh ids (unique per test run)."""

    def __init__(
        self, *, rng: random.Random, token: str, run_ids: list[str], samples: list, now: datetime
    ) -> None:
        self.rng = rng
        self.token = token
        self.run_ids = run_ids
        self.samples = samples
        today = now.date()
        self.values = {
            "start_30": (today - timedelta(days=29)).isoformat(),
            "months_3": (today.replace(day=1) - timedelta(days=62)).replace(day=1).isoformat(),
        }
        self.load_runs: list[tuple[str, str, datetime]] = []  # run id, project, requested at
        self.run_batches = 0

    def plan(self, *, rate: float, seconds: float, mix: dict[str, float]) -> list[Planned]:
        total = round(rate * seconds)
        kinds = [kind for kind, share in mix.items() for _ in range(round(share * total))]
        kinds = (kinds + [max(mix, key=mix.__getitem__)] * total)[:total]
        self.rng.shuffle(kinds)
        planned = []
        for n, kind in enumerate(kinds):
            names = list(ENDPOINTS[kind])
            weights = [ENDPOINTS[kind][name][2] for name in names]
            name = self.rng.choices(names, weights)[0]
            method, template, _ = ENDPOINTS[kind][name]
            at = n / rate
            body = None
            if name == "ingest events":
                body = self._events(at)
            elif name == "ingest runs":
                body = self._runs(at)
            path = template.format(run=self.rng.choice(self.run_ids), **self.values)
            planned.append(Planned(at, kind, name, method, path, body))
        return planned

    def _events(self, at: float) -> bytes:
        now = datetime.now(UTC) + timedelta(seconds=at)
        events = []
        for _ in range(EVENTS_PER_BATCH):
            # A live exporter sends the last minutes' calls; a few arrive late (up to 3 days).
            age = (
                self.rng.uniform(0, 600)
                if self.rng.random() < 0.95
                else self.rng.uniform(600, 3 * 86_400)
            )
            run = self.rng.choice(self.load_runs[-60:]) if self.load_runs else None
            event: dict[str, object] = {
                "event_id": f"lt-{self.token}-{uuid.UUID(int=self.rng.getrandbits(128)).hex}",
                "timestamp": (now - timedelta(seconds=age)).isoformat(),
                "project": run[1] if run else f"{PROJECT_PREFIX}{self.rng.randint(1, 3)}",
            }
            if run:
                event["run_id"] = run[0]
                event["job_id"] = f"{run[0]}-{self.rng.choice(STEPS)}"
            if self.rng.random() < 0.9:
                sample = self.rng.choice(self.samples)
                provider, model = self.rng.choice(MODELS)
                event.update(
                    type="llm",
                    provider=provider,
                    model=model,
                    operation="chat",
                    input_tokens=sample.input_tokens,
                    output_tokens=sample.output_tokens,
                    cached_input_tokens=int(sample.input_tokens * self.rng.uniform(0, 0.8)),
                )
            else:
                event.update(
                    type="infra",
                    resource_type="compute",
                    quantity=f"{self.rng.uniform(1, 600):.3f}",
                    unit="cpu_seconds",
                )
            events.append(event)
        return json.dumps({"events": events}).encode()

    def _runs(self, at: float) -> bytes:
        """Three new runs start (with their first job); the runs the previous batch started
        finish, with all their jobs."""
        now = datetime.now(UTC) + timedelta(seconds=at)
        previous = self.load_runs[-3:]
        updates: list[dict[str, object]] = []
        for run_id, project, requested in previous:
            failed = self.rng.random() < 0.1
            jobs = []
            for attempt_at, step in enumerate(STEPS):
                started = requested + timedelta(seconds=5 + 20 * attempt_at)
                jobs.append(
                    {
                        "job_id": f"{run_id}-{step}",
                        "step_name": step,
                        "status": "Failed" if failed and step == STEPS[-1] else "Succeeded",
                        "started_at": started.isoformat(),
                        "finished_at": (started + timedelta(seconds=18)).isoformat(),
                    }
                )
            updates.append(
                {
                    "run_id": run_id,
                    "project": project,
                    "status": "Failed" if failed else "Succeeded",
                    "timestamp": now.isoformat(),
                    "finished_at": now.isoformat(),
                    **({"failure_type": "tests_failed"} if failed else {}),
                    "jobs": jobs,
                }
            )
        self.run_batches += 1
        for n in range(3):
            run_id = f"lt-{self.token}-{self.run_batches}-{n}"
            project = f"{PROJECT_PREFIX}{self.rng.randint(1, 3)}"
            requested = now - timedelta(seconds=self.rng.uniform(60, 90))
            run_type, template = self.rng.choice(TEMPLATES)
            updates.append(
                {
                    "run_id": run_id,
                    "project": project,
                    "status": "Running",
                    "timestamp": now.isoformat(),
                    "run_type": run_type,
                    "template_recipe_id": template,
                    "requested_at": requested.isoformat(),
                    "started_at": (requested + timedelta(seconds=5)).isoformat(),
                    "trace_id": secrets.token_hex(16),
                    "jobs": [
                        {
                            "job_id": f"{run_id}-{STEPS[0]}",
                            "step_name": STEPS[0],
                            "status": "Running",
                            "started_at": (requested + timedelta(seconds=5)).isoformat(),
                        }
                    ],
                }
            )
            self.load_runs.append((run_id, project, requested))
        return json.dumps({"runs": updates}).encode()


# --- Sending: open loop from a pool of client threads -----------------------------------------

STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


def send_phase(
    *,
    port: int,
    host: str,
    headers: dict[str, dict[str, str]],
    plan: list[Planned],
    clients: int,
    timeout: float,
    label: str,
) -> tuple[list[Outcome], float, int]:
    """Send every planned request at its time. Returns the outcomes, the seconds from the first
    scheduled send to the last answer, and how many kept-alive connections had to be re-opened."""
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(plan)):
        pending.put(index)
    outcomes = [Outcome(p, request_id=f"lt-{label}-{n}") for n, p in enumerate(plan)]
    lock = threading.Lock()
    reopened = 0
    last_answer = 0.0
    start = time.perf_counter() + 0.5
    # Requests not started by then are reported as not sent: the test stays bounded in time.
    stop_sending = start + (plan[-1].at if plan else 0) + timeout

    def client() -> None:
        nonlocal reopened, last_answer
        connection: http.client.HTTPConnection | None = None
        idle_since = 0.0
        while True:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                break
            outcome = outcomes[index]
            planned = outcome.planned
            scheduled = start + planned.at
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            outcome.lag_ms = (sent - scheduled) * 1000
            if sent > stop_sending:
                outcome.error = "not sent: the clients were still busy at the end of the test"
                continue
            outcome.sent = True
            request_headers = {"Host": host, "X-Request-ID": outcome.request_id}
            request_headers.update(headers[planned.kind])
            if planned.body is not None:
                request_headers["Content-Type"] = "application/json"
            # gunicorn closes connections idle for 5 s (keepalive); re-open before that.
            if connection is not None and sent - idle_since > 4:
                connection.close()
                connection = None
            status, payload = 0, b""
            for attempt in range(2):
                fresh = connection is None
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                try:
                    connection.request(
                        planned.method, planned.path, body=planned.body, headers=request_headers
                    )
                    response = connection.getresponse()
                    payload = response.read()
                    status = response.status
                    if response.will_close:
                        connection.close()
                        connection = None
                    break
                except STALE_CONNECTION as exc:
                    connection.close()
                    connection = None
                    if fresh or attempt:
                        outcome.error = f"{type(exc).__name__}: {exc}"
                        break
                    with lock:
                        reopened += 1  # closed by the server between two requests: send again
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    connection = None
                    outcome.error = f"{type(exc).__name__}: {exc}"
                    break
            done = time.perf_counter()
            idle_since = done
            outcome.status = status
            outcome.latency_ms = (done - scheduled) * 1000
            outcome.service_ms = (done - sent) * 1000
            if outcome.error is None and not 200 <= status < 300:
                outcome.error = f"{status}: {payload[:200].decode(errors='replace')}"
            with lock:
                last_answer = max(last_answer, done)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, max(last_answer - start, plan[-1].at if plan else 0), reopened


# --- Reporting ----------------------------------------------------------------------------------

HEADER = (
    f"{'':22} {'sent':>6} {'2xx':>6} {'errors':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}"
    f" {'p99 ms':>8} {'max ms':>8} {'svc p99':>8} {'srv p50':>8} {'srv p99':>8} {'cpu ms':>7}"
)


def _line(name: str, outcomes: list[Outcome], seconds: float) -> str:
    answered = [o for o in outcomes if o.status]
    latencies = [o.latency_ms for o in outcomes if o.sent]  # timeouts included
    errors = sum(1 for o in outcomes if not o.ok)
    server = [o.server_ms for o in answered if o.server_ms is not None]
    cpu = [o.server_cpu_ms for o in answered if o.server_cpu_ms is not None]
    return (
        f"{name:22} {len(outcomes):6d} {len(outcomes) - errors:6d} {errors:6d}"
        f" {(len(outcomes) - errors) / seconds:7.1f}"
        f" {_percentile(latencies, 0.5):8.1f} {_percentile(latencies, 0.95):8.1f}"
        f" {_percentile(latencies, 0.99):8.1f} {max(latencies, default=float('nan')):8.1f}"
        f" {_percentile([o.service_ms for o in answered], 0.99):8.1f}"
        f" {_percentile(server, 0.5):8.1f} {_percentile(server, 0.99):8.1f}"
        f" {sum(cpu) / len(cpu) if cpu else float('nan'):7.1f}"
    )


def _server_log(path: Path, outcomes: list[Outcome]) -> list[str]:
    """Joins the access log's ``duration_ms`` to the outcomes; answers the server's warning and
    error lines of the measured requests or of no request (gunicorn's worker timeouts, say),
    without the access lines that repeat them."""
    by_id = {o.request_id: o for o in outcomes}
    problems = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(line)  # not a JSON line: a traceback or a crash
            continue
        request_id = record.get("request_id")
        if record.get("logger") == "portal.access":
            if request_id in by_id:
                by_id[request_id].server_ms = record.get("duration_ms")
                by_id[request_id].server_cpu_ms = record.get("cpu_ms")
        elif record.get("level") in ("WARNING", "ERROR", "CRITICAL") and (
            request_id is None or request_id in by_id
        ):
            problems.append(f"{record['level']} {record.get('logger')}: {record.get('message')}")
    return problems


def report(
    outcomes: list[Outcome], seconds: float, *, rate: float, target_p99: float, problems: list[str]
) -> int:
    print(HEADER)
    for kind in ENDPOINTS:
        of_kind = [o for o in outcomes if o.planned.kind == kind]
        if of_kind:
            print(_line(kind, of_kind, seconds))
    print(_line("overall", outcomes, seconds))
    print("per endpoint")
    for kind, endpoints in ENDPOINTS.items():
        for name in endpoints:
            of_name = [o for o in outcomes if o.planned.kind == kind and o.planned.name == name]
            if of_name:
                print(_line(f"  {name}", of_name, seconds))
    lags = [o.lag_ms for o in outcomes]
    print(
        f"client_send_lag_ms p50 {_percentile(lags, 0.5):.1f} p99 {_percentile(lags, 0.99):.1f}"
        " (actual send - scheduled: time waiting for a free client thread)"
    )
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print("errors by endpoint and status:")
        counts = Counter((o.planned.name, o.status) for o in failed)
        for (name, status), count in counts.most_common():
            print(f"  {name} status {status or 'none'}: {count}")
        samples: dict[object, Outcome] = {}
        for o in failed:  # one of each status or exception, and of each endpoint for 5xx
            error_class = o.status or (o.error or "").split(":")[0]
            samples.setdefault((error_class, o.planned.name if o.status >= 500 else ""), o)
        for o in list(samples.values())[:10]:
            print(f"  e.g. {o.planned.method} {o.planned.path} [{o.request_id}] -> {o.error}")
    if problems:
        print(f"server_warning_and_error_lines {len(problems)}, e.g.:")
        for line in list(dict.fromkeys(problems))[:5]:  # distinct lines
            print(f"  {line[:300]}")
    p99 = _percentile([o.latency_ms for o in outcomes if o.sent], 0.99)
    met = not failed and p99 <= target_p99
    print(
        f"target (0 errors, p99 <= {target_p99:.0f} ms at {rate:g} req/s offered):"
        f" {'MET' if met else 'NOT MET'} - errors {len(failed)}, p99 {p99:.1f} ms,"
        f" achieved {(len(outcomes) - len(failed)) / seconds:.1f} req/s"
    )
    if failed:
        return 1
    return 0 if met else 2


# --- Set-up and clean-up of the tenant ----------------------------------------------------------


def _broker_url(redis_url: str, db: int) -> str:
    parts = urllib.parse.urlsplit(redis_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


def _cleanup_data(schema: str) -> str | None:
    """Deletes what load tests ingested: the ``loadtest-*`` projects and templates with their
    events, runs, jobs, rollup and ledger rows. Answers a summary, None when there was nothing."""
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from usage.models import Project

    with schema_context(schema), transaction.atomic():
        ids = list(
            Project.objects.filter(slug__startswith=PROJECT_PREFIX).values_list("id", flat=True)
        )
        if not ids:
            return None
        runs = "SELECT id FROM usage_run WHERE project_id = ANY(%s)"
        steps = [
            (
                "usage_llmcostcorrection",
                "event_id IN (SELECT event_id FROM usage_llmusageevent WHERE project_id = ANY(%s))",
            ),
            ("usage_llmusageevent", "project_id = ANY(%s)"),
            ("usage_infrausageevent", "project_id = ANY(%s)"),
            ("usage_externalcall", f"run_id IN ({runs})"),
        ]
        deleted = {}
        with connection.cursor() as cursor:
            # Rows of other apps that point at runs (alert bookkeeping, say) go with the runs.
            cursor.execute(
                "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
                " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                " WHERE c.contype = 'f' AND c.confrelid = 'usage_run'::regclass"
                " AND c.conrelid NOT IN ('usage_job'::regclass, 'usage_externalcall'::regclass)"
            )
            steps += [(table, f'"{column}" IN ({runs})') for table, column in cursor.fetchall()]
            # And the rows that name a run without a foreign key: left behind, they outlived
            # their runs in every later reading.
            steps += [
                (table, f"run_id IN ({runs})")
                for table in ("usage_runledger", "usage_runallocatedcost")
                if table not in {name for name, _ in steps}
            ]
            steps += [
                ("usage_job", f"run_id IN ({runs})"),
                ("usage_run", "project_id = ANY(%s)"),
                ("usage_llmusagehourly", "project_id = ANY(%s)"),
                ("usage_llmusagedaily", "project_id = ANY(%s)"),
                ("usage_infrausagehourly", "project_id = ANY(%s)"),
                ("usage_infrausagedaily", "project_id = ANY(%s)"),
                ("usage_rundaily", "project_id = ANY(%s)"),
                ("usage_project", "id = ANY(%s)"),
            ]
            for table, where in steps:
                cursor.execute(f"DELETE FROM {table} WHERE {where}", [ids])  # noqa: S608 - catalog
                deleted[table] = cursor.rowcount
            cursor.execute(
                "DELETE FROM usage_stepdaily WHERE template LIKE %s", [f"{PROJECT_PREFIX}%"]
            )
            deleted["usage_stepdaily"] = cursor.rowcount
    # The deleted rows (and the rollup rows the test updated) are dead tuples until a vacuum:
    # without one (autovacuum may be off) every later run reads a more bloated tenant.
    with schema_context(schema), connection.cursor() as cursor:
        for table in deleted:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return (
        f"deleted {deleted['usage_project']} projects, {deleted['usage_run']} runs,"
        f" {deleted['usage_llmusageevent']} LLM and {deleted['usage_infrausageevent']}"
        " infrastructure events with their rollup rows; vacuumed those tables"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="acme", help="a tenant with the demo data")
    parser.add_argument("--rate", type=float, default=100.0, help="requests a second")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument(
        "--baseline-rate",
        type=float,
        default=45.0,
        help="requests a second of a baseline phase measured first on the same server, for the"
        " ratios (45: what the server held before issue 20); 0 skips it",
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured seconds first")
    parser.add_argument("--mix", type=_parse_mix, default="dashboards=25,api=45,ingest=30")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="WEB_CONCURRENCY")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="WEB_THREADS")
    parser.add_argument("--clients", type=int, default=64, help="client threads (connections)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--target-p99", type=float, default=500.0, help="ms")
    parser.add_argument("--broker-db", type=int, default=15, help="Redis db for Celery tasks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-data", action="store_true", help="keep the ingested data")
    parser.add_argument("--server-log", type=Path, help="copy the server's JSON log here")
    parser.add_argument(
        "--skip-collectstatic",
        action="store_true",
        help="use the static files collected by an earlier run (collecting takes minutes here)",
    )
    args = parser.parse_args()

    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.cache import cache
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.server import gunicorn
    from billing.selectors.summaries import _key as cost_summary_key
    from factory_portal.accounts.models import ApiKey, Role, User
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import tenant_domain
    from usage.models import InfraUsageEvent, Job, LlmUsageEvent, Project, Run
    from web.demo.traces import trace_samples

    tenant = tenant_by_slug(args.tenant)
    if tenant is None:
        sys.exit(
            f"No tenant {args.tenant!r}: seed the demo first (DEBUG=0 SECRET_KEY=x PORTAL_SECURE=0"
            " .venv/bin/python manage.py seed_demo --password <pw>)."
        )
    broker = redis.Redis.from_url(_broker_url(settings.REDIS_URL, args.broker_db))
    if broker.dbsize():
        sys.exit(f"Redis database {args.broker_db} is not empty: choose another --broker-db.")
    if leftovers := _cleanup_data(tenant.schema_name):
        print(f"leftovers of an interrupted load test: {leftovers}")
    with schema_context(tenant.schema_name):
        runs = Run.objects.count()
        if not runs:
            sys.exit(f"Tenant {args.tenant!r} has no runs: seed the demo first.")
        sizes = (
            f"runs {runs} jobs {Job.objects.count()} llm_events {LlmUsageEvent.objects.count()}"
            f" infra_events {InfraUsageEvent.objects.count()}"
            f" projects {Project.objects.count()}"
        )
        newest = list(Run.objects.order_by("-requested_at").values_list("run_id", flat=True)[:200])
        some = list(Run.objects.order_by("?").values_list("run_id", flat=True)[:100])
        admin = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("id").first()
        if admin is None:
            sys.exit(f"Tenant {args.tenant!r} has no active admin.")
        api_key, raw_key = api_key_create(name="load test", scopes=["ingest", "read"])
        session = SessionStore()
        session[SESSION_KEY] = admin._meta.pk.value_to_string(admin)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
        session.create()
    host = tenant_domain(args.tenant)
    headers = {
        "dashboards": {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"},
        "api": {"Authorization": f"Bearer {raw_key}"},
        "ingest": {"Authorization": f"Bearer {raw_key}"},
    }
    token = secrets.token_hex(4)
    traffic = Traffic(
        rng=random.Random(args.seed),
        token=token,
        run_ids=newest + some,
        samples=list(trace_samples("code")) + list(trace_samples("conv")),
        now=timezone.now(),
    )
    warmup = traffic.plan(rate=args.rate, seconds=args.warmup, mix=args.mix)
    phases = []
    if args.baseline_rate > 0:
        baseline = traffic.plan(rate=args.baseline_rate, seconds=args.duration, mix=args.mix)
        phases.append(("baseline", args.baseline_rate, baseline))
    phases.append(
        ("target", args.rate, traffic.plan(rate=args.rate, seconds=args.duration, mix=args.mix))
    )

    temp = Path(tempfile.mkdtemp(prefix="portal-load-"))
    (temp / "metrics").mkdir()
    server_env = {
        "DEBUG": "0",
        "STATIC_MANIFEST": "1",
        "PORTAL_SECURE": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(temp / "metrics"),
        "WEB_CONCURRENCY": str(args.workers),
        "WEB_THREADS": str(args.threads),
        "API_RATE_READ": RAISED_RATE,
        "API_RATE_INGEST": RAISED_RATE,
        "CELERY_BROKER_URL": _broker_url(settings.REDIS_URL, args.broker_db),
    }
    mix = " ".join(f"{kind} {share:.0%}" for kind, share in args.mix.items())
    print(
        f"rate {args.rate:g}/s duration {args.duration:g} s (after {args.warmup:g} s warm-up"
        + (
            f" and a {args.baseline_rate:g}/s baseline phase as long)"
            if args.baseline_rate
            else ")"
        )
    )
    print("load average at start (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"clients {args.clients} threads with kept-alive connections, open loop")
    print(
        f"server gunicorn -c python:factory_portal.gunicorn_conf: gthread, workers {args.workers}"
        f" threads {args.threads}, DEBUG=0, STATIC_MANIFEST=1, {os.cpu_count()} cores"
    )
    print(
        f"rate limits raised for the test: API_RATE_READ={RAISED_RATE}"
        f" API_RATE_INGEST={RAISED_RATE} (capacity, not throttling)"
    )
    print(f"mix {mix} (ingest: events batches of {EVENTS_PER_BATCH} 4 in 5, run updates 1 in 5)")
    print(f"tenant {args.tenant} ({host}): {sizes}")

    status = 1
    try:
        if not args.skip_collectstatic:
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                cwd=ROOT,
                env={**os.environ, **server_env},
                check=True,
            )
        log_path = temp / "server.log"
        with (
            log_path.open("wb") as log,
            gunicorn(
                workers=args.workers,
                env=server_env,
                config="python:factory_portal.gunicorn_conf",
                args=["--threads", str(args.threads)],
                output=log,
            ) as port,
        ):
            _ready(port)
            if warmup:
                outcomes, seconds, _ = send_phase(
                    port=port,
                    host=host,
                    headers=headers,
                    plan=warmup,
                    clients=args.clients,
                    timeout=args.timeout,
                    label=f"{token}-w",
                )
                errors = sum(1 for o in outcomes if not o.ok)
                latencies = [o.latency_ms for o in outcomes if o.sent]
                print(
                    f"warmup {len(outcomes)} requests, errors {errors},"
                    f" p99 {_percentile(latencies, 0.99):.1f} ms (not counted)"
                )
            server_pid = gunicorn_pid(port)
            results = []
            for phase, rate, plan in phases:
                cpu_before, wall_before = cpu_sample(server_pid), time.perf_counter()
                outcomes, seconds, reopened = send_phase(
                    port=port,
                    host=host,
                    headers=headers,
                    plan=plan,
                    clients=args.clients,
                    timeout=args.timeout,
                    label=f"{token}-{phase}",
                )
                cpu = cpu_used(cpu_before, cpu_sample(server_pid))
                results.append(
                    (
                        phase,
                        rate,
                        outcomes,
                        seconds,
                        reopened,
                        cpu,
                        time.perf_counter() - wall_before,
                    )
                )
        summaries = {}
        for phase, rate, outcomes, seconds, reopened, cpu, wall in results:
            problems = _server_log(log_path, outcomes)
            print(f"--- {phase}: {rate:g} req/s offered")
            cores = os.cpu_count() or 1
            answered = max(1, sum(1 for o in outcomes if o.status))
            per = {name: used * 1000 / answered for name, used in cpu.items()}
            print(
                f"cpu: machine busy {cpu['machine'] / wall / cores:.0%} of {cores} cores (other"
                f" users' processes included); ms per answered request: gunicorn"
                f" {per['server']:.1f}, postgres (all) {per['postgres']:.1f}, load client"
                f" {per['client']:.1f}, machine {per['machine']:.1f}"
            )
            print(
                f"measured {seconds:.1f} s; connections re-opened after a keep-alive close"
                f" {reopened}"
            )
            status = report(
                outcomes, seconds, rate=rate, target_p99=args.target_p99, problems=problems
            )
            summaries[phase] = _summary(outcomes, seconds)
        if "baseline" in summaries:
            base, target = summaries["baseline"], summaries["target"]
            print(
                f"ratio target/baseline ({args.rate:g} vs {args.baseline_rate:g} req/s offered):"
                f" achieved {target['achieved'] / base['achieved']:.2f}x"
                f" ({target['achieved']:.1f} vs {base['achieved']:.1f} req/s),"
                f" p99 {target['p99'] / base['p99']:.2f}x"
                f" ({target['p99']:.0f} vs {base['p99']:.0f} ms),"
                f" server thread CPU per request {target['cpu'] / base['cpu']:.2f}x"
                f" ({target['cpu']:.1f} vs {base['cpu']:.1f} ms)"
            )
        print("load average at end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        if args.server_log:
            shutil.copyfile(log_path, args.server_log)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        for key in broker.scan_iter():  # the tasks the ingest enqueued; nobody consumes them
            broker.delete(key)
        with schema_context(tenant.schema_name):
            ApiKey.objects.filter(pk=api_key.pk).delete()
            session.delete()
            months = {timezone.now().date().replace(day=1)}
            months |= {
                r.replace(day=1)
                for r in Run.objects.filter(run_id__in=traffic.run_ids).values_list(
                    "requested_at__date", flat=True
                )
            }
        if not args.keep_data:
            print(f"cleanup: {_cleanup_data(tenant.schema_name) or 'nothing ingested'}")
            # Cost summaries computed during the test include its data.
            cache.delete_many([cost_summary_key(tenant, month) for month in months])
    sys.exit(status)


def _summary(outcomes: list[Outcome], seconds: float) -> dict[str, float]:
    ok = [o for o in outcomes if o.ok]
    cpu = [o.server_cpu_ms for o in outcomes if o.server_cpu_ms is not None]
    return {
        "achieved": len(ok) / seconds,
        "p99": _percentile([o.latency_ms for o in outcomes if o.sent], 0.99),
        "cpu": sum(cpu) / len(cpu) if cpu else float("nan"),
    }


def _ready(port: int) -> None:
    """Waits for ``/readyz`` (the workers booted, database and broker reachable)."""
    deadline = time.monotonic() + 60
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not get ready in 60 s")
        time.sleep(0.3)


if __name__ == "__main__":
    main()
