"""``/metrics``: Prometheus text that parses, counters that move with real ingest (only once the
batch commits), low-cardinality routes, methods and model names, and access only by token or a
network allowed on purpose (closed in production when neither is configured)."""

from __future__ import annotations

import ipaddress
import json
import os
import runpy
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core import checks
from prometheus_client.parser import text_string_to_metric_families

from factory_portal.observability import metrics
from tests.support import bearer, host_client, key_for

NOW = datetime.now(UTC).replace(microsecond=0)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def loopback_allowed(settings):  # type: ignore[no-untyped-def]
    """These tests scrape from the test client's loopback address, allowed explicitly (as
    ``METRICS_ALLOWED_NETWORKS=127.0.0.0/8`` would); the default is tested on its own."""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


def scrape(**headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = host_client("localhost").get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def event(event_id: str, **fields: object) -> dict[str, object]:
    return {
        "type": "llm",
        "event_id": event_id,
        "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
        "project": "metrics",
        "provider": "openai",
        "model": "gpt-4.1",
        "operation": "chat",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_input_tokens": 200,
        "cost": "0.0125",
        **fields,
    }


@pytest.fixture
def ingest(alpha):  # type: ignore[no-untyped-def]
    _, raw = key_for(alpha, ["ingest", "read"])
    client = host_client(alpha.host)

    def post(path: str, body: dict) -> dict:
        response = client.post(
            path, json.dumps(body), content_type="application/json", **bearer(raw)
        )
        return {"status": response.status_code, "body": response.json()}

    return post


def test_ingest_moves_the_business_and_ingest_counters(
    ingest, alpha, django_capture_on_commit_callbacks
):
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        answer = ingest("/api/v1/events", {"events": [event("m-1"), event("m-2")]})
    assert answer["body"] == {"accepted": 2, "duplicates": 0}
    with django_capture_on_commit_callbacks(execute=True):
        ingest("/api/v1/events", {"events": [event("m-1")]})  # a re-send changes nothing
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    tenant = {"tenant": "alpha"}
    assert moved("tokens_used_total", model="gpt-4.1", kind="input", **tenant) == 2400
    assert moved("tokens_used_total", model="gpt-4.1", kind="output", **tenant) == 600
    assert moved("tokens_used_total", model="gpt-4.1", kind="cached_input", **tenant) == 400
    assert moved("cost_ai_total", model="gpt-4.1", **tenant) == pytest.approx(0.025)
    events = {"endpoint": "events", **tenant}
    assert moved("ingest_events_total", outcome="accepted", **events) == 2
    assert moved("ingest_events_total", outcome="duplicate", **events) == 1
    assert moved("ingest_batch_size_count", endpoint="events") == 2
    assert moved("ingest_batch_size_sum", endpoint="events") == 3


def test_a_refused_batch_counts_as_refused_and_stores_nothing(
    ingest, django_capture_on_commit_callbacks
):
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        answer = ingest("/api/v1/events", {"events": [event("r-1"), event("r-2", input_tokens=-1)]})
    assert answer["status"] == 422
    after = scrape()
    labels = {"endpoint": "events", "reason": "invalid_items"}
    assert value(after, "ingest_rejected_batches_total", **labels) == (
        value(before, "ingest_rejected_batches_total", **labels) + 1
    )
    assert value(after, "tokens_used_total", tenant="alpha", model="gpt-4.1", kind="input") == (
        value(before, "tokens_used_total", tenant="alpha", model="gpt-4.1", kind="input")
    )


def test_a_rolled_back_batch_counts_nothing(ingest):
    before = scrape()
    ingest("/api/v1/events", {"events": [event("never-committed")]})  # the test rolls it back
    after = scrape()
    labels = {"tenant": "alpha", "model": "gpt-4.1", "kind": "input"}
    assert value(after, "tokens_used_total", **labels) == value(
        before, "tokens_used_total", **labels
    )


def test_finished_runs_count_successes_failures_and_durations(
    ingest, django_capture_on_commit_callbacks
):
    def run(run_id: str, status: str, duration_ms: int) -> dict[str, object]:
        return {
            "run_id": run_id,
            "project": "metrics",
            "status": status,
            "timestamp": NOW.isoformat(),
            "requested_at": (NOW - timedelta(minutes=10)).isoformat(),
            "duration_ms": duration_ms,
        }

    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        answer = ingest(
            "/api/v1/runs",
            {
                "runs": [
                    run("ok-1", "Succeeded", 90_000),
                    run("ok-2", "Succeeded", 30_000),
                    run("bad-1", "Failed", 5_000),
                    run("busy-1", "Running", 1_000),
                ]
            },
        )
    assert answer["body"]["accepted"] == 4
    after = scrape()
    assert (
        value(after, "run_success_total", tenant="alpha")
        - value(before, "run_success_total", tenant="alpha")
        == 2
    )
    assert (
        value(after, "run_failure_total", tenant="alpha")
        - value(before, "run_failure_total", tenant="alpha")
        == 1
    )
    ok = {"tenant": "alpha", "status": "Succeeded"}
    assert value(after, "run_duration_seconds_sum", **ok) - value(
        before, "run_duration_seconds_sum", **ok
    ) == pytest.approx(120)
    assert (
        value(after, "run_duration_seconds_bucket", le="60.0", **ok)
        - value(before, "run_duration_seconds_bucket", le="60.0", **ok)
        == 1
    )


def test_http_durations_are_labelled_by_route_pattern_not_path(alpha):
    client = host_client(alpha.host)
    client.get("/api/v1/runs/run-that-does-not-exist-1")
    client.get("/api/v1/runs/run-that-does-not-exist-2")
    samples = scrape()
    labels = {"method": "GET", "route": "/api/v1/runs/<path:run_id>", "status": "401"}
    assert value(samples, "http_request_duration_seconds_count", **labels) >= 2
    assert not any("does-not-exist" in str(key) for key in samples)


def test_queue_depth_and_broker_state_are_read_at_scrape_time():
    samples = scrape()
    assert value(samples, "celery_broker_up") == 1
    assert ("celery_queue_length", (("queue", "celery"),)) in samples


def test_metrics_refuse_other_networks_and_want_the_token_when_one_is_set(settings):
    client = host_client("localhost")
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200
    assert client.post("/metrics").status_code == 405


def test_behind_the_proxy_the_allowed_networks_are_matched_against_the_forwarded_client(settings):
    """Behind the TLS proxy the TCP peer is the proxy (loopback here): the networks must be
    matched against the address it forwarded for, the one the login lock-out counts too."""
    settings.PORTAL_BEHIND_TLS_PROXY = True
    client = host_client("localhost")
    outside = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert outside.status_code == 403
    local = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert local.status_code == 200


@pytest.mark.parametrize(
    ("env", "networks"),
    [
        ({"DEBUG": "0"}, []),
        ({"DEBUG": "1"}, ["127.0.0.0/8", "::1/128"]),
        ({"DEBUG": "0", "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, ::1"}, ["10.0.0.0/8", "::1/128"]),
        ({"DEBUG": "1", "METRICS_ALLOWED_NETWORKS": ""}, []),
    ],
)
def test_loopback_may_scrape_without_a_token_only_in_development_or_when_named(
    monkeypatch, env, networks
):
    """A reverse proxy on the same host makes every visitor a loopback client: in production
    loopback is allowed only when ``METRICS_ALLOWED_NETWORKS`` says so."""
    monkeypatch.delenv("METRICS_ALLOWED_NETWORKS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    evaluated = runpy.run_path(str(ROOT / "factory_portal" / "settings.py"))
    assert [str(n) for n in evaluated["METRICS_ALLOWED_NETWORKS"]] == networks


def test_without_token_or_networks_metrics_are_closed_with_a_reason(settings, caplog):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    client = host_client("localhost")
    for _ in range(2):
        response = client.get("/metrics")  # from loopback
        assert response.status_code == 403
        assert "/metrics is closed" in response.content.decode()
        assert "METRICS_TOKEN" in response.content.decode()
    assert "tokens_used" not in response.content.decode()
    warned = [r for r in caplog.records if "/metrics is closed" in r.getMessage()]
    assert len(warned) <= 1  # once per process, not once per scrape

    def deploy_warnings() -> list[str]:
        found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        return [message.id for message in found if message.id.startswith("observability.")]

    assert deploy_warnings() == ["observability.W001"]
    settings.METRICS_TOKEN = "scrape-secret"
    assert deploy_warnings() == []
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200


def test_model_names_beyond_the_cap_are_counted_as_other(
    ingest, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """A client chooses model names: past ``METRICS_MODEL_LABELS_MAX`` per tenant they fold
    into ``other`` (tokens and cost still add up), a model already seen keeps its own series."""
    settings.METRICS_MODEL_LABELS_MAX = 2
    monkeypatch.setattr(
        metrics,
        "model_label",
        metrics.LabelValues(
            lambda: settings.METRICS_MODEL_LABELS_MAX,
            label="model",
            group="tenant",
            families=("tokens_used", "cost_ai"),
        ),
    )
    before = scrape()
    models = [f"cap-model-{n}" for n in range(5)] + ["cap-model-0"]
    events = [event(f"cap-{n}", model=model) for n, model in enumerate(models)]
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest("/api/v1/events", {"events": events})["body"]["accepted"] == 6
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    input_tokens = {"tenant": "alpha", "kind": "input"}
    assert moved("tokens_used_total", model="cap-model-0", **input_tokens) == 2400
    assert moved("tokens_used_total", model="cap-model-1", **input_tokens) == 1200
    assert moved("tokens_used_total", model="other", **input_tokens) == 3 * 1200
    assert moved("cost_ai_total", tenant="alpha", model="other") == pytest.approx(3 * 0.0125)
    assert not any("cap-model-2" in str(key) or "cap-model-4" in str(key) for key in after)


def test_the_model_cap_counts_the_labels_other_processes_recorded(tmp_path, monkeypatch):
    """Under gunicorn a recycled worker starts from the models the host has recorded already,
    so replacing processes does not reopen the cap."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = (
        "from decimal import Decimal\n"
        "from factory_portal.observability.metrics import TOKENS_USED\n"
        "for model in ('m-1', 'm-2'):\n"
        "    TOKENS_USED.labels('alpha', model, 'input').inc(5)\n"
        "TOKENS_USED.labels('beta', 'm-3', 'input').inc(5)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)  # noqa: S603
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    labels = metrics.LabelValues(
        lambda: 3, label="model", group="tenant", families=("tokens_used", "cost_ai")
    )
    assert [labels("alpha", m) for m in ("m-2", "m-9", "m-10", "m-1")] == [
        "m-2",
        "m-9",
        "other",
        "m-1",
    ]
    assert labels("beta", "m-4") == "m-4"


def test_unknown_http_methods_share_one_label(alpha):
    client = host_client(alpha.host)
    for method in ("BREW", "PROPFIND-1", "GET"):
        client.generic(method, "/login/")
    samples = scrape()
    assert not any("BREW" in str(key) or "PROPFIND" in str(key) for key in samples)
    others = [
        count
        for (name, labels), count in samples.items()
        if name == "http_request_duration_seconds_count"
        and ("method", "other") in labels
        and ("route", "/login/") in labels
    ]
    assert sum(others) >= 2


def test_tenant_hosts_answer_metrics_too_without_tenant_data_leaking(alpha, beta):
    """/metrics is the operator's: the same answer on every host, never filtered per tenant,
    and never reachable for a tenant's API key from outside the allowed networks."""
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get("/metrics", REMOTE_ADDR="203.0.113.7", **bearer(raw))
    assert response.status_code == 403


def test_otlp_spans_are_counted_by_outcome(alpha):
    _, raw = key_for(alpha, ["ingest"])
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "unrelated work",
        "startTimeUnixNano": str(int((NOW - timedelta(minutes=1)).timestamp() * 1e9)),
        "endTimeUnixNano": str(int(NOW.timestamp() * 1e9)),
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span, {**span, "spanId": "c" * 16}]}]}]}
    before = scrape()
    response = host_client(alpha.host).post(
        "/v1/traces", json.dumps(body), content_type="application/json", **bearer(raw)
    )
    assert response.status_code == 200
    after = scrape()
    moved = sum(
        value(after, "otlp_spans_received_total", outcome=o)
        - value(before, "otlp_spans_received_total", outcome=o)
        for o in ("stored", "parked", "rejected", "ignored")
    )
    assert moved == 2
