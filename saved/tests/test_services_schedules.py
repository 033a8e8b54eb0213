"""Schedules and their e-mails: who may schedule what to whom, which rows an occurrence makes,
what the e-mail says, and that a second pass (or a retry) never sends twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django_tenants.utils import schema_context

from alerts.services.outbox import outbox_flush
from factory_portal.accounts.models import Role, User
from saved.domain import MONTHLY, WEEKLY
from saved.models import SavedView, Schedule, ScheduledSend
from saved.services import scheduled_send, sends_due_create
from tests.support import FINANCE, MEMBER, response_text

MONDAY = datetime(2026, 11, 30, 9, tzinfo=UTC)


def _view(alpha, client, path="/usage/", query="range=7d", name="Weekly usage", shared="on"):
    client.post("/saved/new", {"path": path, "query": query, "name": name, "shared": shared})
    with schema_context(alpha.schema):
        return SavedView.objects.get(name=name).pk


def _user(alpha, email) -> int:
    with schema_context(alpha.schema):
        return User.objects.get(email=email).pk


def _schedule(client, view, cadence=WEEKLY, recipients=()):
    return response_text(
        client.post(
            "/saved/schedules/new",
            {"view": view, "cadence": cadence, "recipients": list(recipients)},
            follow=True,
        )
    )


def _run(alpha, now):
    """One pass of the tenant's beat task, at ``now``, with schedules made a week before."""
    with schema_context(alpha.schema):
        Schedule.objects.update(created_at=now - timedelta(days=40))
        sends_due_create(now=now)
        return outbox_flush(ScheduledSend.objects.all(), scheduled_send)


def test_an_admin_schedules_a_view_to_people_who_may_open_it(alpha, people):
    costs = _view(alpha, people["admin"], "/costs/", "by=project", "Costs by project")
    ids = [_user(alpha, e) for e in (alpha.admin_email, FINANCE)]
    assert "Scheduled." in _schedule(people["admin"], costs, recipients=ids)
    runs = _view(alpha, people["admin"], "/runs/", "status=failed", "Failed runs")
    page = _schedule(people["admin"], runs, recipients=ids)
    assert f"{FINANCE} cannot open that page (Finance)" in page
    with schema_context(alpha.schema):
        assert Schedule.objects.count() == 1


def test_others_schedule_to_themselves_only(alpha, people):
    view = _view(alpha, people["member"])
    page = _schedule(people["member"], view, recipients=[_user(alpha, FINANCE)])
    assert "a chosen recipient is not one you can choose" in page
    page = _schedule(people["member"], view, recipients=[_user(alpha, MEMBER)])
    assert "Scheduled." in page


def test_the_monthly_report_is_for_those_who_may_open_reports(alpha, people):
    page = _schedule(people["member"], "report", MONTHLY, [_user(alpha, MEMBER)])
    assert "You cannot open that page" in page
    assert "Monthly report (last closed month)" not in response_text(
        people["member"].get("/saved/")
    )
    page = _schedule(people["finance"], "report", MONTHLY, [_user(alpha, FINANCE)])
    assert "Scheduled." in page


def test_deactivated_users_and_private_views_of_others_are_refused(alpha, people):
    private = _view(alpha, people["admin"], name="Private", shared="")
    page = _schedule(people["admin"], private, recipients=[_user(alpha, MEMBER)])
    assert "Share the view before sending it to others." in page
    with schema_context(alpha.schema):
        User.objects.filter(email=MEMBER).update(is_active=False)
    shared = _view(alpha, people["admin"])
    page = _schedule(people["admin"], shared, recipients=[_user(alpha, MEMBER)])
    assert "a chosen recipient is not one you can choose" in page


def test_a_due_occurrence_is_sent_once_to_each_recipient(alpha, people, mailoutbox):
    view = _view(alpha, people["admin"])
    ids = [_user(alpha, e) for e in (alpha.admin_email, MEMBER)]
    _schedule(people["admin"], view, recipients=ids)
    assert _run(alpha, MONDAY) == {"sent": 2}
    assert sorted(m.to[0] for m in mailoutbox) == sorted([alpha.admin_email, MEMBER])
    message = mailoutbox[0]
    assert message.subject == "[Alpha Inc] Weekly usage"
    assert "Usage · Last 7 days (" in message.body
    assert f"http://{alpha.host}/usage/?range=7d" in message.body
    assert _run(alpha, MONDAY + timedelta(days=2)) == {}  # same week: nothing new
    assert len(mailoutbox) == 2
    assert _run(alpha, MONDAY + timedelta(days=7)) == {"sent": 2}  # the next Monday


