"""Dates at the ends of the calendar in run filters, run cursors and the usage report: the
pages, the CSV and the API answer with data, never 500 (``date.max`` has no next day, a report
ending on ``date.min`` has no default start)."""

from __future__ import annotations

import base64
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


def test_run_history_up_to_the_last_supported_day(admin):
    page = admin.get("/runs/", {"to": "2100-12-31"})
    assert page.status_code == 200 and "run-1" in page.content.decode()
    assert 'role="alert"' not in page.content.decode()
    before = admin.get("/runs/", {"to": "2026-11-01"})
    assert "run-1" not in before.content.decode()  # the filter is applied
    csv = admin.get("/runs.csv", {"to": "2100-12-31"})
    assert csv.status_code == 200
    assert "run-1" in b"".join(csv.streaming_content).decode()


def test_run_history_says_why_a_date_beyond_the_supported_years_is_left_out(admin):
    page = admin.get("/runs/", {"to": "9999-12-31"})
    assert page.status_code == 200 and "run-1" in page.content.decode()
    assert "9999-12-31 is outside the supported days" in page.content.decode()
    assert "The filter was left out." in page.content.decode()
    assert "download these runs as CSV</a>" not in page.content.decode()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"to": "9999-12-31"}, "9999-12-31 is outside the supported days"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "The first day (2026-11-05) is after"),
        ({"from": "yesterday"}, "'yesterday' is not a date"),
        ({"status": "exploded"}, "'exploded' is not a run status"),
        ({"range": "fortnight"}, "fortnight"),
    ],
)
def test_the_csv_refuses_a_filter_the_page_leaves_out(admin, query, reason):
    """A download must not widen to every run unseen: the page lists them and says why, the CSV
    answers 400 with the same reason (it streamed every run)."""
    csv = admin.get("/runs.csv", query)
    assert csv.status_code == 400 and csv["Content-Type"].startswith("text/plain")
    assert reason in csv.content.decode() and "run-1" not in csv.content.decode()
    assert admin.get("/runs.csv", {"to": "2026-11-30"}).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "9999-12-31T23:59:59-23:59_1",  # past year 9999 in UTC
        "0001-01-01T00:00:00_1",
        "2026-11-03T00:00:00+00:00_99999999999999999999",  # an id beyond bigint
    ],
)
def test_a_cursor_a_client_wrote_never_fails(admin, alpha, cursor):
    page = admin.get("/runs/", {"after": cursor})
    assert page.status_code == 200  # an unusable cursor starts over at the first page
    assert "run-1" in page.content.decode()
    _, raw = key_for(alpha, ["read"])
    token = base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")
    answer = admin.get("/api/v1/runs", {"cursor": token}, **bearer(raw))
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"
    assert "cursor" in answer.json()["errors"]


def test_a_cursor_with_an_offset_postgresql_cannot_hold_is_read_in_utc(admin, alpha):
    """+20:00 is a valid ISO offset that PostgreSQL refuses (500 before); converted to UTC it is
    04:00 on Nov 2, before run-1, so the page after it is empty."""
    cursor = "2026-11-03T00:00:00+20:00_1"
    page = admin.get("/runs/", {"after": cursor})
    assert page.status_code == 200 and "run-1" not in page.content.decode()
    _, raw = key_for(alpha, ["read"])
    token = base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")
    # The API's cursors are signed: one made by hand is refused, never read.
    answer = admin.get("/api/v1/runs", {"cursor": token}, **bearer(raw))
    assert answer.status_code == 400 and "cursor" in answer.json()["errors"]


def test_a_cursor_with_an_offset_is_the_same_moment_in_utc(admin, alpha):
    """The page's own links write UTC; a cursor with another offset means the same moment."""
    with schema_context(alpha.schema):
        later = datetime(2026, 11, 2, 10, tzinfo=UTC)
        run_update("run-2", "Succeeded", later, requested_at=later, started_at=later)
    page = admin.get("/runs/", {"after": "2026-11-02T11:30:00+01:30_0"})  # 10:00 UTC
    body = page.content.decode()
    assert "run-1" in body and "run-2" not in body


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
