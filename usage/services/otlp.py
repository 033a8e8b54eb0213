"""Storing mapped OTLP spans: runs and jobs, LLM calls, external calls, trace routing.

A span is attributed to a tenant, a run and a project from its own attributes, its trace's run
span, the resource, or (for spans of a trace seen in an earlier request) the stored
``TraceRoute``. Spans still without a run are kept as ``PendingSpan`` and stored when their run
span arrives. Everything of one request is written in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django_tenants.utils import schema_context

from factory_portal.tenants.models import Tenant
from usage.domain.events import SLUG_RE, LlmEventIn
from usage.domain.otlp import RejectedSpan, SpanContext, SpanRecord
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import ExternalCall, Run
from usage.platform.models import PendingSpan, TraceRoute
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.references import jobs_lookup
from usage.services.routing import tenants_by_slug
from usage.services.runs import runs_ingest

TIME_FIELDS = ("occurred_at", "started_at", "finished_at", "requested_at")


@dataclass
class TracesResult:
    stored: int = 0
    parked: int = 0
    rejected: list[RejectedSpan] = field(default_factory=list)


def _reject(result: TracesResult, record: SpanRecord, reason: str) -> None:
    result.rejected.append(RejectedSpan(record.trace_id, record.span_id, record.kind, reason))


def traces_ingest(*, records: list[SpanRecord], host_tenant: Tenant | None) -> TracesResult:
    """Store ``records``; ``host_tenant`` is the tenant whose key sent them (None: the platform
    key on the operator host, where each span names its tenant)."""
    result = TracesResult()
    with transaction.atomic():
        _fill_from_routes(records, host_tenant)
        by_tenant: dict[str, list[SpanRecord]] = defaultdict(list)
        for record in records:
            slug = _tenant_of(record, host_tenant, result)
            if slug is not None:
                by_tenant[slug].append(record)
        tenants = tenants_by_slug(by_tenant)
        for slug in sorted(by_tenant):
            tenant = tenants.get(slug)
            if tenant is None:
                for record in by_tenant[slug]:
                    _reject(result, record, f"unknown or inactive tenant {slug!r}")
                continue
            with schema_context(tenant.schema_name):
                _store_tenant(tenant, by_tenant[slug], result, via_platform=host_tenant is None)
    return result


def _fill_from_routes(records: list[SpanRecord], host_tenant: Tenant | None) -> None:
    wanting = {r.trace_id for r in records if not r.context.run_id or not r.context.tenant}
    if not wanting:
        return
    with schema_context("public"):
        routes = TraceRoute.objects.filter(trace_id__in=wanting).select_related("tenant")
        if host_tenant is None:
            routes = routes.filter(via_platform=True)
        else:
            routes = routes.filter(tenant=host_tenant)
        routes = {route.trace_id: route for route in routes}
    for record in records:
        route = routes.get(record.trace_id)
        if route is not None:
            record.context.tenant = record.context.tenant or route.tenant.slug
            record.context.run_id = record.context.run_id or route.run_id
            record.context.project = record.context.project or route.project


def _tenant_of(record: SpanRecord, host_tenant: Tenant | None, result: TracesResult) -> str | None:
    named = record.context.tenant
    if host_tenant is not None:
        if named and named != host_tenant.slug:
            _reject(
                result,
                record,
                f"the span names tenant {named!r} but was sent with a key "
                f"of tenant {host_tenant.slug!r}",
            )
            return None
        return host_tenant.slug
    if not named:
        if record.kind == "run":
            _reject(result, record, "no run.tenant_id on the span, its run span or its resource")
            return None
        _park(record, "")
        result.parked += 1
        return None
    return named


def _park(record: SpanRecord, tenant_hint: str) -> None:
    payload = {
        "kind": record.kind,
        "job_id": record.job_id,
        "context": {
            "tenant": record.context.tenant,
            "run_id": record.context.run_id,
            "project": record.context.project,
        },
        "fields": {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.fields.items()
        },
    }
    with schema_context("public"):
        PendingSpan.objects.get_or_create(
            trace_id=record.trace_id,
            span_id=record.span_id,
            tenant_hint=tenant_hint,
            defaults={"record": payload},
        )


def _unpark(pending: PendingSpan) -> SpanRecord:
    data = pending.record
    fields = {
        k: datetime.fromisoformat(v) if k in TIME_FIELDS and v else v
        for k, v in data["fields"].items()
    }
    return SpanRecord(
        kind=data["kind"],
        trace_id=pending.trace_id,
        span_id=pending.span_id,
        context=SpanContext(**data["context"]),
        fields=fields,
        job_id=data["job_id"],
    )


def _store_tenant(
    tenant: Tenant, records: list[SpanRecord], result: TracesResult, *, via_platform: bool
) -> None:
    records = _without_foreign_traces(tenant, records, result)
    _fill_projects_from_runs(records)
    ready: list[SpanRecord] = []
    for record in records:
        if record.kind == "run" and not record.context.project:
            _reject(result, record, "no run.project_id on the run span or its resource")
        elif (
            record.kind == "run"
            or (record.context.run_id and record.context.project)
            or (record.kind in ("llm", "external") and record.context.project)
        ):
            ready.append(record)  # usage and calls outside any run are kept with their project
        else:
            _park(record, "" if via_platform else tenant.slug)
            result.parked += 1
    run_records = [r for r in ready if r.kind == "run"]
    _routes_save(tenant, run_records, via_platform)
    ready += _unpark_for(tenant, {r.trace_id for r in run_records}, via_platform)
    result.stored += _store_ready(tenant, ready, result)


def _fill_projects_from_runs(records: list[SpanRecord]) -> None:
    wanting = {r.context.run_id for r in records if r.context.run_id and not r.context.project}
    if not wanting:
        return
    projects = dict(Run.objects.filter(run_id__in=wanting).values_list("run_id", "project__slug"))
    for record in records:
        if record.context.run_id and not record.context.project:
            record.context.project = projects.get(record.context.run_id, "")


def _without_foreign_traces(
    tenant: Tenant, records: list[SpanRecord], result: TracesResult
) -> list[SpanRecord]:
    """Spans of a trace already routed to another tenant are refused (trace ids are unique per
    run; reusing one must not let a sender write into, or read from, another tenant's trace)."""
    traces = {r.trace_id for r in records}
    with schema_context("public"):
        foreign = set(
            TraceRoute.objects.filter(trace_id__in=traces)
            .exclude(tenant=tenant)
            .values_list("trace_id", flat=True)
        )
    for record in records:
        if record.trace_id in foreign:
            _reject(result, record, "this trace id belongs to another run")
    return [r for r in records if r.trace_id not in foreign]


def _routes_save(tenant: Tenant, runs: list[SpanRecord], via_platform: bool) -> None:
    with schema_context("public"):
        for record in runs:
            TraceRoute.objects.get_or_create(
                trace_id=record.trace_id,
                defaults={
                    "tenant": tenant,
                    "run_id": record.context.run_id,
                    "project": record.context.project,
                    "via_platform": via_platform,
                },
            )


def _unpark_for(tenant: Tenant, trace_ids: set[str], via_platform: bool) -> list[SpanRecord]:
    """Spans waiting for these traces' runs that the same sender parked: the tenant's own, or
    the platform's when the run span came through the platform key."""
    if not trace_ids:
        return []
    sender = "" if via_platform else tenant.slug
    with schema_context("public"):
        pending = list(
            PendingSpan.objects.select_for_update().filter(
                trace_id__in=trace_ids, tenant_hint=sender
            )
        )
        routes = {r.trace_id: r for r in TraceRoute.objects.filter(trace_id__in=trace_ids)}
        PendingSpan.objects.filter(pk__in=[p.pk for p in pending]).delete()
    records = []
    for item in pending:
        record = _unpark(item)
        route = routes[item.trace_id]
        record.context.run_id = record.context.run_id or route.run_id
        record.context.project = record.context.project or route.project
        records.append(record)
    return records


def _valid_project(record: SpanRecord, result: TracesResult) -> bool:
    if SLUG_RE.fullmatch(record.context.project):
        return True
    _reject(
        result,
        record,
        f"project {record.context.project!r} is not a slug (lowercase letters, digits, '-', '_')",
    )
    return False


def _store_ready(tenant: Tenant, records: list[SpanRecord], result: TracesResult) -> int:
    records = [r for r in records if _valid_project(r, result)]
    updates: dict[str, list[Any]] = defaultdict(list)  # run id -> [run record?, job records]
    for record in records:
        if record.kind in ("run", "job"):
            updates[record.context.run_id].append(record)
    run_updates = [
        _run_update(run_id, items, i) for i, (run_id, items) in enumerate(sorted(updates.items()))
    ]
    runs_ingest(updates=run_updates)
    llm = [_llm_event(r, i) for i, r in enumerate(records) if r.kind == "llm"]
    events_ingest(events=llm, pricer=pricer_for(tenant))
    _external_calls_store([r for r in records if r.kind == "external"])
    return len(records)


def _run_update(run_id: str, items: list[SpanRecord], index: int) -> RunUpdate:
    run = next((r for r in items if r.kind == "run"), None)
    jobs = tuple(
        JobUpdate(
            job_id=r.job_id,
            attempt=r.fields["attempt"],
            status=r.fields["status"],
            timestamp=r.fields["finished_at"] or r.fields["started_at"],
            step_name=r.fields["step_name"],
            started_at=r.fields["started_at"],
            finished_at=r.fields["finished_at"],
            duration_ms=r.fields["duration_ms"],
            failure_type=r.fields["failure_type"],
        )
        for r in items
        if r.kind == "job"
    )
    project = items[0].context.project
    if run is None:
        # Jobs alone: a lowest-rank update that creates the run if needed, never moves it.
        first = min(j.started_at or j.timestamp for j in jobs)
        return RunUpdate(
            index=index,
            run_id=run_id,
            project=project,
            status="Requested",
            timestamp=first,
            requested_at=first,
            jobs=jobs,
        )
    f = run.fields
    return RunUpdate(
        index=index,
        run_id=run_id,
        project=run.context.project,
        status=f["status"],
        timestamp=f["finished_at"] or f["started_at"],
        template_recipe_id=f["template_recipe_id"],
        run_type=f["run_type"],
        requested_at=f["requested_at"],
        started_at=f["started_at"],
        finished_at=f["finished_at"],
        duration_ms=f["duration_ms"],
        failure_type=f["failure_type"],
        trace_id=run.trace_id,
        jobs=jobs,
    )


def _llm_event(record: SpanRecord, index: int) -> LlmEventIn:
    f = record.fields
    return LlmEventIn(
        index=index,
        event_id=f"otlp-{record.trace_id}-{record.span_id}",
        occurred_at=f["occurred_at"],
        project=record.context.project,
        run_id=record.context.run_id,
        job_id=record.job_id,
        tenant="",
        provider=f["provider"],
        model=f["model"],
        operation=f["operation"],
        input_tokens=f["input_tokens"],
        output_tokens=f["output_tokens"],
        cached_input_tokens=f["cached_input_tokens"],
        cache_write_tokens=f["cache_write_tokens"],
        cost=None,
    )


def _external_calls_store(records: list[SpanRecord]) -> None:
    if not records:
        return
    run_ids = {r.context.run_id for r in records if r.context.run_id}
    runs = dict(Run.objects.filter(run_id__in=run_ids).values_list("run_id", "id"))
    jobs = jobs_lookup(
        (runs[r.context.run_id], r.job_id) for r in records if r.job_id and r.context.run_id in runs
    )
    calls = []
    for r in records:
        run_pk = runs.get(r.context.run_id)
        calls.append(
            ExternalCall(
                trace_id=r.trace_id,
                span_id=r.span_id,
                run_id=run_pk,
                job_id=jobs.get((run_pk, r.job_id)) if run_pk else None,
                service=r.fields["service"],
                started_at=r.fields["started_at"],
                duration_ms=r.fields["duration_ms"],
                status=r.fields["status"],
                error=r.fields["error"],
            )
        )
    ExternalCall.objects.bulk_create(calls, ignore_conflicts=True)


def current_tenant() -> Tenant | None:
    tenant = getattr(connection, "tenant", None)
    return None if tenant is None or tenant.schema_name == "public" else tenant
