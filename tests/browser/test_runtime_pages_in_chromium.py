"""The runtime pages in Chromium (see test_pages_in_chromium.py for the checks each page gets):
Status, Factory health and Queues & workers on a tenant with metrics, heartbeats and runs, the
same pages of a tenant that has reported nothing (empty states, no chart axes), and the
operator's Factory health and Queues & workers over platform series, at 1280 and 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.browser.test_pages_in_chromium import (  # noqa: F401 - the browser fixture
    CHROMEDRIVER,
    CHROMIUM,
    _check_page,
    _log_in,
    browser,
)
from tests.support import OPERATOR_EMAIL, PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="Chromium and chromedriver are not installed (bin/test installs them as root)",
    ),
]

PAGES = {"status": "/status/", "factory-health": "/health/factory/", "queues": "/health/queues/"}
MARK = "browser-test"


def _factory(now, prefix: str) -> None:  # type: ignore[no-untyped-def]
    from runtime.models import MetricKind
    from runtime.tests.rows import Hist, heartbeat_make, points_write, series_make

    times = [now - timedelta(minutes=i) for i in range(0, 180, 2)]
    wave = [10 + (i % 15) for i in range(len(times))]
    for queue in ("build", "deploy"):
        points_write(
            series_make("queue_depth", queue_name=f"{prefix}{queue}", mark=MARK),
            list(zip(times, map(float, wave), strict=True)),
        )
        points_write(
            series_make("queue_processing_rate", queue_name=f"{prefix}{queue}", mark=MARK),
            [(t, 0.2) for t in times],
        )
        points_write(
            series_make("dlq_size", queue_name=f"{prefix}{queue}", mark=MARK),
            [(t, 1.0) for t in times],
        )
    for pool in ("cpu", "gpu"):
        labels = {"worker_pool": f"{prefix}{pool}", "mark": MARK}
        points_write(series_make("jobs_processing", **labels), [(t, 4.0) for t in times])
        points_write(
            series_make("worker_cpu_usage", worker_id="w1", **labels), [(t, 0.6) for t in times]
        )
        points_write(
            series_make("worker_memory_usage", worker_id="w1", **labels),
            [(t, 2.0e9) for t in times],
        )
        points_write(
            series_make("worker_errors_total", MetricKind.SUM, error_type="oom", **labels),
            [(t, 1.0) for t in times],
        )
    points_write(
        series_make("jobs_in_queue", job_type=f"{prefix}codegen", mark=MARK),
        [(t, 5.0) for t in times],
    )
    points_write(
        series_make("retries_total", MetricKind.SUM, job_type=f"{prefix}codegen", mark=MARK),
        [(t, 2.0) for t in times],
    )
    points_write(
        series_make("job_duration_seconds", MetricKind.HISTOGRAM, mark=MARK),
        [(t, Hist([1, 10, 60], [1, 6, 2, 0], sum=90)) for t in times],
    )
    for name in ("run_success_total", "run_failure_total"):
        points_write(series_make(name, MetricKind.SUM, mark=MARK), [(t, 2.0) for t in times])
    points_write(
        series_make("run_duration_seconds", MetricKind.HISTOGRAM, mark=MARK),
        [(t, Hist([60, 600], [1, 3, 0], sum=900)) for t in times],
    )
    heartbeat_make(f"{prefix}control-plane", now - timedelta(seconds=10))
    heartbeat_make(f"{prefix}worker", now - timedelta(seconds=10))


@pytest.fixture(scope="module")
def runtime_site(django_db_setup, django_db_blocker) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    from factory_portal.accounts.models import Role
    from factory_portal.accounts.services import user_create
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import tenant_create, tenant_delete
    from runtime.models import Heartbeat, MetricSeries
    from tests.support import run_finished, run_update

    now = timezone.now()
    with django_db_blocker.unblock():
        tenants = []
        for slug in ("delta", "epsilon"):
            if (old := tenant_by_slug(slug)) is not None:
                tenant_delete(tenant=old)
            tenants.append(
                tenant_create(
                    slug=slug,
                    name=slug.title(),
                    admin_email=f"admin@{slug}.test",
                    admin_password=PASSWORD,
                ).tenant
            )
        with schema_context(tenants[0].schema_name):
            user_create(email="dev@delta.test", role=Role.MEMBER, password=PASSWORD)
            _factory(now, "")
            for i in range(12):
                run_finished(
                    f"r-{i}",
                    "Failed" if i % 4 == 0 else "Succeeded",
                    now - timedelta(minutes=20 + 9 * i),
                    5 + i,
                    failure_type="deploy_error" if i % 4 == 0 else "",
                )
            run_update("waiting", "Requested", now, requested_at=now - timedelta(minutes=3))
        with schema_context("public"):
            _factory(now, "platform-")
        server = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override={}, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield {
                "delta": f"http://delta.{settings.PORTAL_BASE_DOMAIN}:{server.port}",
                "epsilon": f"http://epsilon.{settings.PORTAL_BASE_DOMAIN}:{server.port}",
                "operator": f"http://{settings.PORTAL_BASE_DOMAIN}:{server.port}",
            }
        finally:
            server.terminate()
            for tenant in tenants:
                tenant_delete(tenant=tenant)
            with schema_context("public"):
                MetricSeries.objects.filter(labels__mark=MARK).delete()
                Heartbeat.objects.filter(service__startswith="platform-").delete()


@pytest.mark.parametrize("width", [1280, 390])
def test_runtime_pages_with_data(runtime_site, browser, width):  # noqa: F811
    from selenium.webdriver.common.by import By

    _log_in(browser, runtime_site["delta"], "dev@delta.test")
    for name, path in PAGES.items():
        for preset in ("1h", "24h", "7d") if path != "/status/" else ("",):
            url = runtime_site["delta"] + path + (f"?range={preset}" if preset else "")
            _check_page(browser, url, f"runtime-{name}{'-' + preset if preset else ''}", width)
            if path != "/status/":
                assert browser.find_elements(By.CSS_SELECTOR, ".chart[data-figure]"), url
    browser.get(runtime_site["delta"] + "/status/")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "Control plane" in main and "control-plane" in main
    assert "build" in main and "Runs waiting" in main


@pytest.mark.parametrize("width", [1280, 390])
def test_runtime_pages_empty(runtime_site, browser, width):  # noqa: F811
    from selenium.webdriver.common.by import By

    _log_in(browser, runtime_site["epsilon"], "admin@epsilon.test")
    for name, path in PAGES.items():
        _check_page(browser, runtime_site["epsilon"] + path, f"runtime-{name}-empty", width)
        assert not browser.find_elements(By.CSS_SELECTOR, ".chart"), path
        assert browser.find_elements(By.CSS_SELECTOR, ".empty"), path


@pytest.mark.parametrize("width", [1280, 390])
def test_operator_runtime_pages(runtime_site, browser, width):  # noqa: F811
    from selenium.webdriver.common.by import By

    _log_in(browser, runtime_site["operator"], OPERATOR_EMAIL)
    for name, path in {"factory-health": "/health/factory/", "queues": "/health/queues/"}.items():
        _check_page(browser, runtime_site["operator"] + path, f"console-runtime-{name}", width)
        assert browser.find_elements(By.CSS_SELECTOR, ".chart[data-figure]"), path
        assert "platform-" in browser.find_element(By.TAG_NAME, "main").text, path
