"""POST /api/v1/events answers the same with the fast decoder on and off: the same stored rows
for valid batches, byte-identical problem reports for invalid ones."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for
from usage.models import InfraUsageEvent, LlmUsageDaily, LlmUsageEvent

pytestmark = pytest.mark.django_db


def _events() -> list[dict]:
    at = (timezone.now() - timedelta(minutes=10)).isoformat()
    common = {"timestamp": at, "project": "checkout"}
    return [
        {
            **common,
            "type": "llm",
            "event_id": f"e-{n}",
            "run_id": f"r-{n % 3}",
            "provider": "Anthropic",
            "model": "claude-sonnet-4-5" if n % 2 else "gpt-4o",
            "input_tokens": 1000 + n,
            "output_tokens": 50,
            "cached_input_tokens": n,
            **({"cost": "0.0125"} if n == 4 else {}),
        }
        for n in range(6)
    ] + [
        {
            **common,
            "type": "infra",
            "event_id": "i-1",
            "resource_type": "compute",
            "quantity": 12.5,
            "unit": "cpu_seconds",
        }
    ]


def _post(tenant, body: bytes):  # type: ignore[no-untyped-def]
    _, raw = key_for(tenant, ["ingest"])
    return host_client(tenant.host).post(
        "/api/v1/events", data=body, content_type="application/json", **bearer(raw)
    )


def _stored(tenant) -> list:  # type: ignore[no-untyped-def]
    with schema_context(tenant.schema):
        llm = list(
            LlmUsageEvent.objects.order_by("event_id").values_list(
                "event_id",
                "occurred_at",
                "project__slug",
                "run__run_id",
                "provider",
                "model",
                "input_tokens",
                "output_tokens",
                "cached_input_tokens",
                "cost",
                "cost_source",
            )
        )
        infra = list(InfraUsageEvent.objects.values_list("event_id", "quantity", "unit"))
        daily = list(LlmUsageDaily.objects.order_by("model").values_list("model", "calls", "cost"))
    return [llm, infra, daily]


def test_valid_batch_is_stored_the_same_either_way(alpha, beta, settings) -> None:
    body = json.dumps({"events": _events()}).encode()
    settings.INGEST_FAST_DECODE = True
    fast = _post(alpha, body)
    settings.INGEST_FAST_DECODE = False
    slow = _post(beta, body)
    assert fast.status_code == slow.status_code == 200, (fast.content, slow.content)
    assert fast.content == slow.content
    assert _stored(alpha) == _stored(beta)
    assert len(_stored(alpha)[0]) == 6


BAD = {
    "bad fields": lambda e: [
        {**e[0], "output_tokens": -1},
        e[1],
        {**e[2], "color": "red"},
        {**e[3], "timestamp": "2026-01-01T00:00:00"},
        {**e[6], "quantity": "lots"},
    ],
    "not an object": lambda e: [e[0], 5],
    "tenant with a tenant key": lambda e: [{**e[0], "tenant": "beta"}],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_problem_reports_are_byte_identical(alpha, settings, name: str) -> None:
    body = json.dumps({"events": BAD[name](_events())}).encode()
    settings.INGEST_FAST_DECODE = True
    fast = _post(alpha, body)
    settings.INGEST_FAST_DECODE = False
    slow = _post(alpha, body)
    assert fast.status_code == slow.status_code == 422
    assert fast.content == slow.content
    assert fast.json()["errors"]
    assert _stored(alpha)[0] == []


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"events": [], "x": 1}', b'{"events": {}}'],
)
def test_unusable_bodies_are_answered_the_same(alpha, settings, body: bytes) -> None:
    settings.INGEST_FAST_DECODE = True
    fast = _post(alpha, body)
    settings.INGEST_FAST_DECODE = False
    slow = _post(alpha, body)
    assert fast.status_code == slow.status_code == 400
    assert fast.content == slow.content


def test_too_many_values_is_refused_before_the_fast_decoder(alpha, settings) -> None:
    settings.INGEST_MAX_JSON_VALUES = 10
    settings.INGEST_FAST_DECODE = True
    response = _post(alpha, json.dumps({"events": _events()}).encode())
    assert response.status_code == 413
