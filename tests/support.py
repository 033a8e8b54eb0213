"""Helpers shared by tests of every app (fixtures live in the root conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.services import api_key_create
from factory_portal.tenants.models import Tenant
from usage.domain.events import LlmEventIn
from usage.domain.runs import RunUpdate
from usage.models import Project, Run
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

PASSWORD = "correct-horse-battery-staple"
OPERATOR_EMAIL = "ops@portal.test"


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
