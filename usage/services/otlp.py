"""Storing mapped OTLP spans: runs and jobs, LLM calls, external calls, errors, trace routing.

A span is attributed to a tenant, a run and a project from its own attributes, its trace's run
span, the resource, or (for spans of a trace seen in an earlier request) the stored
``TraceRoute`` of that tenant: trace ids are the senders' choice, so routes are per tenant and two
tenants may use the same trace id independently. Spans still without a run are kept as
``PendingSpan`` (in bulk, at most ``OTLP_MAX_PARKED_SPANS`` per sender) and stored when their run
span arrives; ``pending_spans_expire`` deletes those whose run span never came. Everything of one
request is written in one transaction, which ``usage.services.entry`` owns (and retries).
An LLM call is stored once, as its usage event: tokens, money and its duration for the run's
waterfall (before migration usage 0015 its timing was also an ``ExternalCall`` of kind "llm";
``usage.selectors.run_trace.run_calls`` reads both). The errors a
span reports are stored with its run (``usage.services.errors``); errors of spans outside any run
are not kept.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context
from psycopg.types.json import Jsonb

from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import tenants_beyond_one_request
from usage.domain.errors import ErrorIn
from usage.domain.events import SLUG_RE, LlmEventIn
from usage.domain.otlp import (
    ExternalSpan,
    JobSpan,
    LlmSpan,
    RejectedSpan,
    RunSpan,
    SpanRecord,
    jobs_from_parents,
    record_from_json,
    record_to_json,
    span_event_id,
)
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import Run
from usage.pricing import pricer_for
from usage.services.activity import tenant_activity_record
from usage.services.errors import span_errors_ingest, span_errors_runs_refresh
from usage.services.ingest import _copy_insert, events_ingest
from usage.services.references import jobs_lookup
from usage.services.routing import per_tenant, tenants_by_slug
from usage.services.runs import runs_ingest
from usage.trace_routing.models import PendingSpan, TraceRoute

logger = logging.getLogger(__name__)
PLATFORM_SENDER = ""  # PendingSpan.tenant_hint of spans the platform key sent
PENDING_TYPES = ["varchar", "varchar", "varchar", "jsonb", "timestamptz"]


@dataclass
class TracesResult:
    stored: int = 0
    parked: int = 0
    rejected: list[RejectedSpan] = field(default_factory=list)


def _reject(result: TracesResult, record: SpanRecord, reason: str) -> None:
    result.rejected.append(RejectedSpan(record.trace_id, record.span_id, record.kind, reason))


def spans_route_and_store(*, records: list[SpanRecord], host_tenant: Tenant | None) -> TracesResult:
    """Route ``records`` to their tenants and store them, inside the caller's transaction;
    ``host_tenant`` is the tenant whose key sent them (None: the platform key on the operator
    host, where each span names its tenant)."""
    result = TracesResult()
    records, shared = _fill_from_routes(records, host_tenant)
    by_tenant: dict[str, list[SpanRecord]] = defaultdict(list)
    unrouted: list[SpanRecord] = []
    for record in records:
        if record.context.project and not _valid_project(record, result):
            continue  # refused before anything (a route, a waiting span) keeps the bad value
        slug = _tenant_of(record, host_tenant, result, shared)
        if slug == "":
            unrouted.append(record)
        elif slug is not None:
            by_tenant[slug].append(record)
    _park(unrouted, PLATFORM_SENDER, result)
    # A tenant's key stores in its own tenant only, which its request found active already.
    tenants = (
        {host_tenant.slug: host_tenant} if host_tenant is not None else tenants_by_slug(by_tenant)
    )
    for slug in sorted(set(by_tenant) - set(tenants)):
        for record in by_tenant.pop(slug):
            _reject(result, record, f"unknown or inactive tenant {slug[:64]!r}")
    beyond, reason = tenants_beyond_one_request(by_tenant)
    for slug in sorted(beyond):
        for record in by_tenant.pop(slug):
            _reject(result, record, reason)
    per_tenant(
        {tenants[slug]: spans for slug, spans in by_tenant.items()},
        lambda tenant, spans: _store_tenant(
            tenant, spans, result, via_platform=host_tenant is None
        ),
    )
    return result


def _fill_from_routes(
    records: list[SpanRecord], host_tenant: Tenant | None
) -> tuple[list[SpanRecord], set[str]]:
    """The records with the context of spans of traces routed in earlier requests completed, and
    the trace ids that the platform routed to several tenants (a span of those must name its
    tenant)."""
    wanting = {r.trace_id for r in records if not r.context.run_id or not r.context.tenant}
    if host_tenant is not None and all(
        r.context.run_id and r.context.project for r in records if r.trace_id in wanting
    ):
        # A tenant's key: a route could only name the tenant of these records, which is the
        # key's anyway (they have their run and project): nothing to look up.
        wanting = set()
    if not wanting:
        return records, set()
    with schema_context("public"):
        found = TraceRoute.objects.filter(trace_id__in=wanting).select_related("tenant")
        if host_tenant is None:
            found = found.filter(via_platform=True)
        else:
            found = found.filter(tenant=host_tenant)
        routes: dict[tuple[str, str], TraceRoute] = {}
        by_trace: dict[str, list[TraceRoute]] = defaultdict(list)
        for route in found:
            routes[(route.tenant.slug, route.trace_id)] = route
            by_trace[route.trace_id].append(route)
    shared = {trace for trace, found_routes in by_trace.items() if len(found_routes) > 1}
    filled = []
    for record in records:
        if record.context.tenant:
            route = routes.get((record.context.tenant, record.trace_id))
        elif host_tenant is not None:
            route = routes.get((host_tenant.slug, record.trace_id))
        else:
            only = by_trace.get(record.trace_id, [])
            route = only[0] if len(only) == 1 else None
        if route is not None:
            context = record.context.filled(route.tenant.slug, route.run_id, route.project)
            record = replace(record, context=context)
        filled.append(record)
    return filled, shared


def _tenant_of(
    record: SpanRecord, host_tenant: Tenant | None, result: TracesResult, shared: set[str]
) -> str | None:
    """The tenant to store ``record`` in; "" for a platform span to keep until its run span
    names the tenant; None when rejected."""
    named = record.context.tenant
    if host_tenant is not None:
        if named and named != host_tenant.slug:
            _reject(
                result,
                record,
                f"the span names tenant {named[:64]!r} but was sent with a key "
                f"of tenant {host_tenant.slug!r}",
            )
            return None
        return host_tenant.slug
    if named:
        return named
    if isinstance(record, RunSpan):
        _reject(result, record, "no run.tenant_id on the span, its run span or its resource")
        return None
    if record.trace_id in shared:
        _reject(
            result,
            record,
            "this trace id is used by several tenants: name the tenant with run.tenant_id "
            "on the span or its resource",
        )
        return None
    return ""


PENDING_TEMP = (
    "CREATE TEMP TABLE pending_in (trace_id varchar(32), span_id varchar(16),"
    " tenant_hint varchar(40), record jsonb, received_at timestamptz)"
)
PENDING_INSERT = (
    "INSERT INTO usage_platform_pendingspan (trace_id, span_id, tenant_hint, record, received_at)"
    " SELECT trace_id, span_id, tenant_hint, record, received_at FROM pending_in"
    " ON CONFLICT DO NOTHING RETURNING 1"  # a re-sent span that already waits
)


def _park(records: list[SpanRecord], sender: str, result: TracesResult) -> None:
    """Keep ``records`` until their run span arrives: one COPY, and no more than
    ``OTLP_MAX_PARKED_SPANS`` waiting per sender (the rest are rejected with the reason).
    Concurrent requests of one sender may overshoot the bound by at most their own spans."""
    if not records:
        return
    limit = settings.OTLP_MAX_PARKED_SPANS
    now = timezone.now()
    with schema_context("public"):
        waiting = PendingSpan.objects.filter(tenant_hint=sender).count()
        room = max(0, limit - waiting)
        for record in records[room:]:
            _reject(
                result,
                record,
                f"not kept: {waiting:,} spans of this sender already wait for their run span "
                f"(limit {limit:,}); send the factory.run.execute span, or run.id and "
                "run.project_id on each span",
            )
        rows = [
            (r.trace_id, r.span_id, sender, Jsonb(record_to_json(r)), now) for r in records[:room]
        ]
        _copy_insert(PENDING_TEMP, "pending_in", PENDING_TYPES, rows, PENDING_INSERT)
    result.parked += len(rows)


def _store_tenant(
    tenant: Tenant, records: list[SpanRecord], result: TracesResult, *, via_platform: bool
) -> None:
    records = _fill_projects_from_runs(records)
    ready: list[SpanRecord] = []
    waiting: list[SpanRecord] = []
    for record in records:
        if isinstance(record, RunSpan) and not record.context.project:
            _reject(result, record, "no run.project_id on the run span or its resource")
        elif (
            isinstance(record, RunSpan)
            or (record.context.run_id and record.context.project)
            or (
                isinstance(record, LlmSpan | ExternalSpan)
                and record.context.project
                and not record.job_id  # a job's call waits for the job's run span
            )
        ):
            ready.append(record)  # usage and calls outside any run are kept with their project
        else:
            waiting.append(record)
    _park(waiting, PLATFORM_SENDER if via_platform else tenant.slug, result)
    run_records = [r for r in ready if isinstance(r, RunSpan)]
    _routes_save(tenant, run_records, via_platform)
    ready += _unpark_for(tenant, {r.trace_id for r in run_records}, via_platform)
    result.stored += _store_ready(tenant, jobs_from_parents(ready), result)


def _fill_projects_from_runs(records: list[SpanRecord]) -> list[SpanRecord]:
    wanting = {r.context.run_id for r in records if r.context.run_id and not r.context.project}
    if not wanting:
        return records
    projects = dict(Run.objects.filter(run_id__in=wanting).values_list("run_id", "project__slug"))
    return [
        replace(r, context=r.context.filled(project=projects.get(r.context.run_id, "")))
        if r.context.run_id and not r.context.project
        else r
        for r in records
    ]


ROUTES_INSERT = (
    "INSERT INTO usage_platform_traceroute"
    " (trace_id, tenant_id, run_id, project, via_platform, created_at)"
    " SELECT t, %s, r, p, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[])"
    " WITH ORDINALITY AS x(t, r, p, n) ORDER BY n"
    " ON CONFLICT DO NOTHING"  # the trace's route is known already: the first one stays
)


def _routes_save(tenant: Tenant, runs: list[RunSpan], via_platform: bool) -> None:
    """The tenant's route of each run span's trace (the first run span of a trace wins), in
    one statement."""
    routes: dict[str, RunSpan] = {}
    for record in runs:
        routes.setdefault(record.trace_id, record)
    if not routes:
        return
    with schema_context("public"), connection.cursor() as cursor:
        cursor.execute(
            ROUTES_INSERT,
            [
                tenant.pk,
                via_platform,
                timezone.now(),
                list(routes),
                [r.context.run_id for r in routes.values()],
                [r.context.project for r in routes.values()],
            ],
        )


def _unpark_for(tenant: Tenant, trace_ids: set[str], via_platform: bool) -> list[SpanRecord]:
    """Take the spans waiting for these traces' runs that the same sender parked: the tenant's
    own, or the platform's when the run span came through the platform key (and then only those
    that name no tenant or this one). One DELETE ... RETURNING."""
    if not trace_ids:
        return []
    sql = "DELETE FROM usage_platform_pendingspan WHERE trace_id = ANY(%s) AND tenant_hint = %s"
    params: list[Any] = [list(trace_ids)]
    if via_platform:
        sql += " AND coalesce(record->'context'->>'tenant', '') IN ('', %s)"
        params += [PLATFORM_SENDER, tenant.slug]
    else:
        params.append(tenant.slug)
    with schema_context("public"):
        with connection.cursor() as cursor:
            cursor.execute(sql + " RETURNING trace_id, span_id, record", params)
            taken = cursor.fetchall()
        if not taken:
            return []
        routes = {
            r.trace_id: r
            for r in TraceRoute.objects.filter(tenant=tenant, trace_id__in={t[0] for t in taken})
        }
    records = []
    for trace_id, span_id, data in taken:
        record = record_from_json(
            trace_id, span_id, json.loads(data) if isinstance(data, str) else data
        )
        route = routes[trace_id]
        context = record.context.filled(run_id=route.run_id, project=route.project)
        records.append(replace(record, context=context))
    return records


def _valid_project(record: SpanRecord, result: TracesResult) -> bool:
    if SLUG_RE.fullmatch(record.context.project):
        return True
    _reject(
        result,
        record,
        f"project {record.context.project[:64]!r} is not a slug (1 to 100 lowercase letters, "
        "digits, '-', '_')",
    )
    return False


def _retained(tenant: Tenant, record: SpanRecord, result: TracesResult) -> bool:
    """False (and rejected) for an LLM span older than the tenant's raw usage events, whose month
    is past retention: REST batches refuse the same event (``usage.services.entry``)."""
    kept_from = tenant.raw_retained_from
    if kept_from is None or not isinstance(record, LlmSpan) or record.occurred_at >= kept_from:
        return True
    _reject(
        result,
        record,
        f"LLM call at {record.occurred_at.isoformat()} is before {kept_from.isoformat()}, where "
        "the tenant's raw usage events begin (older months are past retention); not stored",
    )
    return False


def _store_ready(tenant: Tenant, records: list[SpanRecord], result: TracesResult) -> int:
    records = [r for r in records if _valid_project(r, result) and _retained(tenant, r, result)]
    tenant_activity_record(tenant)
    updates: dict[str, list[RunSpan | JobSpan]] = defaultdict(list)  # run id -> run?, jobs
    for record in records:
        if isinstance(record, RunSpan | JobSpan):
            updates[record.context.run_id].append(record)
    run_updates = [
        _run_update(run_id, items, i) for i, (run_id, items) in enumerate(sorted(updates.items()))
    ]
    runs_ingest(updates=run_updates)
    llm = [_llm_event(r, i) for i, r in enumerate(records) if isinstance(r, LlmSpan)]
    # The lifecycle above locked its runs: locking the calls' other runs after them could
    # deadlock with a lifecycle batch locking both in run id order, so a call whose job span
    # is stored at this very moment by another request can miss the step rollup here (a
    # rebuild counts it; REST event batches lock first and do not miss it).
    events_ingest(events=llm, pricer=pricer_for(tenant), await_jobs=False)
    # An LLM span is stored once, as its usage event (with its duration, for the waterfall).
    _external_calls_store([r for r in records if isinstance(r, ExternalSpan)])
    span_errors_ingest(errors=_errors_of(records))
    span_errors_runs_refresh(run_ids=(r.context.run_id for r in records if isinstance(r, RunSpan)))
    return len(records)


def _errors_of(records: list[SpanRecord]) -> list[ErrorIn]:
    return [
        ErrorIn(
            trace_id=r.trace_id,
            span_id=r.span_id,
            seq=fault.seq,
            run_id=r.context.run_id,
            project=r.context.project,
            job_id=getattr(r, "job_id", ""),
            step_name=fault.step_name,
            attempt=fault.attempt,
            span_name=fault.span_name,
            source=fault.source,
            occurred_at=fault.occurred_at,
            type=fault.type,
            message=fault.message,
            stacktrace=fault.stacktrace,
        )
        for r in records
        if r.context.run_id and r.context.project
        for fault in r.errors
    ]


def _run_update(run_id: str, items: list[RunSpan | JobSpan], index: int) -> RunUpdate:
    run = next((r for r in items if isinstance(r, RunSpan)), None)
    jobs = tuple(
        JobUpdate(
            job_id=r.job_id,
            attempt=r.attempt,
            status=r.status,
            timestamp=r.finished_at or r.started_at,
            step_name=r.step_name,
            started_at=r.started_at,
            finished_at=r.finished_at,
            duration_ms=r.duration_ms,
            failure_type=r.failure_type,
        )
        for r in items
        if isinstance(r, JobSpan)
    )
    project = items[0].context.project
    if run is None:
        # Jobs alone: a lowest-rank update that creates the run if needed, never moves it.
        first = min(j.started_at or j.timestamp for j in jobs)
        return RunUpdate(
            position=index,
            run_id=run_id,
            project=project,
            status="Requested",
            timestamp=first,
            requested_at=first,
            jobs=jobs,
        )
    return RunUpdate(
        position=index,
        run_id=run_id,
        project=run.context.project,
        status=run.status,
        timestamp=run.finished_at or run.started_at,
        template_recipe_id=run.template_recipe_id,
        run_type=run.run_type,
        requested_at=run.requested_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        failure_type=run.failure_type,
        trace_id=run.trace_id,
        jobs=jobs,
    )


def _llm_event(record: LlmSpan, index: int) -> LlmEventIn:
    return LlmEventIn(
        position=index,
        event_id=span_event_id(record.trace_id, record.span_id),
        occurred_at=record.occurred_at,
        project=record.context.project,
        run_id=record.context.run_id,
        job_id=record.job_id,
        tenant="",
        provider=record.provider,
        model=record.model,
        operation=record.operation,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cached_input_tokens=record.cached_input_tokens,
        cache_write_tokens=record.cache_write_tokens,
        cost=None,
        # Records parked before their timing was kept have none (and no waterfall row).
        duration_ms=record.duration_ms if record.started_at is not None else None,
    )


CALL_COLUMNS = (
    "trace_id, span_id, run_id, job_id, service, kind, model, started_at, duration_ms, status,"
    " error"
)
CALL_TYPES = ["text", "text", "int8", "int8", "text", "text", "text", "timestamptz", "int8"]
CALL_TYPES += ["text", "text"]
CALLS_TEMP = (
    "CREATE TEMP TABLE calls_in (trace_id text, span_id text, run_id bigint, job_id bigint,"
    " service text, kind text, model text, started_at timestamptz, duration_ms bigint,"
    " status text, error text)"
)
CALLS_INSERT = (
    f"INSERT INTO usage_externalcall ({CALL_COLUMNS}) SELECT {CALL_COLUMNS} FROM calls_in"  # noqa: S608 - fixed names
    " ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING 1"
)


def _external_calls_store(records: list[ExternalSpan]) -> None:
    """The calls of ``factory.external.{service}`` spans."""
    if not records:
        return
    run_ids = {r.context.run_id for r in records if r.context.run_id}
    runs = dict(Run.objects.filter(run_id__in=run_ids).values_list("run_id", "id"))
    jobs = jobs_lookup(
        (runs[r.context.run_id], r.job_id) for r in records if r.job_id and r.context.run_id in runs
    )
    rows = []
    for r in records:
        run_pk = runs.get(r.context.run_id)
        job_pk = jobs.get((run_pk, r.job_id)) if run_pk else None
        row = (r.trace_id, r.span_id, run_pk, job_pk, r.service, "external", "", r.started_at)
        rows.append((*row, r.duration_ms, r.status, r.error))
    _copy_insert(CALLS_TEMP, "calls_in", CALL_TYPES, rows, CALLS_INSERT)


def pending_spans_expire(*, now: datetime | None = None) -> int:
    """Delete the spans that waited longer than ``OTLP_PARKED_SPAN_TTL_SECONDS`` for their run
    span (it was lost, or never sent): they could never be stored. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.OTLP_PARKED_SPAN_TTL_SECONDS)
    with schema_context("public"):
        expired = PendingSpan.objects.filter(received_at__lt=cutoff)
        senders = {
            row["tenant_hint"]: row["n"]
            for row in expired.values("tenant_hint").annotate(n=Count("id"))
        }
        deleted, _ = expired.delete()
    for sender, count in sorted(senders.items()):
        logger.warning(
            "deleted %d OTLP spans that waited more than %d s for their run span",
            count,
            settings.OTLP_PARKED_SPAN_TTL_SECONDS,
            extra={"sender": sender or "platform"},
        )
    return deleted
