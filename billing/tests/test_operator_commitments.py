"""The operator records, changes and ends a tenant's prepaid commitments in the console; the
service refuses another currency than the tenant's and an end not after the start, with
messages that say so; nobody but the operator reaches these pages."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.operator.models import Commitment
from billing.operator.services.commitments import (
    commitment_create,
    commitment_end,
    commitment_update,
)
from tests.support import host_client, llm_spend, logged_in_client

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Q4 prepaid",
    "kind": "commitment",
    "amount": "25000.00",
    "currency": "USD",
    "start_date": "2026-10-01",
    "end_date": "2026-12-31",
    "covers": "total",
}


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_the_operator_records_one_from_the_tenants_page(operator, alpha):
    page = operator.get("/")
    assert f"/tenants/{alpha.tenant.slug}/commitments/" in page.content.decode()
    url = f"/tenants/{alpha.tenant.slug}/commitments/"
    assert "No commitments or credits" in _text(operator.get(url))
    response = operator.post(url, FORM)
    assert response.status_code == 302
    made = Commitment.objects.get(tenant=alpha.tenant)
    assert made.amount == Decimal("25000.00") and made.covers == "total"
    assert made.created_by == "ops@portal.test"
    listed = _text(operator.get(url))
    assert "Q4 prepaid" in listed and "25000.00 USD" in listed
    # The operator sees its drawdown, read in the tenant's schema.
    llm_spend(alpha, datetime(2026, 10, 5, 9, tzinfo=UTC), "12.34")
    row = _text(operator.get(url)).split(f'data-testid="commitment-{made.pk}"')[1]
    consumed = row.split('data-testid="consumed">')[1].split("<")[0]
    assert consumed == "12.34"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"currency": "EUR"}, "currency", "is billed in USD: a commitment in EUR cannot"),
        ({"end_date": "2026-10-01"}, "end_date", "must come after the start"),
        ({"end_date": "2026-09-30"}, "end_date", "must come after the start"),
        ({"amount": "0"}, "amount", "must be more than zero"),
    ],
)
def test_bad_terms_are_refused_with_a_message(operator, alpha, change, field, message):
    response = operator.post(f"/tenants/{alpha.tenant.slug}/commitments/", {**FORM, **change})
    assert response.status_code == 400
    assert message in _text(response)
    assert not Commitment.objects.exists()
    with pytest.raises(ValidationError) as refused:
        commitment_create(
            tenant=alpha.tenant,
            name="x",
            amount=Decimal(change.get("amount", "10")),
            currency=change.get("currency", "USD"),
            start_date=date(2026, 10, 1),
            end_date=date.fromisoformat(change.get("end_date", "2026-12-31")),
        )
    assert field in refused.value.message_dict


def test_edit_and_end(operator, alpha, beta):
    made = commitment_create(
        tenant=alpha.tenant,
        name="Q4",
        amount=Decimal("100"),
        currency="USD",
        start_date=date(2026, 10, 1),
        end_date=date(2026, 12, 31),
    )
    url = f"/tenants/{alpha.tenant.slug}/commitments/{made.pk}/"
    assert operator.get(url).status_code == 200
    # Another tenant's id in the URL is not found.
    assert operator.get(f"/tenants/{beta.tenant.slug}/commitments/{made.pk}/").status_code == 404
    response = operator.post(url, {**FORM, "name": "Q4", "amount": "150", "currency": "GBP"})
    assert response.status_code == 400 and "is billed in USD" in _text(response)
    assert operator.post(url, {**FORM, "name": "Q4", "amount": "150"}).status_code == 302
    made.refresh_from_db()
    assert made.amount == Decimal("150")
    with pytest.raises(ValidationError):
        commitment_update(commitment=made, end_date=date(2026, 9, 1))
    operator.post(f"{url}end")
    made.refresh_from_db()
    assert made.ended_on is not None and made.last_day == made.ended_on
    # Ended before it began: it draws on no day.
    later = commitment_create(
        tenant=alpha.tenant,
        name="next year",
        amount=Decimal("100"),
        currency="USD",
        start_date=date(2027, 1, 1),
        end_date=date(2027, 3, 31),
    )
    commitment_end(commitment=later, now=datetime(2026, 11, 20, 12, tzinfo=UTC))
    assert later.last_day == date(2026, 12, 31) < later.start_date


def test_only_the_operator(alpha, public_host):
    url = f"/tenants/{alpha.tenant.slug}/commitments/"
    # A tenant admin on the tenant's host has no such page; anonymous on the console is sent
    # to log in.
    admin = logged_in_client(alpha.host, alpha.admin_email)
    assert admin.get(url).status_code == 404
    anonymous = host_client(public_host).get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
