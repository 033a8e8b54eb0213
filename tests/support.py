"""Helpers shared by tests of every app (fixtures live in the root conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.test import Client
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.services import api_key_create
from factory_portal.tenants.models import Tenant
from usage.models import CostSource, LlmUsageEvent, Project, Run

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
) -> LlmUsageEvent:
    """One LLM event in the current schema (cost None means unpriced)."""
    return LlmUsageEvent.objects.create(
        event_id=event_id,
        occurred_at=at,
        project=project,
        run=run,
        provider="anthropic",
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        cost_source=CostSource.UNPRICED if cost is None else CostSource.PRICE_BOOK,
    )
