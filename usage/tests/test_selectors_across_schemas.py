"""Figures of many tenants read in a few statements (``usage.selectors.operator``): allocation's
usage drivers and the estimates bills are compared with give each tenant its own figures, the
same in statements of one schema or of many, and their callers' statement count does not grow
with the tenant count."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing.operator.billed_selectors import estimates_by_tenant
from billing.operator.services.allocation import usage_by_tenant
from tests.support import in_own_connection, llm_event_in
from usage import selectors as usage_selectors
from usage.domain.events import InfraEventIn
from usage.models import RunLedger
from usage.pricing import pricer_for
from usage.selectors import operator
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

SEPTEMBER, OCTOBER = date(2026, 9, 1), date(2026, 10, 1)
AT = datetime(2026, 9, 10, 12, tzinfo=UTC)
NEXT_DAY = datetime(2026, 9, 11, 0, 30, tzinfo=UTC)


def _infra(event_id: str, project: str, quantity: str, unit: str, run_id: str = ""):
    return InfraEventIn(
        position=0,
        event_id=event_id,
        occurred_at=AT,
        project=project,
        run_id=run_id,
        job_id="",
        tenant="",
        resource_type="compute" if unit == "cpu_seconds" else "storage",
        quantity=Decimal(quantity),
        unit=unit,
    )


def _ingest(tenant, events) -> None:
    with schema_context(tenant.schema):
        events_ingest(events=events, pricer=pricer_for(tenant.tenant))


@pytest.fixture
def usage(alpha, beta):
    _ingest(
        alpha,
        [
            llm_event_in("a1", AT, project="web", cost=Decimal("0.50")),
            llm_event_in(
                "a2",
                AT,
                project="web",
                run_id="r1",
                input_tokens=2000,
                output_tokens=0,
                cost=Decimal("0.25"),
            ),
            llm_event_in(
                "a3",
                NEXT_DAY,
                project="api",
                input_tokens=500,
                output_tokens=50,
                provider="anthropic",
                model="claude-sonnet-4-5",
                cost=Decimal("0.10"),
            ),
            # October: outside the period.
            llm_event_in("a4", datetime(2026, 10, 2, tzinfo=UTC), project="web", cost=Decimal(9)),
            _infra("a5", "web", "300", "cpu_seconds", run_id="r1"),
            _infra("a6", "api", "2.5", "gb_hours"),
        ],
    )
    with schema_context(alpha.schema):
        RunLedger.objects.filter(run__run_id="r1").update(job_ms=1500)
    _ingest(
        beta,
        [
            llm_event_in("b1", AT, project="etl", cost=Decimal("0.05")),
            _infra("b2", "etl", "600", "cpu_seconds"),
        ],
    )
    return alpha, beta


ALPHA_DRIVERS = {
    "tokens": {"web": Decimal(3100), "api": Decimal(550)},
    "token_cost": {"web": Decimal("0.75"), "api": Decimal("0.10")},
    "job_seconds": {"web": Decimal("1.5")},
    "cpu_seconds": {"web": Decimal(300)},
    "gb_hours": {"api": Decimal("2.5")},
    "runs": {"web": Decimal(1)},
}
BETA_DRIVERS = {
    "tokens": {"etl": Decimal(1100)},
    "token_cost": {"etl": Decimal("0.05")},
    "job_seconds": {},
    "cpu_seconds": {"etl": Decimal(600)},
    "gb_hours": {},
    "runs": {},
}


def _reads(queries: CaptureQueriesContext) -> int:
    """The statements that read the tenants' tables."""
    return sum('"alpha"."' in q["sql"] for q in queries.captured_queries)


def _statements(queries: CaptureQueriesContext) -> int:
    """The statements run, but for the connection's own ``SET search_path``."""
    return sum(not q["sql"].startswith("SET ") for q in queries.captured_queries)


def test_each_tenant_gets_its_own_drivers(usage):
    got = operator.tenants_allocation_drivers(["alpha", "beta"], start=SEPTEMBER, end=OCTOBER)
    assert got == {"alpha": ALPHA_DRIVERS, "beta": BETA_DRIVERS}
    # A tenant's own read is the same rule for its schema alone.
    with schema_context("beta"):
        assert usage_selectors.allocation_drivers(start=SEPTEMBER, end=OCTOBER) == BETA_DRIVERS


