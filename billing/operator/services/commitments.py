"""Writing tenants' prepaid commitments and credits (public schema): create, change, end.

What makes one valid is decided here (the forms only type the input): a positive amount with
cents at most, in the tenant's own currency (drawdown compares it with the tenant's spend, which
is in that currency), and an end after its start (days of the tenant, both included).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.operator.models import Commitment
from factory_portal.periods import local_date, zone
from factory_portal.tenants.models import Tenant

FIELDS = ("name", "kind", "amount", "currency", "start_date", "end_date", "covers")


def _validate(*, tenant: Tenant, values: dict[str, object], pk: int | None) -> None:
    errors: dict[str, str] = {}
    if tenant.is_public:
        errors["tenant"] = "Commitments belong to a customer tenant."
    name = str(values["name"]).strip()
    if not name:
        errors["name"] = "A commitment needs a name."
    elif Commitment.objects.filter(tenant=tenant, name=name).exclude(pk=pk).exists():
        errors["name"] = f"{tenant.name} already has a commitment named {name!r}."
    amount = values["amount"]
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        errors["amount"] = "The amount must be more than zero."
    elif amount != amount.quantize(Decimal("0.01")):
        errors["amount"] = "The amount has cents at most (two decimal places)."
    currency = str(values["currency"]).strip().upper()
    if currency != tenant.currency:
        errors["currency"] = (
            f"{tenant.name} is billed in {tenant.currency}: a commitment in {currency or '(none)'}"
            f" cannot be drawn down by its spend. Use {tenant.currency}."
        )
    start, end = values["start_date"], values["end_date"]
    if isinstance(start, date) and isinstance(end, date) and end <= start:
        errors["end_date"] = f"The end ({end}) must come after the start ({start})."
    if values["kind"] not in Commitment.Kind.values:
        errors["kind"] = f"One of {', '.join(Commitment.Kind.values)}."
    if values["covers"] not in Commitment.Covers.values:
        errors["covers"] = f"One of {', '.join(Commitment.Covers.values)}."
    if errors:
        raise ValidationError(errors)


def commitment_create(
    *,
    tenant: Tenant,
    name: str,
    amount: Decimal,
    currency: str,
    start_date: date,
    end_date: date,
    kind: str = Commitment.Kind.COMMITMENT,
    covers: str = Commitment.Covers.TOTAL,
    created_by: str = "",
) -> Commitment:
    """Record a commitment (or credit) of ``tenant``; ValidationError keyed by field."""
    values: dict[str, object] = {
        "name": name,
        "kind": kind,
        "amount": amount,
        "currency": currency,
        "start_date": start_date,
        "end_date": end_date,
        "covers": covers,
    }
    _validate(tenant=tenant, values=values, pk=None)
    return Commitment.objects.create(
        tenant=tenant,
        name=name.strip(),
        kind=kind,
        amount=amount,
        currency=currency.strip().upper(),
        start_date=start_date,
        end_date=end_date,
        covers=covers,
        created_by=created_by,
    )


def commitment_update(*, commitment: Commitment, **changes: object) -> Commitment:
    """Change a commitment's terms (any of ``FIELDS``); its drawdown is recomputed from the
    spend whenever it is read, so a change applies to its whole period."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError({"__all__": f"Not a commitment field: {', '.join(sorted(unknown))}"})
    with transaction.atomic():
        locked = (
            Commitment.objects.select_for_update().select_related("tenant").get(pk=commitment.pk)
        )
        values = {f: changes.get(f, getattr(locked, f)) for f in FIELDS}
        _validate(tenant=locked.tenant, values=values, pk=locked.pk)
        for f in FIELDS:
            value = values[f]
            setattr(locked, f, value.strip() if isinstance(value, str) else value)
        locked.currency = locked.currency.upper()
        locked.save()
    return locked


def commitment_end(*, commitment: Commitment, now: datetime | None = None) -> Commitment:
    """End a commitment today (the tenant's day): today is its last day of drawdown; one that
    has not started yet then draws nothing."""
    moment = now if now is not None else timezone.now()
    today = local_date(moment, zone(commitment.tenant.timezone))
    last = today if today >= commitment.start_date else commitment.start_date - timedelta(days=1)
    if commitment.ended_on is None or last < commitment.ended_on:
        commitment.ended_on = min(last, commitment.end_date)
        commitment.save(update_fields=["ended_on"])
    return commitment
