"""Fault injection against the production server, on private services the script owns.

Usage (no environment needed; nothing shared is touched):
    .venv/bin/python benchmarks/faults.py [--scenario NAME] [--keep-logs] [--time-limit 420]

Starts, in a temporary folder, its own PostgreSQL 16 (the ``pgserver`` wheel, Unix socket only),
its own ``redis-server`` on a free loopback port, the production web server (gunicorn with
``factory_portal.gunicorn_conf``, DEBUG=0) and, where a scenario needs deferred work, a Celery
worker with beat; prepares the database (``migrate_schemas``, ``portal_setup``, tenant
``faults`` with an ingest+read API key, a member subscribed to failed runs and a project budget),
then runs the scenarios and stops every process and deletes the folder, also on failure.

Scenarios (``--scenario`` runs one; default all):
- ``collector_down``: tracing to a closed port, then to a collector that accepts and never
  answers; every ingest and read must succeed, p50/p95 next to a run without tracing, and the
  server's JSON log must show the exporter's WARNING/ERROR.
- ``redis_down``: Redis killed during ingest of events and finishing runs (some failed): ingest
  must keep answering 200 without more than ~1 s added latency; after Redis is back the deferred
  work (budget alert, failed-run alerts) must complete.
- ``postgres_restart``: PostgreSQL stopped (fast shutdown) during continuous ingest and started
  again: 503 problem+json with Retry-After while it is down, never a 500, never a partial batch
  (checked right after the restart, before any retry), every batch stored exactly once and the
  daily rollup equal to the raw rows.
- ``graceful_shutdown``: SIGTERM to gunicorn's master during a 10,000-event ingest: the request
  completes with 200, the master exits 0 within the graceful timeout, new connections are
  refused afterwards.

Each scenario prints one line per figure (scenario, figure, value) and a final PASS or FAIL line;
the script exits 1 when a scenario fails.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server import free_port  # noqa: E402 - after the path is set

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
TENANT = "faults"
HOST = f"{TENANT}.localhost"
DATABASE = "portal"
SCENARIOS = ("collector_down", "redis_down", "postgres_restart", "graceful_shutdown")
PROBLEM = "application/problem+json"
INHERITED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TMPDIR", "TZ"})
# Created by the set-up: budget of project faults-redis ($100, alert at 50%) and a member who
# hears about failed runs.
REDIS_PROJECT, BUDGET_AMOUNT, BUDGET_THRESHOLD = "faults-redis", 100, 50

SETUP_CODE = f"""
import json
from decimal import Decimal
from django_tenants.utils import schema_context
from alerts.models import RunSubscription
from billing.services import budget_set
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import api_key_create, user_create
from factory_portal.tenants.services import tenant_create
from usage.services.references import projects_ensure
created = tenant_create(slug="{TENANT}", name="Fault injection", admin_email="admin@faults.test")
with schema_context(created.tenant.schema_name):
    _, key = api_key_create(name="faults", scopes=["ingest", "read"])
    member, _ = user_create(email="ops@faults.test", role=Role.MEMBER)
    RunSubscription.objects.create(user=member, mode=RunSubscription.Mode.FAILURES)
    projects_ensure(["{REDIS_PROJECT}"])
    budget_set(amount=Decimal({BUDGET_AMOUNT}), project="{REDIS_PROJECT}",
               thresholds=[{BUDGET_THRESHOLD}])
