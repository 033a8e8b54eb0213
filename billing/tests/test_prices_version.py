"""The prices' version changes with every write to the price book or to contract terms, in the
writer's transaction, and what processes keep in memory follows it: an entry or a term changed
in place prices calls at once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.operator.models import PriceBookEntry, PricesVersion, TenantPriceOverride
from billing.pricing.pricer import schedule_current, tenant_pricer
from billing.pricing.selectors import prices_version
from tests.support import llm_event_in

pytestmark = pytest.mark.django_db

AT = datetime(2026, 6, 1, tzinfo=UTC)


def _entry(model: str, price: str) -> PriceBookEntry:
    return PriceBookEntry(
        provider="versiontest",
        model=model,
        token_kind="input",
        price_per_mtok=Decimal(price),
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        source=PriceBookEntry.Source.OPERATOR,
    )


def _input_price(model: str) -> Decimal | None:
    resolved = schedule_current().resolve("versiontest", model, AT)
    return None if resolved is None else resolved.prices.input


def test_every_kind_of_write_gives_a_new_version(alpha):
    seen = [prices_version()]
    entry = _entry("v-writes", "1")
    entry.save()
    seen.append(prices_version())
    PriceBookEntry.objects.filter(pk=entry.pk).update(price_per_mtok=Decimal(2))
    seen.append(prices_version())
    with connection.cursor() as cursor:  # a write outside the ORM counts too
        cursor.execute(
            "UPDATE billing_platform_pricebookentry SET price_per_mtok = 3 WHERE id = %s",
            [entry.pk],
        )
    seen.append(prices_version())
    PriceBookEntry.objects.bulk_create([_entry("v-writes-2", "4")])
    seen.append(prices_version())
    PriceBookEntry.objects.filter(provider="versiontest").delete()
    seen.append(prices_version())
    term = TenantPriceOverride.objects.create(
        tenant=alpha.tenant, discount_percent=Decimal(10), effective_from=AT
    )
    seen.append(prices_version())
    TenantPriceOverride.objects.filter(pk=term.pk).update(discount_percent=Decimal(20))
    seen.append(prices_version())
    term.delete()
    seen.append(prices_version())
    assert None not in seen
    assert len(set(seen)) == len(seen), seen


def test_an_entry_changed_in_place_is_priced_at_its_new_price():
    """The count and largest id of the entries (the version before) stay the same when a price
    is changed in place, and every process kept pricing at the old one."""
    entry = _entry("v-in-place", "1.5")
    entry.save()
    assert _input_price("v-in-place") == Decimal("1.5")
    PriceBookEntry.objects.filter(pk=entry.pk).update(price_per_mtok=Decimal("2.5"))
    assert _input_price("v-in-place") == Decimal("2.5")


def test_emptied_tables_never_give_an_old_version_back():
    """A test database's flush truncates the book and the version together (restarting the
    tables' sequences); taking the migration back drops the row's table: the version row comes
    back above every version given before."""
    before = prices_version()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE billing_platform_pricebookentry, billing_platform_pricesversion"
            " RESTART IDENTITY"
        )
    after = prices_version()
    assert after is not None and before is not None and after > before
    assert PricesVersion.objects.count() == 1
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_platform_pricesversion")
    PriceBookEntry.objects.bulk_create([_entry("v-again", "1")])
    again = prices_version()
    assert again is not None and again > after


def test_without_a_version_row_nothing_is_kept_by_it():
    """The row deleted by hand: each pricer reads the prices afresh (kept under no version, a
    later missing row would have matched it whatever the prices had become)."""
    PriceBookEntry.objects.bulk_create([_entry("v-no-row", "1")])
    assert _input_price("v-no-row") == Decimal(1)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_platform_pricesversion")
        cursor.execute(
            "ALTER TABLE billing_platform_pricebookentry DISABLE TRIGGER prices_version_raise"
        )
        cursor.execute(
            "UPDATE billing_platform_pricebookentry SET price_per_mtok = 2 WHERE model = %s",
            ["v-no-row"],
        )
    assert prices_version() is None
    assert _input_price("v-no-row") == Decimal(2)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_platform_pricebookentry SET price_per_mtok = 3 WHERE model = %s",
            ["v-no-row"],
        )
        cursor.execute(
            "ALTER TABLE billing_platform_pricebookentry ENABLE TRIGGER prices_version_raise"
        )
    assert _input_price("v-no-row") == Decimal(3)


def test_the_version_is_one_row_not_a_read_of_the_book():
    with CaptureQueriesContext(connection) as queries:
        prices_version()
    reads = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET ")]
    assert len(reads) == 1
    sql = reads[0]
    assert "billing_platform_pricesversion" in sql
    assert "billing_platform_pricebookentry" not in sql


def _cost(tenant, call) -> Decimal | None:  # type: ignore[no-untyped-def]
    priced = tenant_pricer(tenant.tenant).price(call)
    return None if priced is None else priced.cost


def test_a_contract_term_changed_in_place_prices_the_next_batch(alpha):
    PriceBookEntry.objects.bulk_create([_entry("v-terms", "4")])
    call = llm_event_in(
        "v-terms-1",
        AT,
        provider="versiontest",
        model="v-terms",
        input_tokens=1_000_000,
        output_tokens=0,
    )
    assert _cost(alpha, call) == Decimal(4)
    term = TenantPriceOverride.objects.create(
        tenant=alpha.tenant, discount_percent=Decimal(25), effective_from=AT
    )
    assert _cost(alpha, call) == Decimal(3)
    TenantPriceOverride.objects.filter(pk=term.pk).update(discount_percent=Decimal(50))
    assert _cost(alpha, call) == Decimal(2)
    term.delete()
    assert _cost(alpha, call) == Decimal(4)


def test_a_pricer_of_unchanged_prices_reads_only_their_version(alpha):
    """Every ingest request takes a pricer: the book and the tenant's terms come from memory."""
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant, discount_percent=Decimal(25), effective_from=AT
    )
    tenant_pricer(alpha.tenant)
    with CaptureQueriesContext(connection) as queries:
        pricer = tenant_pricer(alpha.tenant)
    reads = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET ")]
    assert len(reads) == 1 and "billing_platform_pricesversion" in reads[0], reads
    assert [o.discount_percent for o in pricer._overrides] == [Decimal(25)]
