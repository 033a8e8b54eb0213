"""Helpers shared by tests of every app (fixtures live in the root conftest.py)."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.db import connection, connections
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey, User
from factory_portal.accounts.services import api_key_create, user_create
from factory_portal.tenants.models import Tenant
from notifications.models import Notification
from notifications.services import notification_create
from usage.domain.events import LlmEventIn
from usage.domain.runs import RunUpdate
from usage.models import Project, Run
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest
from usage.trace_routing.models import PendingSpan

PASSWORD = "correct-horse-battery-staple"
OPERATOR_EMAIL = "ops@portal.test"
# alpha's member and finance users (the ``people`` fixture logs them in)
MEMBER, FINANCE = "member@alpha.test", "finance@alpha.test"
# when the runs of ``runs_make`` start (November 2026)
RUNS_START = datetime(2026, 11, 1, 8, tzinfo=UTC)


@dataclass(frozen=True)
class TestTenant:
    tenant: Tenant
    host: str
    admin_email: str

    @property
    def schema(self) -> str:
        return self.tenant.schema_name


def host_client(host: str) -> Client:
    return Client(HTTP_HOST=host)


def logged_in_client(host: str, email: str, password: str = PASSWORD) -> Client:
    client = host_client(host)
    response = client.post("/login/", {"username": email, "password": password})
    assert response.status_code == 302, f"login of {email} on {host} failed"
    return client


def key_for(tenant: TestTenant, scopes: list[str]) -> tuple[ApiKey, str]:
    with schema_context(tenant.schema):
        return api_key_create(name="test key", scopes=scopes)


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def llm_event_in(event_id: str, at: datetime, **fields: object) -> LlmEventIn:
    """A validated LLM event as the ingest service takes it (defaults: a priced OpenAI call)."""
    values: dict[str, object] = {
        "position": 0,
        "event_id": event_id,
        "occurred_at": at,
        "project": "checkout",
        "run_id": "",
        "job_id": "",
        "tenant": "",
        "provider": "openai",
        "model": "gpt-4.1",
        "operation": "generation",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "cost": None,
    }
    values.update(fields)
    return LlmEventIn(**values)  # type: ignore[arg-type]


def add_llm_call(
    *,
    project: Project,
    run: Run | None,
    event_id: str,
    at: datetime,
    cost: Decimal | None,
    model: str = "claude-sonnet-4-5",
    input_tokens: int = 1000,
    output_tokens: int = 100,
) -> None:
    """One LLM call stored through the real ingest path (so rollups see it) in the current
    schema. A given cost is client-supplied; ``cost=None`` sends a model no price book knows, so
    the call is stored as unpriced."""
    tenant = Tenant.objects.get(schema_name=connection.schema_name)
    event = llm_event_in(
        event_id,
        at,
        project=project.slug,
        run_id=run.run_id if run else "",
        provider="anthropic" if cost is not None else "self-hosted",
        model=model if cost is not None else "model-without-a-price",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
    )
    events_ingest(events=[event], pricer=pricer_for(tenant))


def run_update(
    run_id: str, status: str, at: datetime, project: str = "p", **fields: object
) -> None:
    """Apply one lifecycle update through the real service in the current schema."""
    runs_ingest(
        updates=[
            RunUpdate(
                position=0, run_id=run_id, project=project, status=status, timestamp=at, **fields
            )
        ]
    )


def run_finished(
    run_id: str,
    status: str,
    requested: datetime,
    minutes: int,
    project: str = "web",
    **fields: object,
) -> None:
    """A run requested and started at ``requested`` that took ``minutes``, in the current
    schema."""
    run_update(
        run_id,
        status,
        requested + timedelta(minutes=minutes),
        project=project,
        requested_at=requested,
        started_at=requested,
        finished_at=requested + timedelta(minutes=minutes),
        **fields,
    )


def runs_make(
    tenant: TestTenant,
    count: int,
    *,
    status: str = "Succeeded",
    project: str = "web",
    prefix: str = "run",
) -> None:
    """``count`` runs ``<prefix>-000``... of template ``react-spa``, one a minute from
    ``RUNS_START``, each 30 seconds long."""
    updates = [
        RunUpdate(
            i,
            f"{prefix}-{i:03d}",
            project,
            status,
            RUNS_START + timedelta(minutes=i, seconds=30),
            template_recipe_id="react-spa",
            run_type="frontend",
            requested_at=RUNS_START + timedelta(minutes=i),
            started_at=RUNS_START + timedelta(minutes=i),
            finished_at=RUNS_START + timedelta(minutes=i, seconds=30),
        )
        for i in range(count)
    ]
    with schema_context(tenant.schema):
        runs_ingest(updates=updates)


def report_runs_make(tenant: TestTenant, day: date) -> None:
    """Nine finished runs from ``day`` 09:00 UTC: six succeeded (template ``spa``, 10 minutes),
    two failed (``api``, 30 minutes), and the next day one more succeeded (type ``docs``, 20)."""
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    with schema_context(tenant.schema):
        for n in range(6):
            run_finished(
                f"ok-{n}", "Succeeded", at + timedelta(hours=n), 10, template_recipe_id="spa"
            )
        for n in range(2):
            run_finished(
                f"bad-{n}", "Failed", at + timedelta(hours=n), 30, template_recipe_id="api"
            )
        run_finished("ok-next", "Succeeded", at + timedelta(days=1), 20, run_type="docs")


def llm_spend(tenant: TestTenant, at: datetime, *costs: str) -> None:
    """LLM calls with client-supplied costs, through the real ingest path (rollups included)."""
    with schema_context(tenant.schema):
        events_ingest(
            events=[
                llm_event_in(f"e-{at:%Y%m%d%H%M}-{i}", at, project="web", cost=Decimal(cost))
                for i, cost in enumerate(costs)
            ],
            pricer=pricer_for(tenant.tenant),
        )


def pending_spans_make(sender: str, n: int, age: timedelta) -> None:
    """``n`` OTLP spans from ``sender`` (a tenant hint; empty for the platform) that have waited
    ``age`` for their run span."""
    spans = PendingSpan.objects.bulk_create(
        PendingSpan(trace_id=f"{i:032x}", span_id=f"{i:016x}", tenant_hint=sender, record={})
        for i in range(len(sender) * 1000, len(sender) * 1000 + n)
    )
    PendingSpan.objects.filter(pk__in=[s.pk for s in spans]).update(
        received_at=timezone.now() - age
    )


@contextmanager
def broker_down() -> Iterator[None]:
    """Point the Celery app at a port where nothing listens (every broker URL Celery keeps, and
    its pools, which are built lazily from them), then back."""
    from factory_portal.celery import app

    names = ("broker_url", "broker_read_url", "broker_write_url")
    saved = {name: app.conf[name] for name in names}

    def use(values: dict[str, str | None]) -> None:
        for name, value in values.items():
            app.conf[name] = value
        app._pool = None
        app.amqp._producer_pool = None

    use(dict.fromkeys(names, "redis://127.0.0.1:1/0"))
    try:
        yield
    finally:
        use(saved)


def free_port() -> int:
    """A loopback TCP port nothing listens on (for servers the tests start, or dead peers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


GUNICORN_CONF = "python:factory_portal.gunicorn_conf"


@dataclass
class ProductionServer:
    port: int
    process: subprocess.Popen[bytes]


@contextmanager
def production_server(env: dict[str, str]) -> Iterator[ProductionServer]:
    """gunicorn with the production configuration (``factory_portal/gunicorn_conf.py``) and
    ``env`` on a free loopback port, listening when this yields; stopped with SIGTERM after
    (killed if it has not exited within 30 s; ``process.returncode`` tells how it stopped)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "factory_portal.wsgi"],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, "gunicorn exited at start"
                assert time.monotonic() < deadline, "gunicorn did not listen within 30 s"
                time.sleep(0.2)
        yield ProductionServer(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def user_make(tenant: TestTenant, email: str, role: str) -> User:
    with schema_context(tenant.schema):
        return user_create(email=email, role=role, password=PASSWORD)[0]


def response_text(response: HttpResponse) -> str:
    return response.content.decode()


def unread_badge(page: str) -> int:
    """The unread count in the header's notifications badge (0 when no badge is shown)."""
    match = re.search(r'data-testid="unread-count">(\d+)<', page)
    return int(match.group(1)) if match else 0


def notifications_make(tenant: TestTenant, count: int, **fields: object) -> list[Notification]:
    """``count`` notifications titled ``Notice 00`` (the oldest) to ``Notice <count - 1>``."""
    start = timezone.now()
    with schema_context(tenant.schema):
        made = [
            notification_create(kind="budget", title=f"Notice {i:02d}", **fields)
            for i in range(count)
        ]
        for i, n in enumerate(made):  # distinct, increasing times: Notice 00 is the oldest
            Notification.objects.filter(pk=n.pk).update(created_at=start + timedelta(seconds=i))
    return made


def noon(day: date) -> datetime:
    """Midday UTC of ``day``: the same calendar day in every time zone from UTC-11 to UTC+11."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


@contextmanager
def real_worker(**options: object) -> Iterator[object]:
    """A real Celery worker (``celery.contrib.testing``, solo pool, in this process), on a purged
    queue. Its log set-up lowers the root logger to the worker's level (ERROR by default) and
    swaps handlers for the whole process; both are put back when it stops, or later tests' log
    lines would vanish."""
    from celery.contrib.testing.worker import start_worker

    from factory_portal.celery import app

    # Start on an empty queue: messages earlier tests published without a worker (for tenants
    # since dropped, or a beat's fan-out) are not this worker's work, and would hold it up.
    app.control.purge()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=10, **options
        ) as running:
            yield running
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def in_own_connection(target: Callable[..., object], *args: object) -> None:
    """``target(*args)`` in a thread, on a database connection of its own (its work commits,
    unlike the test's); its exception is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
