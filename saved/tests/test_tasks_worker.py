"""With a real Celery worker (not eager mode): the beat's fan-out (``scheduled_emails_all``, run
in the public schema) reaches each tenant's schema, makes that tenant's due e-mails and sends
them once; running it again sends nothing more. Only alpha's schedule exists: beta sends none.

The rows are committed (the worker has its own connection) and removed at the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.accounts.models import User
from factory_portal.celery import app
from saved.domain import WEEKLY
from saved.models import SavedView, Schedule, ScheduledSend
from saved.tasks import scheduled_emails_all
from tests.support import real_worker


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    app.conf.task_ignore_result = False
    with django_db_blocker.unblock(), real_worker() as running:
        yield running


def _wait_for(check: Callable[[], bool], timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_the_beat_sends_each_due_e_mail_once(worker, django_db_blocker, mailoutbox):
    with django_db_blocker.unblock():
        try:
            with schema_context("alpha"):
                admin = User.objects.get(email="admin@alpha.test")
                view = SavedView.objects.create(
                    owner=admin, name="worker usage", path="/usage/", query="range=7d"
                )
                schedule = Schedule.objects.create(
                    owner=admin,
                    view=view,
                    cadence=WEEKLY,
                    created_at=timezone.now() - timedelta(days=40),
                )
                schedule.recipients.set([admin])
            scheduled_emails_all.apply_async()
            assert _wait_for(lambda: len(mail.outbox) == 1)
            with schema_context("alpha"):
                assert _wait_for(lambda: ScheduledSend.objects.filter(status="sent").count() == 1)
            scheduled_emails_all.apply_async()
            time.sleep(2)
            assert len(mail.outbox) == 1
            (message,) = mail.outbox
            assert message.to == ["admin@alpha.test"]
            assert message.subject == "[Alpha Inc] worker usage"
            with schema_context("beta"):
                assert not ScheduledSend.objects.exists()
        finally:
            with schema_context("alpha"):
                SavedView.objects.filter(name="worker usage").delete()
