"""``/api/v1/alerts`` and ``/api/v1/silences``: listing with filters, one alert with its
delivery log, acknowledging once (``manage``), silences set and ended, problem+json refusals,
scopes, roles and tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.oncall.models import Incident, Page, Silence
from alerts.oncall.services.pages import pages_create
from alerts.oncall.tests.incident_rows import (
    AI_COST,
    FAILURES,
    QUEUE,
    incident_make,
    pagerduty_route,
)
from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def api(alpha):  # type: ignore[no-untyped-def]
    """alpha's host client and a key with ``read`` and one with ``read`` and ``manage``."""
    _, read = key_for(alpha, ["read"])
    _, manage = key_for(alpha, ["read", "manage"])
    return host_client(alpha.host), bearer(read), bearer(manage)


def test_alerts_are_listed_newest_first_with_filters_in_any_case(alpha, api):
    client, read, _ = api
    now = timezone.now()
    with schema_context(alpha.schema):
        queue = incident_make(summary="Queue builds", started_at=now - timedelta(minutes=30))
        incident_make(
            AI_COST, {}, summary="AI cost 3 times", started_at=now - timedelta(minutes=20)
        )
        incident_make(
            FAILURES,
            {},
            state="resolved",
            summary="Failures 9%",
            started_at=now - timedelta(minutes=10),
        )
        Silence.objects.create(
            rule=QUEUE,
            ends_at=now + timedelta(hours=1),
            reason="moving builds",
            created_by="ops@alpha.test",
        )
    body = client.get("/api/v1/alerts", **read).json()
    assert len(body["results"]) == 3 and body["next_cursor"] is None
    assert [a["summary"] for a in body["results"]] == [
        "Failures 9%",
        "AI cost 3 times",
        "Queue builds",
    ]
    first = body["results"][2]
    assert first["id"] == queue.pk and first["state"] == "firing" and first["silenced"] is True
    assert first["silence"]["reason"] == "moving builds" and first["silence"]["active"] is True
    assert first["title"] == "Queue depth high" and first["unit"] == "jobs"
    assert first["labels"] == {"queue_name": "builds"} and first["value"] == 1240.0
    assert first["url"] == f"/alerts/{queue.pk}/" and first["started_at"].endswith("Z")

    def summaries(query: str) -> list[str]:
        answer = client.get(f"/api/v1/alerts?{query}", **read)
        assert answer.status_code == 200, answer.content
        return [a["summary"] for a in answer.json()["results"]]

    assert summaries("state=FIRING") == ["AI cost 3 times", "Queue builds"]
    assert summaries("rule=Factory_Run_Failure_Rate_High") == ["Failures 9%"]
    assert summaries("severity=warning&state=firing") == ["AI cost 3 times", "Queue builds"]
    assert summaries("severity=critical&state=firing") == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("state=open", "state", "Unknown state 'open'; the states are pending, firing, resolved."),
        ("rule=nope", "rule", "Unknown rule 'nope'; the rules are factory_run_failure_rate_high"),
        ("severity=page", "severity", "Unknown severity 'page'; the severities are critical"),
    ],
)
def test_bad_filters_are_problems_naming_the_field(alpha, api, query, field, message):
    client, read, _ = api
    answer = client.get(f"/api/v1/alerts?{query}", **read)
    assert answer.status_code == 400 and answer["Content-Type"] == PROBLEM
    assert answer.json()["errors"][field][0].startswith(message)


def test_one_alert_with_its_condition_and_delivery_log(alpha, api):
    client, read, _ = api
    with schema_context(alpha.schema):
        pagerduty_route()
        incident = incident_make(FAILURES, {}, summary="Failure rate 9% of 40 runs", threshold=5.0)
        pages_create(incident, Page.Event.TRIGGER)
    body = client.get(f"/api/v1/alerts/{incident.pk}", **read).json()
    assert body["condition"] == "failed runs > 5% of runs finished in the last 5 min"
    assert body["action"].startswith("Page on-call engineer")
    assert sorted((p["event"], p["channel"], p["status"]) for p in body["pages"]) == [
        ("trigger", "email", "pending"),
        ("trigger", "pagerduty", "pending"),
    ]
    missing = client.get("/api/v1/alerts/999999", **read)
    assert missing.status_code == 404 and missing["Content-Type"] == PROBLEM
    assert missing.json()["detail"] == "No alert with id 999999 here."


def test_acknowledge_takes_manage_and_counts_once(alpha, api):
    client, read, manage = api
    with schema_context(alpha.schema):
        pagerduty_route()
        incident = incident_make(FAILURES, {})
        pages_create(incident, Page.Event.TRIGGER)
        resolved = incident_make(QUEUE, {"queue_name": "gone"}, state="resolved")
    refused = client.post(f"/api/v1/alerts/{incident.pk}/ack", **read)
    assert refused.status_code == 403 and refused["Content-Type"] == PROBLEM
    assert "lacks the 'manage' scope" in refused.json()["detail"]

    done = client.post(f"/api/v1/alerts/{incident.pk}/ack", **manage)
    assert done.status_code == 200, done.content
    first = done.json()
    assert first["acknowledged_by"].startswith("API key test key (")
    assert [p["event"] for p in first["pages"]].count("acknowledge") == 1
    again = client.post(f"/api/v1/alerts/{incident.pk}/ack", **manage).json()
    assert (again["acknowledged_by"], again["acknowledged_at"]) == (
        first["acknowledged_by"],
        first["acknowledged_at"],
    )
    with schema_context(alpha.schema):
        assert Page.objects.filter(incident=incident, event="acknowledge").count() == 1

    conflict = client.post(f"/api/v1/alerts/{resolved.pk}/ack", **manage)
    assert conflict.status_code == 409 and conflict["Content-Type"] == PROBLEM
    assert "is resolved; there is nothing to acknowledge" in conflict.json()["detail"]
    assert client.post("/api/v1/alerts/999999/ack", **manage).status_code == 404


