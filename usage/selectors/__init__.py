"""Read paths over one tenant's usage (the schema of the current connection).

Pages, the API and billing read usage through these functions; they return plain values and
dataclasses, never querysets to be refined elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from factory_portal import periods
from factory_portal.db_routing import read_alias, read_connection
from factory_portal.enums import enum_canonical
from factory_portal.pg import local_setting
from factory_portal.tenants.connection import connection_zone
from usage.models import (
    ACTIVE_RUN_STATUSES,
    ExternalCall,
    InfraUsageDaily,
    InfraUsageEvent,
    InfraUsageHourly,
    Job,
    LlmUsageDaily,
    LlmUsageEvent,
    LlmUsageHourly,
    Project,
    Run,
    RunAllocatedCost,
    RunDaily,
    RunLedger,
    SpanError,
    StepDaily,
)
from usage.models import RunStatus as RunStatus  # the statuses of the rows below, for callers
from usage.selectors.operator import tenants_allocation_drivers

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True)
class TokenTotals:
    cost: Decimal  # USD, 10 decimal places, priced and client-supplied events
    input_tokens: int
    output_tokens: int
    calls: int
    unpriced_calls: int


@dataclass(frozen=True)
class ActiveRun:
    run_id: str
    project: str
    template_recipe_id: str
    run_type: str
    status: str
    requested_at: datetime
    started_at: datetime | None
    current_step: str | None
    cost_so_far: Decimal


def token_totals(*, start: date, end: date) -> TokenTotals:
    """LLM usage on the tenant's days ``start <= day < end`` (from the daily rollup)."""
    row = LlmUsageDaily.objects.filter(day__gte=start, day__lt=end).aggregate(
        cost=Coalesce(Sum("cost"), ZERO),
        input_tokens=Coalesce(Sum("input_tokens"), 0),
        output_tokens=Coalesce(Sum("output_tokens"), 0),
        calls=Coalesce(Sum("calls"), 0),
        unpriced_calls=Coalesce(Sum("unpriced_calls"), 0),
    )
    return TokenTotals(**row)


def run_status_counts(*, start: date, end: date) -> dict[str, int]:
    """Runs requested on the tenant's days ``start <= day <= end`` by current status (from the
    daily run rollup); every status is present."""
    counts = dict.fromkeys(RunStatus.values, 0)
    rows = (
        RunDaily.objects.filter(day__gte=start, day__lte=end)
        .values("status")
        .annotate(n=Sum("runs"))
    )
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants of the tenant's days ``start <= day < end`` (its time zone)."""
    return periods.local_bounds(start, end, connection_zone())


def run_token_cost():  # type: ignore[no-untyped-def]
    """Query expression: a run's AI cost (re-pricing corrections included), from its ledger."""
    cost = (
        RunLedger.objects.filter(run=OuterRef("pk"))
        .values("run")
        .annotate(total=Sum("cost"))
        .values("total")
    )
    return Coalesce(Subquery(cost), ZERO)


def run_allocated_cost():  # type: ignore[no-untyped-def]
    """Query expression: the infrastructure cost allocated to a run, over all its months."""
    amount = (
        RunAllocatedCost.objects.filter(run=OuterRef("pk"))
        .values("run")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(amount), ZERO)


def active_runs(*, limit: int = 50) -> list[ActiveRun]:
    """Requested and running runs, oldest first, with the step in progress and cost so far."""
    current_step = (
        Job.objects.filter(run=OuterRef("pk"), status=RunStatus.RUNNING)
        .order_by("-started_at")
        .values("step_name")[:1]
    )
    runs = (
        Run.objects.filter(status__in=ACTIVE_RUN_STATUSES)
        .select_related("project")
        .annotate(
            current_step=Subquery(current_step),
            cost_so_far=run_token_cost(),
        )
        .order_by("requested_at")[:limit]
    )
    return [
        ActiveRun(
            run_id=run.run_id,
            project=run.project.name,
            template_recipe_id=run.template_recipe_id,
            run_type=run.run_type,
            status=run.status,
            requested_at=run.requested_at,
            started_at=run.started_at,
            current_step=run.current_step,
            cost_so_far=run.cost_so_far,
        )
        for run in runs
    ]


