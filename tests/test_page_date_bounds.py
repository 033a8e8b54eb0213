"""Dates at the ends of the calendar in run filters, run cursors and the usage report: the
pages, the CSV and the API answer with data, never 500 (``date.max`` has no next day, a report
ending on ``date.min`` has no default start)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context

from tests.support import bearer, key_for, logged_in_client, run_update

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
def admin(alpha):
    with schema_context(alpha.schema):
        run_update("run-1", "Succeeded", T0, requested_at=T0, started_at=T0, finished_at=T0)
    return logged_in_client(alpha.host, alpha.admin_email)


def test_run_history_up_to_the_last_day_of_the_calendar(admin):
    page = admin.get("/runs/", {"to": "9999-12-31"})
    assert page.status_code == 200 and "run-1" in page.content.decode()
    csv = admin.get("/runs.csv", {"to": "9999-12-31"})
    assert csv.status_code == 200
    assert "run-1" in b"".join(csv.streaming_content).decode()


def test_runs_api_up_to_the_last_day_of_the_calendar(admin, alpha):
    _, raw = key_for(alpha, ["read"])
    answer = admin.get("/api/v1/runs", {"end": "2100-12-31"}, **bearer(raw))
    assert answer.status_code == 200
    assert [r["run_id"] for r in answer.json()["results"]] == ["run-1"]
    beyond = admin.get("/api/v1/runs", {"end": "9999-12-31"}, **bearer(raw))
    assert beyond.status_code == 400
    assert "end" in beyond.json()["errors"]


def test_run_history_cursor_without_a_time_zone_is_read_as_utc(admin):
    page = admin.get("/runs/", {"after": "2026-11-03T00:00:00_999"})
    assert page.status_code == 200 and "run-1" in page.content.decode()
    assert "run-1" not in admin.get("/runs/", {"after": "2026-11-02T09:00:00_0"}).content.decode()


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_usage_report_ending_before_any_usage_shows_the_default_range(admin, grain):
    page = admin.get("/usage/", {"to": "0001-01-01", "grain": grain})
    assert page.status_code == 200
    assert "0001-01-01 is outside the supported days" in page.content.decode()
