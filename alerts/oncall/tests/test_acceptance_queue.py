"""Acceptance (issue 17): a real Celery beat (``celery -A factory_portal beat``, a subprocess with
the oncall-evaluate entry every second) and a real worker (in this process) evaluate the rules,
not eager mode. A tenant's queue is driven above 1,000 jobs (metrics stored by the ingest service
every half second) past the rule's window and ``for``: exactly one trigger page per route; the
queue drains: exactly one resolve per route, and nothing more. Local receivers stand in for
PagerDuty and Slack and check the documented bodies (``receivers``): each gets one trigger and
one resolve, PagerDuty's under one dedup key.

The rows are committed on connections of their own (the worker and the beat's tasks cannot see
the test's transaction) and removed at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from alerts.models import Alert
from alerts.oncall.models import Incident, Page, Route, RuleSetting
from alerts.oncall.tests.own_connection import committed
from alerts.oncall.tests.receivers import PAGERDUTY_KEY, receiver
from factory_portal.celery import app
from factory_portal.tenants.models import Tenant
from notifications.models import Notification
from runtime.domain.metrics import metrics_flatten
from runtime.models import Heartbeat, MetricSeries
from runtime.services.metrics import metrics_ingest
from runtime.tests.otlp_metrics import number_request
from tests.support import real_worker

pytestmark = pytest.mark.django_db

RULE = "factory_queue_depth_high"
QUEUE = "acceptance-build"
REPORTER = "factory-queue"  # the service.name of the test's metric requests (not control plane)
DEADLINE_S = 25


class QueueReporter:
    """A thread that reports the queue's depth to alpha every half second through the metrics
    ingest (as POST /v1/metrics stores it), ``depth`` being what it reports now."""

    def __init__(self, blocker: Any) -> None:
        self.depth = 0.0
        self._blocker = blocker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        try:
            with self._blocker.unblock():
                alpha = Tenant.objects.get(slug="alpha")
                while not self._stop.is_set():
                    now = timezone.now()
                    request = number_request(
                        "queue_depth",
                        [(0, time.time_ns(), self.depth)],
                        kind="gauge",
                        labels={"queue_name": QUEUE},
                        resource={"service.name": REPORTER},
                    )
                    metrics_ingest(batch=metrics_flatten(request), host_tenant=alpha, now=now)
                    self._stop.wait(0.5)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            connections.close_all()

    def __enter__(self) -> QueueReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _database_url() -> str:
    """The test database (the beat's process reads settings from the environment)."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def beat(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A factory_portal beat`` with its own schedule file, the evaluation every
    second, the same Redis and database; killed at the end."""
    env = {
        **os.environ,
        "ONCALL_EVALUATE_EVERY_S": "1",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONPATH": str(settings.BASE_DIR),
    }
    log = (tmp_path / "beat.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "factory_portal",
            "beat",
            "--schedule",
            str(tmp_path / "beat-schedule"),
            "--loglevel",
            "INFO",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)
        log.close()


def wait_for(blocker: Any, check: Callable[[], bool], what: str, tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if committed(blocker, check):
            return
        time.sleep(0.25)
    beat_log = (tmp_path / "beat.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out waiting for {what}; the beat's log ends with:\n{beat_log}")


def _pages() -> dict[str, list[int]]:
    """Route ids of the alpha incident's pages, by event."""
    out: dict[str, list[int]] = {}
    for event, route in Page.objects.filter(incident__rule=RULE).values_list("event", "route"):
        out.setdefault(event, []).append(route)
    return {event: sorted(routes) for event, routes in out.items()}


def _incidents() -> list[tuple[str, Any, Any, Any]]:
    return list(
        Incident.objects.filter(rule=RULE)
        .order_by("pk")
        .values_list("state", "started_at", "fired_at", "resolved_at")
    )


def _setup(slack_url: str) -> list[int]:
    """The queue rule lowered to a 5 s window and 3 s ``for``, a Slack route and a PagerDuty
    route (this team pages on warnings too) besides the default e-mail route; returns the ids of
    the routes that take warnings."""
    RuleSetting.objects.update_or_create(
        rule=RULE,
        defaults={"threshold": Decimal(1000), "window_s": 5, "for_s": 3, "severity": "warning"},
    )
    Route.objects.create(
        name="Acceptance Slack",
        channel=Route.Channel.SLACK,
        severities=["warning"],
        target=slack_url,
    )
    Route.objects.create(
        name="Acceptance PagerDuty",
        channel=Route.Channel.PAGERDUTY,
        severities=["critical", "warning"],
        routing_key=PAGERDUTY_KEY,
    )
    return sorted(
        r.pk for r in Route.objects.filter(enabled=True) if "warning" in (r.severities or [])
    )


def _cleanup() -> None:
    Incident.objects.filter(rule=RULE).delete()  # its pages with it
    Route.objects.filter(name__startswith="Acceptance ").delete()
    RuleSetting.objects.filter(rule=RULE).delete()
    Alert.objects.filter(key__startswith="incident:").delete()
    Notification.objects.filter(kind="runtime").delete()
    MetricSeries.objects.filter(name="queue_depth", labels__queue_name=QUEUE).delete()
    Heartbeat.objects.filter(service=REPORTER).delete()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Started before the test's transaction: a worker starting up closes the database
    connections of the thread that starts it."""
    app.conf.task_ignore_result = False
    with django_db_blocker.unblock(), real_worker() as running:
        yield running


def _alert_keys() -> list[str]:
    return sorted(Alert.objects.filter(key__startswith="incident:").values_list("key", flat=True))


def test_a_queue_above_1000_pages_once_and_resolves_once_when_it_drains(
    worker, tmp_path, django_db_blocker, settings
):
    settings.ONCALL_CLEAR_FOR_S = 3  # the worker runs in this process: it reads this
    started = time.monotonic()
    with receiver("pagerduty") as pagerduty, receiver("slack") as slack:
        routes = committed(django_db_blocker, lambda: _setup(slack.url))
        assert len(routes) == 3  # the default e-mail route, Slack and PagerDuty
        try:
            _drive(django_db_blocker, tmp_path, routes)
            wait_for(
                django_db_blocker,
                lambda: len(pagerduty.requests) >= 2 and len(slack.requests) >= 2,
                "the receivers",
                tmp_path,
            )
        finally:
            committed(django_db_blocker, _cleanup)
    assert [r["event_action"] for r in pagerduty.requests] == ["trigger", "resolve"]
    assert pagerduty.answers == [202, 202]  # the receiver found the documented fields
    trigger, resolve = pagerduty.requests
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["severity"] == "warning"
    assert "1,500" in trigger["payload"]["summary"] and QUEUE in trigger["payload"]["summary"]
    incident_id = trigger["dedup_key"].rsplit("/", 1)[1]  # …/<fingerprint>/<incident id>
    assert trigger["links"][0]["href"].endswith(f"/alerts/{incident_id}/")
    assert slack.answers == [200, 200]
    slack_trigger, slack_resolve = (r["text"] for r in slack.requests)
    assert "Queue depth high" in slack_trigger and "1,500" in slack_trigger
    assert "Resolved" in slack_resolve
    assert time.monotonic() - started < 45


def _drive(django_db_blocker: Any, tmp_path: Path, routes: list[int]) -> None:
    """The queue above 1,000 until every route has its trigger page, then drained until every
    route has its resolve page; the incident's rows checked on the way."""
    with QueueReporter(django_db_blocker) as reporter, beat(tmp_path):
        reporter.depth = 1500.0
        wait_for(
            django_db_blocker,
            lambda: len(_pages().get("trigger", [])) == len(routes),
            "the trigger pages",
            tmp_path,
        )
        time.sleep(2)  # still above: evaluated again, nothing sent twice
        [(state, pending_since, fired_at, _)] = committed(django_db_blocker, _incidents)
        assert state == "firing"
        assert (fired_at - pending_since).total_seconds() >= 3  # pending for the rule's for
        assert committed(django_db_blocker, _pages) == {"trigger": routes}

        reporter.depth = 0.0  # drained
        wait_for(
            django_db_blocker,
            lambda: len(_pages().get("resolve", [])) == len(routes),
            "the resolve pages",
            tmp_path,
        )
        time.sleep(2)  # below from now on: no new incident, nothing sent again
        assert reporter.errors == []
    incidents = committed(django_db_blocker, _incidents)
    assert [i[0] for i in incidents] == ["resolved"]
    assert incidents[0][3] > incidents[0][2]  # resolved after it fired
    assert committed(django_db_blocker, _pages) == {"trigger": routes, "resolve": routes}
    pk = committed(django_db_blocker, lambda: Incident.objects.get(rule=RULE).pk)
    assert committed(django_db_blocker, _alert_keys) == [
        f"incident:{pk}:firing",
        f"incident:{pk}:resolved",
    ]  # the inbox heard of both
    for schema in ("beta", "public"):  # only alpha's schema holds the incident
        assert not committed(django_db_blocker, lambda: Incident.objects.exists(), schema=schema)
