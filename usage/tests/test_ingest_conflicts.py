"""A batch that PostgreSQL aborts for a deadlock with a concurrent batch is retried (stored once,
all or nothing); when conflicts outlast the retries the client gets a retryable 503 that says
so, never a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import OperationalError
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for
from usage.models import LlmUsageEvent
from usage.services import entry


def _deadlock() -> None:
    try:
        raise psycopg.errors.DeadlockDetected("deadlock detected")
    except psycopg.Error as cause:
        raise OperationalError("deadlock detected") from cause


def _body() -> str:
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    event = {
        "type": "llm",
        "event_id": "conflict-1",
        "timestamp": at,
        "project": "p",
        "provider": "openai",
        "model": "gpt-4.1",
        "input_tokens": 10,
        "output_tokens": 1,
    }
    return json.dumps({"events": [event]})


@pytest.fixture
def client_and_key(alpha):  # type: ignore[no-untyped-def]
    _, raw = key_for(alpha, ["ingest"])
    client = host_client(alpha.host)
    client.raise_request_exception = False
    return client, raw


def test_a_deadlocked_batch_is_retried_and_stored_once(client_and_key, alpha, monkeypatch):
    real = entry.events_ingest
    calls = []

    def deadlock_once(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            _deadlock()
        return real(**kwargs)

    monkeypatch.setattr(entry, "events_ingest", deadlock_once)
    client, raw = client_and_key
    response = client.post(
        "/api/v1/events", _body(), content_type="application/json", **bearer(raw)
    )
    assert response.status_code == 200 and response.json() == {"accepted": 1, "duplicates": 0}
    assert len(calls) == 2
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.filter(event_id="conflict-1").count() == 1


def test_conflicts_that_outlast_the_retries_are_a_retryable_503(client_and_key, monkeypatch):
    monkeypatch.setattr(entry, "events_ingest", lambda **kwargs: _deadlock())
    client, raw = client_and_key
    response = client.post(
        "/api/v1/events", _body(), content_type="application/json", **bearer(raw)
    )
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert "conflicted with concurrent writes" in response.json()["detail"]


def test_other_database_errors_are_not_retried(client_and_key, monkeypatch):
    calls = []

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(entry, "events_ingest", broken)
    client, raw = client_and_key
    response = client.post(
        "/api/v1/events", _body(), content_type="application/json", **bearer(raw)
    )
    assert response.status_code == 503 and len(calls) == 1
    assert "not reachable" in response.json()["detail"]
