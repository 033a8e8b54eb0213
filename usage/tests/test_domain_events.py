"""Event validation (pure): every rule gives a precise field and message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from usage.domain.events import FieldError, InfraEventIn, LlmEventIn, event_parse, events_parse

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def llm(**fields):
    return {
        "type": "llm",
        "event_id": "e-1",
        "timestamp": "2026-11-20T11:00:00Z",
        "project": "checkout",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1000,
        "output_tokens": 50,
        **fields,
    }


def infra(**fields):
    return {
        "type": "infra",
        "event_id": "i-1",
        "timestamp": "2026-11-20T11:00:00+02:00",
        "project": "checkout",
        "resource_type": "compute",
        "quantity": "12.5",
        "unit": "cpu_seconds",
        **fields,
    }


def parse(item, platform=False):
    return event_parse(item, 0, now=NOW, max_future=SKEW, platform=platform)


def test_valid_llm_event():
    event = parse(llm(cached_input_tokens=400, cost=Decimal("0.0123"), run_id="r-1"))
    assert isinstance(event, LlmEventIn)
    assert event.occurred_at == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert event.cached_input_tokens == 400
    assert event.cost == Decimal("0.0123")
    assert event.operation == "generation"


def test_valid_infra_event_is_normalised_to_utc():
    event = parse(infra())
    assert isinstance(event, InfraEventIn)
    assert event.occurred_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert event.quantity == Decimal("12.500000")


def test_uncached_input_tokens_are_added_up():
    event = parse(
        llm(
            input_tokens=None,
            uncached_input_tokens=100,
            cached_input_tokens=900,
            cache_write_tokens=50,
        )
    )
    assert event.input_tokens == 1050


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        (llm(type="metric"), "type", "'llm' or 'infra'"),
        (llm(event_id=None), "event_id", "required"),
        (llm(event_id=""), "event_id", "non-empty"),
        (llm(timestamp=None), "timestamp", "required"),
        (llm(timestamp="2026-11-20T11:00:00"), "timestamp", "timezone"),
        (llm(timestamp="yesterday"), "timestamp", "ISO 8601"),
        (llm(timestamp="2026-11-20T13:00:00Z"), "timestamp", "future"),
        (llm(project="Not A Slug"), "project", "slug"),
        (llm(project=None), "project", "required"),
        (llm(input_tokens=-1), "input_tokens", "between"),
        (llm(input_tokens=1.5), "input_tokens", "whole number"),
        (llm(input_tokens=True), "input_tokens", "whole number"),
        (llm(cached_input_tokens=900, cache_write_tokens=200), "cached_input_tokens", "exceed"),
        (llm(input_tokens=10, uncached_input_tokens=5), "input_tokens", "one or the other"),
        (llm(cost="-1"), "cost", "between"),
        (llm(cost="0.00000000001"), "cost", "decimal places"),
        (llm(cost="abc"), "cost", "decimal number"),
        (llm(cost="NaN"), "cost", "finite"),
        (llm(model=None), "model", "required"),
        (llm(colour="blue"), "colour", "not a field"),
        (llm(tenant="acme"), "tenant", "platform ingest key"),
        (infra(resource_type="gpu"), "resource_type", "one of"),
        (infra(quantity=None), "quantity", "required"),
        (infra(quantity="-3"), "quantity", "between"),
        (infra(unit=None), "unit", "required"),
        (infra(model="x"), "model", "not a field"),
        ("not an object", "", "JSON object"),
    ],
)
def test_invalid_events_name_the_field(item, field, words):
    error = parse(item)
    assert isinstance(error, FieldError)
    assert error.field == field
    assert words in error.message


def test_platform_events_need_a_tenant():
    assert parse(llm(), platform=True).field == "tenant"
    assert parse(llm(tenant="acme"), platform=True).tenant == "acme"


def test_every_bad_event_is_reported_with_its_index():
    events, errors = events_parse(
        [llm(), llm(event_id=None), infra(), infra(unit=None)], now=NOW, max_future=SKEW
    )
    assert len(events) == 2
    assert [(e.index, e.field) for e in errors] == [(1, "event_id"), (3, "unit")]


def test_late_events_are_accepted():
    event = parse(llm(timestamp="2025-01-01T00:00:00Z"))
    assert isinstance(event, LlmEventIn)