def test_statements_of_one_schema_give_the_same_figures(usage, monkeypatch):
    schemas = ["alpha", "beta"]
    with CaptureQueriesContext(connection) as together:
        drivers = operator.tenants_allocation_drivers(schemas, start=SEPTEMBER, end=OCTOBER)
        estimates = operator.tenants_estimated_cost(schemas, start=SEPTEMBER, end=OCTOBER)
    monkeypatch.setattr(operator, "LOCKS_PER_STATEMENT", 1)  # a schema a statement
    with CaptureQueriesContext(connection) as apart:
        assert operator.tenants_allocation_drivers(schemas, start=SEPTEMBER, end=OCTOBER) == drivers
        assert operator.tenants_estimated_cost(schemas, start=SEPTEMBER, end=OCTOBER) == estimates
    assert (_statements(together), _statements(apart)) == (2, 4)


def _locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("name", "declared"),
    [
        ("tenants_allocation_drivers", operator.DRIVERS_LOCKS),
        ("tenants_estimated_cost", operator.ROLLUP_LOCKS),
        ("tenants_monthly_token_cost", operator.ROLLUP_LOCKS),
        ("tenants_models_seen", operator.ROLLUP_LOCKS),
        ("tenants_figures", operator.FIGURES_LOCKS),
    ],
)
def test_each_reader_locks_no_more_relations_a_schema_than_it_says(alpha, beta, name, declared):
    """What a statement's schemas are counted by: a reader opening more tables or indexes than
    it declares would make its statements overrun the lock budget (500 schemas of drivers
    failed with "out of shared memory" at the default ``max_locks_per_transaction``). Counted
    in a connection of its own, where nothing else is locked."""
    read = getattr(operator, name)
    taken: list[int] = []

    def once(schema: str) -> None:
        if name == "tenants_models_seen":
            read([schema])
        elif name == "tenants_figures":
            read([operator.TenantPeriod(schema, SEPTEMBER, AT.date())])
        else:
            read([schema], start=SEPTEMBER, end=OCTOBER)

    def count() -> None:
        with transaction.atomic():  # relation locks are held until its end
            once("alpha")
            before = _locks()
            once("beta")
            taken.append(_locks() - before)

    in_own_connection(count)
    assert declared // 2 < taken[0] <= declared


def test_estimates_per_utc_day_and_model_of_each_tenant(usage):
    got = operator.tenants_estimated_cost(["alpha", "beta"], start=SEPTEMBER, end=OCTOBER)
    assert got == {
        "alpha": {
            ("openai", "gpt-4.1", AT.date()): Decimal("0.75"),
            ("anthropic", "claude-sonnet-4-5", NEXT_DAY.date()): Decimal("0.10"),
        },
        "beta": {("openai", "gpt-4.1", AT.date()): Decimal("0.05")},
    }
    # One UTC day: the next day's call is left out.
    day = operator.tenants_estimated_cost(["alpha"], start=AT.date(), end=NEXT_DAY.date())
    assert day == {"alpha": {("openai", "gpt-4.1", AT.date()): Decimal("0.75")}}


def test_models_seen_are_the_schemas_asked_for(usage):
    assert operator.tenants_models_seen(["beta"]) == {("openai", "gpt-4.1")}
    both = {("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5")}
    assert operator.tenants_models_seen(["alpha", "beta"]) == both


def test_no_schema_no_statement_and_names_are_checked(usage):
    with CaptureQueriesContext(connection) as queries:
        assert operator.tenants_allocation_drivers([], start=SEPTEMBER, end=OCTOBER) == {}
        assert operator.tenants_estimated_cost([], start=SEPTEMBER, end=OCTOBER) == {}
        assert operator.tenants_models_seen([]) == set()
    assert _statements(queries) == 0
    for read in (operator.tenants_allocation_drivers, operator.tenants_estimated_cost):
        with pytest.raises(ValueError, match="Not a tenant schema"):
            read(['alpha"; drop schema beta; --'], start=SEPTEMBER, end=OCTOBER)
    with pytest.raises(ValueError, match="Not a tenant schema"):
        operator.tenants_models_seen(["Alpha"])


def test_allocation_and_bill_estimates_read_every_tenant_in_one_statement(usage):
    """The tenant list, then one statement: allocation's drivers (the what-if page and every
    allocation run) and the bill comparison's estimates read three queries a tenant before."""
    with CaptureQueriesContext(connection) as queries:
        tenants = usage_by_tenant(SEPTEMBER)
    assert (_statements(queries), _reads(queries)) == (2, 1)
    assert tenants["alpha"].drivers == ALPHA_DRIVERS
    assert tenants["beta"].total("cpu_seconds") == 600
    with CaptureQueriesContext(connection) as queries:
        estimates = {e.tenant.slug: e.costs for e in estimates_by_tenant(SEPTEMBER)}
    assert (_statements(queries), _reads(queries)) == (2, 1)
    assert estimates["beta"] == {("openai", "gpt-4.1", AT.date()): Decimal("0.05")}
