"""``/readyz`` is public: it says which check failed and nothing about where the database or the
broker lives; the detail goes to the log for the operator."""

from __future__ import annotations

import logging

import pytest
from django.db import connections
from django.db.utils import load_backend

from factory_portal import health
from tests.support import broker_down, free_port, host_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):  # type: ignore[no-untyped-def]
    """The readiness check's connection points at a port where nothing listens."""
    port = free_port()
    settings_dict = {**connections["default"].settings_dict, "HOST": "127.0.0.1", "PORT": port}
    dead = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, "readiness")
    monkeypatch.setattr(health, "connection", dead)
    yield port
    dead.close()


def _leaks(body: str, *words: str) -> list[str]:
    words += ("127.0.0.1", "localhost", "6379", "redis", "postgres", "user", "Error", "refused")
    return [word for word in words if word in body]


def test_an_unreachable_database_is_named_but_not_described(database_down, caplog):
    with caplog.at_level(logging.WARNING, logger="factory_portal.health"):
        response = host_client("127.0.0.1").get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is True
    assert _leaks(response.content.decode(), str(database_down)) == []
    (line,) = [r.getMessage() for r in caplog.records if "database check failed" in r.getMessage()]
    assert str(database_down) in line and "OperationalError" in line


def test_an_unreachable_broker_is_named_but_not_described(caplog):
    with caplog.at_level(logging.WARNING, logger="factory_portal.health"), broker_down():
        response = host_client("127.0.0.1").get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"] == {
        "ok": False,
        "ms": body["checks"]["broker"]["ms"],
        "error": "unavailable",
    }
    assert _leaks(response.content.decode(), ":1") == []
    (line,) = [r.getMessage() for r in caplog.records if "broker check failed" in r.getMessage()]
    assert "127.0.0.1:1" in line or "Connection refused" in line
