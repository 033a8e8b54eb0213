"""Ingest COPYs each batch into a temporary table made once per database session: a second batch
in the same transaction (a platform batch's next tenant) or session finds it empty."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import llm_event_in
from usage.models import LlmUsageEvent
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def test_batches_reuse_the_copy_table_and_leave_it_empty(alpha):
    at = timezone.now() - timedelta(minutes=1)
    with schema_context(alpha.schema):
        pricer = pricer_for(alpha.tenant)
        first = events_ingest(
            events=[llm_event_in("copy-1", at), llm_event_in("copy-2", at)], pricer=pricer
        )
        second = events_ingest(
            events=[llm_event_in("copy-2", at), llm_event_in("copy-3", at)], pricer=pricer
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM ingest_llm")
            left = cursor.fetchone()[0]
        stored = sorted(
            LlmUsageEvent.objects.filter(event_id__startswith="copy-").values_list(
                "event_id", flat=True
            )
        )
    assert (first.accepted, second.accepted, second.duplicates) == (2, 1, 1)
    assert left == 0
    assert stored == ["copy-1", "copy-2", "copy-3"]
