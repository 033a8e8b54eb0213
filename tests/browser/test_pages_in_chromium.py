"""Every page in a real browser: Debian's headless Chromium, driven by Selenium through the
system's chromedriver, against the site served on a loopback port.

A tenant ``gamma`` is seeded (committed) with two weeks of demo history for this module and
dropped afterwards. Each page is opened at 1280 px and at 390 px: the page must load without
console errors (a Content-Security-Policy violation is one), every plotly chart must have drawn
its SVG, the page must not scroll sideways on a phone, and it must carry the policy header.
Screenshots go to ``build/screenshots/<width>/``.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import OPERATOR_EMAIL, PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(settings.BASE_DIR) / "build" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    # The page data is committed by the module fixture and read by the server's own threads;
    # the mark makes pytest-django create the test database even when only this file runs.
    pytest.mark.django_db,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="Chromium and chromedriver are not installed (bin/test installs them as root)",
    ),
]

TENANT_PAGES = {
    "overview": "/",
    "active-runs": "/runs/active/",
    "run-history": "/runs/",
    "usage": "/usage/",
    "errors": "/errors/",
    "errors-empty": "/errors/?from=2020-01-01&to=2020-01-14",
    "steps": "/steps/",
    "costs": "/costs/",
    "savings": "/costs/savings/",
    "reports": "/reports/",
    "budgets": "/budgets/",
    "notifications": "/notifications/",
    "api-keys": "/settings/api-keys/",
    "users": "/settings/users/",
    "workspace": "/settings/workspace/",
    "alert-rules": "/settings/alerts/",
    "webhooks": "/settings/webhooks/",
    "run-alerts": "/settings/run-alerts/",
    "alert-routes": "/settings/alert-routes/",
    "alert-route": "/settings/alert-routes/1/",
    "alerts": "/alerts/",
    "alert-silences": "/alerts/silences/",
    "runtime-rules": "/settings/alert-rules/",
}
OPERATOR_PAGES = {
    "console-tenants": "/",
    "console-customer-costs": "/customer-costs/",
    "console-price-book": "/price-book/",
    "console-pools": "/pools/",
    "console-allocation": "/allocation/",
    "console-health": "/health/",
    "console-alert-routes": "/alerts/routes/",
    "console-alert-route": "/alerts/routes/1/",
    "console-alerts": "/alerts/",
    "console-runtime-rules": "/alerts/rules/",
}


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    """A seeded tenant and the site on a loopback port (its own thread and DB connections)."""
    from billing.services import budget_set, forecasts_refresh
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import tenant_delete
    from notifications.services import notification_create
    from usage.models import Run
    from web.demo.profiles import PROFILES
    from web.demo.seed import demo_seed

    profile = dataclasses.replace(PROFILES[2], slug="gamma", name="Gamma Ltd", active_now=3)
    with django_db_blocker.unblock():
        if (old := tenant_by_slug("gamma")) is not None:
            tenant_delete(tenant=old)
        now = timezone.now()
        # No platform bills: cost pools are shared by every tenant and would outlive the module.
        seeded = demo_seed(
            seed=11,
            now=now,
            days=21,
            password=PASSWORD,
            profiles=(profile,),
            billing=False,
            metric_days=1,
        )
        tenant = seeded[0].tenant
        with schema_context(tenant.schema_name):
            budget_set(amount=Decimal(400))
            forecasts_refresh(today=now.date())
            notification_create(
                kind="budget", severity="warning", title="80% of the monthly budget spent"
            )
            run_id = Run.objects.filter(status="Succeeded").order_by("-requested_at")[0].run_id
            _hostile_runs(now)
            _debuggable_run(now)
            error_fingerprint = _errors_seed(now)
        server = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override={}, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield {
                "tenant": f"http://gamma.{settings.PORTAL_BASE_DOMAIN}:{server.port}",
                "operator": f"http://{settings.PORTAL_BASE_DOMAIN}:{server.port}",
                "run_id": run_id,
                "error_fingerprint": error_fingerprint,
            }
        finally:
            server.terminate()
            tenant_delete(tenant=tenant)


# Run ids a browser would rewrite if links left them raw: "a/../b" becomes /runs/b/.
HOSTILE_RUN_IDS = ("a/../b", "./x/%2F?#", "日本/語 ü", "=1+1 <b>bold</b>")
HOSTILE_JOB_ID = "<a href='https://example.com/'>job</a> & <b>more</b>"


def _hostile_runs(now) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from usage.domain.runs import JobUpdate, RunUpdate
    from usage.services.runs import runs_ingest

    start = now - timedelta(minutes=10)
    job = JobUpdate(HOSTILE_JOB_ID, 1, "Succeeded", now, started_at=start, finished_at=now)
    runs_ingest(
        updates=[
            RunUpdate(
                0, run_id, "web", "Succeeded", now, started_at=start, finished_at=now, jobs=(job,)
            )
            for run_id in HOSTILE_RUN_IDS
        ]
    )


DEBUG_RUN_ID = "failing-deploy"


def _debuggable_run(now) -> None:  # type: ignore[no-untyped-def]
    """A failed run with a span error (stack trace), calls in its job and log lines."""
    from datetime import timedelta

    from django.db import connection

    from factory_portal.tenants.models import Tenant
    from tests.support import llm_event_in
    from usage.domain.otlp import span_event_id
    from usage.domain.runs import JobUpdate, RunUpdate
    from usage.models import ExternalCall, Job, Run, RunLog, SpanError
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest
    from usage.services.runs import runs_ingest

    start = now - timedelta(minutes=5)
    job = JobUpdate("deploy", 1, "Failed", now, "deploy", start, now, failure_type="deploy_error")
    runs_ingest(
        updates=[
            RunUpdate(
                0,
                DEBUG_RUN_ID,
                "web",
                "Failed",
                now,
                started_at=start,
                finished_at=now,
                failure_type="deploy_error",
                jobs=(job,),
            )
        ]
    )
    run = Run.objects.get(run_id=DEBUG_RUN_ID)
    deploy = Job.objects.get(run=run)
    for n, (kind, service, status) in enumerate(
        [("llm", "anthropic", "ok"), ("external", "azure_devops", "error")]
    ):
        ExternalCall.objects.create(
            span_id=f"{n + 1}" * 16,
            trace_id="cd" * 16,
            run=run,
            job=deploy,
            kind=kind,
            service=service,
            model="claude-sonnet-4-5" if kind == "llm" else "",
            started_at=start + timedelta(minutes=n + 1),
            duration_ms=30_000,
            status=status,
        )
    # An LLM call traced since migration usage 0015: its usage event keeps its duration.
    events_ingest(
        events=[
            llm_event_in(
                span_event_id("cd" * 16, "a" * 16),
                start + timedelta(minutes=4),
                project="web",
                run_id=DEBUG_RUN_ID,
                job_id="deploy",
                duration_ms=20_000,
            )
        ],
        pricer=pricer_for(Tenant.objects.get(schema_name=connection.schema_name)),
    )
    SpanError.objects.create(
        run=run,
        job=deploy,
        job_ref="deploy",
        step_name="deploy",
        attempt=1,
        trace_id="cd" * 16,
        span_id="9" * 16,
        source="exception",
        occurred_at=now - timedelta(minutes=1),
        type="GitError",
        message="push rejected by remote " + "x" * 200,
        stacktrace="Traceback (most recent call last):\n" + "  File 'deploy.py', line 1\n" * 40,
        fingerprint="browser",
    )
    RunLog.objects.bulk_create(
        RunLog(
            run=run,
            digest=f"browser-{i}",
            time=now - timedelta(minutes=2, seconds=-i),
            level="ERROR" if i == 61 else "INFO",
            message=f"deploy step {i} " + ("a-very-long-unbroken-token" * 8 if i == 3 else ""),
            job_ref="deploy",
            step_name="deploy",
            attributes={"workerId": "w-1"},
        )
        for i in range(70)
    )


LONG_TRACE = "Traceback (most recent call last):\n" + "".join(
    f'  File "/srv/factory/app/steps/very/deep/module_{n}.py", line {n}, in step_{n}\n'
    f"    call_something_with_a_rather_long_expression(argument_{n}, other_{n})\n"
    for n in range(60)
)


def _errors_seed(now) -> str:  # type: ignore[no-untyped-def]
    """Errors of the hostile runs: a long message without spaces, HTML in it, a long stack
    trace (the pages must wrap them at 390 px and show them as text). Returns one fingerprint."""
    from datetime import timedelta

    from usage.domain.errors import ErrorIn
    from usage.models import SpanError
    from usage.services.errors import span_errors_ingest

    errors = [
        ErrorIn(
            trace_id=f"{n:032x}",
            span_id=f"{n:016x}",
            seq=0,
            run_id=run_id,
            project="web",
            job_id=HOSTILE_JOB_ID,
            step_name="deploy",
            attempt=1,
            span_name="factory.job.execute",
            source="exception",
            occurred_at=now - timedelta(hours=n * 7),
            type=kind,
            message=message,
            stacktrace=LONG_TRACE,
        )
        for n, (run_id, (kind, message)) in enumerate(
            zip(
                HOSTILE_RUN_IDS * 2,
                [
                    ("DeployConflict", "manifest 'a.yaml' conflicts with revision 41"),
                    ("HtmlError", "<b>bold</b> <a href='https://example.com/'>link</a>"),
                    ("LongError", "x" * 600),
                    ("DeployConflict", "manifest 'b.yaml' conflicts with revision 7"),
                ]
                * 2,
                strict=False,
            )
        )
    ]
    span_errors_ingest(errors=errors)
    return SpanError.objects.filter(type="DeployConflict").values_list("fingerprint", flat=True)[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        # *.localhost resolves to loopback in Chromium; other base domains are mapped there.
        f"--host-resolver-rules=MAP *.{settings.PORTAL_BASE_DOMAIN} 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _log_in(driver, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/login/")
    driver.find_element(By.NAME, "username").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(driver, lambda d: "/login/" not in d.current_url)


def _wait(driver, condition, timeout: float = 15):  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Polled every 50 ms, not Selenium's default 500 ms: most waits are for a chart drawn or a
    # page loaded a moment later, and each one otherwise cost up to half a second. An element
    # replaced between finding it and reading it (a live update swapping the queue panel) is
    # looked for again at the next poll, not a failure.
    return WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.05,
        ignored_exceptions=[StaleElementReferenceException],
    ).until(condition)


def _console_errors(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _check_page(driver, url: str, name: str, width: int) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    driver.set_window_size(width, 900)
    driver.get(url)
    assert driver.find_element(By.TAG_NAME, "h1").text, f"{name}: no heading"
    assert not driver.title.startswith(("Server Error", "Not allowed", "Not found")), name
    charts = driver.find_elements(By.CSS_SELECTOR, ".chart[data-figure]")
    for chart in charts:
        _wait(driver, lambda d, c=chart: c.find_elements(By.CSS_SELECTOR, "svg.main-svg"))
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {width}px"
    folder = SCREENSHOTS / str(width)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{name}.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 5_000, f"{name}: blank screenshot"
    assert _console_errors(driver) == [], f"{name}: console errors"
    # The page was held to the site's policy (a violation would have been a console error).
    policy = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch(location.href, {credentials: 'same-origin'})"
        ".then(function (r) { done(r.headers.get('content-security-policy')); });"
    )
    directives = [part.strip() for part in (policy or "").split(";")]
    assert "script-src 'self'" in directives, f"{name}: no Content-Security-Policy"


@pytest.mark.parametrize("width", [1280, 390])
def test_every_tenant_page_renders_with_charts_and_no_errors(site, browser, width):
    _log_in(browser, site["tenant"], "admin@gamma.test")
    pages = dict(
        TENANT_PAGES,
        **{
            "run-details": f"/runs/{site['run_id']}/",
            "error-group": f"/errors/{site['error_fingerprint']}/",
        },
    )
    for name, path in pages.items():
        _check_page(browser, site["tenant"] + path, name, width)
    # Pages with data draw charts: the overview's daily cost, the run's timeline, usage trends.
    for path in ("/", f"/runs/{site['run_id']}/", "/usage/", "/steps/", "/costs/", "/errors/"):
        browser.get(site["tenant"] + path)
        assert browser.find_elements("css selector", ".chart[data-figure]"), path


@pytest.mark.parametrize("width", [1280, 390])
def test_every_operator_page_renders_with_no_errors(site, browser, width):
    _log_in(browser, site["operator"], OPERATOR_EMAIL)
    for name, path in OPERATOR_PAGES.items():
        _check_page(browser, site["operator"] + path, name, width)


def test_api_docs_render_under_the_content_security_policy(site, browser):
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    browser.get(site["tenant"] + "/api/docs/")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
    assert "Factory Portal API" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info").text
    assert _console_errors(browser) == []


def test_run_history_filters_and_pages(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.set_window_size(1280, 900)
    _log_in(browser, site["tenant"], "dev@gamma.test")
    browser.get(site["tenant"] + "/runs/")
    first_page = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tbody tr td code")]
    assert len(first_page) == 50
    browser.find_element(By.CSS_SELECTOR, "[data-testid=next-page]").click()
    _wait(browser, lambda d: "after=" in d.current_url)
    second_page = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tbody tr td code")]
    assert second_page and not set(first_page) & set(second_page)

    browser.get(site["tenant"] + "/runs/")
    Select(browser.find_element(By.NAME, "status")).select_by_value("Failed")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    _wait(browser, lambda d: "status=Failed" in d.current_url)
    statuses = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "tbody .pill")}
    assert statuses == {"Failed"}
    browser.find_element(By.CSS_SELECTOR, "tbody tr td a").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline svg.main-svg"))
    assert "Failed" in browser.find_element(By.TAG_NAME, "main").text
    assert _console_errors(browser) == []


def test_usage_report_switches_grain(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _log_in(browser, site["tenant"], "dev@gamma.test")
    browser.get(site["tenant"] + "/usage/")
    grain = browser.find_element(By.NAME, "grain")
    Select(grain).select_by_value("week")
    grain.find_element(By.XPATH, "./ancestor::form").find_element(
        By.CSS_SELECTOR, "button[type=submit]"
    ).click()
    _wait(browser, lambda d: "grain=week" in d.current_url)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#run-volume svg.main-svg"))
    assert "per week" in browser.find_element(By.TAG_NAME, "h2").text or "per week" in (
        browser.find_element(By.TAG_NAME, "main").text
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_steps_page_sorts_and_drills_down_to_runs(site, browser, width):
    from selenium.webdriver.common.by import By

    browser.set_window_size(width, 900)
    _log_in(browser, site["tenant"], "dev@gamma.test")
    browser.get(site["tenant"] + "/steps/?days=30")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#step-rates svg.main-svg"))
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=step-row]")
    lead = browser.find_element(By.CSS_SELECTOR, "[data-testid=lead-time]").text
    assert "p50" in lead and "p95" in lead
    browser.find_element(By.LINK_TEXT, "p95").click()
    # The sort keeps the range (``?days=30`` reads as the 30-day preset).
    _wait(browser, lambda d: "sort=p95_ms" in d.current_url and "range=30d" in d.current_url)
    step = browser.find_element(By.CSS_SELECTOR, "[data-testid=step-runs]")
    name = step.text
    browser.execute_script("arguments[0].scrollIntoView();", step)
    step.click()
    _wait(browser, lambda d: "/runs/?" in d.current_url and "step=" in d.current_url)
    assert browser.find_element(By.ID, "f-step").get_attribute("value") == name
    assert browser.find_elements(By.CSS_SELECTOR, "tbody tr td code")
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
    assert _console_errors(browser) == []


def test_active_runs_update_without_reload(site, browser):
    from selenium.webdriver.common.by import By

    _log_in(browser, site["tenant"], "dev@gamma.test")
    browser.get(site["tenant"] + "/runs/active/")
    browser.execute_script("window.portalMarker = 'same page';")
    before = browser.find_element(By.CSS_SELECTOR, "[data-testid=queue]").text
    _wait(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=queue]").text != before,
        timeout=12,
    )
    assert browser.execute_script("return window.portalMarker") == "same page"


def test_active_runs_stop_updating_when_the_session_ends(site, browser):
    """The 5-second refresh swapped the sign-in page into the card once the session ended (a
    security review found it): it stops and says so."""
    from selenium.webdriver.common.by import By

    _log_in(browser, site["tenant"], "dev@gamma.test")
    browser.get(site["tenant"] + "/runs/active/")
    browser.delete_cookie("sessionid")
    note = "Updates stopped: your session ended."
    _wait(browser, lambda d: note in d.find_element(By.ID, "active-runs").text, timeout=12)
    card = browser.find_element(By.ID, "active-runs")
    assert not card.find_elements(By.CSS_SELECTOR, "input[type=password]")
    _log_in(browser, site["tenant"], "dev@gamma.test")  # the next test's session


def test_escape_closes_a_menu_and_keeps_the_keyboard_on_it(site, browser):
    """Escape left the focus on the page's body, so the next Tab started over at the top (a
    UX review found it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _log_in(browser, site["tenant"], "admin@gamma.test")
    browser.get(site["tenant"] + "/")
    summary = browser.find_element(By.CSS_SELECTOR, "details.menu > summary")
    summary.click()
    menu = summary.find_element(By.XPATH, "..")
    assert menu.get_attribute("open") is not None
    menu.find_element(By.CSS_SELECTOR, "a").send_keys(Keys.ESCAPE)
    assert menu.get_attribute("open") is None
    assert browser.switch_to.active_element == summary