def active_run_counts() -> dict[str, int]:
    """Queue status: how many runs are Requested and how many Running, whenever requested."""
    counts = dict.fromkeys(ACTIVE_RUN_STATUSES, 0)
    rows = (
        Run.objects.filter(status__in=ACTIVE_RUN_STATUSES).values("status").annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def usage_complete_until() -> datetime | None:
    """The newest usage timestamp stored: the data is complete up to about this moment."""
    return max(
        (t for t in (_latest(LlmUsageHourly), _latest(InfraUsageHourly)) if t is not None),
        default=None,
    )


def _latest(rollup: type[LlmUsageHourly] | type[InfraUsageHourly]) -> datetime | None:
    newest_hour = rollup.objects.order_by("-hour").values("hour")[:1]
    return rollup.objects.filter(hour=Subquery(newest_hour)).aggregate(at=Max("last_occurred_at"))[
        "at"
    ]


def project_names() -> dict[str, str]:
    """Each project's name by slug, in slug order."""
    return dict(Project.objects.order_by("slug").values_list("slug", "name"))


def allocation_drivers(*, start: date, end: date) -> dict[str, dict[str, Decimal]]:
    """Usage quantities per driver and project slug for the tenant's days ``start <= day <
    end``: what billing splits shared infrastructure cost by. Tokens, AI cost and machine time
    include usage outside runs; ``runs`` counts the runs that used something (a run without
    usage takes no share) and ``job_seconds`` their jobs' run time, from the run ledger, so a
    project's driver is exactly the sum of its runs' (``run_usage``) plus usage outside runs.
    Projects without usage are absent. The rule is ``tenants_allocation_drivers``'s, which
    allocation reads for every tenant at once."""
    schema = connections[DEFAULT_DB_ALIAS].schema_name
    return tenants_allocation_drivers([schema], start=start, end=end)[schema]


def daily_token_cost(*, start: date, end: date, project: str = "") -> dict[date, Decimal]:
    """AI (token) cost per day (the tenant's days) for ``start <= day <= end``, for the tenant
    or one project; days without cost are absent. Includes re-pricing corrections."""
    rows = LlmUsageDaily.objects.filter(day__gte=start, day__lte=end)
    if project:
        rows = rows.filter(project__slug=project)
    return {row["day"]: row["cost"] for row in rows.values("day").annotate(cost=Sum("cost"))}


def hourly_token_cost(*, start: datetime, end: datetime) -> Decimal:
    """AI (token) cost, USD exact, of the UTC hours starting in [start, end) (from the hourly
    rollup, re-pricing corrections included): what the AI cost alert compares."""
    total = LlmUsageHourly.objects.filter(hour__gte=start, hour__lt=end).aggregate(
        cost=Coalesce(Sum("cost"), ZERO)
    )["cost"]
    return Decimal(total)


# One statement, one row: each derived table aggregates without GROUP BY, so yields exactly one
# row. Table names come from the models, never from input.
_ROLLUPS_FINGERPRINT_SQL = f"""
SELECT l.*, r.*, i.*, g.*
FROM (
    SELECT count(*), sum(calls), sum(cost)
    FROM {LlmUsageDaily._meta.db_table} WHERE day >= %(start)s AND day < %(end)s
) l
CROSS JOIN (
    SELECT count(*), sum(runs), sum(duration_ms_total)
    FROM {RunDaily._meta.db_table} WHERE day >= %(start)s AND day < %(end)s
) r
CROSS JOIN (
    SELECT count(*), sum(quantity)
    FROM {InfraUsageDaily._meta.db_table} WHERE day >= %(start)s AND day < %(end)s
) i
CROSS JOIN (
    SELECT count(*), sum(cost), sum(job_ms), sum(infra_events)
    FROM {RunLedger._meta.db_table} WHERE day >= %(start)s AND day < %(end)s
) g
"""  # noqa: S608 - the models' tables


def rollups_fingerprint(*, start: date, end: date) -> tuple[object, ...]:
    """Cheap aggregates of the daily rollups and the run ledger for the tenant's days ``start <=
    day < end``: they change whenever a call, a run, a job's time or infrastructure usage of
    those days is added or corrected. Row counts and sums of the LLM and run daily rollups, the
    infrastructure daily rollup and the run ledger, in that order, read in one statement where
    the ORM reads these models (``read_connection()``: the router's read alias).

    Only ever compared for equality (is a cached figure still valid?): the values are whatever
    the driver returns (a ``bigint`` sum may come back as a ``Decimal``), ``None`` for the sums
    of an empty range."""
    with read_connection().cursor() as cursor:
        cursor.execute(_ROLLUPS_FINGERPRINT_SQL, {"start": start, "end": end})
        return tuple(cursor.fetchone())


def first_usage_day() -> date | None:
    return LlmUsageDaily.objects.order_by("day").values_list("day", flat=True).first()


def project_slugs() -> list[str]:
    return list(Project.objects.order_by("slug").values_list("slug", flat=True))


@dataclass(frozen=True)
class RunUsage:
    run_id: str
    project: str
    run_type: str
    template: str
    status: str
    token_cost: Decimal  # AI cost of the run's calls in the period, corrections included
    retried_cost: Decimal  # the part spent in job attempts that were retried
    drivers: dict[str, Decimal]  # allocation driver -> quantity
    calls: int = 0
    unpriced_calls: int = 0


_RUN_USAGE_SQL = """
SELECT r.id, r.run_id, p.slug, r.run_type, r.template_recipe_id, r.status, l.calls,
       l.unpriced_calls, l.tokens, l.cost, l.cpu_seconds, l.gb_hours, l.job_ms
FROM (
    SELECT run_id, sum(calls) AS calls, sum(unpriced_calls) AS unpriced_calls,
           sum(input_tokens + output_tokens) AS tokens, sum(cost) AS cost,
           sum(cpu_seconds) AS cpu_seconds, sum(gb_hours) AS gb_hours, sum(job_ms) AS job_ms
    FROM usage_runledger WHERE day >= %(start)s AND day < %(end)s
    GROUP BY run_id
) l
JOIN usage_run r ON r.id = l.run_id
JOIN usage_project p ON p.id = r.project_id
ORDER BY r.run_id
"""


def run_usage(*, start: date, end: date) -> list[RunUsage]:
    """Every run that used something on the tenant's days ``start <= day < end``, with its AI
    cost and its allocation driver quantities there, in run id order. Reads the run ledger
    (rows per run and day), never the raw events: it grows with runs, not with calls."""
    with read_connection().cursor() as cursor:
        cursor.execute(_RUN_USAGE_SQL, {"start": start, "end": end})
        rows = cursor.fetchall()
    retried = _retried_cost(start, end) if rows else {}
    result = []
    for (
        pk,
        run_id,
        project,
        run_type,
        template,
        status,
        calls,
        unpriced,
        tokens,
        cost,
        cpu,
        gb,
        job_ms,
    ) in rows:
        drivers = {
            "tokens": Decimal(tokens),
            "token_cost": cost,
            "cpu_seconds": cpu,
            "gb_hours": gb,
            "job_seconds": Decimal(job_ms) / 1000,
            "runs": Decimal(1),
        }
        result.append(
            RunUsage(
                run_id=run_id,
                project=project,
                run_type=run_type,
                template=template,
                status=status,
                token_cost=cost,
                retried_cost=retried.get(pk, ZERO),
                drivers={k: v for k, v in drivers.items() if v},
                calls=int(calls),
                unpriced_calls=int(unpriced),
            )
        )
    return result


_RETRIED_JOBS_SQL = """
SELECT DISTINCT j.id, j.run_id FROM usage_job k
JOIN usage_job j ON j.run_id = k.run_id AND j.job_id = k.job_id AND j.attempt < k.attempt
WHERE k.attempt > 1
  AND EXISTS (SELECT 1 FROM usage_runledger l
              WHERE l.run_id = k.run_id AND l.day >= %(first)s AND l.day < %(end_day)s)
"""
_RETRIED_COST_SQL = """
SELECT e.run_id, coalesce(sum(e.cost), 0) + coalesce(sum(c.delta), 0)
FROM usage_llmusageevent e
JOIN unnest(%(jobs)s::bigint[]) AS j(id) ON j.id = e.job_id
LEFT JOIN (SELECT event_id, sum(delta) AS delta FROM usage_llmcostcorrection
           WHERE run_id = ANY(%(runs)s) GROUP BY event_id) c ON c.event_id = e.event_id
WHERE e.run_id = ANY(%(runs)s) AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
GROUP BY e.run_id
"""


def _retried_cost(start: date, end: date) -> dict[int, Decimal]:
    """AI cost (corrections included) of calls made in job attempts that were followed by
    another attempt, on the tenant's days ``start <= day < end``. Only runs that used
    something then and have a retried job are read: the superseded attempts are found from the
    retries (a partial index), and their calls through the run index."""
    start_at, end_at = period_bounds(start, end)
    with read_connection().cursor() as cursor:
        cursor.execute(_RETRIED_JOBS_SQL, {"first": start, "end_day": end})
        retried = cursor.fetchall()
        if not retried:
            return {}
        cursor.execute(
            _RETRIED_COST_SQL,
            {
                "jobs": [job for job, _ in retried],
                "runs": sorted({run for _, run in retried}),
                "start": start_at,
                "end": end_at,
            },
        )
        return {run: cost for run, cost in cursor.fetchall() if cost}


def token_cost_by_project(*, start: date, end: date) -> dict[str, Decimal]:
    """AI (token) cost per project for the tenant's days ``start <= day < end`` (corrections
    included)."""
    rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lt=end)
        .values("project__slug")
        .annotate(cost=Sum("cost"))
    )
    return {row["project__slug"]: row["cost"] for row in rows}


