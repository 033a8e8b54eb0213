"""Prepaid commitment alerts: consumption passing 50, 80 and 100% and forecast exhaustion within
14 days, each once per commitment, to admins and finance (in-app and e-mail); another tenant's
commitment never alerts here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from alerts.models import Alert
from alerts.services import evaluate
from alerts.tasks import deliveries_flush_tenant
from alerts.tests.test_alerts import _spend
from billing.models import CostForecast
from billing.operator.models import Commitment
from factory_portal.accounts.models import Role
from notifications.models import Notification
from tests.support import noon, user_make

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)
EARLY = datetime(2026, 11, 2, 10, tzinfo=UTC)


def _commitment(tenant, amount="1000", **kw) -> Commitment:
    values = {
        "name": "Q4 prepaid",
        "amount": Decimal(amount),
        "currency": tenant.currency,
        "start_date": date(2026, 10, 1),
        "end_date": date(2026, 12, 31),
        "covers": "ai",
    }
    values.update(kw)
    return Commitment.objects.create(tenant=tenant, **values)


def _forecast(start: date, daily: str) -> None:
    rows, total = [], Decimal(0)
    for n in range(60):
        total += Decimal(daily)
        day = str(start + timedelta(days=n))
        rows.append([day, daily, "0", "0", "0", "0", str(total), str(total / 2), str(total * 2)])
    CostForecast.objects.create(
        project="",
        computed_at=datetime(2026, 11, 20, tzinfo=UTC),
        method="test",
        start=start,
        daily=rows,
        month_end={},
        next_30={},
        next_90={},
    )


def test_each_threshold_once_the_highest_of_a_jump(alpha, beta, mailoutbox):
    user_make(alpha, "finance@alpha.test", Role.FINANCE)
    user_make(alpha, "member@alpha.test", Role.MEMBER)
    commitment = _commitment(alpha.tenant)
    _commitment(beta.tenant, amount="1")  # beta's: used up by nothing of alpha's
    with schema_context(alpha.schema):
        _spend(alpha.tenant, "499.99", at=EARLY, event_id="c1")
        assert evaluate.commitments_evaluate(now=noon(TODAY)) == []
        _spend(alpha.tenant, "0.01", at=EARLY, event_id="c2")  # exactly 50%
        [half] = evaluate.commitments_evaluate(now=noon(TODAY))
        assert half.key == f"commitment:{commitment.pk}:consumed:50"
        assert half.kind == Alert.Kind.COMMITMENT
        assert half.data["consumed"] == "500.00" and half.data["remaining"] == "500.00"
        assert evaluate.commitments_evaluate(now=noon(TODAY)) == []  # not twice
        _spend(alpha.tenant, "600", at=EARLY, event_id="c3")  # 110%: 80 skipped, 100 said
        [used_up] = evaluate.commitments_evaluate(now=noon(TODAY))
        assert used_up.key == f"commitment:{commitment.pk}:consumed:100"
        assert used_up.severity == "critical" and used_up.data["remaining"] == "0.00"
        assert evaluate.commitments_evaluate(now=noon(TODAY)) == []
        # In-app (a budget notice in the inbox) to admins and finance only; e-mail to them.
        readers = set(
            Notification.objects.filter(kind="budget").values_list("user__email", flat=True)
        )
        assert readers == {alpha.admin_email, "finance@alpha.test"}
        deliveries_flush_tenant()
    assert {m.to[0] for m in mailoutbox} == {alpha.admin_email, "finance@alpha.test"}
    with schema_context(beta.schema):
        assert evaluate.commitments_evaluate(now=noon(TODAY)) == []
        assert not Alert.objects.exists()


def test_forecast_exhaustion_within_14_days_alerts_once(alpha):
    commitment = _commitment(alpha.tenant, amount="300")
    with schema_context(alpha.schema):
        _spend(alpha.tenant, "100", at=EARLY, event_id="x1")
        _forecast(TODAY, "10")  # 200 left at 10 a day: runs out on Dec 10, 20 days ahead
        assert evaluate.commitments_evaluate(now=noon(TODAY)) == []
        CostForecast.objects.all().delete()
        _forecast(TODAY, "20")  # 20 a day: runs out on Nov 30, within 14 days
        [soon] = evaluate.commitments_evaluate(now=noon(TODAY))
        assert soon.key == f"commitment:{commitment.pk}:exhaustion"
        assert soon.data["exhaustion_expected"] == "2026-11-30"
        # earliest from the high path (40 a day), latest from the low one (10 a day)
        assert soon.data["exhaustion_earliest"] == "2026-11-25"
        assert soon.data["exhaustion_latest"] == "2026-12-10"
        assert evaluate.commitments_evaluate(now=noon(TODAY)) == []
