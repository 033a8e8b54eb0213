"""End to end, the runtime half: a simulated factory on the stock OpenTelemetry SDK exports
traces (with real exceptions), metrics and logs to a live portal server with a tenant's key; the
portal keeps them in that tenant and its pages show them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import api_key_create, user_create
from factory_portal.tenants.services import tenant_create, tenant_delete
from runtime.models import Heartbeat, MetricMinute, MetricPoint, MetricSeries
from tests.support import PASSWORD, host_client, logged_in_client
from usage.models import ErrorGroup, Job, Project, Run, RunLog, SpanError
from web.demo.factory import SimulatedFactory

SLUG = "simfactory"
pytestmark = pytest.mark.django_db


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _serve(server) -> None:  # type: ignore[no-untyped-def]
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        connections.close_all()


@pytest.fixture(scope="module")
def reported(django_db_setup, django_db_blocker) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    """A tenant of its own (dropped afterwards), a live server, and three ticks of the simulated
    factory sent to it with the tenant's ingest key."""
    with django_db_blocker.unblock():
        created = tenant_create(
            slug=SLUG,
            name="Sim Factory",
            admin_email="admin@simfactory.test",
            admin_password=PASSWORD,
        )
        with schema_context(created.tenant.schema_name):
            Project.objects.create(slug="checkout", name="Checkout")
            _, raw = api_key_create(name="factory", scopes=["ingest"])
        server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
        thread = threading.Thread(target=_serve, args=(server,), daemon=True)
        thread.start()
        port = server.server_port
        factory = SimulatedFactory(
            endpoint=f"http://127.0.0.1:{port}",
            host=f"{SLUG}.localhost:{port}",
            key=raw,
            project="checkout",
            seed=3,
            failure_rate=0.5,
            runs_per_tick=5,
        )
        try:
            runs = sum(factory.tick(time.time_ns() - (3 - n) * 30 * 10**9) for n in range(3))
            factory.shutdown()
            yield {"tenant": created.tenant, "runs": runs}
        finally:
            server.shutdown()
            thread.join(10)
            tenant_delete(tenant=created.tenant)


def test_traces_with_exceptions_become_runs_errors_and_groups(reported):
    with schema_context(SLUG):
        runs = Run.objects.count()
        failed = set(Run.objects.filter(status="Failed").values_list("run_id", flat=True))
        errors = list(SpanError.objects.select_related("run", "job"))
        groups = ErrorGroup.objects.count()
    assert runs == reported["runs"]
    assert failed and errors
    # Every failed run has its exception, with the job attempt and a real Python stack trace.
    assert {e.run.run_id for e in errors} >= failed
    exceptions = [e for e in errors if e.source == "exception"]
    assert {e.run.run_id for e in exceptions} == failed
    # The run span's error status is kept too (its failure type, no stack trace).
    assert {e.span_name for e in errors if e.source == "status"} <= {"factory.run.execute"}
    for error in exceptions:
        assert error.type.split(".")[-1] in {"GitPushRejected", "BuildFailed", "DeployTimeout"}
        assert error.stacktrace.startswith("Traceback (most recent call last):")
        assert error.job is not None and error.step_name == error.job.step_name
    # Messages differ by branch, sha, service or count; groups only by type and build target.
    assert 1 <= groups <= 5 + 3 < len(errors)


def test_logs_are_kept_per_run_with_their_trace(reported):
    with schema_context(SLUG):
        logs = RunLog.objects.count()
        error_logs = list(RunLog.objects.filter(level="ERROR"))
        jobs = Job.objects.count()
    assert logs >= 2 * jobs  # started + finished/failed per attempt
    assert error_logs and all(len(log.trace_id) == 32 for log in error_logs)
    assert all(log.attributes.get("error") for log in error_logs)


def test_metrics_are_the_tenants_series_with_rollups_and_heartbeats(reported):
    with schema_context(SLUG):
        names = dict(MetricSeries.objects.values_list("name", "category").distinct())
        points = MetricPoint.objects.count()
        minutes = MetricMinute.objects.filter(series__name="queue_depth").count()
        services = set(Heartbeat.objects.values_list("service", flat=True))
    with schema_context("public"):
        platform = MetricSeries.objects.filter(labels__service__name="factory-worker").count()
    assert names["queue_depth"] == names["worker_errors_total"] == "runtime"
    assert names["job_duration_seconds"] == "runtime"
    assert names["tokens_used_total"] == "usage"  # counted, never money
    assert points > 0 and minutes > 0
    assert services == {"factory-control-plane", "factory-worker"}
    assert platform == 0  # a tenant key's metrics never land in the platform's series


def test_the_pages_show_it_to_the_tenant_only(reported):
    with schema_context(SLUG):
        user_create(email="dev@simfactory.test", role=Role.MEMBER, password=PASSWORD)
        failed = Run.objects.filter(status="Failed").order_by("requested_at").first()
        error = SpanError.objects.filter(run=failed).first()
    assert failed is not None and error is not None
    member = logged_in_client(f"{SLUG}.localhost", "dev@simfactory.test")
    errors_page = member.get("/errors/").content.decode()
    assert error.type.split(".")[-1] in errors_page
    run_page = member.get(f"/runs/{failed.run_id}/").content.decode()
    assert "Traceback (most recent call last)" in run_page
    assert error.message[:40] in run_page
    # Another tenant's people see none of it.
    other = logged_in_client("alpha.localhost", "admin@alpha.test")
    assert error.type.split(".")[-1] not in other.get("/errors/").content.decode()
    assert other.get(f"/runs/{failed.run_id}/").status_code == 404
    assert host_client(f"{SLUG}.localhost").get("/errors/").status_code in (302, 403)
