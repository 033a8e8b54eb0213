"""POST /api/v1/runs: lifecycle upserts with jobs, out-of-order safe, rolled up."""

from __future__ import annotations

import json

import pytest
from django.db.models import Sum
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for
from usage.domain.durations import bucket_lower_ms, bucket_of, bucket_upper_ms, percentile_ms
from usage.models import Job, LlmUsageEvent, Run, RunDaily
from usage.tests.test_api_events import _post

pytestmark = pytest.mark.django_db


@pytest.fixture
def send(alpha):
    _, raw = key_for(alpha, ["ingest"])
    client = host_client(alpha.host)

    def post(*runs, host=None):
        return client.post(
            "/api/v1/runs",
            data=json.dumps({"runs": list(runs)}),
            content_type="application/json",
            HTTP_HOST=host or alpha.host,
            **bearer(raw),
        )

    return post


def run(status, at, **fields):
    return {"run_id": "run-1", "project": "payments", "status": status, "timestamp": at, **fields}


def test_lifecycle_with_jobs_and_retries(send, alpha):
    assert send(
        run(
            "Requested",
            "2026-11-02T10:00:00Z",
            run_type="microservice",
            template_recipe_id="go-grpc-service",
        )
    ).json() == {"accepted": 1, "duplicates": 0}
    send(
        run(
            "Running",
            "2026-11-02T10:00:20Z",
            started_at="2026-11-02T10:00:20Z",
            jobs=[
                {
                    "job_id": "implement",
                    "step_name": "implement",
                    "attempt": 1,
                    "status": "Failed",
                    "started_at": "2026-11-02T10:00:20Z",
                    "finished_at": "2026-11-02T10:01:20Z",
                    "failure_type": "llm_timeout",
                },
                {
                    "job_id": "implement",
                    "step_name": "implement",
                    "attempt": 2,
                    "status": "Running",
                    "started_at": "2026-11-02T10:01:25Z",
                },
            ],
        )
    )
    response = send(
        run(
            "Succeeded",
            "2026-11-02T10:05:20Z",
            finished_at="2026-11-02T10:05:20Z",
            jobs=[
                {
                    "job_id": "implement",
                    "attempt": 2,
                    "status": "Succeeded",
                    "finished_at": "2026-11-02T10:05:00Z",
                }
            ],
        )
    )
    assert response.json() == {"accepted": 1, "duplicates": 0}
    with schema_context(alpha.schema):
        stored = Run.objects.get(run_id="run-1")
        jobs = list(Job.objects.filter(run=stored).order_by("attempt"))
        rollup = list(RunDaily.objects.filter(runs__gt=0).values_list("status", "runs"))
        histogram = RunDaily.objects.get(status="Succeeded").duration_histogram
    assert stored.status == "Succeeded"
    assert stored.duration_ms == 300_000  # computed from start and finish
    assert [(j.attempt, j.status, j.duration_ms) for j in jobs] == [
        (1, "Failed", 60_000),
        (2, "Succeeded", 215_000),
    ]
    assert jobs[0].failure_type == "llm_timeout"
    assert rollup == [("Succeeded", 1)]  # moved from Requested through Running
    # One duration: the median is interpolated inside its bucket (not the bucket's upper edge).
    bucket = bucket_of(300_000)
    assert bucket_lower_ms(bucket) < percentile_ms(histogram, 0.5) < bucket_upper_ms(bucket)


def test_a_new_run_is_accepted_and_a_resend_without_a_time_is_a_duplicate(send, alpha):
    """A run first reported as Requested with nothing else was counted a duplicate (its stub,
    made first, looked the same), and an update without a time was accepted on every resend
    (its time is now, which moved the run's newest-update time): a review found both."""
    new = {"run_id": "fresh", "project": "payments", "status": "Requested"}
    assert send({**new, "requested_at": "2026-11-02T08:00:00Z"}).json() == {
        "accepted": 1,
        "duplicates": 0,
    }
    running = {**new, "status": "Running", "template_recipe_id": "t", "run_type": "feature"}
    assert send(running).json() == {"accepted": 1, "duplicates": 0}
    assert send(running).json() == {"accepted": 0, "duplicates": 1}
    # Two updates of one new run in one batch: the first made it, the second changes nothing.
    twice = {"run_id": "twice", "project": "payments", "status": "Requested"}
    assert send(twice, twice).json() == {"accepted": 1, "duplicates": 1}
    with schema_context(alpha.schema):
        assert Run.objects.get(run_id="fresh").status == "Running"
        assert Run.objects.filter(run_id="twice").exists()


