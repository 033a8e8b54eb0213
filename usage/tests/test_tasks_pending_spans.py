"""OTLP spans waiting for their run span: expired by a beat sweeper, shown on the health page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from factory_portal.celery import app
from tests.support import OPERATOR_EMAIL, logged_in_client
from usage.tasks import pending_spans_expire
from usage.trace_routing.models import PendingSpan

pytestmark = pytest.mark.django_db


def _waiting(sender: str, n: int, age: timedelta) -> None:
    spans = PendingSpan.objects.bulk_create(
        PendingSpan(trace_id=f"{i:032x}", span_id=f"{i:016x}", tenant_hint=sender, record={})
        for i in range(len(sender) * 1000, len(sender) * 1000 + n)
    )
    PendingSpan.objects.filter(pk__in=[s.pk for s in spans]).update(
        received_at=timezone.now() - age
    )


def test_the_sweeper_deletes_spans_that_waited_longer_than_the_ttl():
    ttl = timedelta(seconds=settings.OTLP_PARKED_SPAN_TTL_SECONDS)
    _waiting("alpha", 3, ttl + timedelta(minutes=1))
    _waiting("", 2, ttl + timedelta(days=3))
    _waiting("beta", 4, ttl - timedelta(minutes=1))
    assert pending_spans_expire.apply().get() == 5
    assert list(PendingSpan.objects.values_list("tenant_hint", flat=True).distinct()) == ["beta"]
    assert PendingSpan.objects.count() == 4


def test_the_sweeper_is_on_the_beat_schedule():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "pending_spans" in e["task"]]
    assert [e["task"] for e in entries] == ["usage.tasks.pending_spans_expire"]
    assert entries[0]["task"] in app.tasks
    assert entries[0]["schedule"] <= settings.OTLP_PARKED_SPAN_TTL_SECONDS


def test_the_health_page_shows_waiting_spans_per_sender_and_the_oldest(public_host):
    _waiting("alpha", 3, timedelta(hours=5))
    _waiting("", 2, timedelta(minutes=10))
    page = html.unescape(
        logged_in_client(public_host, OPERATOR_EMAIL).get("/health/").content.decode()
    )
    assert re.search(r'data-testid="pending-spans">5<', page)
    assert re.search(r'data-testid="pending-spans-oldest">5\s+hours', page)
    senders = page[page.index('data-testid="pending-spans-senders"') :]
    assert "alpha: 3 of 100,000" in senders and "platform: 2 of 100,000" in senders
