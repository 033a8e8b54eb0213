"""Budget alerts read well (issue 17, item 4), through ``budgets_evaluate`` on stored usage: a
jump over several thresholds is one alert naming the highest, and the lower ones never fire
later; the alert quotes the budgets page's month-to-date figure; "exceeded" and "expected to
exceed" never contradict each other."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.models import Alert, Delivery
from alerts.services import evaluate
from alerts.tasks import deliveries_flush_tenant
from alerts.tests.test_alerts import TODAY, _forecast, _spend
from billing.models import Budget
from billing.tests.test_costs_exports import month  # noqa: F401  (fixture)
from notifications.models import Notification
from tests.support import logged_in_client, noon, response_text

pytestmark = pytest.mark.django_db

EARLY = datetime(2026, 11, 2, 10, tzinfo=UTC)  # spend before TODAY (Nov 20): complete days


def _keys(alerts: list[Alert]) -> list[str]:
    return [a.key for a in alerts]


def test_a_jump_over_three_thresholds_is_one_alert_naming_the_highest(alpha, mailoutbox):
    with schema_context(alpha.schema):
        budget = Budget.objects.create(
            project="web", amount=Decimal("1000"), thresholds=[50, 80, 100]
        )
        _spend(alpha.tenant, "400", at=EARLY, event_id="j1")
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []  # 40%
        _spend(alpha.tenant, "650", at=EARLY, event_id="j2")  # one big batch: 105%
        [alert] = evaluate.budgets_evaluate(now=noon(TODAY))
        assert alert.key == "budget:project=web:2026-11:actual:100"
        assert alert.severity == "critical"
        assert alert.title == "105% of the November budget of project web spent"
        assert alert.body == (
            "$1,050.00 of $1,000.00 (thresholds 50%, 80% and 100% crossed). Budget exceeded by"
            " $50.00. AI spend this month to date, today included."
        )
        assert alert.data["thresholds_crossed"] == [50, 80, 100]
        assert alert.data["threshold_percent"] == 100 and alert.data["basis"] == "actual"
        assert alert.data["spent"] == "1050.00" and alert.data["spent_percent"] == "105.00"
        # The lower thresholds are done: not now, not after more spend, not when re-added.
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []
        _spend(alpha.tenant, "100", at=EARLY, event_id="j3")
        budget.thresholds = [50, 80, 90, 100, 150]  # 90 is new but below what was announced
        budget.save()
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []
        _spend(alpha.tenant, "350", at=EARLY, event_id="j4")  # 150%: only the new top one
        [higher] = evaluate.budgets_evaluate(now=noon(TODAY))
        assert higher.key == "budget:project=web:2026-11:actual:150"
        assert "(threshold 150% crossed)" in higher.body
        assert Alert.objects.count() == 2
        assert Notification.objects.filter(kind="budget").count() == 2
        assert deliveries_flush_tenant() == {"sent": 2}
    assert len(mailoutbox) == 2 and mailoutbox[0].subject.endswith(alert.title)
    assert "thresholds 50%, 80% and 100% crossed" in mailoutbox[0].body


def test_thresholds_reached_one_at_a_time_each_fire_once_as_warnings(alpha):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("200"), thresholds=[50, 80, 100])
        _spend(alpha.tenant, "110", at=EARLY, event_id="s1")  # 55%
        [first] = evaluate.budgets_evaluate(now=noon(TODAY))
        _spend(alpha.tenant, "60", at=EARLY, event_id="s2")  # 85%
        [second] = evaluate.budgets_evaluate(now=noon(TODAY))
    assert (first.key, first.severity) == ("budget:tenant:2026-11:actual:50", "warning")
    assert first.title == "55% of the November budget spent"
    assert first.body.startswith("$110.00 of $200.00 (threshold 50% reached). AI spend")
    assert (second.key, second.severity) == ("budget:tenant:2026-11:actual:80", "warning")
    assert second.data["thresholds_crossed"] == [80]
    assert "exceeded" not in first.body + second.body


def _spent_cells(page: str) -> dict[str, str]:
    """The budgets page's "Spent so far" figure of each row, by its scope."""
    rows = re.findall(
        r'<tr data-testid="budget">\s*<th scope="row">(.*?)</th>\s*<td class="num">.*?</td>\s*'
        r'<td class="num">(.*?)</td>',
        page,
        re.S,
    )
    return dict(rows)