def test_late_running_after_succeeded_changes_nothing(send, alpha):
    send(
        run(
            "Succeeded",
            "2026-11-02T10:05:00Z",
            started_at="2026-11-02T10:00:00Z",
            finished_at="2026-11-02T10:05:00Z",
        )
    )
    response = send(run("Running", "2026-11-02T10:01:00Z", started_at="2026-11-02T10:00:00Z"))
    assert response.json() == {"accepted": 0, "duplicates": 1}
    with schema_context(alpha.schema):
        assert Run.objects.get().status == "Succeeded"
        assert RunDaily.objects.filter(status="Running").aggregate(n=Sum("runs"))["n"] in (None, 0)


def test_updates_in_one_batch_apply_in_time_order(send, alpha):
    response = send(
        run("Succeeded", "2026-11-02T10:05:00Z", finished_at="2026-11-02T10:05:00Z"),
        run("Requested", "2026-11-02T10:00:00Z"),
        run("Running", "2026-11-02T10:01:00Z", started_at="2026-11-02T10:01:00Z"),
    )
    assert response.status_code == 200
    with schema_context(alpha.schema):
        stored = Run.objects.get()
        assert RunDaily.objects.aggregate(n=Sum("runs"))["n"] == 1
    assert stored.status == "Succeeded"
    assert stored.duration_ms == 240_000


def test_run_reported_after_its_usage_fills_in_the_stub(send, alpha):
    _, raw = key_for(alpha, ["ingest"])
    host_client(alpha.host).post(
        "/api/v1/events",
        data=json.dumps(
            {
                "events": [
                    {
                        "type": "llm",
                        "event_id": "e1",
                        "timestamp": "2026-11-02T10:02:00Z",
                        "project": "payments",
                        "run_id": "run-1",
                        "provider": "openai",
                        "model": "gpt-4.1",
                        "input_tokens": 10,
                        "output_tokens": 1,
                    }
                ]
            }
        ),
        content_type="application/json",
        **bearer(raw),
    )
    send(
        run(
            "Running",
            "2026-11-02T10:01:00Z",
            requested_at="2026-11-02T10:00:00Z",
            template_recipe_id="react-spa",
            run_type="frontend",
        )
    )
    with schema_context(alpha.schema):
        stored = Run.objects.get()
        event = LlmUsageEvent.objects.get()
        rollup = list(RunDaily.objects.filter(runs__gt=0).values_list("status", "run_type"))
    assert (stored.status, stored.template_recipe_id) == ("Running", "react-spa")
    assert stored.requested_at.isoformat() == "2026-11-02T10:00:00+00:00"
    assert event.run_id == stored.id
    assert rollup == [("Running", "frontend")]


def test_invalid_updates_store_nothing(send, alpha):
    response = send(run("Running", "2026-11-02T10:00:00Z"), run("Finished", "2026-11-02T10:01:00Z"))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "index": 1,
            "field": "status",
            "message": "must be one of Requested, Running, Succeeded, Failed, Cancelled",
        }
    ]
    with schema_context(alpha.schema):
        assert not Run.objects.exists()


def test_other_tenant_key_gets_401(send, beta):
    assert send(run("Running", "2026-11-02T10:00:00Z"), host=beta.host).status_code == 401
    with schema_context(beta.schema):
        assert not Run.objects.exists()


def test_run_status_of_the_wrong_type_is_a_422(alpha):
    body = json.dumps({"runs": [{"run_id": "r", "project": "p", "status": {"a": 1}}]})
    assert _post(alpha, body, path="/api/v1/runs").status_code == 422