def test_who_may_no_longer_open_it_gets_nothing(alpha, people, mailoutbox):
    view = _view(alpha, people["admin"], "/runs/", "status=failed", "Failed runs")
    _schedule(people["admin"], view, recipients=[_user(alpha, MEMBER)])
    with schema_context(alpha.schema):
        User.objects.filter(email=MEMBER).update(role=Role.FINANCE)
    assert _run(alpha, MONDAY) == {}
    assert mailoutbox == []


def test_an_owner_no_longer_admin_e_mails_only_themselves(alpha, people, mailoutbox):
    view = _view(alpha, people["admin"])
    ids = [_user(alpha, e) for e in (alpha.admin_email, MEMBER)]
    _schedule(people["admin"], view, recipients=ids)
    with schema_context(alpha.schema):
        User.objects.filter(email=alpha.admin_email).update(role=Role.MEMBER)
    assert _run(alpha, MONDAY) == {"sent": 1}
    assert [m.to for m in mailoutbox] == [[alpha.admin_email]]


def test_an_unshared_view_goes_to_its_owner_only(alpha, people, mailoutbox):
    view = _view(alpha, people["admin"])
    _schedule(
        people["admin"], view, recipients=[_user(alpha, e) for e in (alpha.admin_email, MEMBER)]
    )
    people["admin"].post(f"/saved/{view}/share", {})
    assert _run(alpha, MONDAY) == {"sent": 1}
    assert [m.to for m in mailoutbox] == [[alpha.admin_email]]


def test_the_monthly_report_links_the_last_closed_months_files(alpha, people, mailoutbox):
    _schedule(people["finance"], "report", MONTHLY, [_user(alpha, FINANCE)])
    assert _run(alpha, datetime(2026, 12, 1, 9, tzinfo=UTC)) == {"sent": 1}
    (message,) = mailoutbox
    assert message.subject == "[Alpha Inc] Monthly report, November 2026"
    assert f"http://{alpha.host}/reports/2026-11/csv" in message.body
    assert f"http://{alpha.host}/reports/2026-11/xlsx" in message.body


def test_an_smtp_failure_is_retried_later_and_sent_once(alpha, people, mailoutbox, monkeypatch):
    view = _view(alpha, people["admin"])
    _schedule(people["admin"], view, recipients=[_user(alpha, alpha.admin_email)])

    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError

    with monkeypatch.context() as patched:
        patched.setattr("django.core.mail.EmailMessage.send", refuse)
        assert _run(alpha, MONDAY) == {"pending": 1}
    with schema_context(alpha.schema):
        send = ScheduledSend.objects.get()
        assert send.last_error == "e-mail not sent (ConnectionRefusedError)"
        ScheduledSend.objects.update(next_attempt_at=MONDAY)
    assert _run(alpha, MONDAY) == {"sent": 1}
    assert _run(alpha, MONDAY) == {}
    assert len(mail.outbox) == 1


def test_schedules_are_deleted_by_their_owner_or_an_admin(alpha, people):
    view = _view(alpha, people["member"])
    _schedule(people["member"], view, recipients=[_user(alpha, MEMBER)])
    with schema_context(alpha.schema):
        pk = Schedule.objects.get().pk
    assert people["finance"].post(f"/saved/schedules/{pk}/delete").status_code == 404
    assert f"{MEMBER}" in response_text(people["admin"].get("/saved/"))
    people["admin"].post(f"/saved/schedules/{pk}/delete")
    with schema_context(alpha.schema):
        assert not Schedule.objects.exists()


@pytest.mark.parametrize("cadence", ["daily", ""])
def test_an_unknown_cadence_is_refused(alpha, people, cadence):
    view = _view(alpha, people["admin"])
    page = _schedule(people["admin"], view, cadence, [_user(alpha, alpha.admin_email)])
    assert "Choose how often" in page
