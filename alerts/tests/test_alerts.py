"""Alerts: each rule fires exactly once at its crossing, not below it and not twice; two
concurrent evaluators deliver once; webhooks are signed (checked by an independent
implementation), retried with backoff and delivered from the outbox after a broker outage;
anomalies fire on a spike and not on the weekly rhythm; e-mails carry the right numbers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context

from alerts.models import Alert, AlertSettings, Delivery, RunSubscription, WebhookEndpoint
from alerts.services import evaluate
from alerts.services.deliver import delivery_send
from alerts.services.engine import AlertSpec, alert_raise
from alerts.services.webhook_http import WebhookRefused, webhook_url_check
from alerts.tasks import deliveries_flush_tenant
from billing.models import Budget, CostForecast
from factory_portal.accounts.services import user_create
from notifications.models import Notification
from tests.support import PASSWORD, broker_down, llm_event_in, noon, run_update
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)


def _spend(tenant, amount: str, *, at: datetime, event_id: str, project: str = "web", **kw):
    events_ingest(
        events=[llm_event_in(event_id, at, project=project, cost=Decimal(amount), **kw)],
        pricer=pricer_for(tenant),
    )


# --- budgets -------------------------------------------------------------------------------------


def test_actual_threshold_fires_once_at_its_crossing_and_not_below(alpha, mailoutbox):
    at = datetime(2026, 11, 3, 10, tzinfo=UTC)
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("100"), thresholds=[50, 80, 100])
        _spend(alpha.tenant, "49.99", at=at, event_id="b1")
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []  # just below 50%
        _spend(alpha.tenant, "0.01", at=at, event_id="b2")  # exactly 50%
        raised = evaluate.budgets_evaluate(now=noon(TODAY))
        assert [a.key for a in raised] == ["budget:tenant:2026-11:actual:50"]
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []  # not twice
        _spend(alpha.tenant, "35", at=at, event_id="b3")  # 85%: crosses 80 only
        assert [a.key for a in evaluate.budgets_evaluate(now=noon(TODAY))] == [
            "budget:tenant:2026-11:actual:80"
        ]
        assert Notification.objects.filter(kind="budget").count() == 2
        # A new month starts over.
        assert evaluate.budgets_evaluate(now=noon(date(2026, 12, 2))) == []
        assert deliveries_flush_tenant() == {"sent": 2}  # the outbox: one e-mail per alert
    assert len(mailoutbox) == 2  # one admin of alpha, one e-mail per alert
    first = mailoutbox[0]
    assert first.to == [alpha.admin_email]
    assert "50% of the November budget" in first.subject
    assert "$50.00 of $100.00 (threshold 50% reached)" in first.body
    html = first.alternatives[0][0]
    assert "$50.00" in html and "/budgets/" in html


def _forecast(project: str, start: date, month_end_mean: str, daily_step: str) -> None:
    rows, total = [], Decimal(0)
    for n in range(30):
        day = start + timedelta(days=n)
        total += Decimal(daily_step)
        rows.append(
            [str(day), daily_step, "0", "0", "0", "0", str(total), str(total * 2), str(total / 2)]
        )
    CostForecast.objects.create(
        project=project,
        computed_at=datetime(2026, 11, 20, tzinfo=UTC),
        method="test",
        start=start,
        daily=rows,
        month_end={
            "mean": month_end_mean,
            "lo80": "0",
            "hi80": month_end_mean,
            "lo95": "0",
            "hi95": "0",
        },
        next_30={},
        next_90={},
    )


def test_forecast_threshold_fires_once_with_the_crossing_day_and_interval(alpha):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("100"), thresholds=[100])
        _spend(alpha.tenant, "40", at=datetime(2026, 11, 2, tzinfo=UTC), event_id="f1")
        _forecast("", TODAY, "59.99", "6")  # 40 spent + 59.99 forecast: just below
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []
        CostForecast.objects.filter(project="").update(
            month_end={"mean": "70", "lo80": "0", "hi80": "70", "lo95": "0", "hi95": "0"}
        )  # 40 spent + 70 forecast = 110 > 100
        raised = evaluate.budgets_evaluate(now=noon(TODAY))
        assert [a.key for a in raised] == ["budget:tenant:2026-11:forecast:100"]
        alert = raised[0]
        # 40 spent + 6 a day reaches 100 on the 10th forecast day, Nov 29.
        assert alert.data["crossing_expected"] == "2026-11-29"
        assert "expected to exceed the budget on 29 November" in alert.body
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []


# --- runs ----------------------------------------------------------------------------------------


def test_run_alerts_follow_each_users_subscription(alpha, mailoutbox):
    t = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with schema_context(alpha.schema):
        users = {
            mode: user_create(email=f"{mode}@alpha.test", role="member", password=PASSWORD)[0]
            for mode in ("all", "failures", "project", "none")
        }
        for mode, user in users.items():
            RunSubscription.objects.create(
                user=user, mode=mode, project="api" if mode == "project" else "", email="each"
            )
        for run_id, project, status in (
            ("ok", "web", "Succeeded"),
            ("bad", "web", "Failed"),
            ("api-1", "api", "Succeeded"),
        ):
            run_update(
                run_id,
                status,
                t,
                project=project,
                requested_at=t,
                started_at=t,
                finished_at=t + timedelta(seconds=90),
            )
        _spend(alpha.tenant, "1.25", at=t, event_id="r1", run_id="bad", project="web")
        from usage.models import Run

        raised = evaluate.runs_evaluate(run_ids=list(Run.objects.values_list("pk", flat=True)))
        assert evaluate.runs_evaluate(run_ids=list(Run.objects.values_list("pk", flat=True))) == []
        assert deliveries_flush_tenant() == {"sent": 5}
        seen = {
            mode: sorted(Notification.objects.filter(user=user).values_list("title", flat=True))
            for mode, user in users.items()
        }
        bad = Alert.objects.get(key="run:bad:Failed")
    assert len(raised) == 3
    assert seen["all"] == ["Run api-1 succeeded", "Run bad failed", "Run ok succeeded"]
    assert seen["failures"] == ["Run bad failed"]
    assert seen["project"] == ["Run api-1 succeeded"]
    assert seen["none"] == []
    assert "after 90 s; AI cost $1.25" in bad.body and bad.data["ai_cost"] == "1.25"
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        ["all@alpha.test"] * 3 + ["failures@alpha.test", "project@alpha.test"]
    )


def test_finishing_a_run_enqueues_evaluation_after_commit(
    alpha, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    from alerts import tasks

    monkeypatch.setattr(
        tasks.alerts_runs_finished, "apply_async", lambda args, **options: queued.append(args)
    )
    t = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with schema_context(alpha.schema), django_capture_on_commit_callbacks(execute=True):
        run_update("x", "Running", t, requested_at=t, started_at=t)
        assert queued == []  # nothing before commit
        run_update("x", "Succeeded", t + timedelta(minutes=1), finished_at=t + timedelta(minutes=1))
    assert len(queued) == 1 and len(queued[0][0]) == 1


# --- failure rate and anomalies ------------------------------------------------------------------


def test_failure_rate_fires_once_per_cool_down(alpha):
    t = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with schema_context(alpha.schema):
        AlertSettings.objects.create(failure_rate_window=5, failure_rate_threshold=40)
        for n in range(5):
            status = "Failed" if n == 1 else "Succeeded"
            run_update(
                f"r{n}",
                status,
                t,
                requested_at=t,
                started_at=t,
                finished_at=t + timedelta(minutes=n),
            )
        assert evaluate.failure_rate_evaluate(now=t + timedelta(hours=1)) is None  # 20%
        run_update(
            "r5", "Failed", t, requested_at=t, started_at=t, finished_at=t + timedelta(minutes=9)
        )
        alert = evaluate.failure_rate_evaluate(now=t + timedelta(hours=1))  # 2 of last 5: 40%
        assert alert is not None and alert.title == "2 of the last 5 runs failed (40%)"
        assert evaluate.failure_rate_evaluate(now=t + timedelta(hours=2)) is None  # cool-down


def _hourly_calls(
    tenant, hour: datetime, cost: str, n: int, *, model: str = "gpt-4.1", project: str = "web"
):
    events_ingest(
        events=[
            llm_event_in(
                f"{hour:%Y%m%d%H}-{model}-{i}",
                hour + timedelta(minutes=i),
                project=project,
                model=model,
                cost=Decimal(cost),
            )
            for i in range(n)
        ],
        pricer=pricer_for(tenant),
    )


def test_weekly_rhythm_is_not_an_anomaly_but_a_spike_is(alpha):
    # Tuesdays 14:00 are busy ($10), Saturdays 14:00 quiet ($1); four weeks of history.
    tuesday = datetime(2026, 11, 17, 14, tzinfo=UTC)
    saturday = datetime(2026, 11, 14, 14, tzinfo=UTC)
    with schema_context(alpha.schema):
        for week in range(1, 5):
            _hourly_calls(alpha.tenant, tuesday - timedelta(weeks=week), "2", 5)
            _hourly_calls(alpha.tenant, saturday - timedelta(weeks=week), "0.5", 2)
        _hourly_calls(alpha.tenant, saturday, "0.5", 2)  # a normal Saturday
        _hourly_calls(alpha.tenant, tuesday, "2", 6)  # a normal Tuesday ($12 vs $10)
        assert evaluate.anomaly_evaluate(now=saturday + timedelta(hours=1, minutes=5)) is None
        assert evaluate.anomaly_evaluate(now=tuesday + timedelta(hours=1, minutes=5)) is None
        spike = tuesday + timedelta(days=1)  # Wednesdays 14:00 cost $3
        for week in range(1, 5):
            _hourly_calls(alpha.tenant, spike - timedelta(weeks=week), "1", 3)
        _hourly_calls(alpha.tenant, spike, "1", 4)
        _hourly_calls(alpha.tenant, spike, "6", 2, model="o3", project="research")  # $12 more
        alert = evaluate.anomaly_evaluate(now=spike + timedelta(hours=1, minutes=5))
        assert alert is not None
        assert alert.data["project"] == "research" and alert.data["model"] == "o3"
        assert alert.data["cost"] == "16.00" and alert.data["baseline"] == "3.00"
        assert "5.3 times the usual $3.00" in alert.body
        # Why, in dollars: the hour against the average of the same trailing hours.
        why = alert.data["change"]
        assert (why["before"], why["after"], why["change"]) == ("3.00", "16.00", "13.00")
        assert sum(Decimal(p["amount"]) for p in why["parts"]) == Decimal("13.00")
        assert why["top_lines"][0]["model"] == "o3"
        assert "Why: " + why["top_lines"][0]["text"] in alert.body
        assert evaluate.anomaly_evaluate(now=spike + timedelta(hours=1, minutes=30)) is None


# --- webhooks ------------------------------------------------------------------------------------


class Receiver:
    """A local HTTP endpoint that records requests and answers with scripted status codes
    (and, if set, a scripted body and headers)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answer_body: bytes | None = None
        self.answer_headers: dict[str, str] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                for name, value in outer.answer_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                default = b"ok" if status < 300 else b"try later"
                self.wfile.write(default if outer.answer_body is None else outer.answer_body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([])
    yield server
    server.close()


def _independent_check(secret: str, header: str, body: bytes) -> bool:
    """A receiver's verification written from the documentation, not from our code."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    message = fields["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def _test_alert(key: str = "test:1") -> Alert:
    return alert_raise(
        AlertSpec(key=key, kind=Alert.Kind.TEST, title="Test", data={"n": 1, "amount": "1.50"})
    )


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_webhook_is_signed_verifiably_and_has_a_stable_payload(alpha, receiver):
    with schema_context(alpha.schema):
        endpoint = WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="s3cret")
        alert = _test_alert()
        delivery = Delivery.objects.get(alert=alert)
        assert delivery_send(delivery.pk).status == "sent"
        assert delivery_send(delivery.pk).status == "skipped"  # never twice
        delivery.refresh_from_db()
    headers, body = receiver.requests[0]
    assert len(receiver.requests) == 1
    assert _independent_check(endpoint.secret, headers["X-Portal-Signature"], body)
    assert not _independent_check("wrong", headers["X-Portal-Signature"], body)
    payload = json.loads(body)
    assert set(payload) == {"id", "schema_version", "type", "created_at", "tenant", "title", "data"}
    assert payload["id"] == f"alt_{alpha.schema}_{alert.pk}" and payload["tenant"] == "alpha"
    assert payload["data"] == {"n": 1, "amount": "1.50"}
    assert delivery.status == "sent" and delivery.last_status_code == 200
    assert delivery.response_ms is not None and delivery.attempts == 1


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_webhook_retries_with_backoff_until_it_succeeds(alpha, receiver):
    receiver.statuses = [503, 500, 200]
    with schema_context(alpha.schema):
        WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="k")
        delivery = Delivery.objects.get(alert=_test_alert())
        first = delivery_send(delivery.pk)
        second = delivery_send(delivery.pk)
        assert (first.status, first.retry_in_s) == ("pending", 30)
        assert (second.status, second.retry_in_s) == ("pending", 60)
        delivery.refresh_from_db()
        assert delivery.last_error == "HTTP 500" and delivery.attempts == 2
        assert delivery_send(delivery.pk).status == "sent"
        delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 3 and len(receiver.requests) == 3


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_a_rejecting_receiver_fails_without_retries(alpha, receiver):
    receiver.statuses = [410]
    with schema_context(alpha.schema):
        WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="k")
        delivery = Delivery.objects.get(alert=_test_alert())
        assert delivery_send(delivery.pk).status == "failed"


def test_private_and_loopback_webhook_urls_are_refused_unless_allowed():
    for url in (
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "ftp://example.com/",
    ):
        with pytest.raises(WebhookRefused):
            webhook_url_check(url)
    with override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True):
        webhook_url_check("http://127.0.0.1:9/x")


@override_settings(ALERTS_WEBHOOK_ALLOW_PRIVATE=True)
def test_outbox_delivers_after_a_broker_outage(
    alpha, receiver, django_capture_on_commit_callbacks, caplog
):
    with broker_down(), schema_context(alpha.schema):
        WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="k")
        with django_capture_on_commit_callbacks(execute=True):
            alert = _test_alert("outage:1")
        delivery = Delivery.objects.get(alert=alert)
        assert delivery.status == "pending" and receiver.requests == []
    assert "broker unavailable" in caplog.text and "delivery_send_task not enqueued" in caplog.text
    with schema_context(alpha.schema):
        assert deliveries_flush_tenant() == {"sent": 1}
        delivery.refresh_from_db()
    assert delivery.status == "sent" and len(receiver.requests) == 1


def test_alerts_and_deliveries_stay_in_their_tenant(alpha, beta):
    with schema_context(alpha.schema):
        _test_alert("only-alpha")
        assert Alert.objects.filter(key="only-alpha").exists()
    with schema_context(beta.schema):
        assert not Alert.objects.exists() and not Delivery.objects.exists()
        assert not Notification.objects.filter(title="Test").exists()


def test_digest_users_get_one_email_an_hour_listing_their_runs(alpha, mailoutbox):
    t = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with schema_context(alpha.schema):
        user = user_create(email="digest@alpha.test", role="member", password=PASSWORD)[0]
        RunSubscription.objects.create(user=user, mode="all", email="digest")
        for n in range(3):
            run_update(f"d{n}", "Succeeded", t, requested_at=t, started_at=t, finished_at=t)
        from usage.models import Run

        evaluate.runs_evaluate(run_ids=list(Run.objects.values_list("pk", flat=True)))
        assert not Delivery.objects.exists()  # no e-mail per run for digest users
        later = datetime.now(tz=UTC) + timedelta(minutes=1)
        digest = evaluate.run_digests_send(now=later)
        assert evaluate.run_digests_send(now=later) == []  # nothing new since
        assert deliveries_flush_tenant() == {"sent": 1}
    assert len(digest) == 1 and digest[0].title.startswith("3 runs finished since")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["digest@alpha.test"]
    assert all(f"Run d{n} succeeded" in mailoutbox[0].body for n in range(3))


def test_a_run_after_this_hours_digest_waits_for_the_next(alpha, mailoutbox):
    """A second digest in the same hour (a beat backlog, a redelivered task) sends nothing,
    and the runs it found go into the next hour's digest (a review found them lost)."""
    t = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with schema_context(alpha.schema):
        user = user_create(email="digest@alpha.test", role="member", password=PASSWORD)[0]
        RunSubscription.objects.create(user=user, mode="all", email="digest")

        def finished(run_id: str, at: datetime) -> None:
            from usage.models import Run

            run_update(run_id, "Succeeded", at, requested_at=at, started_at=at, finished_at=at)
            evaluate.runs_evaluate(run_ids=[Run.objects.get(run_id=run_id).pk])
            Notification.objects.filter(title__contains=run_id).update(created_at=at)

        finished("a", t.replace(minute=2))
        assert len(evaluate.run_digests_send(now=t.replace(minute=5))) == 1
        finished("b", t.replace(minute=20))
        assert evaluate.run_digests_send(now=t.replace(minute=40)) == []  # one an hour
        [later] = evaluate.run_digests_send(now=t.replace(hour=10, minute=5))
        assert deliveries_flush_tenant() == {"sent": 2}
    assert later.title == "1 run finished since 09:05 UTC"
    assert "Run b succeeded" in mailoutbox[1].body and "Run a" not in mailoutbox[1].body


def test_ingest_enqueues_one_usage_evaluation_after_commit(
    alpha, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    from alerts import tasks

    monkeypatch.setattr(
        tasks.alerts_after_usage, "apply_async", lambda args, **options: queued.append(args)
    )
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with schema_context(alpha.schema), django_capture_on_commit_callbacks(execute=True):
        _spend(alpha.tenant, "1", at=at, event_id="q1")
        assert queued == []  # nothing before commit
    with schema_context(alpha.schema), django_capture_on_commit_callbacks(execute=True):
        _spend(alpha.tenant, "1", at=at, event_id="q2")  # within 30 s: coalesced
        _spend(alpha.tenant, "1", at=at, event_id="q1")  # a duplicate: nothing stored
    assert queued == [[]]
