"""The operator's price book lists one row per model (input, output, cache read, cache write and
higher tiers as columns), with a "models in use" filter over every tenant's usage and each model's
history one click away."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.operator.models import PriceBookEntry
from tests.support import llm_spend, logged_in_client

pytestmark = pytest.mark.django_db

PROVIDER = "acme-ai"


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _price(model: str, kind: str, price: str, *, tier: int = 0, days_ago: int = 10) -> None:
    PriceBookEntry.objects.create(
        provider=PROVIDER,
        model=model,
        token_kind=kind,
        price_per_mtok=Decimal(price),
        effective_from=timezone.now() - timedelta(days=days_ago),
        tier_start=tier,
        source="operator",
    )


@pytest.fixture
def book():
    for kind, price in (("input", "3"), ("output", "15"), ("cache_read", "0.3")):
        _price("rocket-1", kind, price, days_ago=30)
    _price("rocket-1", "input", "2.5")  # a newer price supersedes the first
    _price("rocket-1", "cache_write", "3.75")
    _price("rocket-1", "input", "6", tier=200_000)
    _price("rocket-1", "output", "22.5", tier=200_000)
    _price("rocket-1", "output", "12", days_ago=-5)  # scheduled
    _price("rocket-mini", "input", "0.1")
    _price("rocket-mini", "output", "0.4")


def _rows(page: str) -> list[str]:
    table = page[page.index('data-testid="price-table"') :]
    return re.findall(r"<tr>\s*(<td>.*?)</tr>", table, flags=re.S)


def test_one_row_per_model_with_every_kind_and_tier(operator, book):
    page = _text(operator.get("/price-book/", {"provider": PROVIDER}))
    assert "2 models match" in page
    rows = _rows(page)
    assert len(rows) == 2
    rocket = re.findall(r'<td class="num">(.*?)</td>', rows[0])
    assert rocket == ["$2.50", "$15.00", "$0.30", "$3.75"]  # in force now, not superseded
    assert "above 200,000 input tokens: in $6.00, out $22.50" in rows[0]
    assert "1 scheduled" in rows[0] and "Operator" in rows[0]
    mini = re.findall(r'<td class="num">(.*?)</td>', rows[1])
    assert mini == ["$0.10", "$0.40", "—", "—"]
    assert "rocket-mini" in rows[1] and "scheduled" not in rows[1]


def test_a_models_history_lists_every_entry(operator, book):
    page = _text(operator.get("/price-book/", {"provider": PROVIDER, "model": "rocket-1"}))
    assert "acme-ai / rocket-1: every price" in page
    assert "8 entries" in page
    assert "superseded" in page and "scheduled" in page and "in force" in page
    missing = _text(operator.get("/price-book/", {"provider": PROVIDER, "model": "nope"}))
    assert "No price for acme-ai / nope in the book." in missing


def test_models_in_use_come_from_every_tenants_usage(operator, alpha, beta, book):
    assert "No tenant has LLM calls yet" in _text(operator.get("/price-book/?in_use=1"))
    at = datetime(2026, 9, 10, 12, tzinfo=UTC)
    llm_spend(alpha, at, "0.50")  # tests.support's call: openai / gpt-4.1-mini
    page = _text(operator.get("/price-book/?in_use=1"))
    rows = _rows(page)
    assert len(rows) >= 1 and "(models some tenant has LLM calls of)" in page
    assert all("rocket" not in row for row in rows)
    narrowed = _text(operator.get("/price-book/", {"in_use": "1", "provider": PROVIDER}))
    assert "No model matches for provider acme-ai among the models in use." in narrowed


def test_models_in_use_read_every_tenant_in_one_statement(
    operator, alpha, beta, book, django_assert_max_num_queries
):
    """It read each tenant's schema in turn: a query a tenant, ten thousand at ten thousand."""
    with django_assert_max_num_queries(16) as queries:
        assert operator.get("/price-book/?in_use=1&q=rocket").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if "usage_llmusagedaily" in q["sql"]]
    assert len(reads) == 1 and '"alpha".' in reads[0] and '"beta".' in reads[0]


@pytest.mark.parametrize(
    "query",
    [
        {"page": "9999"},
        {"page": "x"},
        {"in_use": "yes"},
        {"model": "a\x00b", "provider": PROVIDER},
        {"q": "%", "in_use": "1"},
    ],
)
def test_odd_input_never_fails(operator, book, query):
    assert operator.get("/price-book/", query).status_code == 200


def test_tenants_cannot_reach_the_price_book(alpha, client, public_host):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    assert admin.get("/price-book/?in_use=1").status_code == 404
    assert client.get("/price-book/?in_use=1", HTTP_HOST=public_host).status_code in (302, 403)