def test_roles_see_only_their_pages(site, browser):
    from selenium.webdriver.common.by import By

    _log_in(browser, site["tenant"], "finance@gamma.test")
    nav = browser.find_element(By.CSS_SELECTOR, "nav.main").text
    assert "Costs" in nav and "Run history" not in nav and "API keys" not in nav
    browser.get(site["tenant"] + "/runs/")
    assert browser.title.startswith("Not allowed")
    assert "finance and admin" not in browser.page_source  # the runs area says member and admin
    assert "member and admin" in browser.find_element(By.TAG_NAME, "main").text


def test_run_links_with_hostile_ids_open_their_own_run(site, browser):
    """The browser resolves the links (dot segments, %2F, ?, #, non-ASCII) as users get them,
    and plotly shows a job id as text, not as the link or bold text it spells."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    _log_in(browser, site["tenant"], "admin@gamma.test")
    _console_errors(browser)  # reading the log empties it: earlier tests' 403s are not ours
    for run_id in HOSTILE_RUN_IDS:
        browser.get(site["tenant"] + "/runs/")
        [link] = [
            a for a in browser.find_elements(By.CSS_SELECTOR, "tbody tr td a") if a.text == run_id
        ]
        link.click()
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline svg.main-svg"))
        assert browser.find_element(By.TAG_NAME, "h1").text == f"Run {run_id}"
        ticks = browser.find_elements(By.CSS_SELECTOR, "#timeline .ytick text")
        assert [t.get_attribute("textContent") for t in ticks] == [f"{HOSTILE_JOB_ID} #1"]
        assert not browser.find_elements(By.CSS_SELECTOR, "#timeline a")
    assert _console_errors(browser) == []


@pytest.mark.parametrize("width", [1280, 390])
def test_a_failed_run_shows_its_error_logs_and_waterfall(site, browser, width):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _log_in(browser, site["tenant"], "dev@gamma.test")
    _console_errors(browser)
    url = f"{site['tenant']}/runs/{DEBUG_RUN_ID}/"
    _check_page(browser, url, f"run-debug-{width}", width)
    panel = browser.find_element(By.CSS_SELECTOR, "[data-testid=error-panel]")
    assert "GitError" in panel.text and "attempt 1" in panel.text
    stack = panel.find_element(By.CSS_SELECTOR, "details.stacktrace pre")
    assert not stack.is_displayed()  # collapsed until asked for
    panel.find_element(By.CSS_SELECTOR, "details.stacktrace summary").click()
    _wait(browser, lambda d: stack.is_displayed())
    ticks = [
        t.get_attribute("textContent")
        for t in browser.find_elements(By.CSS_SELECTOR, "#timeline .ytick text")
    ]
    assert ticks == [
        "deploy #1",
        "\u21b3 LLM claude-sonnet-4-5",  # an ExternalCall of kind llm, from before usage 0015
        "\u21b3 azure_devops",
        "\u21b3 LLM gpt-4.1",  # a usage event with its duration, since
    ]
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline .scatterlayer path.point")
    Select(browser.find_element(By.NAME, "level")).select_by_value("ERROR")
    browser.find_element(By.CSS_SELECTOR, "#logs form button").click()
    _wait(browser, lambda d: "level=ERROR" in d.current_url)
    lines = browser.find_elements(By.CSS_SELECTOR, "#logs [data-testid=log-lines] tbody tr")
    assert [line.text.split()[1] for line in lines] == ["ERROR"]


def test_error_groups_lead_to_the_stack_trace_and_the_runs(site, browser):
    """The list links a group to its page; the stack trace opens from its <details>; HTML in a
    message is shown as text; an example run's link opens that run."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 900)
    _log_in(browser, site["tenant"], "dev@gamma.test")
    browser.get(site["tenant"] + "/errors/")
    assert not browser.find_elements(By.CSS_SELECTOR, "main .error-message b")
    assert "<b>bold</b>" in browser.find_element(By.TAG_NAME, "main").text
    [link] = [
        a
        for a in browser.find_elements(By.CSS_SELECTOR, "[data-testid=group-link]")
        if a.text == "DeployConflict"
    ]
    link.click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#group-trend svg.main-svg"))
    trace = browser.find_element(By.CSS_SELECTOR, "[data-testid=stacktrace] pre")
    assert not trace.is_displayed()
    browser.find_element(By.CSS_SELECTOR, "[data-testid=stacktrace] summary").click()
    assert trace.is_displayed() and "module_59.py" in trace.text
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
    run_link = browser.find_element(By.CSS_SELECTOR, "[data-testid=group-examples] tbody a")
    run_id = run_link.text
    run_link.click()
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text.startswith("Run "))
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Run {run_id}"
    assert _console_errors(browser) == []