def test_sessions_follow_the_page_roles(alpha, people):
    with schema_context(alpha.schema):
        incident = incident_make()
    assert people["finance"].get("/api/v1/alerts").status_code == 200
    assert people["finance"].get("/api/v1/silences").status_code == 200
    refused = people["finance"].post(f"/api/v1/alerts/{incident.pk}/ack")
    assert refused.status_code == 403
    assert "member and admin roles" in refused.json()["detail"]
    body = {"rule": QUEUE, "duration": "1h", "reason": "x"}
    assert (
        people["finance"]
        .post("/api/v1/silences", body, content_type="application/json")
        .status_code
        == 403
    )
    done = people["member"].post(f"/api/v1/alerts/{incident.pk}/ack")
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "member@alpha.test"


def test_silences_are_created_listed_and_ended(alpha, api):
    client, read, manage = api
    ends = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    made = client.post(
        "/api/v1/silences",
        {
            "rule": "FACTORY_QUEUE_DEPTH_HIGH",
            "matchers": {"queue_name": "builds"},
            "ends_at": ends.isoformat(),
            "reason": "moving builds",
        },
        content_type="application/json",
        **manage,
    )
    assert made.status_code == 201, made.content
    silence = made.json()
    assert silence["rule"] == QUEUE and silence["matchers"] == {"queue_name": "builds"}
    assert silence["active"] is True and silence["created_by"].startswith("API key test key")
    by_duration = client.post(
        "/api/v1/silences",
        {"duration": "1d", "reason": "every alert for a day"},
        content_type="application/json",
        **manage,
    )
    assert by_duration.status_code == 201 and by_duration.json()["rule"] == ""

    listing = client.get("/api/v1/silences?state=active", **read).json()
    assert [s["reason"] for s in listing["results"]] == ["every alert for a day", "moving builds"]
    assert client.delete(f"/api/v1/silences/{silence['id']}", **read).status_code == 403
    assert client.delete(f"/api/v1/silences/{silence['id']}", **manage).status_code == 204
    active = client.get("/api/v1/silences?state=active", **read).json()["results"]
    ended = client.get("/api/v1/silences?state=ended", **read).json()["results"]
    assert [s["reason"] for s in active] == ["every alert for a day"]
    assert [(s["reason"], s["active"]) for s in ended] == [("moving builds", False)]
    assert client.delete("/api/v1/silences/999999", **manage).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"rule": "nope", "duration": "1h", "reason": "r"}, "rule", "Unknown rule 'nope'"),
        (
            {"matchers": {"queue name": "x"}, "duration": "1h", "reason": "r"},
            "matchers",
            "'queue name' is not a label name",
        ),
        (
            {"matchers": {"a": ""}, "duration": "1h", "reason": "r"},
            "matchers",
            "Label a has no value.",
        ),
        (
            {"ends_at": "2020-01-01T00:00:00Z", "reason": "r"},
            "ends_at",
            "A silence must end in the future.",
        ),
        ({"reason": "r"}, "ends_at", "Give either ends_at or duration (1h, 4h, 1d)."),
        (
            {"ends_at": "2030-01-01T00:00:00Z", "duration": "1h", "reason": "r"},
            "ends_at",
            "Give either ends_at or duration",
        ),
        ({"duration": "2w", "reason": "r"}, "duration", '"2w" is not a valid choice.'),
        ({"duration": "1h"}, "reason", "This field is required."),
        ({"duration": "1h", "reason": "   "}, "reason", "This field may not be blank."),
    ],
)
def test_bad_silences_are_problems_naming_the_field(alpha, api, body, field, message):
    client, _, manage = api
    answer = client.post("/api/v1/silences", body, content_type="application/json", **manage)
    assert answer.status_code == 400 and answer["Content-Type"] == PROBLEM
    errors = answer.json()["errors"]
    assert errors[field][0].startswith(message), errors
    with schema_context(alpha.schema):
        assert not Silence.objects.exists()


def test_another_tenants_alerts_and_silences_are_not_there(alpha, beta, api):
    client, read, manage = api
    with schema_context(beta.schema):
        theirs = incident_make(summary="Beta's queue", id=424_242)
        silence = Silence.objects.create(
            id=434_343, ends_at=timezone.now() + timedelta(hours=1), reason="beta's", created_by="b"
        )
    assert client.get("/api/v1/alerts", **read).json()["results"] == []
    assert client.get("/api/v1/silences", **read).json()["results"] == []
    assert client.get(f"/api/v1/alerts/{theirs.pk}", **read).status_code == 404
    assert client.post(f"/api/v1/alerts/{theirs.pk}/ack", **manage).status_code == 404
    assert client.delete(f"/api/v1/silences/{silence.pk}", **manage).status_code == 404
    with schema_context(beta.schema):
        assert Incident.objects.get().acknowledged_at is None
        assert Silence.objects.get().ends_at > timezone.now()
    _, beta_key = key_for(beta, ["read"])
    assert client.get("/api/v1/alerts", **bearer(beta_key)).status_code == 401
