"""Cost summaries: the cost pages' figures equal the exact cost report, are served from the cache
while the month's data is unchanged, and recomputed (live) as soon as it changes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from billing.selectors import summaries as cost_summaries
from billing.selectors.summaries import cost_summary, distribution
from billing.tests.test_costs_exports import PERIOD, T, month  # noqa: F401  (fixture)
from tests.support import llm_event_in, logged_in_client
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def test_summary_matches_the_report(month, alpha):  # noqa: F811
    report = month
    with schema_context(alpha.schema):
        summary = cost_summary(tenant=alpha.tenant, period=PERIOD)
    assert (summary.token_cost, summary.infra_cost) == (report.token_cost, report.infra_cost)
    assert summary.waste == report.waste
    assert dict(summary.by_template)["react-spa"].total == report.by("template")["react-spa"].total
    assert summary.run_infra == {r.run_id: r.infra_cost for r in report.runs if r.infra_cost}
    assert sum(count for _, _, count in summary.distribution) == len(report.runs)
    assert sum(line.amount for line in summary.lines) == sum(
        line.amount for line in report.lines if line.level == "tenant"
    )


def test_summary_is_cached_until_the_data_changes(month, alpha, monkeypatch):  # noqa: F811
    computed = []
    real = cost_summaries.cost_report

    def counting(**kwargs):
        computed.append(kwargs["period"])
        return real(**kwargs)

    monkeypatch.setattr(cost_summaries, "cost_report", counting)
    now = timezone.now()
    with schema_context(alpha.schema):
        first = cost_summary(tenant=alpha.tenant, period=PERIOD, now=now)
        before = len(computed)  # 0: the fixture's refresh task cached it already
        again = cost_summary(tenant=alpha.tenant, period=PERIOD, now=now + timedelta(days=2))
        assert len(computed) == before and again.computed_at == first.computed_at  # same data
        events_ingest(
            events=[llm_event_in("late", T, project="web", cost=Decimal("5"))],
            pricer=pricer_for(alpha.tenant),
        )
        live = cost_summary(tenant=alpha.tenant, period=PERIOD, now=now + timedelta(seconds=1))
        assert len(computed) == before + 1
        assert live.token_cost == first.token_cost + Decimal("5")


def test_costs_page_and_run_details_show_the_summary(month, alpha):  # noqa: F811
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get(f"/costs/?month={PERIOD:%Y-%m}").content.decode()
    assert "$15.33" in page and "$100.00" in page and "4 runs used something" in page
    detail = client.get("/runs/ok-2/").content.decode()
    assert "$20.00" in detail  # its 20 of the project's 60 cpu-seconds of the $60 web share


def test_distribution_bins_count_every_run_exactly():
    values = [Decimal(v) / 7 for v in range(1, 101)]
    bins = distribution(sorted(values), bins=10)
    assert len(bins) == 10 and sum(count for _, _, count in bins) == 100
    assert bins[0][0] == min(values) and bins[-1][1] == max(values)
    assert distribution([]) == [] and distribution([Decimal(2)] * 3) == [
        (Decimal(2), Decimal(2), 3)
    ]


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Berlin", "America/Los_Angeles"])
def test_the_refresh_task_warms_the_month_the_costs_page_opens_on(
    alpha, zone, settings, monkeypatch
):
    """A tenant east of UTC once had the summary of a one-day "month" (the last day of the
    previous month) stored by the beat under the previous month's key."""
    from billing.tasks import cost_summary_refresh_tenant

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()  # locmem is one store per process: nothing from an earlier test
    monkeypatch.setattr(alpha.tenant, "timezone", zone)  # the session's tenant object is restored
    alpha.tenant.save(update_fields=["timezone"])  # the row, with the test's transaction
    with tenant_context(alpha.tenant):  # as the worker runs it: the tenant, not only its schema
        events_ingest(
            events=[llm_event_in("now", timezone.now(), project="web", cost=Decimal("2"))],
            pricer=pricer_for(alpha.tenant),
        )
        cost_summary_refresh_tenant()
        later = timezone.now() + timedelta(seconds=1)
        page = cost_summary(
            tenant=alpha.tenant,
            period=cost_summaries.summary_month(later, ZoneInfo(zone)),
            now=later,
        )
    assert page.computed_at < later  # served from what the task stored, not computed again
    assert page.period == cost_summaries.summary_month(later, ZoneInfo(zone))
    assert page.token_cost >= Decimal("2")
