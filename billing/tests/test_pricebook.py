"""The price book is loaded from the genai-prices catalogue, never hand-typed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from billing.operator.models import PriceBookEntry
from billing.pricing.book import pricebook_refresh
from billing.pricing.catalogue import catalogue_price_points
from billing.pricing.domain import TokenCounts, priced
from billing.pricing.selectors import price_schedule

pytestmark = pytest.mark.django_db


def test_refresh_loads_the_catalogue_and_is_idempotent():
    PriceBookEntry.objects.all().delete()
    first = pricebook_refresh()
    assert first.created > 1000
    second = pricebook_refresh()
    assert second.created == 0 and second.changed == 0
    assert second.unchanged == first.created
    assert PriceBookEntry.objects.count() == first.created


def test_a_changed_catalogue_price_becomes_a_new_entry_not_an_edit():
    PriceBookEntry.objects.all().delete()
    points = [p for p in catalogue_price_points() if p.model == "gpt-4.1"]
    pricebook_refresh(points=points)
    old = PriceBookEntry.objects.get(model="gpt-4.1", token_kind="input")
    changed = [
        p.__class__(**{**p.__dict__, "price_per_mtok": p.price_per_mtok * 2})
        if p.token_kind == "input"
        else p
        for p in points
    ]
    result = pricebook_refresh(points=changed)
    assert result.changed == 1
    entries = PriceBookEntry.objects.filter(model="gpt-4.1", token_kind="input").order_by(
        "effective_from"
    )
    assert [e.price_per_mtok for e in entries] == [old.price_per_mtok, old.price_per_mtok * 2]


def test_price_book_agrees_with_genai_prices_calc_price():
    """Cross-check of our pricing against the catalogue's own calculator."""
    PriceBookEntry.objects.all().delete()
    pricebook_refresh()
    schedule = price_schedule()
    at = datetime(2026, 6, 1, tzinfo=UTC)
    for provider, model in [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4.1-mini"),
        ("google", "gemini-2.5-flash"),
    ]:
        tokens = TokenCounts(input_tokens=12_000, output_tokens=800, cached_input_tokens=5_000)
        ours, _ = priced(schedule, provider, model, at, tokens)
        theirs = calc_price(
            Usage(input_tokens=12_000, output_tokens=800, cache_read_tokens=5_000),
            model_ref=model,
            provider_id=provider,
            genai_request_timestamp=at,
        ).total_price
        assert ours == Decimal(theirs).quantize(Decimal("0.0000000001")), (provider, model)


def test_price_override_command_validates_and_creates(alpha):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from billing.operator.models import TenantPriceOverride

    with pytest.raises(CommandError, match="either --discount or custom prices"):
        call_command("price_override", "--tenant", "alpha", stdout=io.StringIO())
    with pytest.raises(CommandError, match="0 to 100"):
        call_command(
            "price_override", "--tenant", "alpha", "--discount", "120", stdout=io.StringIO()
        )
    with pytest.raises(CommandError, match="--output"):
        call_command("price_override", "--tenant", "alpha", "--input", "1", stdout=io.StringIO())
    call_command(
        "price_override",
        "--tenant",
        "alpha",
        "--provider",
        "openai",
        "--discount",
        "12.5",
        "--from",
        "2026-10-01",
        stdout=io.StringIO(),
    )
    override = TenantPriceOverride.objects.get()
    assert (override.provider, override.discount_percent) == ("openai", Decimal("12.5"))
