"""Regression tests for problems a review found: each used to be a 500, a leak or a wrong sum."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.operator.models import AllocationLine, AllocationRule, CostPool
from billing.operator.services.allocation import allocation_run
from factory_portal.tenants.models import Tenant
from tests.support import bearer, host_client, key_for, llm_event_in
from usage.domain.events import InfraEventIn
from usage.domain.otlp import FlatSpan, spans_map
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.tests.otlp_spans import as_request, factory_run_spans

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _post(tenant, body, content_type="application/json", path="/api/v1/events"):
    _, key = key_for(tenant, ["ingest"])
    return host_client(tenant.host).post(path, data=body, content_type=content_type, **bearer(key))


def _event(**fields):
    return {
        "type": "infra",
        "event_id": "x",
        "timestamp": "2026-11-20T10:00:00Z",
        "project": "web",
        "resource_type": "compute",
        "quantity": 1,
        "unit": "cpu_seconds",
        **fields,
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (json.dumps({"events": [_event(resource_type=["compute"])]}), 422),
        (json.dumps({"events": [_event(project="web\n")]}), 422),
        ("[" * 100_000, 400),
    ],
)
def test_odd_json_gets_a_4xx_not_a_500(alpha, body, status):
    assert _post(alpha, body).status_code == status


def test_run_status_of_the_wrong_type_is_a_422(alpha):
    body = json.dumps({"runs": [{"run_id": "r", "project": "p", "status": {"a": 1}}]})
    assert _post(alpha, body, path="/api/v1/runs").status_code == 422


def test_content_type_parameters_are_accepted(alpha):
    response = _post(
        alpha, json.dumps({"events": [_event()]}), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200


def _span(**fields):
    values = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "parent_span_id": "",
        "name": "factory.job.execute",
        "start": NOW - timedelta(minutes=1),
        "end": NOW,
        "attrs": {"job.id": "build", "run.id": "r1", "run.project_id": "web"},
        "resource": {},
        "status_code": 0,
        "status_message": "",
    }
    values.update(fields)
    return FlatSpan(**values)


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (_span(start=None), "start or end"),
        (_span(end=NOW + timedelta(days=400)), "future"),
        (_span(attrs={"job.id": "build", "job.attempt": 70_000}), "job.attempt"),
        (_span(attrs={"job.id": "j" * 500}), "job.id"),
        (
            _span(
                name="chat", attrs={"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": -5}
            ),
            "input tokens",
        ),
        (_span(attrs={"job.id": "build", "run.id": "r" * 300}), "run.id"),
    ],
)
def test_unusable_spans_are_rejected_not_crashed(span, words):
    records, rejected = spans_map([span], now=NOW)
    assert records == []
    assert words in rejected[0].reason


def test_a_trace_of_another_tenant_cannot_be_written_into(alpha, beta):
    """Beta reusing alpha's trace id gets its own run in its own schema (trace routes are per
    tenant, issue 13 item 7); alpha's run and calls are untouched."""
    spans = factory_run_spans(tenant=None, run_id="alpha-run")
    _, alpha_key = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["ingest"])
    body = as_request(spans).SerializeToString()
    host_client(alpha.host).post(
        "/v1/traces", data=body, content_type="application/x-protobuf", **bearer(alpha_key)
    )
    with schema_context(alpha.schema):
        from usage.models import LlmUsageEvent, Run

        before = sorted(LlmUsageEvent.objects.values_list("event_id", "cost", "run__run_id"))
    response = host_client(beta.host).post(
        "/v1/traces", data=body, content_type="application/x-protobuf", **bearer(beta_key)
    )
    assert response.status_code == 200
    with schema_context(alpha.schema):
        assert (
            sorted(LlmUsageEvent.objects.values_list("event_id", "cost", "run__run_id")) == before
        )
        assert Run.objects.count() == 1
    with schema_context(beta.schema):
        assert Run.objects.get().run_id == "alpha-run"  # beta's own run of that name
        assert LlmUsageEvent.objects.count() == len(before)


