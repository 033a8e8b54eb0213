"""The operator console's alerts pages: the platform's incidents (public schema) only, for
operators only, with acknowledging and silences as on a tenant's site."""

from __future__ import annotations

import re

import pytest
from django_tenants.utils import schema_context

from alerts.oncall.models import Incident, Page, Silence
from alerts.oncall.services.pages import pages_create
from alerts.oncall.tests.incident_rows import FAILURES, incident_make, pagerduty_route
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import OPERATOR_EMAIL, PASSWORD, logged_in_client, response_text

pytestmark = pytest.mark.django_db


def test_operator_pages_show_only_the_platforms_incidents(alpha, operator):
    platform = incident_make(FAILURES, {}, summary="Platform failure rate 12%")
    with schema_context(alpha.schema):
        tenant_incident = incident_make(summary="Alpha's queue builds", id=987_654)
    page = response_text(operator.get("/alerts/"))
    assert "Platform failure rate 12%" in page and "Alpha&#x27;s queue builds" not in page
    assert "The platform's runtime alerts" in page and "Times in UTC" in page
    assert re.search(r'href="/alerts/"[^>]*>Alerts <span class="badge"[^>]*>1</span>', page)
    detail = response_text(operator.get(f"/alerts/{platform.pk}/"))
    assert "Platform failure rate 12%" in detail
    behind = re.search(r'data-testid="behind">(.*?)</ul>', detail, re.S)
    assert behind and re.findall(r'href="([^"]+)"', behind.group(1)) == ["/health/factory/"]
    assert not Incident.objects.filter(pk=tenant_incident.pk).exists()
    assert operator.get(f"/alerts/{tenant_incident.pk}/").status_code == 404


def test_operators_acknowledge_and_silence_the_platforms_alerts(operator):
    pagerduty_route(name="Platform PagerDuty")
    incident = incident_make(FAILURES, {}, summary="Platform failure rate 12%")
    pages_create(incident, Page.Event.TRIGGER)
    assert operator.post(f"/alerts/{incident.pk}/ack/").status_code == 302
    incident.refresh_from_db()
    assert incident.acknowledged_by == OPERATOR_EMAIL
    acks = Page.objects.filter(incident=incident, event="acknowledge")
    assert [p.route.name for p in acks] == ["Platform PagerDuty"]

    made = operator.post(
        "/alerts/silences/",
        {"rule": FAILURES, "matchers": "", "duration": "1h", "reason": "failover drill"},
    )
    assert made.status_code == 302
    silence = Silence.objects.get()
    assert silence.created_by == OPERATOR_EMAIL
    assert "failover drill" in response_text(operator.get("/alerts/silences/"))
    assert operator.post(f"/alerts/silences/{silence.pk}/expire/").status_code == 302


def test_the_operator_pages_are_for_operators_only(alpha, public_host):
    incident = incident_make()
    user_create(email="viewer@portal.test", role=Role.MEMBER, password=PASSWORD)
    viewer = logged_in_client(public_host, "viewer@portal.test")
    for path in ("/alerts/", f"/alerts/{incident.pk}/", "/alerts/silences/"):
        refused = viewer.get(path)
        assert refused.status_code == 403 and "operator role" in response_text(refused), path
    assert viewer.post(f"/alerts/{incident.pk}/ack/").status_code == 403
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
    # a tenant's admin signed in on the tenant is a stranger on the operator host
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    tenant_admin.defaults["HTTP_HOST"] = public_host
    assert tenant_admin.get("/alerts/").status_code == 302