def test_the_alert_quotes_the_budgets_page_month_to_date_figure(
    month,  # noqa: F811
    alpha,
    monkeypatch,
):
    # September 2026 (the fixture's month): AI 15.3333333333 for the tenant; project web has
    # AI 7 and 60 of the month's allocated infrastructure. One budget on each basis.
    moment = datetime(2026, 9, 20, 12, tzinfo=UTC)
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("20"), thresholds=[50])
        Budget.objects.create(project="web", basis="total", amount=Decimal("50"), thresholds=[80])
    client = logged_in_client(alpha.host, alpha.admin_email)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    shown = _spent_cells(response_text(client.get("/budgets/")))
    with schema_context(alpha.schema):
        raised = {a.data["project"]: a for a in evaluate.budgets_evaluate(now=moment)}
    quoted = {
        project: re.match(r"(\$[\d,]+\.\d\d) of ", a.body).group(1) for project, a in raised.items()
    }
    assert shown == {"Whole tenant": "$15.33", "Project web": "$67.00"}
    assert quoted == {"": shown["Whole tenant"], "web": shown["Project web"]}
    assert "AI spend this month" in raised[""].body
    assert "Total spend (AI and infrastructure) this month" in raised["web"].body
    assert raised["web"].title == "134% of the September budget of project web spent"


def test_forecast_then_actual_never_contradict(alpha):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("100"), thresholds=[50, 80, 100, 150])
        _spend(alpha.tenant, "40", at=EARLY, event_id="c1")
        _forecast("", TODAY, "70", "6")  # 40 + 70 = 110 at month end; 100 passed on Nov 29
        [forecast] = evaluate.budgets_evaluate(now=noon(TODAY))
        assert forecast.key == "budget:tenant:2026-11:forecast:100"
        assert forecast.severity == "warning"
        assert forecast.title == "Forecast to exceed the November budget"
        assert forecast.body == (
            "$40.00 of $100.00 spent so far. AI spend this month to date, today included. On"
            " pace for $110.00 by 30 November (110% of the budget; thresholds 50%, 80% and 100%"
            " on forecast): expected to exceed the budget on 29 November."
        )
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []
        # Actual spend reaches 50%: said as reached; forecast 100% was announced already.
        _spend(alpha.tenant, "15", at=EARLY, event_id="c2")
        [reached] = evaluate.budgets_evaluate(now=noon(TODAY))
        assert reached.key == "budget:tenant:2026-11:actual:50"
        assert reached.title == "55% of the November budget spent"
        assert reached.body.endswith(
            "On pace for $125.00 by 30 November (125% of the budget): expected to exceed the"
            " budget on 27 November."
        )
        # Actual spend exceeds the budget: nothing is "expected" of what has happened.
        _spend(alpha.tenant, "50", at=EARLY, event_id="c3")
        [exceeded] = evaluate.budgets_evaluate(now=noon(TODAY))
        assert exceeded.key == "budget:tenant:2026-11:actual:100"
        assert exceeded.severity == "critical"
        assert exceeded.data["thresholds_crossed"] == [80, 100]
        assert exceeded.body == (
            "$105.00 of $100.00 (thresholds 80% and 100% crossed). Budget exceeded by $5.00. AI"
            " spend this month to date, today included. On pace for $175.00 by 30 November (175%"
            " of the budget; threshold 150% on forecast)."
        )
        assert exceeded.data["crossing_expected"] is None
        assert exceeded.data["forecast_thresholds_crossed"] == [150]
        assert exceeded.title == "105% of the November budget spent, forecast to reach 150%"
        assert "expected" not in exceeded.body and "to be exceeded" not in exceeded.title
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []  # 150 rode on that alert
        assert Alert.objects.count() == 3