print(json.dumps({{"key": key, "schema": created.tenant.schema_name}}))
"""


# --- Output -------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


class Report:
    """One line per figure (``scenario figure value``) and the checks of one scenario."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.failures: list[str] = []

    def figure(self, name: str, value: object) -> None:
        if isinstance(value, float):
            value = f"{value:.1f}"
        print(f"{self.scenario:18} {name:42} {value}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            self.figure("check_failed", what)
        return ok

    def result(self) -> bool:
        self.figure("result", "PASS" if not self.failures else "FAIL")
        return not self.failures


# --- Processes ----------------------------------------------------------------------------------


def _spawn(args: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (so that it and its own children can be stopped
    together), stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - fixed arguments
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Signal the process, wait, then kill its whole process group (leftover children too)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _json_records(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a file (other lines, e.g. Celery's banner, are skipped)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


class PrivatePostgres:
    """PostgreSQL 16 of the ``pgserver`` wheel in ``base/pg``, listening only on a Unix socket in
    that folder; stopped and started with its own ``pg_ctl`` on the same socket."""

    def __init__(self, base: Path) -> None:
        self.data = base / "pg"
        self.log = self.data / "log"
        # pgserver runs PostgreSQL as the system user "pgserver" when started by root.
        self.user = "pgserver" if os.geteuid() == 0 else None
        spec = importlib.util.find_spec("pgserver")
        if spec is None or spec.origin is None:
            raise RuntimeError("the pgserver package is not installed in .venv")
        self.bin = Path(spec.origin).parent / "pginstall" / "bin"

    @property
    def url(self) -> str:
        return f"postgres://postgres@{quote(str(self.data), safe='')}/{DATABASE}"

    def init(self) -> None:
        import warnings

        warnings.simplefilter("ignore")  # platformdirs' note about XDG_RUNTIME_DIR
        import pgserver
        import psycopg

        # initdb and a first start, as the project's bin/embedded_postgres.py does.
        server = pgserver.get_server(self.data, cleanup_mode=None)
        atexit.unregister(server._cleanup)  # this script stops the server and deletes the folder
        if not (self.data / ".s.PGSQL.5432").exists():
            raise RuntimeError(f"PostgreSQL's socket is not in {self.data}")
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def admin_dsn(self, database: str = DATABASE) -> str:
        return f"host={self.data} user=postgres dbname={database}"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(  # noqa: S603 - fixed arguments
            [str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            cwd=self.data,
            user=self.user,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-t", "30", "-o", f'-h "" -k {self.data}', "-l", str(self.log), "start")

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self.stop("immediate")

    def sql(
        self, query: str, params: tuple[Any, ...] = (), *, schema: str = "public"
    ) -> list[tuple[Any, ...]]:
        """Rows of one query, in ``schema``, on a new connection."""
        import psycopg

        with psycopg.connect(self.admin_dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


class PrivateRedis:
    """``redis-server`` without persistence on a free loopback port; killed and restarted on the
    same port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.log = base / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = _spawn(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.base),
            ],
            env=dict(os.environ),
            log=self.log,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{_tail(self.log)}")

    def kill(self) -> None:
        if self.proc is not None:
            _stop(self.proc, sig=signal.SIGKILL, timeout=5)
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=5)
            self.proc = None


# --- The stack: private services, the production server, the Celery worker ---------------------


class Server:
    """gunicorn as ``bin/serve`` runs it: ``-c python:factory_portal.gunicorn_conf``."""

    def __init__(self, stack: Stack, name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = stack.base / f"gunicorn-{name}.log"
        self.env = {
            **stack.env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # Two processes of two threads, as the scenarios were written for (the production
            # default is one thread a process now).
            "WEB_CONCURRENCY": "2",
            "WEB_THREADS": "2",
            **env,
        }
        self.proc = _spawn(
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                "python:factory_portal.gunicorn_conf",
                # gunicorn's control socket defaults to one path per user (~/.gunicorn): a
                # private one keeps these servers from replacing another instance's.
                "--control-socket",
                str(stack.base / f"gunicorn-{name}.ctl"),
                "factory_portal.wsgi",
            ],
            env=self.env,
            log=self.log,
        )
        stack.processes.append(self.proc)

    def wait_ready(self, timeout: float = 90) -> None:
        """Until ``/readyz`` answers 200 (database and broker reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode}:\n{_tail(self.log)}"
                )
            if request(self.port, "GET", "/readyz", host="localhost", timeout=5).status == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn was not ready within {timeout:.0f} s:\n{_tail(self.log)}")

    def stop(self, timeout: float = 40) -> tuple[int, float]:
        started = time.monotonic()
        code = _stop(self.proc, timeout=timeout)
        return code, time.monotonic() - started

    def log_records(self) -> list[dict[str, Any]]:
        return _json_records(self.log)


class Worker:
    """A Celery worker with beat, as ``bin/serve`` starts it; ``start`` again after it died is
    what a process supervisor would do."""

    def __init__(self, stack: Stack, env: dict[str, str]) -> None:
        self.stack = stack
        self.env = {**stack.env, **env}
        self.log = stack.base / "celery.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = _spawn(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "factory_portal",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.stack.base / "celerybeat-schedule"),
                "--concurrency",
                "2",
                "--hostname",
                f"faults{self.starts}@%h",
            ],
            env=self.env,
            log=self.log,
        )
        self.starts += 1
        self.stack.processes.append(self.proc)
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_bytes()[offset:].decode(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{_tail(self.log)}")
            time.sleep(0.2)

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=20)

    def records(self) -> list[dict[str, Any]]:
        return _json_records(self.log)


class Stack:
    def __init__(self, keep_logs: bool) -> None:
        self.keep_logs = keep_logs
        # Short path: PostgreSQL's socket lives in it (Unix socket paths are limited to ~107 bytes).
        self.base = Path(tempfile.mkdtemp(prefix="faults-"))
        self.pg = PrivatePostgres(self.base)
        self.redis = PrivateRedis(self.base)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}
        self.key = ""
        self.schema = ""
        self.closed = False

    def open(self) -> None:
        self.pg.init()
        self.redis.start()
        metrics_dir = self.base / "metrics"
        metrics_dir.mkdir()
        # Nothing of this shell's settings (DATABASE_URL, BIND, OTEL_*...) reaches the children.
        inherited = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith("LC_")}
        self.env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "factory_portal.settings",
            "DEBUG": "0",
            "PORTAL_SECURE": "0",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        self.manage("migrate_schemas", "-v", "0")
        self.manage("portal_setup")
        created = json.loads(self.manage("shell", "-c", SETUP_CODE).strip().splitlines()[-1])
        self.key, self.schema = created["key"], created["schema"]

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query in the tenant's schema."""
        return self.pg.sql(query, params, schema=self.schema)

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [str(PYTHON), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    @contextlib.contextmanager
    def server(self, name: str, env: dict[str, str] | None = None) -> Iterator[Server]:
        server = Server(self, name, env or {})
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()

    @contextlib.contextmanager
    def celery(self, env: dict[str, str]) -> Iterator[Worker]:
        worker = Worker(self, env)
        try:
            worker.start()
            yield worker
        finally:
            worker.stop()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                _stop(proc, timeout=10)
        self.redis.close()
        self.pg.close()
        if self.keep_logs:
            print(f"logs kept in {self.base}", file=sys.stderr)
            # Only the logs: the database cluster goes.
            with contextlib.suppress(OSError):
                shutil.copy(self.pg.log, self.base / "postgres.log")
            shutil.rmtree(self.pg.data, ignore_errors=True)
        else:
            shutil.rmtree(self.base, ignore_errors=True)


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    ms: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(
    port: int,
    method: str,
    path: str,
    *,
    key: str = "",
    payload: Any = None,
    host: str = HOST,
    timeout: float = 60,
) -> Answer:
    """One request on a new connection (no stale kept-alive connection to blur the figures)."""
    body = json.dumps(payload).encode() if payload is not None else None
    headers = {"Host": host, "Connection": "close"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return Answer(
            response.status,
            (time.perf_counter() - started) * 1000,
            {k.lower(): v for k, v in response.getheaders()},
            data,
        )
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, (time.perf_counter() - started) * 1000, error=f"{type(exc).__name__}")
    finally:
        connection.close()


def probe_ready(port: int) -> Callable[[], Answer]:
    """GET /readyz in the background (a slow probe must not stretch an outage); call the result
    to wait for the answer."""
    holder: list[Answer] = []
    thread = threading.Thread(
        target=lambda: holder.append(request(port, "GET", "/readyz", host="localhost", timeout=15)),
        daemon=True,
    )
    thread.start()

    def answer() -> Answer:
        thread.join(timeout=20)
        return holder[0] if holder else Answer(0, 20_000, error="no answer")

    return answer


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def llm_events(prefix: str, count: int, *, project: str, cost: str = "0.001") -> dict[str, Any]:
    at = _now()
    return {
        "events": [
            {
                "type": "llm",
                "event_id": f"{prefix}-{n:05d}",
                "timestamp": at,
                "project": project,
                "provider": "openai",
                "model": "gpt-4.1-mini",
                "input_tokens": 1200,
                "output_tokens": 300,
                "cost": cost,
            }
            for n in range(count)
        ]
    }


def finished_run(run_id: str, *, project: str, failed: bool) -> dict[str, Any]:
    at = _now()
    run: dict[str, Any] = {
        "run_id": run_id,
        "project": project,
        "status": "Failed" if failed else "Succeeded",
        "started_at": at,
        "finished_at": at,
        "template_recipe_id": "fault-injection",
    }
    if failed:
        run["failure_type"] = "InjectedFault"
    return run


def _tag() -> str:
    return uuid.uuid4().hex[:8]


# --- Scenario 1: collector down -----------------------------------------------------------------


class BlackHole:
    """A TCP server that accepts connections and never answers (a hung collector)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.sock.accept()[0])

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def _mixed_load(
    port: int, key: str, tag: str, requests: int, clients: int, project: str = "faults-otel"
) -> list[Answer]:
    """Ingest batches (25 new events) and reads, alternately, from ``clients`` threads."""
    day = datetime.now(UTC).date().isoformat()
    reads = [f"/api/v1/usage?start={day}&group_by=model", "/api/v1/runs?limit=20"]
    answers: list[Answer] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        for n in range(number, requests, clients):
            if n % 2 == 0:
                payload = llm_events(f"{tag}-{n:04d}", 25, project=project)
                answer = request(port, "POST", "/api/v1/events", key=key, payload=payload)
            else:
                answer = request(port, "GET", reads[(n // 2) % 2], key=key)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def warm_up(port: int, key: str) -> None:
    """A few ingests and reads on every worker thread: the first requests of a fresh worker are
    much slower (lazy imports, first connections) and would blur the figures."""
    _mixed_load(port, key, f"warm-{_tag()}", 16, 4, project="faults-warm")


def _exporter_complaints(server: Server) -> list[dict[str, Any]]:
    return [
        r
        for r in server.log_records()
        if str(r.get("logger", "")).startswith("opentelemetry")
        and r.get("level") in ("WARNING", "ERROR", "CRITICAL")
    ]


def collector_down(stack: Stack, report: Report, args: argparse.Namespace) -> None:
    hole = BlackHole()
    # Spans are exported every second instead of every 5 s, so the exporter's complaint comes
    # soon; everything else (timeout 10 s, queue sizes) stays at the SDK's defaults.
    tracing = {"OTEL_BSP_SCHEDULE_DELAY": "1000", "OTEL_SERVICE_NAME": "factory-portal-faults"}
    variants = {
        "baseline": {},
        "closed_port": {
            **tracing,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        },
        "slow_collector": {
            **tracing,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.port}",
        },
    }
    report.figure("requests_per_variant", args.requests)
    baseline_p95 = 0.0
    try:
        for name, env in variants.items():
            server = Server(stack, name, env)
            try:
                server.wait_ready()
                warm_up(server.port, stack.key)
                answers = _mixed_load(
                    server.port, stack.key, f"otel-{name}-{_tag()}", args.requests, 2
                )
                complaints: list[dict[str, Any]] = []
                if name != "baseline":  # the exporter tries, waits, retries: give it 15 s
                    deadline = time.monotonic() + 15
                    while not complaints and time.monotonic() < deadline:
                        time.sleep(0.5)
                        complaints = _exporter_complaints(server)
            finally:
                code, stop_s = server.stop()
            ms = [a.ms for a in answers]
            statuses = Counter(a.status for a in answers)
            p50, p95 = statistics.median(ms), _percentile(ms, 0.95)
            report.figure(f"{name}_ok", f"{statuses.get(200, 0)}/{len(answers)}")
            report.figure(f"{name}_p50_ms", p50)
            report.figure(f"{name}_p95_ms", p95)
            report.figure(f"{name}_max_ms", max(ms))
            report.figure(f"{name}_stop_s", stop_s)
            report.check(statuses.get(200, 0) == len(answers), f"{name}: answers {dict(statuses)}")
            report.check(code == 0, f"{name}: gunicorn exited with {code}")
            if name == "baseline":
                baseline_p95 = p95
                continue
            report.figure(f"{name}_p95_vs_baseline_ms", f"{p95 - baseline_p95:+.1f}")
            report.figure(f"{name}_exporter_log_lines", len(complaints))
            if complaints:
                first = complaints[0]
                report.figure(
                    f"{name}_exporter_log",
                    f"{first.get('level')} {first.get('logger')}: {str(first.get('message'))[:90]}",
                )
            report.check(bool(complaints), f"{name}: no WARNING/ERROR from an opentelemetry logger")
            # No request may wait for the collector (its timeout is 10 s).
            report.check(max(ms) < 5000, f"{name}: a request took {max(ms):.0f} ms")
            report.check(
                p95 <= 2 * baseline_p95 + 250,
                f"{name}: p95 {p95:.0f} ms against {baseline_p95:.0f} ms without tracing",
            )
    finally:
        hole.close()


# --- Scenario 2: Redis down ---------------------------------------------------------------------


@dataclass
class Sent:
    """One request of the Redis scenario: the phase it started in and what came back."""

    kind: str
    phase: str
    answer: Answer
    failed_run: str = ""


# Beat intervals of the worker in the Redis scenario (settings read them from the environment;
# defaults 300 s and 60 s): short enough to see the beat catch up within the scenario.
REDIS_WORKER_ENV = {"ALERTS_EVALUATE_EVERY_S": "10", "ALERTS_OUTBOX_EVERY_S": "5"}


def redis_down(stack: Stack, report: Report, args: argparse.Namespace) -> None:
    tag = _tag()
    phase = {"name": "before"}
    sent: list[Sent] = []
    lock = threading.Lock()
    stop = threading.Event()
    # A project budget's alert key (alerts.services.evaluate.budget_alert_prefix).
    month = f"{datetime.now(UTC):%Y-%m}"
    budget_key = f"budget:project={REDIS_PROJECT}:{month}:actual:{BUDGET_THRESHOLD}"

    def events_client(port: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            now = phase["name"]
            # Only events sent while Redis is down cost anything: they alone cross the budget's
            # threshold (20 x $5 = $100 against $50), so its alert is work deferred across the
            # outage.
            cost = "5" if now == "during" else "0"
            payload = llm_events(f"{tag}-{n:04d}", 20, project=REDIS_PROJECT, cost=cost)
            answer = request(port, "POST", "/api/v1/events", key=stack.key, payload=payload)
            with lock:
                sent.append(Sent("events", now, answer))
            stop.wait(0.2)

    def runs_client(port: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            now = phase["name"]
            failed = f"{tag}-run-{n:04d}-failed"
            payload = {
                "runs": [
                    finished_run(failed, project=REDIS_PROJECT, failed=True),
                    finished_run(f"{tag}-run-{n:04d}-ok", project=REDIS_PROJECT, failed=False),
                ]
            }
            answer = request(port, "POST", "/api/v1/runs", key=stack.key, payload=payload)
            with lock:
                sent.append(Sent("runs", now, answer, failed if answer.status == 200 else ""))
            stop.wait(0.2)

    def alert_keys() -> set[str]:
        rows = stack.sql(
            "SELECT key FROM alerts_alert WHERE key LIKE %s OR key = %s",
            (f"run:{tag}-%", budget_key),
        )
        return {r[0] for r in rows}

    with stack.celery(REDIS_WORKER_ENV) as worker, stack.server("redis") as server:
        warm_up(server.port, stack.key)
        threads = [
            threading.Thread(target=target, args=(server.port,), daemon=True)
            for target in (events_client, runs_client)
        ]
        for thread in threads:
            thread.start()
        time.sleep(args.redis_before)
        stack.redis.kill()
        killed = time.monotonic()
        phase["name"] = "during"
        time.sleep(1)
        readyz_answer = probe_ready(server.port)
        time.sleep(args.redis_down - 1)
        phase["name"] = "after"
        stack.redis.start()
        back = time.monotonic()
        time.sleep(args.redis_after)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        readyz = readyz_answer()
        # The worker lost its broker: it should have reconnected. If it died instead, start it
        # again, as a process supervisor would, and see whether the deferred work catches up.
        died = worker.exit_code()
        crash = next((r for r in worker.records() if r.get("level") == "CRITICAL"), {"message": ""})
        if died is not None:
            worker.start()
        restarted_s = time.monotonic() - back
        # Deferred work: the budget alert (crossed by events stored while Redis was down) and
        # every failed run's alert.
        with lock:
            failed_runs = {s.phase: [] for s in sent}
            for s in sent:
                if s.failed_run:
                    failed_runs[s.phase].append(s.failed_run)
        expected = {f"run:{r}:Failed" for runs in failed_runs.values() for r in runs}
        deadline = back + args.redis_wait
        budget_at = runs_at = None
        keys: set[str] = set()
        while time.monotonic() < deadline:
            keys = alert_keys()
            if budget_at is None and budget_key in keys:
                budget_at = time.monotonic() - back
            if runs_at is None and expected <= keys:
                runs_at = time.monotonic() - back
            if budget_at is not None and runs_at is not None:
                break
            time.sleep(0.5)
        connected = sum("Connected to redis://" in str(r.get("message")) for r in worker.records())

    report.figure("redis_down_s", back - killed)
    report.figure("worker_beat_env", " ".join(f"{k}={v}" for k, v in REDIS_WORKER_ENV.items()))
    report.figure("readyz_while_redis_down", f"{readyz.status} in {readyz.ms:.0f} ms")
    before = [s.answer.ms for s in sent if s.phase == "before"]
    base_p95 = _percentile(before, 0.95)
    for name in ("before", "during", "after"):
        for kind in ("events", "runs"):
            answers = [s.answer for s in sent if s.phase == name and s.kind == kind]
            statuses = Counter(a.status for a in answers)
            ms = [a.ms for a in answers] or [0.0]
            report.figure(
                f"{name}_{kind}_statuses",
                " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())) or "none",
            )
            report.figure(f"{name}_{kind}_p50_ms", statistics.median(ms))
            report.figure(f"{name}_{kind}_max_ms", max(ms))
            report.check(statuses.get(200, 0) == len(answers), f"{name} {kind}: {dict(statuses)}")
        runs = failed_runs.get(name, [])
        found = sum(f"run:{r}:Failed" in keys for r in runs)
        report.figure(f"{name}_failed_run_alerts", f"{found}/{len(runs)}")
    during = [s.answer.ms for s in sent if s.phase == "during"] or [0.0]
    blocked = sum(1 for ms in during if ms > base_p95 + 1000)
    report.figure("requests_during_outage_over_1s_extra", blocked)
    report.check(
        max(during) <= base_p95 + 1000,
        f"latency with Redis down up to {max(during):.0f} ms (p95 before {base_p95:.0f} ms)",
    )
    report.figure("worker_broker_connects", connected)
    report.figure("worker_survived_redis_loss", "yes" if died is None else f"no (exit code {died})")
    if died is not None:
        report.figure("worker_crash", str(crash.get("message"))[:110])
        report.figure("worker_restarted_after_s", restarted_s)
    report.check(died is None, f"the Celery worker died when Redis went away (exit {died})")
    report.figure("budget_alert_after_redis_back_s", "never" if budget_at is None else budget_at)
    report.figure("all_failed_run_alerts_after_s", "never" if runs_at is None else runs_at)
    report.check(budget_at is not None, f"budget alert {budget_key} not raised")
    missing = len(expected - keys)
    report.check(runs_at is not None, f"{missing} of {len(expected)} failed-run alerts missing")


# --- Scenario 3: PostgreSQL restarted -----------------------------------------------------------


@dataclass
class BatchLog:
    """What the ingest clients saw, shared between their threads (under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    bad_503: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    started: int = 0
    done: set[int] = field(default_factory=set)
    unsure: set[int] = field(default_factory=set)  # got a non-200, no 200 yet
    in_flight: int = 0
    first_200_at: float | None = None


def postgres_restart(stack: Stack, report: Report, args: argparse.Namespace) -> None:
    tag, size = _tag(), args.pg_batch
    log = BatchLog()
    paused = threading.Event()
    stop = threading.Event()

    def client(port: int) -> None:
        while not stop.is_set():
            with log.lock:
                batch = log.started
                log.started += 1
            payload = llm_events(f"{tag}-b{batch:05d}", size, project="faults-pg")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                while paused.is_set():
                    time.sleep(0.02)
                with log.lock:
                    log.in_flight += 1
                answer = request(port, "POST", "/api/v1/events", key=stack.key, payload=payload)
                with log.lock:
                    log.in_flight -= 1
                    log.statuses[answer.status] += 1
                    if answer.status == 200:
                        log.done.add(batch)
                        log.unsure.discard(batch)
                        if log.first_200_at is None:
                            log.first_200_at = time.monotonic()
                        break
                    log.unsure.add(batch)
                    if answer.status == 503:
                        problem = answer.json() or {}
                        if not (
                            answer.headers.get("content-type", "").startswith(PROBLEM)
                            and answer.headers.get("retry-after")
                            and problem.get("status") == 503
                        ):
                            log.bad_503.append(str(answer.headers)[:200])
                    else:
                        log.other.append(f"{answer.status or answer.error} {answer.body[:160]!r}")
                time.sleep(args.retry_delay)  # Retry-After says 2 s; retry sooner to see more

    def stored(batches: set[int]) -> dict[int, int]:
        """Rows stored per batch, in one snapshot."""
        rows = stack.sql(
            """SELECT split_part(event_id, '-', 2), count(*)
                FROM usage_llmusageevent WHERE event_id LIKE %s GROUP BY 1""",
            (f"{tag}-%",),
        )
        counts = {int(b[1:]): c for b, c in rows}
        return {b: counts.get(b, 0) for b in batches}

    with stack.server("postgres") as server:
        warm_up(server.port, stack.key)
        threads = [
            threading.Thread(target=client, args=(server.port,), daemon=True)
            for _ in range(args.pg_clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(args.pg_before)
        with log.lock:
            before_stop = log.statuses.get(200, 0)
        down_at = time.monotonic()
        stack.pg.stop("fast")
        stopped_s = time.monotonic() - down_at
        time.sleep(args.pg_down / 2)
        readyz_answer = probe_ready(server.port)
        time.sleep(args.pg_down / 2)
        # Hold the clients' retries, let answers in flight arrive, start PostgreSQL and look at
        # every batch that got no 200 before anyone sends it again.
        paused.set()
        readyz = readyz_answer()
        settle = time.monotonic() + 10
        while log.in_flight and time.monotonic() < settle:
            time.sleep(0.02)
        with log.lock:
            statuses_down = Counter(log.statuses)
        started = time.monotonic()
        stack.pg.start()
        up_at = time.monotonic()
        with log.lock:
            unsure = set(log.unsure)
            log.first_200_at = None
        at_restart = stored(unsure)
        partial = {b: c for b, c in at_restart.items() if c not in (0, size)}
        present = sum(1 for c in at_restart.values() if c == size)
        paused.clear()
        resumed = time.monotonic()
        time.sleep(args.pg_after)
        stop.set()
        for thread in threads:
            thread.join(timeout=130)
        first_200 = log.first_200_at

    rows = stack.sql(
        "SELECT count(*), count(DISTINCT event_id) FROM usage_llmusageevent WHERE event_id LIKE %s",
        (f"{tag}-%",),
    )[0]
    raw, rollup_daily, rollup_hourly = stack.sql(
        """SELECT
              (SELECT count(*) FROM usage_llmusageevent e
                 JOIN usage_project p ON p.id = e.project_id
                WHERE p.slug = 'faults-pg'),
              (SELECT coalesce(sum(calls), 0) FROM usage_llmusagedaily d
                 JOIN usage_project p ON p.id = d.project_id
                WHERE p.slug = 'faults-pg'),
              (SELECT coalesce(sum(calls), 0) FROM usage_llmusagehourly h
                 JOIN usage_project p ON p.id = h.project_id
                WHERE p.slug = 'faults-pg')"""
    )[0]
    statuses = log.statuses
    report.figure("clients", args.pg_clients)
    report.figure("events_per_batch", size)
    report.figure("client_retry_delay_s", args.retry_delay)
    report.figure("answers_200", statuses.get(200, 0))
    report.figure("answers_200_before_stop", before_stop)
    report.figure("answers_503", statuses.get(503, 0))
    report.figure("answers_503_while_down", statuses_down.get(503, 0))
    report.figure("answers_500", statuses.get(500, 0))
    others = sum(v for k, v in statuses.items() if k not in (200, 503, 500))
    report.figure("answers_other_or_no_answer", others)
    report.figure("readyz_while_down", f"{readyz.status} in {readyz.ms:.0f} ms")
    report.figure("pg_fast_stop_s", stopped_s)
    report.figure("downtime_s", up_at - down_at)
    report.figure("pg_start_s", up_at - started)
    report.figure("batches_without_200_at_restart", len(unsure))
    report.figure("of_those_fully_stored", present)
    report.figure("of_those_partially_stored", len(partial))
    recover = None if first_200 is None else first_200 - resumed
    report.figure("recover_s_after_resume", "never" if recover is None else recover)
    report.figure("batches_sent", log.started)
    report.figure("batches_stored", len(log.done))
    report.figure("event_ids_sent", log.started * size)
    report.figure("rows_stored", rows[0])
    report.figure("rollup_daily_calls", rollup_daily)
    report.figure("rollup_hourly_calls", rollup_hourly)
    report.check(before_stop > 0, "no batch stored before PostgreSQL was stopped")
    report.check(statuses_down.get(503, 0) > 0, "no 503 while PostgreSQL was down")
    report.check(not log.bad_503, f"503 without problem+json/Retry-After: {log.bad_503[:1]}")
    report.check(statuses.get(500, 0) == 0, f"500 answers: {log.other[:2]}")
    report.check(others == 0, f"other answers: {log.other[:2]}")
    report.check(not partial, f"partial batches {partial}")
    report.check(recover is not None and recover < 5, "no 200 within 5 s of the restart")
    report.check(
        len(log.done) == log.started, f"{log.started - len(log.done)} batches never stored"
    )
    report.check(
        rows[0] == rows[1] == log.started * size,
        f"{rows[0]} rows ({rows[1]} distinct) for {log.started * size} event ids",
    )
    report.check(rollup_daily == raw, f"daily rollup {rollup_daily} calls, raw rows {raw}")
    report.check(rollup_hourly == raw, f"hourly rollup {rollup_hourly} calls, raw rows {raw}")


# --- Scenario 4: graceful shutdown ----------------------------------------------------------------


def graceful_shutdown(stack: Stack, report: Report, args: argparse.Namespace) -> None:
    graceful = 20
    tag = _tag()
    server = Server(stack, "graceful", {"GRACEFUL_TIMEOUT": str(graceful)})
    try:
        server.wait_ready()
        # /readyz does not load the URLconf: the first API request of a worker imports it.
        first = request(server.port, "GET", "/api/v1/runs?limit=1", key=stack.key)
        report.figure("first_request_after_ready_ms", first.ms)
        # One large batch first: warms both workers' code paths and times the request.
        warm = request(
            server.port,
            "POST",
            "/api/v1/events",
            key=stack.key,
            payload=llm_events(f"{tag}-warm", args.big, project="faults-graceful"),
        )
        report.check(warm.status == 200, f"warm-up ingest answered {warm.status}")
        report.figure("events_in_request", args.big)
        report.figure("ingest_request_s_undisturbed", warm.ms / 1000)
        body = json.dumps(llm_events(f"{tag}-big", args.big, project="faults-graceful")).encode()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=graceful + 30)
        sent = time.monotonic()
        connection.request(
            "POST",
            "/api/v1/events",
            body=body,
            headers={
                "Host": HOST,
                "Authorization": f"Bearer {stack.key}",
                "Content-Type": "application/json",
            },
        )
        # Signal while the server works on it (a third of the undisturbed time after sending).
        time.sleep(max(0.2, warm.ms / 1000 / 3))
        term_at = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        during = request(server.port, "GET", "/healthz", host="localhost", timeout=5)
        try:
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            status, answer = 0, type(exc).__name__.encode()
        answered = time.monotonic()
        connection.close()
        try:
            code: int | None = server.proc.wait(timeout=graceful + 10)
        except subprocess.TimeoutExpired:
            code = None
        exited = time.monotonic()
        after = request(server.port, "GET", "/healthz", host="localhost", timeout=5)
    finally:
        server.stop(timeout=5)
    accepted = (json.loads(answer) if status == 200 else {}).get("accepted")
    stored = stack.sql(
        "SELECT count(*) FROM usage_llmusageevent WHERE event_id LIKE %s",
        (f"{tag}-big-%",),
    )[0][0]
    report.figure("sigterm_after_request_sent_s", term_at - sent)
    report.figure("request_status", status)
    report.figure("request_answered_after_sigterm_s", answered - term_at)
    report.figure("events_accepted", accepted)
    report.figure("events_stored", stored)
    report.figure("master_exit_code", "none (still running)" if code is None else code)
    report.figure("master_exit_after_sigterm_s", exited - term_at)
    report.figure("graceful_timeout_s", graceful)
    report.figure("new_connection_during_drain", during.status or during.error)
    report.figure("new_connection_after_exit", after.status or after.error)
    report.check(status == 200, f"in-flight request answered {status}: {answer[:200]!r}")
    report.check(accepted == args.big and stored == args.big, f"{stored} of {args.big} stored")
    report.check(code == 0, f"master exit code {code}")
    report.check(exited - term_at <= graceful, f"master exited after {exited - term_at:.1f} s")
    report.check(
        after.error == "ConnectionRefusedError", f"after exit: {after.status or after.error}"
    )


# --- Main -----------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Stack, Report, argparse.Namespace], None]] = {
    "collector_down": collector_down,
    "redis_down": redis_down,
    "postgres_restart": postgres_restart,
    "graceful_shutdown": graceful_shutdown,
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class TimeLimitExceeded(BaseException):
    """The whole run took longer than ``--time-limit`` (not an OSError: nothing swallows it)."""


def _time_limit(signum: int, frame: object) -> None:
    raise TimeLimitExceeded("the time limit of the whole run is over")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    parser.add_argument("--time-limit", type=int, default=420, help="seconds for the whole run")
    parser.add_argument("--requests", type=int, default=120, help="collector_down: per variant")
    parser.add_argument("--redis-before", type=float, default=4.0)
    parser.add_argument("--redis-down", type=float, default=6.0)
    parser.add_argument("--redis-after", type=float, default=3.0)
    parser.add_argument("--redis-wait", type=float, default=45.0, help="for the deferred work")
    parser.add_argument("--pg-clients", type=int, default=3)
    parser.add_argument("--pg-batch", type=int, default=200)
    parser.add_argument("--pg-before", type=float, default=3.0)
    parser.add_argument("--pg-down", type=float, default=5.0)
    parser.add_argument("--pg-after", type=float, default=3.0)
    parser.add_argument("--retry-delay", type=float, default=0.2)
    parser.add_argument("--big", type=int, default=10_000, help="graceful_shutdown: events")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGALRM, _time_limit)
    signal.alarm(args.time_limit)
    started = time.monotonic()
    stack = Stack(args.keep_logs)
    atexit.register(stack.close)
    results: dict[str, bool] = {}
    try:
        stack.open()
        print(f"{'setup':18} {'seconds':42} {time.monotonic() - started:.1f}", flush=True)
        for name in args.scenario or SCENARIOS:
            report = Report(name)
            began = time.monotonic()
            try:
                RUNNERS[name](stack, report, args)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                report.check(False, f"{type(exc).__name__}: {str(exc)[:1500]}")
            report.figure("seconds", time.monotonic() - began)
            results[name] = report.result()
    finally:
        signal.alarm(0)
        stack.close()
    print(f"{'all':18} {'seconds':42} {time.monotonic() - started:.1f}", flush=True)
    print(f"{'all':18} {'result':42} {'PASS' if all(results.values()) else 'FAIL'}", flush=True)
    sys.exit(0 if results and all(results.values()) else 1)


if __name__ == "__main__":
    main()
