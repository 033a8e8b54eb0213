"""Acting on alerts from the pages: acknowledging (once, with the PagerDuty acknowledge in the
outbox, from the incident page and from the inbox), and setting and ending silences, with the
roles that may and the validation that explains."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.models import Alert
from alerts.oncall.models import Incident, Page, Silence
from alerts.oncall.services.pages import pages_create
from alerts.oncall.tests.incident_rows import (
    FAILURES,
    QUEUE,
    incident_make,
    pagerduty_route,
    slack_route,
)
from alerts.services.engine import AlertSpec, alert_raise
from tests.support import MEMBER, response_text

pytestmark = pytest.mark.django_db


def _critical_with_pages(tenant) -> Incident:  # type: ignore[no-untyped-def]
    """A firing critical incident whose trigger went to a PagerDuty and a Slack route."""
    with schema_context(tenant.schema):
        pagerduty_route()
        slack_route()
        incident = incident_make(FAILURES, {}, summary="Failure rate 9% of 40 runs")
        pages_create(incident, Page.Event.TRIGGER)
    return incident


def _events(tenant, incident: Incident) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with schema_context(tenant.schema):
        return sorted(Page.objects.filter(incident=incident).values_list("event", "route__channel"))


def test_acknowledging_once_tells_the_pagerduty_route_that_got_the_trigger(alpha, people):
    incident = _critical_with_pages(alpha)
    with schema_context(alpha.schema):
        pagerduty_route(name="PagerDuty added later")  # got no trigger: no acknowledge either
    page = response_text(people["member"].get(f"/alerts/{incident.pk}/"))
    assert 'data-testid="acknowledge"' in page and 'data-testid="silence-this"' in page

    done = people["member"].post(f"/alerts/{incident.pk}/ack/", {"next": "/alerts/"})
    assert done.status_code == 302 and done["Location"] == "/alerts/"
    with schema_context(alpha.schema):
        acked = Incident.objects.get(pk=incident.pk)
        acks = list(Page.objects.filter(incident=incident, event="acknowledge"))
    assert acked.acknowledged_by == MEMBER and acked.acknowledged_at is not None
    assert [(p.route.name, p.status) for p in acks] == [("On-call PagerDuty", "pending")]
    assert _events(alpha, incident) == [
        ("acknowledge", "pagerduty"),
        ("trigger", "email"),
        ("trigger", "pagerduty"),
        ("trigger", "slack"),
    ]

    # A second acknowledgement (the admin) keeps the first person, time and outbox rows.
    again = people["admin"].post(f"/alerts/{incident.pk}/ack/", follow=True)
    assert "Already acknowledged by member@alpha.test" in response_text(again)
    with schema_context(alpha.schema):
        kept = Incident.objects.get(pk=incident.pk)
    assert (kept.acknowledged_by, kept.acknowledged_at) == (MEMBER, acked.acknowledged_at)
    assert len(_events(alpha, incident)) == 4
    page = response_text(people["member"].get(f"/alerts/{incident.pk}/"))
    assert 'data-testid="acknowledge"' not in page
    assert "Acknowledged by member@alpha.test" in page


def test_finance_may_not_acknowledge_and_a_resolved_alert_has_nothing_to_acknowledge(alpha, people):
    with schema_context(alpha.schema):
        incident = incident_make()
        resolved = incident_make(QUEUE, {"queue_name": "gone"}, state="resolved")
    refused = people["finance"].post(f"/alerts/{incident.pk}/ack/")
    assert refused.status_code == 403
    assert "Acknowledging and silencing alerts is for the member and admin roles" in (
        response_text(refused)
    )
    assert people["member"].get(f"/alerts/{incident.pk}/ack/").status_code == 405
    answer = people["member"].post(f"/alerts/{resolved.pk}/ack/", follow=True)
    assert "is resolved; there is nothing to acknowledge" in response_text(answer)
    with schema_context(alpha.schema):
        assert Incident.objects.get(pk=resolved.pk).acknowledged_at is None
        assert Incident.objects.get(pk=incident.pk).acknowledged_at is None


def test_acknowledging_needs_the_csrf_token_and_goes_back_only_to_a_local_path(alpha, people):
    with schema_context(alpha.schema):
        incident = incident_make()
    strict = Client(HTTP_HOST=alpha.host, enforce_csrf_checks=True)
    strict.cookies = people["member"].cookies
    assert strict.post(f"/alerts/{incident.pk}/ack/").status_code == 403
    with schema_context(alpha.schema):
        assert Incident.objects.get(pk=incident.pk).acknowledged_at is None
    for unsafe in ("https://evil.example/", "//evil.example/x", f"http://{alpha.host}/x"):
        answer = people["member"].post(f"/alerts/{incident.pk}/ack/", {"next": unsafe})
        assert answer["Location"] == f"/alerts/{incident.pk}/", unsafe


def test_acknowledge_from_the_inbox_end_to_end(alpha, people):
    incident = _critical_with_pages(alpha)
    with schema_context(alpha.schema):
        alert_raise(
            AlertSpec(
                key=f"incident:{incident.pk}:firing",
                kind=Alert.Kind.RUNTIME,
                severity="critical",
                title="Run failure rate high: 9% of 40 runs",
                url=f"/alerts/{incident.pk}/",
                webhooks=False,
                action_url=f"/alerts/{incident.pk}/ack/",
                action_label="Acknowledge",
            )
        )
    inbox = response_text(people["member"].get("/notifications/?show=unread"))
    form = re.search(
        r'<form method="post" action="(/alerts/\d+/ack/)" class="inline">.*?name="next" '
        r'value="([^"]+)".*?data-testid="notification-action">Acknowledge',
        inbox,
        re.S,
    )
    assert form is not None, inbox
    assert form.group(1) == f"/alerts/{incident.pk}/ack/"
    # finance reads the alert but is offered no button its role could not use
    assert 'data-testid="notification-action"' not in response_text(
        people["finance"].get("/notifications/")
    )

    back = people["member"].post(form.group(1), {"next": form.group(2).replace("&amp;", "&")})
    assert back.status_code == 302 and back["Location"] == "/notifications/?show=unread"
    page = response_text(people["member"].get(back["Location"]))
    assert "Acknowledged: Failure rate 9% of 40 runs" in page
    with schema_context(alpha.schema):
        assert Incident.objects.get(pk=incident.pk).acknowledged_by == MEMBER
    assert ("acknowledge", "pagerduty") in _events(alpha, incident)


def _silence_form(**fields: str) -> dict[str, str]:
    values = {
        "rule": QUEUE,
        "matchers": "queue_name=builds",
        "duration": "4h",
        "ends_at": "",
        "reason": "moving the builds queue",
    }
    values.update(fields)
    return values


def test_silences_are_set_listed_and_ended(alpha, people):
    with schema_context(alpha.schema):
        incident = incident_make()
    client = people["member"]
    prefilled = response_text(client.get(f"/alerts/silences/?incident={incident.pk}"))
    assert f'<option value="{QUEUE}" selected>' in prefilled
    assert re.search(r">\s*queue_name=builds</textarea>", prefilled)
    for odd in ("²", "9" * 5000, "-1", "x"):  # not an incident id: an empty form, never a 500
        assert client.get("/alerts/silences/", {"incident": odd}).status_code == 200

    before = timezone.now()
    made = client.post("/alerts/silences/", _silence_form())
    assert made.status_code == 302 and made["Location"] == "/alerts/silences/"
    with schema_context(alpha.schema):
        silence = Silence.objects.get()
    assert (silence.rule, silence.matchers, silence.created_by) == (
        QUEUE,
        {"queue_name": "builds"},
        MEMBER,
    )
    assert timedelta(hours=4) <= silence.ends_at - before < timedelta(hours=4, minutes=1)
    listing = response_text(client.get("/alerts/silences/"))
    active = re.search(r'data-testid="active-silences">(.*?)</table>', listing, re.S)
    assert active and "moving the builds queue" in active.group(1)
    alerts_page = response_text(client.get("/alerts/"))
    assert re.search(r'data-testid="silenced">.*Queue depth high', alerts_page, re.S)
    incident_page = response_text(client.get(f"/alerts/{incident.pk}/"))
    assert "Silenced by member@alpha.test" in incident_page
    assert 'data-testid="silence-this"' not in incident_page

    ended = client.post(f"/alerts/silences/{silence.pk}/expire/")
    assert ended.status_code == 302
    with schema_context(alpha.schema):
        assert Silence.objects.get().ends_at <= timezone.now()
    listing = response_text(client.get("/alerts/silences/"))
    assert 'data-testid="no-active-silences"' in listing
    assert re.search(r'data-testid="ended-silences">.*moving the builds queue', listing, re.S)
    assert re.search(
        r'data-testid="firing">.*Queue depth high', response_text(client.get("/alerts/")), re.S
    )


def test_a_custom_end_is_read_in_the_tenants_zone(alpha, people):
    from factory_portal.tenants.models import Tenant

    Tenant.objects.filter(pk=alpha.tenant.pk).update(timezone="Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    end = (timezone.now() + timedelta(days=2)).astimezone(berlin).replace(second=0, microsecond=0)
    made = people["admin"].post(
        "/alerts/silences/",
        _silence_form(rule="", duration="custom", ends_at=f"{end:%Y-%m-%dT%H:%M}"),
    )
    assert made.status_code == 302
    with schema_context(alpha.schema):
        assert Silence.objects.get().ends_at == end
    listing = response_text(people["admin"].get("/alerts/silences/"))
    assert f"{end:%Y-%m-%d %H:%M} CE" in listing  # CET or CEST, the zone's label
    assert "<em>any rule</em>" in listing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"matchers": "queue_name builds"},
            "Line 1: &#x27;queue_name builds&#x27; is not key=value.",
        ),
        ({"matchers": "a=1\na=2"}, "Line 2: Label a is given twice."),
        ({"rule": "factory_nope"}, "Unknown rule &#x27;factory_nope&#x27;; the rules are"),
        (
            {"duration": "custom", "ends_at": "2020-01-01T10:00"},
            "A silence must end in the future.",
        ),
        ({"duration": "custom", "ends_at": "next week"}, "is not a date and time; write it as"),
        ({"duration": "2w"}, "Select a valid choice. 2w is not one of the available choices."),
        ({"reason": ""}, "This field is required."),
    ],
)
def test_bad_silences_are_refused_with_the_reason(alpha, people, fields, message):
    answer = people["admin"].post("/alerts/silences/", _silence_form(**fields))
    assert answer.status_code == 400
    assert message in response_text(answer)
    with schema_context(alpha.schema):
        assert not Silence.objects.exists()


def test_finance_reads_silences_but_neither_sets_nor_ends_them(alpha, people):
    with schema_context(alpha.schema):
        silence = Silence.objects.create(
            rule=QUEUE,
            ends_at=timezone.now() + timedelta(hours=1),
            reason="planned maintenance",
            created_by="admin@alpha.test",
        )
    page = response_text(people["finance"].get("/alerts/silences/"))
    assert "planned maintenance" in page
    assert 'data-testid="silence-form"' not in page and 'data-testid="expire"' not in page
    refused = people["finance"].post("/alerts/silences/", _silence_form())
    assert refused.status_code == 403
    assert people["finance"].post(f"/alerts/silences/{silence.pk}/expire/").status_code == 403
    with schema_context(alpha.schema):
        assert Silence.objects.count() == 1
        assert Silence.objects.get().ends_at > timezone.now()
    member_page = response_text(people["member"].get("/alerts/silences/"))
    assert 'data-testid="silence-form"' in member_page and 'data-testid="expire"' in member_page


def test_another_tenants_silence_cannot_be_ended(alpha, beta, people):
    with schema_context(beta.schema):
        theirs = Silence.objects.create(
            ends_at=timezone.now() + timedelta(hours=1), reason="beta's", created_by="b@beta.test"
        )
    assert people["admin"].post(f"/alerts/silences/{theirs.pk}/expire/").status_code == 404
    with schema_context(beta.schema):
        assert Silence.objects.get().ends_at > timezone.now()


def test_active_silences_are_capped(alpha, people, monkeypatch):
    from alerts.oncall.services import silences as service

    monkeypatch.setattr(service, "ACTIVE_MAX", 3)
    with schema_context(alpha.schema):
        Silence.objects.bulk_create(
            Silence(
                ends_at=timezone.now() + timedelta(hours=1),
                reason="busy",
                created_by="a@alpha.test",
            )
            for _ in range(3)
        )
    answer = people["member"].post("/alerts/silences/", _silence_form())
    assert answer.status_code == 400
    assert "At most 3 silences can be active; end one before adding one." in response_text(answer)
    with schema_context(alpha.schema):
        assert Silence.objects.count() == 3
        Silence.objects.filter(pk=Silence.objects.order_by("pk").first().pk).update(
            ends_at=timezone.now() - timedelta(minutes=1)
        )  # one ended: room for one more
    assert people["member"].post("/alerts/silences/", _silence_form()).status_code == 302


def test_a_silence_of_run_budget_crossings_is_set_and_listed_by_its_name(alpha, people):
    client = people["member"]
    form = response_text(client.get("/alerts/silences/"))
    assert '<option value="run.over_budget">Run over its run budget</option>' in form
    made = client.post(
        "/alerts/silences/",
        _silence_form(rule="run.over_budget", matchers="template=python-library"),
    )
    assert made.status_code == 302
    listing = response_text(client.get("/alerts/silences/"))
    active = re.search(r'data-testid="active-silences">(.*?)</table>', listing, re.S)
    assert active and "Run over its run budget" in active.group(1)


def test_alerts_filter_by_the_run_budget_rule(alpha, people):
    """The alerts page and API take the rule every listed incident can have (they refused
    ``run.over_budget``, which silences take)."""
    from alerts.oncall.tests.receivers import incident_make as any_incident_make
    from tests.support import bearer, host_client, key_for

    with schema_context(alpha.schema):
        any_incident_make(rule="run.over_budget", labels={"run_id": "r1", "state": "stop"})
    page = people["member"].get("/alerts/?rule=run.over_budget")
    assert page.status_code == 200
    assert '<option value="run.over_budget" selected>Run over its run budget</option>' in (
        response_text(page)
    )
    _, raw = key_for(alpha, ["read"])
    listed = host_client(alpha.host).get("/api/v1/alerts?rule=RUN.OVER_BUDGET", **bearer(raw))
    assert listed.status_code == 200, listed.content
    assert [i["rule"] for i in listed.json()["results"]] == ["run.over_budget"]