def test_a_crossing_today_is_not_named_as_a_day(alpha):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("100"), thresholds=[100])
        _spend(alpha.tenant, "40", at=EARLY, event_id="t1")
        _forecast("", TODAY, "600", "60")  # 40 + today's 60 reaches 100 today
        [alert] = evaluate.budgets_evaluate(now=noon(TODAY))
    assert alert.data["crossing_expected"] == TODAY.isoformat()
    assert alert.body.endswith("expected to exceed the budget by the end of November.")
    assert "20 November" not in alert.body


def test_thresholds_newly_crossed_on_both_bases_make_one_notification(alpha):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("100"), thresholds=[50, 80, 100])
        _spend(alpha.tenant, "55", at=EARLY, event_id="b1")
        _forecast("", TODAY, "70", "6")  # 55 + 70 = 125: 80 and 100 on forecast
        [alert] = evaluate.budgets_evaluate(now=noon(TODAY))
        assert alert.key == "budget:tenant:2026-11:actual:50"
        assert alert.title == "55% of the November budget spent, forecast to be exceeded"
        assert alert.data["forecast_thresholds_crossed"] == [80, 100]
        assert "(125% of the budget; thresholds 80% and 100% on forecast)" in alert.body
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []  # no forecast alert after it
        assert Notification.objects.filter(kind="budget").count() == 1
        assert Delivery.objects.count() == 1  # alpha's admin, once


def test_a_new_month_starts_over(alpha):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("10"), thresholds=[50, 100])
        _spend(alpha.tenant, "11", at=EARLY, event_id="m1")
        assert _keys(evaluate.budgets_evaluate(now=noon(TODAY))) == [
            "budget:tenant:2026-11:actual:100"
        ]
        _spend(alpha.tenant, "6", at=datetime(2026, 12, 1, 9, tzinfo=UTC), event_id="m2")
        assert _keys(evaluate.budgets_evaluate(now=noon(date(2026, 12, 2)))) == [
            "budget:tenant:2026-12:actual:50"
        ]


def test_a_project_named_tenant_has_budget_alerts_of_its_own(alpha):
    """Its keys are not the tenant budget's (``budget:tenant:…`` both, until a review found a
    project budget at 11,000% that raised nothing after the tenant's had alerted)."""
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("10"), thresholds=[100])
        _spend(alpha.tenant, "20", at=EARLY, event_id="t1", project="tenant")
        assert _keys(evaluate.budgets_evaluate(now=noon(TODAY))) == [
            "budget:tenant:2026-11:actual:100"
        ]
        Budget.objects.create(project="tenant", amount=Decimal("10"), thresholds=[100])
        assert _keys(evaluate.budgets_evaluate(now=noon(TODAY))) == [
            "budget:project=tenant:2026-11:actual:100"
        ]


def test_a_threshold_announced_under_the_earlier_key_is_not_announced_again(alpha):
    """Alerts stored before project keys were ``budget:project=<slug>:…`` keep counting as
    announced (they are not rewritten, so a worker on the earlier code also finds them); the
    tenant budget's keys never count for a project named ``tenant``."""
    with schema_context(alpha.schema):
        Budget.objects.create(project="web", amount=Decimal("10"), thresholds=[100])
        _spend(alpha.tenant, "20", at=EARLY, event_id="w1")
        Alert.objects.create(
            key="budget:web:2026-11:actual:100",
            kind="budget",
            title="earlier",
            data={"project": "web", "basis": "actual", "threshold_percent": 100},
        )
        assert evaluate.budgets_evaluate(now=noon(TODAY)) == []
        assert evaluate._announced_prefixes("tenant", "2026-11") == [
            "budget:project=tenant:2026-11:"
        ]
