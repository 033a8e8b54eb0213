"""The tenant's alerts pages: sections, filters, history with durations, the incident page (its
figures, timeline, silence, delivery log and links by role), the navigation's firing count, and
tenant isolation."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
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
from factory_portal.tenants.models import Tenant
from tests.support import host_client, logged_in_client, response_text

pytestmark = pytest.mark.django_db


def _section(page: str, testid: str) -> str:
    """The HTML of one table of the page (empty when it is not there)."""
    match = re.search(rf'data-testid="{testid}">(.*?)</table>', page, re.S)
    return match.group(1) if match else ""


def _behind(page: str) -> list[str]:
    """The links of the incident page's "What is behind it" list."""
    match = re.search(r'data-testid="behind">(.*?)</ul>', page, re.S)
    return (
        [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', match.group(1))]
        if match
        else []
    )


def test_sections_split_open_incidents_and_history(alpha, people):
    now = timezone.now()
    with schema_context(alpha.schema):
        incident_make(summary="Queue builds: 1,240 jobs waiting")
        incident_make(
            QUEUE, {"queue_name": "deploys"}, state="pending", summary="Queue deploys: 1,100 jobs"
        )
        incident_make(QUEUE, {"queue_name": "muted"}, summary="Queue muted: 2,000 jobs")
        Silence.objects.create(
            rule=QUEUE,
            matchers={"queue_name": "muted"},
            ends_at=now + timedelta(hours=1),
            reason="migrating the muted queue",
            created_by="ops@alpha.test",
        )
        incident_make(
            FAILURES,
            {},
            state="resolved",
            summary="Failure rate 9% of 40 runs",
            started_at=now - timedelta(minutes=30),
            fired_at=now - timedelta(minutes=26),
            resolved_at=now - timedelta(minutes=14),
        )
    page = response_text(people["finance"].get("/alerts/"))
    assert "Queue builds: 1,240 jobs waiting" in _section(page, "firing")
    assert "Queue deploys" in _section(page, "pending")
    silenced = _section(page, "silenced")
    assert "Queue muted" in silenced and "migrating the muted queue" in silenced
    assert "Queue muted" not in _section(page, "firing")
    history = _section(page, "history")
    assert "Failure rate 9% of 40 runs" in history
    assert "pending 4 min, fired" in history and "resolved after 12 min" in history
    assert "1,240 jobs" in _section(page, "firing") and "over 1,000 jobs" in page


def test_empty_states(alpha, people):
    page = response_text(people["member"].get("/alerts/"))
    for testid in ("firing-empty", "pending-empty", "silenced-empty", "history-empty"):
        assert f'data-testid="{testid}"' in page, testid
    assert 'data-testid="alerts-count"' not in page  # no badge without firing alerts


def test_filters_are_validated_and_case_insensitive(alpha, people):
    with schema_context(alpha.schema):
        incident_make(summary="Queue builds firing")
        incident_make(AI_COST, {}, summary="AI cost 3.1 times its average")
        incident_make(QUEUE, {"queue_name": "old"}, state="resolved", summary="Queue old resolved")
    client = people["member"]
    page = response_text(client.get("/alerts/?rule=FACTORY_AI_COST_ANOMALY&severity=Warning"))
    assert "AI cost 3.1 times" in page and "Queue builds firing" not in page
    resolved = response_text(client.get("/alerts/?state=resolved"))
    assert "Queue old resolved" in resolved and "Queue builds firing" not in resolved
    assert 'data-testid="firing-empty"' not in resolved  # open sections hidden
    firing = response_text(client.get("/alerts/?state=firing"))
    assert "Queue builds firing" in firing and "Queue old resolved" not in firing
    for query, message in (
        ("rule=nope", "Unknown rule &#x27;nope&#x27;; the rules are factory_run_failure_rate"),
        ("severity=urgent", "Unknown severity &#x27;urgent&#x27;; the severities are critical"),
        ("state=open", "Unknown state &#x27;open&#x27;; the states are pending, firing"),
    ):
        bad = client.get(f"/alerts/?{query}")
        assert bad.status_code == 400, query
        text = response_text(bad)
        assert message in text, text
        assert "Queue builds firing" not in text


def test_history_is_paginated_newest_first(alpha, people):
    now = timezone.now()
    with schema_context(alpha.schema):
        for n in range(55):
            incident_make(
                QUEUE,
                {"queue_name": f"q{n:02d}"},
                state="resolved",
                summary=f"Queue q{n:02d} drained",
                resolved_at=now - timedelta(hours=60 - n),
            )
    client = people["member"]
    first = response_text(client.get("/alerts/"))
    names = re.findall(r"Queue (q\d\d) drained", _section(first, "history"))
    assert names[:2] == ["q54", "q53"] and len(names) == 50
    assert 'data-testid="next-page"' in first
    second = re.findall(r"Queue (q\d\d) drained", response_text(client.get("/alerts/?page=2")))
    assert second == ["q04", "q03", "q02", "q01", "q00"]


def test_times_are_in_the_tenants_zone_with_its_label(alpha, people):
    Tenant.objects.filter(pk=alpha.tenant.pk).update(timezone="Asia/Tokyo")
    started = (timezone.now() - timedelta(days=1)).replace(
        hour=3, minute=7, second=0, microsecond=0
    )
    with schema_context(alpha.schema):
        incident = incident_make(started_at=started, fired_at=started + timedelta(minutes=2))
    page = response_text(people["member"].get("/alerts/"))
    assert "Times in Asia/Tokyo" in page
    local = started.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{local:%Y-%m-%d %H:%M} JST" in page
    detail = response_text(people["member"].get(f"/alerts/{incident.pk}/"))
    assert f"Pending since {local:%Y-%m-%d %H:%M}:00 JST" in detail


def test_the_navigation_counts_firing_alerts(alpha, people):
    with schema_context(alpha.schema):
        incident_make()
        incident_make(QUEUE, {"queue_name": "b"})
        incident_make(QUEUE, {"queue_name": "c"}, state="pending")
        incident_make(QUEUE, {"queue_name": "d"}, state="resolved")
    for who in ("member", "finance", "admin"):
        page = response_text(people[who].get("/"))
        assert re.search(
            r'href="/alerts/"[^>]*>Alerts <span class="badge"[^>]*'
            r'data-testid="alerts-count">2</span>',
            page,
        ), who


def test_incident_page_shows_figures_timeline_silence_and_delivery_log(alpha, people):
    now = timezone.now()
    with schema_context(alpha.schema):
        route = pagerduty_route(severities=["critical", "warning"])
        incident = incident_make(
            now=now,
            summary="Queue builds: 1,240 jobs waiting (over 1,000)",
            acknowledged_at=now - timedelta(minutes=2),
            acknowledged_by="member@alpha.test",
        )
        pages_create(incident, Page.Event.TRIGGER)
        Page.objects.filter(route=route).update(
            status="failed", attempts=8, last_error="HTTP 500", last_status_code=500
        )
        Silence.objects.create(
            rule="",
            matchers={"queue_name": "builds"},
            ends_at=now + timedelta(hours=4),
            reason="builds queue is being migrated",
            created_by="admin@alpha.test",
        )
    page = response_text(people["finance"].get(f"/alerts/{incident.pk}/"))
    assert "Queue depth high" in page
    assert "a queue&#x27;s depth (average over 1 min) &gt; 1,000 jobs, held for 10 min" in page
    assert 'data-testid="value">1,240 jobs' in page
    assert 'data-testid="threshold">1,000 jobs' in page and 'data-testid="peak">1,300 jobs' in page
    assert "<code>queue_name=builds</code>" in page
    assert "Fired " in page and "after 10 min pending" in page
    assert "Acknowledged by member@alpha.test" in page and "3 min after it fired" in page
    assert "Firing for 5 min so far" in page
    assert "Silenced by admin@alpha.test until" in page and "builds queue is being migrated" in page
    log = _section(page, "delivery-log")
    assert "On-call PagerDuty" in log and "E-mail the admins" in log
    assert "HTTP 500" in log and ">8<" in log and "Failed" in log
    # finance reads, but neither acknowledges nor silences
    assert 'data-testid="acknowledge"' not in page and 'data-testid="silence-this"' not in page


def test_links_behind_an_alert_follow_the_role(alpha, people):
    with schema_context(alpha.schema):
        failures = incident_make(FAILURES, {}, summary="Failure rate 9%")
        cost = incident_make(AI_COST, {}, summary="AI cost 3 times")
        queue = incident_make()
    member = _behind(response_text(people["member"].get(f"/alerts/{failures.pk}/")))
    assert re.fullmatch(r"/runs/\?status=failed&from=\d{4}-\d\d-\d\d&to=\d{4}-\d\d-\d\d", member[0])
    assert member[1:] == ["/health/factory/"]
    finance = response_text(people["finance"].get(f"/alerts/{failures.pk}/"))
    assert _behind(finance) == [] and 'href="/runs/' not in finance
    assert "No page behind this alert is open to your role" in finance
    assert _behind(response_text(people["finance"].get(f"/alerts/{cost.pk}/"))) == ["/costs/"]
    assert _behind(response_text(people["member"].get(f"/alerts/{cost.pk}/"))) == ["/steps/"]
    admin = _behind(response_text(people["admin"].get(f"/alerts/{cost.pk}/")))
    assert admin == ["/costs/", "/steps/"]
    assert _behind(response_text(people["member"].get(f"/alerts/{queue.pk}/"))) == [
        "/health/queues/"
    ]
    # every link offered opens for the one it was offered to
    for who, pk in (("member", failures.pk), ("finance", cost.pk), ("admin", cost.pk)):
        for href in _behind(response_text(people[who].get(f"/alerts/{pk}/"))):
            assert people[who].get(href).status_code == 200, (who, href)


def test_a_run_budget_alert_links_its_run_and_the_run_budgets(alpha, people):
    """It said "No page behind this alert is open to your role", to an admin too (a UX review
    found it): the run and the run budgets, as each role may open them."""
    from alerts.oncall.domain.rules import RUN_OVER_BUDGET
    from tests.support import run_update

    labels = {"run_id": "r/1", "project": "p", "template": "t", "state": "stop"}
    with schema_context(alpha.schema):
        run_update("r/1", "Running", timezone.now())
        over = Incident.objects.create(
            rule=RUN_OVER_BUDGET, labels=labels, fingerprint="f" * 32, severity="critical",
            state=Incident.State.FIRING, summary="Run r/1 over its budget", value=6.0,
            threshold=5.0, peak=6.0, started_at=timezone.now(), fired_at=timezone.now(),
        )  # fmt: skip
    admin = _behind(response_text(people["admin"].get(f"/alerts/{over.pk}/")))
    assert admin == ["/runs/r%2F1/", "/budgets/runs/"]
    for who in ("admin", "member", "finance"):
        for href in _behind(response_text(people[who].get(f"/alerts/{over.pk}/"))):
            assert people[who].get(href).status_code == 200, (who, href)


def test_every_signed_in_role_sees_the_pages_and_anonymous_visitors_log_in(alpha, people):
    with schema_context(alpha.schema):
        incident = incident_make()
    for path in ("/alerts/", f"/alerts/{incident.pk}/", "/alerts/silences/"):
        for who in ("member", "finance", "admin"):
            assert people[who].get(path).status_code == 200, (who, path)
        anonymous = host_client(alpha.host).get(path)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert people["member"].get("/alerts/999999/").status_code == 404


def test_another_tenants_incidents_are_invisible(alpha, beta, people):
    with schema_context(beta.schema):
        secret = incident_make(summary="Beta's secret queue")
        incident_make(QUEUE, {"queue_name": "x"}, state="resolved", summary="Beta's old queue")
        Silence.objects.create(
            rule=QUEUE,
            ends_at=timezone.now() + timedelta(hours=1),
            reason="beta maintenance",
            created_by="admin@beta.test",
        )
    with schema_context(alpha.schema):
        assert not Incident.objects.filter(pk=secret.pk).exists()
    client = people["admin"]
    assert client.get(f"/alerts/{secret.pk}/").status_code == 404
    assert client.post(f"/alerts/{secret.pk}/ack/").status_code == 404
    listing = response_text(client.get("/alerts/"))
    assert "Beta&#x27;s" not in listing and "Beta's" not in listing
    assert 'data-testid="alerts-count"' not in listing
    assert "beta maintenance" not in response_text(client.get("/alerts/silences/"))
    beta_admin = logged_in_client(beta.host, beta.admin_email)
    assert "Beta&#x27;s secret queue" in response_text(beta_admin.get("/alerts/"))


@pytest.mark.parametrize("path", ["/alerts/", "/alerts/{pk}/", "/alerts/silences/"])
def test_page_queries_do_not_grow_with_the_alerts(alpha, people, path):
    def add(first: int, count: int) -> int:
        with schema_context(alpha.schema):
            route = pagerduty_route(name=f"pd-{first}", severities=["warning"])
            made = []
            for n in range(first, first + count):
                for state in ("firing", "pending", "resolved"):
                    made.append(incident_make(QUEUE, {"queue_name": f"{state}-{n}"}, state=state))
                    pages_create(made[-1], Page.Event.TRIGGER)
                Silence.objects.create(
                    rule=QUEUE,
                    matchers={"queue_name": f"pending-{n}"},
                    ends_at=timezone.now() + timedelta(hours=1),
                    reason=f"silence {n}",
                    created_by="ops@alpha.test",
                )
            assert route.pages.exists()
            return made[0].pk

    client = people["member"]
    pk = add(0, 2)
    url = path.format(pk=pk)
    client.get(url)  # warm what is read once (session, tenant)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    add(2, 12)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