# The analytics pages share one time-range control and drill down to run history.
RANGE_PAGES = (
    "/",
    "/usage/",
    "/costs/",
    "/steps/",
    "/errors/",
    "/health/factory/",
    "/health/queues/",
)
# Pages whose rows and chart elements stand for runs (queues and workers do not; factory health's
# run charts drill down from a chart point only).
ROW_LINK_PAGES = ("/", "/usage/", "/costs/", "/steps/", "/errors/")
CHART_LINK_PAGES = ("/", "/usage/", "/costs/", "/steps/", "/errors/")
# Run-history links on a page; a chart's links are its traces' customdata (static/js/portal.js).
RUN_LINKS = 'main a[href^="/runs/?"]'
# Any link into run history or a run (not the run budgets page, /budgets/runs/, finance may open).
RUN_HISTORY_LINKS = 'a[href^="/runs"], a[href*="/runs/"]:not([href^="/budgets/runs"])'
CHART_LINK_SCRIPT = """
for (const el of document.querySelectorAll('.chart[data-figure]')) {
  for (const trace of (el.data || [])) {
    const data = trace.customdata || [];
    for (let i = 0; i < data.length; i++) {
      if (typeof data[i] === 'string' && data[i].startsWith('/runs/?')) {
        el.emit('plotly_click', {points: [{customdata: data[i]}]});
        return data[i];
      }
    }
  }
}
return null;
"""


