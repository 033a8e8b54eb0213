"""Budget evaluations on two workers at once (each thread on its own database connection).

The rows are committed (threads cannot see the test's transaction) and removed by the module's
fixture; this module holds only these tests so nothing else sees them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery
from alerts.services import evaluate
from alerts.tests.test_alerts import TODAY, _spend
from billing.models import Budget
from notifications.models import Notification
from tests.support import noon

pytestmark = pytest.mark.django_db

PROJECTS = ("jump", "turns")
AT = datetime(2026, 11, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def committed(django_db_setup, django_db_blocker) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """alpha's Tenant; whatever the tests commit for PROJECTS is removed afterwards."""
    from factory_portal.tenants.models import Tenant
    from usage.models import LlmUsageDaily, LlmUsageEvent, LlmUsageHourly, Project

    with django_db_blocker.unblock():
        tenant = Tenant.objects.get(slug="alpha")
        schema = tenant.schema_name
    yield tenant
    with django_db_blocker.unblock(), schema_context(schema):
        for project in PROJECTS:
            Notification.objects.filter(title__contains=f"project {project}").delete()
            Alert.objects.filter(key__startswith=f"budget:project={project}:").delete()
            Budget.objects.filter(project=project).delete()
            LlmUsageEvent.objects.filter(project__slug=project).delete()
            LlmUsageHourly.objects.filter(project__slug=project).delete()
            LlmUsageDaily.objects.filter(project__slug=project).delete()
            Project.objects.filter(slug=project).delete()


def _threaded(blocker: Any, schema: str, work: Callable[[], Any]) -> tuple[threading.Thread, list]:
    """Start ``work`` in ``schema`` on a thread with its own connection; the list gets its
    result (or the exception it raised)."""
    out: list = []

    def run() -> None:
        try:
            with blocker.unblock(), schema_context(schema):
                out.append(work())
        except BaseException as exc:  # reported by the test
            out.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _done(blocker: Any, schema: str, work: Callable[[], Any]) -> Any:
    thread, out = _threaded(blocker, schema, work)
    thread.join(30)
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def _evaluate() -> list[dict[str, Any]]:
    return [
        {"key": a.key, "crossed": a.data["thresholds_crossed"], "body": a.body}
        for a in evaluate.budgets_evaluate(now=noon(TODAY))
    ]


def test_two_workers_on_a_jump_raise_one_alert_naming_the_highest(committed, django_db_blocker):
    tenant = committed
    schema = tenant.schema_name

    def setup() -> None:
        Budget.objects.create(project="jump", amount=Decimal("100"), thresholds=[50, 80, 100])
        _spend(tenant, "105", at=AT, event_id="jump-1", project="jump")  # 0% -> 105% at once

    _done(django_db_blocker, schema, setup)
    barrier = threading.Barrier(2)

    def racing() -> list[dict[str, Any]]:
        barrier.wait()
        return _evaluate()

    workers = [_threaded(django_db_blocker, schema, racing) for _ in range(2)]
    for thread, _ in workers:
        thread.join(30)
    results = [out[0] for _, out in workers]
    assert not any(isinstance(r, BaseException) for r in results), results
    assert sorted(len(r) for r in results) == [0, 1]
    [alert] = [a for r in results for a in r]
    assert alert["key"] == "budget:project=jump:2026-11:actual:100"
    assert alert["crossed"] == [50, 80, 100]
    assert _done(django_db_blocker, schema, _evaluate) == []  # and the lower ones never

    def stored() -> tuple[int, int, int]:
        return (
            Alert.objects.filter(key__startswith="budget:project=jump:").count(),
            Notification.objects.filter(title__contains="project jump").count(),
            Delivery.objects.filter(alert__key__startswith="budget:project=jump:").count(),
        )

    assert _done(django_db_blocker, schema, stored) == (1, 1, 1)


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def test_a_second_worker_waits_and_announces_only_what_is_left(committed, django_db_blocker):
    """Worker A raises 80% and has not committed yet when spend jumps past 100% and worker B
    evaluates: B waits for A, then names 100% alone (not 50%, 80% and 100% again)."""
    tenant = committed
    schema = tenant.schema_name

    def setup() -> None:
        Budget.objects.create(project="turns", amount=Decimal("100"), thresholds=[50, 80, 100])
        _spend(tenant, "85", at=AT, event_id="turns-1", project="turns")

    _done(django_db_blocker, schema, setup)
    evaluated, release = threading.Event(), threading.Event()

    def slow_commit() -> list[dict[str, Any]]:
        with transaction.atomic():
            raised = _evaluate()
            evaluated.set()
            release.wait(30)
        return raised

    first, first_out = _threaded(django_db_blocker, schema, slow_commit)
    assert evaluated.wait(30)
    _done(
        django_db_blocker,
        schema,
        lambda: _spend(tenant, "20", at=AT, event_id="turns-2", project="turns"),
    )
    second, second_out = _threaded(django_db_blocker, schema, _evaluate)
    deadline = time.monotonic() + 10
    while second.is_alive() and not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    first.join(30)
    second.join(30)
    assert [a["crossed"] for a in first_out[0]] == [[50, 80]]
    [alert] = second_out[0]
    assert alert["key"] == "budget:project=turns:2026-11:actual:100"
    assert alert["crossed"] == [100]
    assert alert["body"].startswith("$105.00 of $100.00 (threshold 100% crossed).")
