"""Ingest COPYs each batch into a temporary table made once per database session: a second batch
in the same transaction (a platform batch's next tenant) or session finds it empty."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import llm_event_in
from usage.domain.events import InfraEventIn
from usage.models import CostSource, LlmUsageEvent
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


def test_each_stored_call_carries_its_own_price_in_a_mixed_batch(alpha):
    """The batch is priced in one go after the stored ids are left out, and each price is read
    back in order: a duplicate, a client's cost, an unpriced model or an infrastructure event
    in between must not shift a price onto the next call."""
    at = timezone.now() - timedelta(minutes=1)
    with schema_context(alpha.schema):
        pricer = pricer_for(alpha.tenant)
        events_ingest(events=[llm_event_in("mix-dup", at)], pricer=pricer)
        batch = [
            llm_event_in("mix-1", at, model="gpt-4.1", input_tokens=1000),
            llm_event_in("mix-dup", at, model="gpt-4.1-mini", input_tokens=9),
            llm_event_in("mix-2", at, cost=Decimal("0.5")),
            InfraEventIn(
                0, "mix-infra", at, "checkout", "", "", "", "compute", Decimal(3), "cpu_seconds"
            ),
            llm_event_in("mix-3", at, provider="self-hosted", model="no-such-model"),
            llm_event_in(
                "mix-4", at, provider="anthropic", model="claude-sonnet-4-5", input_tokens=7000
            ),
            llm_event_in("mix-5", at, model="gpt-4.1-mini", input_tokens=2000, output_tokens=10),
        ]
        result = events_ingest(events=batch, pricer=pricer)
        stored = {
            e.event_id: (e.cost, e.cost_source, e.price_ref)
            for e in LlmUsageEvent.objects.filter(event_id__startswith="mix-")
        }
    assert (result.accepted, result.duplicates) == (6, 1)

    def book(event):
        priced = pricer.price(event)
        assert priced is not None
        return (priced.cost, CostSource.PRICE_BOOK, priced.price_ref)

    assert stored == {
        "mix-dup": book(llm_event_in("mix-dup", at)),  # the first copy, not the duplicate
        "mix-1": book(batch[0]),
        "mix-2": (Decimal("0.5"), CostSource.CLIENT, None),
        "mix-3": (None, CostSource.UNPRICED, None),
        "mix-4": book(batch[5]),
        "mix-5": book(batch[6]),
    }
    assert len({stored[k][0] for k in ("mix-1", "mix-4", "mix-5")}) == 3  # three prices apart
