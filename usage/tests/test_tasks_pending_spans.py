"""The beat sweeper (usage.tasks.pending_spans_expire) that expires OTLP spans which waited for
their run span longer than the TTL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from factory_portal.celery import app
from tests.support import pending_spans_make
from usage.tasks import pending_spans_expire
from usage.trace_routing.models import PendingSpan

pytestmark = pytest.mark.django_db


def test_the_sweeper_deletes_spans_that_waited_longer_than_the_ttl():
    ttl = timedelta(seconds=settings.OTLP_PARKED_SPAN_TTL_SECONDS)
    pending_spans_make("alpha", 3, ttl + timedelta(minutes=1))
    pending_spans_make("", 2, ttl + timedelta(days=3))
    pending_spans_make("beta", 4, ttl - timedelta(minutes=1))
    assert pending_spans_expire.apply().get() == 5
    assert list(PendingSpan.objects.values_list("tenant_hint", flat=True).distinct()) == ["beta"]
    assert PendingSpan.objects.count() == 4


def test_the_sweeper_is_on_the_beat_schedule():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "pending_spans" in e["task"]]
    assert [e["task"] for e in entries] == ["usage.tasks.pending_spans_expire"]
    assert entries[0]["task"] in app.tasks
    assert entries[0]["schedule"] <= settings.OTLP_PARKED_SPAN_TTL_SECONDS