@dataclass(frozen=True)
class ModelCost:
    project: str
    provider: str
    model: str
    calls: int
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    cost: Decimal


def model_costs(*, start: date, end: date) -> list[ModelCost]:
    """AI usage per project, provider and model for the tenant's days ``start <= day < end``."""
    rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lt=end)
        .values("project__slug", "provider", "model")
        .annotate(
            calls=Sum("calls"),
            unpriced=Sum("unpriced_calls"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost"),
        )
        .order_by("project__slug", "provider", "model")
    )
    return [
        ModelCost(
            r["project__slug"],
            r["provider"],
            r["model"],
            r["calls"],
            r["unpriced"],
            r["input_tokens"],
            r["output_tokens"],
            r["cost"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class LlmCostGroup:
    """The calls of one UTC day of a project and model that were priced alike: same cost source,
    price book entry (the input price's) and contract term, as they stand after corrections."""

    project: str
    provider: str
    model: str
    day: date
    cost_source: str  # price_book | client | unpriced
    price_ref: int | None
    override_ref: int | None
    first_at: datetime  # the group's first call: the moment its prices are looked up at
    calls: int
    uncached_input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost: Decimal  # USD, 10 decimal places; 0 when unpriced


_COST_GROUPS_SQL = """
SELECT p.slug, e.provider, e.model, (e.occurred_at AT TIME ZONE %(zone)s)::date,
  CASE WHEN c.id IS NULL THEN e.cost_source
       WHEN c.new_cost IS NULL THEN 'unpriced' ELSE 'price_book' END,
  CASE WHEN c.id IS NULL THEN e.price_ref ELSE c.price_ref END,
  CASE WHEN c.id IS NULL THEN e.override_ref ELSE c.override_ref END,
  min(e.occurred_at), count(*),
  sum(e.input_tokens - e.cached_input_tokens - e.cache_write_tokens),
  sum(e.cached_input_tokens), sum(e.cache_write_tokens), sum(e.output_tokens),
  coalesce(sum(CASE WHEN c.id IS NULL THEN e.cost ELSE c.new_cost END), 0)
FROM usage_llmusageevent e
JOIN usage_project p ON p.id = e.project_id
LEFT JOIN LATERAL (
  SELECT id, new_cost, price_ref, override_ref FROM usage_llmcostcorrection
  WHERE event_id = e.event_id ORDER BY id DESC LIMIT 1
) c ON true
WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 1, 2, 3, 4, 5, 6 NULLS FIRST, 7 NULLS FIRST
"""


def llm_cost_groups(*, start: date, end: date) -> list[LlmCostGroup]:
    """Calls of the tenant's days ``start <= day < end`` in one grouped read of the raw events (each
    call's latest re-pricing correction, if any, decides its cost and references): what a
    month's export needs to split AI cost by token kind and to count unpriced tokens. Seconds
    for millions of calls: for exports, not pages."""
    start_at, end_at = period_bounds(start, end)
    params = {"start": start_at, "end": end_at, "zone": str(connection_zone())}
    with read_connection().cursor() as cursor:
        cursor.execute(_COST_GROUPS_SQL, params)
        rows = cursor.fetchall()
    # sum() of bigint is numeric in PostgreSQL: token counts come back as Decimal.
    return [LlmCostGroup(*row[:9], *map(int, row[9:13]), row[13]) for row in rows]


@dataclass(frozen=True)
class RunFilters:
    status: str = ""
    project: str = ""
    template: str = ""
    run_type: str = ""
    start: date | None = None  # requested on or after (the tenant's day)
    end: date | None = None  # requested on or before (the tenant's day)
    search: str = ""  # any part of a run id (a prefix when shorter than SEARCH_SUBSTRING_MIN)
    step: str = ""  # runs with a job of this step
    failure_type: str = ""  # the run's failure type, or a job's (of ``step``, when given)
    model: str = ""  # runs with an LLM call of this model
    error: str = ""  # runs that reported an error of this group (its fingerprint)


@dataclass(frozen=True)
class RunRow:
    pk: int
    run_id: str
    project: str
    template: str
    run_type: str
    status: str
    requested_at: datetime
    duration_ms: int | None
    failure_type: str
    ai_cost: Decimal  # the run's calls, corrections included (its ledger)
    infra_cost: Decimal  # allocated to it so far (none until its month is allocated)

    @property
    def total_cost(self) -> Decimal:
        return self.ai_cost + self.infra_cost


def _filtered_runs(filters: RunFilters):  # type: ignore[no-untyped-def]
    runs = Run.objects.all()
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.project:
        runs = runs.filter(project__slug=filters.project)
    if filters.template:
        runs = runs.filter(template_recipe_id=filters.template)
    if filters.run_type:
        runs = runs.filter(run_type=filters.run_type)
    zone = connection_zone()
    if filters.start:
        runs = runs.filter(requested_at__gte=periods.local_day_start(filters.start, zone))
    if filters.end:  # a day of the supported years (periods): the next day exists
        end = filters.end + timedelta(days=1)
        runs = runs.filter(requested_at__lt=periods.local_day_start(end, zone))
    if len(filters.search) >= SEARCH_SUBSTRING_MIN:
        # The trigram index holds the upper-cased id (usage.models.Run): ``icontains`` finds the
        # candidates through it, ``contains`` keeps the search case-sensitive as the id is.
        runs = runs.filter(run_id__icontains=filters.search, run_id__contains=filters.search)
    elif filters.search:
        runs = runs.filter(run_id__startswith=filters.search)  # the prefix index
    if filters.model:
        # Each run's calls through their run index; the ledger keeps no model.
        runs = runs.filter(
            Exists(LlmUsageEvent.objects.filter(run=OuterRef("pk"), model=filters.model))
        )
    if filters.error:
        # IN (the group's index, hashed once) rather than EXISTS: a group's runs are few.
        reported = SpanError.objects.filter(fingerprint=filters.error).values("run_id")
        runs = runs.filter(pk__in=reported)
    jobs = Job.objects.filter(run=OuterRef("pk"))
    if filters.step:
        jobs = jobs.filter(step_name=filters.step)
    if filters.failure_type and filters.step:
        runs = runs.filter(Exists(jobs.filter(failure_type=filters.failure_type)))
    elif filters.failure_type:
        # IN (not EXISTS) beside the OR: one hashed read of the failure-type index.
        failed = Job.objects.filter(failure_type=filters.failure_type).values("run_id")
        runs = runs.filter(Q(failure_type=filters.failure_type) | Q(pk__in=failed))
    elif filters.step:
        runs = runs.filter(Exists(jobs))
    return runs


# A search this long matches anywhere in a run id (trigrams need three characters to use
# their index); a shorter one matches the start of ids.
SEARCH_SUBSTRING_MIN = 3


def status_canonical(text: str) -> str | None:
    """A run status however it is written (``failed``, ``FAILED``), or None if it is none."""
    return enum_canonical(text, RunStatus.values)


def choice_canonical(text: str, known: Iterable[str]) -> str:
    """``text`` as a value in ``known`` spells it when they differ only in letter case (``BUGFIX``
    is the run type ``bugfix``); unchanged when it is known as written, or matches none or
    several. Filters then compare exactly, on their indexes."""
    known = list(known)
    if text in known:
        return text
    matches = [value for value in known if value.lower() == text.lower()]
    return matches[0] if len(matches) == 1 else text


def run_filters_canonical(
    filters: RunFilters, choices: RunFilterChoices | None = None
) -> RunFilters:
    """``filters`` with every enumerated value in the spelling stored (status, project, template,
    run type, step, failure type in any letter case); an unknown status is dropped. ``choices``
    (from ``run_filter_choices``) saves reading them again; without such a filter none are read."""
    status = status_canonical(filters.status) or "" if filters.status else ""
    named = (filters.project, filters.template, filters.run_type, filters.step)
    if choices is None and not any((*named, filters.failure_type, filters.model)):
        return replace(filters, status=status)
    choices = choices or run_filter_choices()
    if not _choices_cover(choices, filters):  # a value seen since they were kept, or unknown
        choices = run_filter_choices(fresh=True)
    return replace(
        filters,
        status=status,
        project=choice_canonical(filters.project, choices.projects),
        template=choice_canonical(filters.template, choices.templates),
        run_type=choice_canonical(filters.run_type, choices.run_types),
        step=choice_canonical(filters.step, choices.steps),
        failure_type=choice_canonical(filters.failure_type, choices.failure_types),
        model=choice_canonical(filters.model, choices.models),
    )


def _choices_cover(choices: RunFilterChoices, filters: RunFilters) -> bool:
    """Whether every value ``filters`` names is among ``choices`` in some letter case."""
    named = (
        (filters.project, choices.projects),
        (filters.template, choices.templates),
        (filters.run_type, choices.run_types),
        (filters.step, choices.steps),
        (filters.failure_type, choices.failure_types),
        (filters.model, choices.models),
    )
    return all(
        not value or value.lower() in {known.lower() for known in values} for value, values in named
    )


def _with_cost(runs):  # type: ignore[no-untyped-def]
    return runs.select_related("project").annotate(
        token_cost=run_token_cost(),
        infra_cost=run_allocated_cost(),
        total_cost=F("token_cost") + F("infra_cost"),
    )


def _row(run: Run) -> RunRow:
    return RunRow(
        run.pk,
        run.run_id,
        run.project.slug,
        run.template_recipe_id,
        run.run_type,
        run.status,
        run.requested_at,
        run.duration_ms,
        run.failure_type,
        run.token_cost,
        run.infra_cost,
    )


RUN_SORTS = {
    # name: (column, descending)
    "newest": ("requested_at", True),
    "oldest": ("requested_at", False),
    "longest": ("duration_ms", True),
    "shortest": ("duration_ms", False),
    "costliest": ("total_cost", True),
    "cheapest": ("total_cost", False),
    "ai_costliest": ("token_cost", True),
    "ai_cheapest": ("token_cost", False),
    "infra_costliest": ("infra_cost", True),
    "infra_cheapest": ("infra_cost", False),
}
COST_SORT_COLUMNS = ("total_cost", "token_cost", "infra_cost")

Cursor = tuple[datetime | int | Decimal, int]
_BIGINT = 2**63  # PostgreSQL's bigint: a cursor's id and duration must fit to be compared
_MAX_AMOUNT = Decimal(10) ** 14  # beyond any run's cost; keeps a cursor's number comparable
_ROW_ATTRIBUTE = {"token_cost": "ai_cost"}  # a sort column read back off a page's last row


def cursor_text(cursor: Cursor) -> str:
    """``<ISO time or duration>_<id>``: the position after a page's last row."""
    value = cursor[0]
    return f"{value.isoformat() if isinstance(value, datetime) else value}_{cursor[1]}"


def cursor_parse(text: str, sort: str) -> Cursor:
    """The inverse of ``cursor_text`` for ``sort``; ``ValueError`` for anything else. A client
    can write any cursor, so its parts are held to what the query can compare: a time in the
    supported years (``periods.moment_parse``: one without an offset is UTC, as cursors are
    written; an offset PostgreSQL cannot hold is converted), integers within bigint."""
    value, raw_pk = text.rsplit("_", 1)
    pk = int(raw_pk)
    if not 0 <= pk < _BIGINT:
        raise ValueError("the cursor's id is out of range")
    if RUN_SORTS[sort][0] == "duration_ms":
        duration = int(value)
        if not 0 <= duration < _BIGINT:
            raise ValueError("the cursor's duration is out of range")
        return duration, pk
    if RUN_SORTS[sort][0] in COST_SORT_COLUMNS:
        try:
            amount = Decimal(value[:40])
        except ArithmeticError:
            raise ValueError("the cursor's amount is not a number") from None
        if not amount.is_finite() or abs(amount) >= _MAX_AMOUNT:
            raise ValueError("the cursor's amount is out of range")
        return amount, pk
    return periods.moment_parse(value), pk


@dataclass(frozen=True)
class RunPage:
    """One page of run history and the cursors around it: ``next_cursor`` (``after``) of the
    page that follows, ``previous_cursor`` (``before``) of the one before; None at either end."""

    rows: list[RunRow]
    next_cursor: Cursor | None
    previous_cursor: Cursor | None


def _position(row: RunRow, column: str) -> Cursor:
    return getattr(row, _ROW_ATTRIBUTE.get(column, column)), row.pk


def runs_window(
    filters: RunFilters,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    limit: int = 50,
    sort: str = "newest",
) -> RunPage:
    """The page of runs in ``sort`` order (see ``RUN_SORTS``; sorting by duration lists finished
    runs only) just after ``after`` or just before ``before`` (the first page without either).
    Keyset pagination on (sort column, id), so page 1,000 costs what page 1 costs and runs with
    equal values keep one order. Going back past the start gives the first page, full."""
    column, descending = RUN_SORTS[sort]
    runs = _with_cost(_filtered_runs(filters))
    if column == "duration_ms":
        runs = runs.filter(duration_ms__isnull=False)
    backwards = before is not None and after is None
    cursor = before if backwards else after
    forward = descending != backwards  # the order read: the page's, or reversed to go back
    if cursor is not None:
        value, pk = cursor
        op = "lt" if forward else "gt"
        runs = runs.filter(Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"pk__{op}": pk}))
    order = [f"-{column}", "-pk"] if forward else [column, "pk"]
    rows = [_row(r) for r in runs.order_by(*order)[: limit + 1]]
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        if not more:  # reached the start: show the first page, not a short one
            return runs_window(filters, limit=limit, sort=sort)
        rows.reverse()
        return RunPage(rows, _position(rows[-1], column), _position(rows[0], column))
    following = _position(rows[-1], column) if more else None
    previous = _position(rows[0], column) if cursor is not None and rows else None
    return RunPage(rows, following, previous)


def runs_page(
    filters: RunFilters, *, after: Cursor | None = None, limit: int = 50, sort: str = "newest"
) -> tuple[list[RunRow], Cursor | None]:
    """The rows of ``runs_window`` after ``after`` and the cursor of the next page (None on the
    last)."""
    page = runs_window(filters, after=after, limit=limit, sort=sort)
    return page.rows, page.next_cursor


def runs_iter(filters: RunFilters, *, chunk: int = 2000, sort: str = "newest") -> Iterator[RunRow]:
    """Every filtered run in ``sort`` order, fetched in chunks (for CSV downloads)."""
    after: Cursor | None = None
    while True:
        rows, after = runs_page(filters, after=after, limit=chunk, sort=sort)
        yield from rows
        if after is None:
            return


COUNT_CAP = 10_000


@dataclass(frozen=True)
class RunCount:
    """How many runs match: exact up to ``COUNT_CAP``; beyond it ``capped`` (at least
    ``value``), so counting never reads more than the cap's rows."""

    value: int
    capped: bool


def runs_count(filters: RunFilters, *, sort: str = "newest", cap: int = COUNT_CAP) -> RunCount:
    """The number of runs ``runs_window`` lists for ``filters`` and ``sort`` (a duration sort
    lists finished runs only), counted up to ``cap``."""
    runs = _filtered_runs(filters)
    if RUN_SORTS[sort][0] == "duration_ms":
        runs = runs.filter(duration_ms__isnull=False)
    found = runs.values("pk")[: cap + 1].count()
    return RunCount(min(found, cap), found > cap)


@dataclass(frozen=True)
class RunFilterChoices:
    """The values run history offers in its filter selects (and canonicalises filters to)."""

    projects: list[str]
    templates: list[str]
    run_types: list[str]
    steps: list[str]
    failure_types: list[str]
    models: list[str]


# Failure types offered are those of failed steps (the step rollup) and of the latest failed
# runs: reading every failed run's would cost a page a scan of them.
FAILED_RUNS_READ = 2000


# Failure types the step rollup still counts: a key's stripes (StepDaily.stripe) are summed, so
# a type moved out in one stripe and in in another (counts that cancel) is not offered.
_STEP_FAILURE_TYPES = """
SELECT DISTINCT key FROM (
    SELECT f.key FROM usage_stepdaily s
    CROSS JOIN LATERAL jsonb_each_text(s.failure_types) AS f(key, value)
    GROUP BY s.day, s.template, s.step_name, f.key
    HAVING sum(f.value::bigint) <> 0
) AS counted
"""


# How long a tenant's filter choices are kept in the cache. Reading them costs a runs page more
# than anything else it reads (the demo tenant: 8 ms of Python and 21 of PostgreSQL, half of it
# the failure types of the step rollup), and they change only when a project, template, run type,
# step, failure type or model is seen for the first time: the selects offer such a value within
# this time, unless a filter names it (``run_filters_canonical`` reads them again then).
FILTER_CHOICES_SECONDS = 60


def run_filter_choices(*, fresh: bool = False) -> RunFilterChoices:
    """Projects, templates, run types and steps from the daily rollups (small, unlike runs);
    failure types of failed step attempts and of the latest ``FAILED_RUNS_READ`` failed runs.
    Kept per tenant schema for ``FILTER_CHOICES_SECONDS`` (``fresh``: read now, and kept);
    a cache outage costs time only."""
    key = f"run-filter-choices:v1:{connections[DEFAULT_DB_ALIAS].schema_name}"
    cached = None
    try:
        cached = None if fresh else cache.get(key)
    except Exception:
        logger.warning("cache unavailable for %s; reading", key, exc_info=True)
    if isinstance(cached, RunFilterChoices):
        return cached
    choices = _run_filter_choices_read()
    try:
        cache.set(key, choices, timeout=FILTER_CHOICES_SECONDS)
    except Exception:
        logger.warning("%s not cached (cache unavailable)", key, exc_info=True)
    return choices


def _run_filter_choices_read() -> RunFilterChoices:
    daily = RunDaily.objects.all()
    latest_failed = (
        Run.objects.filter(status=RunStatus.FAILED)
        .order_by("-requested_at")
        .values_list("failure_type", flat=True)[:FAILED_RUNS_READ]
    )
    failure_types = set(latest_failed)
    alias = read_alias()
    # The planner takes jsonb_each_text for 100 keys a row and plans a parallel scan; the
    # worker's start cost more than the query (19 ms with it, 5.5 without, demo tenant).
    with (
        transaction.atomic(using=alias),
        connections[alias].cursor() as cursor,
        local_setting(cursor, "max_parallel_workers_per_gather", "0"),
    ):
        cursor.execute(_STEP_FAILURE_TYPES)
        failure_types.update(key for (key,) in cursor.fetchall())
    return RunFilterChoices(
        projects=project_slugs(),
        templates=_distinct(daily, "template"),
        run_types=_distinct(daily, "run_type"),
        steps=_distinct(StepDaily.objects.all(), "step_name"),
        failure_types=sorted(t for t in failure_types if t),
        models=_distinct(LlmUsageDaily.objects.all(), "model"),
    )


def _distinct(rows, column: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(t for t in rows.values_list(column, flat=True).distinct() if t)


@dataclass(frozen=True)
class RunDetail:
    run: Run
    jobs: list[Job]
    service_calls: list[ExternalCall]  # calls to external services (git, storage, ...), by start
    models: list[dict[str, object]]  # per provider/model: calls, tokens, cost
    token_cost: Decimal
    infra: dict[str, Decimal]  # unit -> quantity
    months: list[date]  # the tenant's months the run used something in (its ledger's)
    allocated_cost: Decimal  # infrastructure allocated to it so far (RunAllocatedCost)


def run_outline(run: Run) -> dict[str, object]:
    """A run as its JSON names it (the run API and alert payloads alike); ``run.project`` is read,
    so select it with the run."""
    return {
        "run_id": run.run_id,
        "project": run.project.slug,
        "template": run.template_recipe_id,
        "run_type": run.run_type,
        "status": run.status,
        "failure_type": run.failure_type,
    }


def run_detail(run_id: str) -> RunDetail | None:
    if "\x00" in run_id:  # from a URL (%00): PostgreSQL text cannot hold it, so no run has it
        return None
    run = Run.objects.select_related("project").filter(run_id=run_id).first()
    if run is None:
        return None
    models = list(
        LlmUsageEvent.objects.filter(run=run)
        .values("provider", "model")
        .annotate(
            calls=Count("event_id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost"),
        )
        .order_by("-cost")
    )
    ledger = list(RunLedger.objects.filter(run=run).values_list("day", "cost"))
    token_cost = sum((cost for _, cost in ledger), ZERO)
    months = sorted({periods.month_of(day) for day, _ in ledger})
    infra = {
        row["unit"]: row["quantity"]
        for row in InfraUsageEvent.objects.filter(run=run)
        .values("unit")
        .annotate(quantity=Sum("quantity"))
    }
    return RunDetail(
        run=run,
        jobs=list(Job.objects.filter(run=run).order_by("started_at", "attempt")),
        # Not the LLM calls' timings: the waterfall and the run API read those (run_calls).
        service_calls=list(run.external_calls.filter(kind="external").order_by("started_at")),
        models=models,
        token_cost=token_cost,
        infra=infra,
        months=months,
        allocated_cost=RunAllocatedCost.objects.filter(run=run).aggregate(a=Sum("amount"))["a"]
        or ZERO,
    )


def daily_cost_by_project(*, start: date, end: date) -> dict[str, dict[date, Decimal]]:
    """AI cost per project and local day (the tenant's), ``start <= day <= end``."""
    result: dict[str, dict[date, Decimal]] = {}
    for row in (
        LlmUsageDaily.objects.filter(day__gte=start, day__lte=end)
        .values("project__slug", "day")
        .annotate(cost=Sum("cost"))
    ):
        result.setdefault(row["project__slug"], {})[row["day"]] = row["cost"]
    return result


def cost_trend(
    *, start: date, end: date, dimension: str, grain: str
) -> dict[str, dict[str, Decimal]]:
    """AI cost for the tenant's days ``start <= day <= end`` by ``dimension`` (project, model,
    provider, run_type, template) and period (``day``, ``week`` starting Monday, or ``month``)."""
    columns = {
        "project": "project__slug",
        "model": "model",
        "provider": "provider",
        "run_type": "run_type",
        "template": "template",
    }
    column = columns[dimension]
    result: dict[str, dict[str, Decimal]] = {}
    rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lte=end)
        .values(column, "day")
        .annotate(cost=Sum("cost"))
    )
    for row in rows:
        day: date = row["day"]
        key = periods.period_key(day, grain)
        series = result.setdefault(row[column] or "(none)", {})
        series[key] = series.get(key, ZERO) + row["cost"]
    return result


def top_costs(
    *, start: date, end: date, dimension: str, limit: int = 5
) -> list[tuple[str, Decimal]]:
    """The ``limit`` largest AI costs by project or model for the tenant's days ``start <= day
    <= end``."""
    column = {"project": "project__slug", "model": "model"}[dimension]
    rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lte=end)
        .values(column)
        .annotate(cost=Sum("cost"))
        .order_by("-cost", column)[:limit]
    )
    return [(row[column], row["cost"]) for row in rows]