def _click(driver, element) -> None:  # type: ignore[no-untyped-def]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _choose_range(driver, key: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    _click(
        driver,
        driver.find_element(By.CSS_SELECTOR, f'[data-testid=time-range] a[data-range="{key}"]'),
    )
    _wait(driver, lambda d: f"range={key}" in d.current_url)


def _on_run_history(driver, page: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    _wait(driver, lambda d: "/runs/?" in d.current_url)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Run history", page
    assert not driver.find_elements(By.CSS_SELECTOR, "main .error"), (page, driver.current_url)


@pytest.mark.parametrize("width", [1280, 390])
def test_range_changes_and_drill_downs_on_every_analytics_page(site, browser, width):
    """On each analytics page: a preset changes the range (URL, label, charts redrawn), a table
    row and a chart element each open run history filtered to what they stand for."""
    from urllib.parse import parse_qs, urlsplit

    from selenium.webdriver.common.by import By

    _log_in(browser, site["tenant"], "admin@gamma.test")
    browser.set_window_size(width, 900)
    for path in RANGE_PAGES:
        url = site["tenant"] + path
        browser.get(url)
        _choose_range(browser, "7d")
        label = browser.find_element(By.CSS_SELECTOR, "[data-testid=range-label]").text
        assert label.startswith("Last 7 days"), (path, label)
        _check_page(browser, browser.current_url, f"range-7d{path.replace('/', '-')}", width)
        in_range = browser.current_url
        if path not in ROW_LINK_PAGES:
            assert _console_errors(browser) == [], path
            continue
        links = browser.find_elements(By.CSS_SELECTOR, RUN_LINKS)
        assert links, f"{path}: nothing drills down to run history"
        query = parse_qs(urlsplit(links[0].get_attribute("href")).query)
        assert "from" in query and "to" in query, (path, query)
        _click(browser, links[0])
        _on_run_history(browser, path)
        browser.get(in_range)
        charts = browser.find_elements(By.CSS_SELECTOR, ".chart[data-figure]")
        for chart in charts:
            _wait(browser, lambda d, c=chart: c.find_elements(By.CSS_SELECTOR, "svg.main-svg"))
        if path in CHART_LINK_PAGES:
            assert browser.execute_script(CHART_LINK_SCRIPT), f"{path}: no chart drills down"
            _on_run_history(browser, path + " chart")
        assert _console_errors(browser) == [], path


def test_finance_is_offered_no_link_that_answers_403(site, browser):
    """Finance may not open run history: its pages show runs as text, never as dead links."""
    from selenium.webdriver.common.by import By

    _log_in(browser, site["tenant"], "finance@gamma.test")
    browser.set_window_size(1280, 900)
    for path in ("/", "/costs/", "/costs/?range=last_month", "/reports/", "/budgets/", "/alerts/"):
        browser.get(site["tenant"] + path)
        assert browser.find_element(By.TAG_NAME, "h1").text, path
        runs = browser.find_elements(By.CSS_SELECTOR, RUN_HISTORY_LINKS)
        assert [a.get_attribute("href") for a in runs] == [], path
        assert browser.execute_script(CHART_LINK_SCRIPT) is None, path


@pytest.mark.parametrize("width", [1280, 390])
def test_overview_and_costs_follow_the_range_and_drill_down(site, browser, width):
    """A preset changes the range in the URL and the label; a chart bar and a table row open
    run history filtered to them; a finance user's pages have no run link."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.set_window_size(width, 900)
    _log_in(browser, site["tenant"], "admin@gamma.test")
    browser.get(site["tenant"] + "/?range=30d")
    browser.find_element(By.CSS_SELECTOR, "[data-range='7d']").click()
    _wait(browser, lambda d: "range=7d" in d.current_url)
    label = browser.find_element(By.CSS_SELECTOR, "[data-testid=range-label]").text
    assert label.startswith("Last 7 days")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#daily-cost .point path"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#daily-cost .point path")
    bar = max(bars, key=lambda b: b.size["height"])
    ActionChains(browser).move_to_element(bar).click().perform()
    _wait(browser, lambda d: "/runs/?" in d.current_url and "project=" in d.current_url)
    browser.get(site["tenant"] + "/costs/?range=30d&by=template")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#trend svg.main-svg"))
    row = browser.find_element(By.CSS_SELECTOR, "[data-testid=by-template] tbody a")
    browser.execute_script("arguments[0].scrollIntoView();", row)
    row.click()
    _wait(browser, lambda d: "/runs/?" in d.current_url and "template=" in d.current_url)
    assert browser.find_elements(By.CSS_SELECTOR, "tbody tr td code")
    assert _console_errors(browser) == []
    _log_in(browser, site["tenant"], "finance@gamma.test")
    for path in ("/?range=7d", "/costs/?range=30d&by=template"):
        browser.get(site["tenant"] + path)
        links = browser.find_elements(By.CSS_SELECTOR, RUN_HISTORY_LINKS)
        assert [a.get_attribute("href") for a in links] == [], path