def test_exports_do_not_carry_formulas(alpha):
    from billing.exports import cell
    from billing.selectors.costs import cost_report

    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("claude") == "claude" and cell(Decimal("-1")) == Decimal("-1")
    with schema_context(alpha.schema):
        events_ingest(
            events=[llm_event_in("f", NOW, provider="=cmd|'/c calc'!a1", cost=Decimal(1))],
            pricer=pricer_for(alpha.tenant),
        )
        import io

        from billing.exports import write_csv

        out = io.StringIO()
        write_csv(cost_report(tenant=alpha.tenant, period=date(2026, 11, 1)), out)
    assert ",'=cmd" in out.getvalue()  # the item starts with the provider, then the model
    assert ",=cmd" not in out.getvalue()


def test_non_usd_bills_are_refused(tmp_path):
    from billing.operator.services.focus import FocusImportError, focus_import

    path = tmp_path / "eur.csv"
    path.write_text(
        "BilledCost,EffectiveCost,BillingCurrency,BillingPeriodStart,ChargeCategory,"
        "ServiceCategory,ProviderName\n1,1,EUR,2026-10-01,Usage,Compute,X\n"
    )
    with pytest.raises(FocusImportError, match="EUR bills are not supported"):
        focus_import(path=path)


def _cpu(tenant, project, seconds, event_id, at):
    with schema_context(tenant.schema):
        events_ingest(
            events=[
                InfraEventIn(
                    0, event_id, at, project, "", "", "", "compute", Decimal(seconds), "cpu_seconds"
                )
            ],
            pricer=pricer_for(tenant.tenant),
        )


def _pool(period, amount, category="Compute"):
    return CostPool.objects.create(
        period=period,
        name=category,
        provider="AWS",
        service_category=category,
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(amount),
        effective_cost=Decimal(amount),
        list_cost=Decimal(amount),
        rows=1,
    )


def test_rerunning_a_closed_month_keeps_earlier_corrections(alpha, beta):
    sep, octo = date(2026, 9, 1), date(2026, 10, 1)
    _cpu(alpha, "web", 1, "s1", datetime(2026, 9, 5, tzinfo=UTC))
    _cpu(beta, "etl", 1, "s2", datetime(2026, 9, 5, tzinfo=UTC))
    _cpu(alpha, "web", 1, "o1", datetime(2026, 10, 5, tzinfo=UTC))
    _pool(sep, "100")
    _pool(octo, "50")
    allocation_run(period=sep, close=True)
    _cpu(alpha, "web", 2, "s3", datetime(2026, 9, 6, tzinfo=UTC))  # September changes late
    assert allocation_run(period=sep).corrections > 0  # into October, still open
    allocation_run(period=octo, close=True)
    corrections = AllocationLine.objects.filter(corrects_period=sep).count()
    assert allocation_run(period=octo).corrections == 0
    assert AllocationLine.objects.filter(corrects_period=sep).count() == corrections


def test_suspended_tenants_are_still_charged_and_even_splits_skip_idle_ones(alpha, beta):
    sep = date(2026, 9, 1)
    _cpu(alpha, "web", 1, "s1", datetime(2026, 9, 5, tzinfo=UTC))
    _cpu(beta, "etl", 3, "s2", datetime(2026, 9, 5, tzinfo=UTC))
    Tenant.objects.filter(slug="beta").update(status=Tenant.Status.SUSPENDED)
    _pool(sep, "100")
    AllocationRule.objects.create(
        name="even", service_category="Storage", method="proportional", driver="even"
    )
    _pool(sep, "10", category="Storage")
    run = allocation_run(period=sep).run
    totals = {
        line.tenant.slug: line.amount
        for line in AllocationLine.objects.filter(
            run=run, level="tenant", pool__service_category="Compute"
        )
    }
    assert totals == {"alpha": Decimal("25.00"), "beta": Decimal("75.00")}
    even = AllocationLine.objects.filter(run=run, level="tenant", pool__service_category="Storage")
    assert {line.tenant.slug for line in even} == {"alpha", "beta"}  # gamma etc. never appear
