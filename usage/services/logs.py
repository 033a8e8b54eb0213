"""Storing OTLP log records (``POST /v1/logs``) as ``RunLog`` rows of their runs.

Routing: a tenant's key stores in its own tenant (a record naming another tenant is rejected);
the platform key stores each record in the tenant it names (``tenantId`` / ``run.tenant_id``,
on the record or its resource) or, naming none, the tenant its trace was routed to
(``TraceRoute`` learnt from the run span). A record without a run id takes its trace's run the
same way. A run not known yet is created as a *Requested* stub when the record names its project
(as usage events do); otherwise the record is rejected with the reason. Unknown tenants are
rejected. Each tenant's records are stored in one transaction of their own (retried on
conflicts), idempotently by ``digest``, and bounded per run: ``RUN_LOG_MAX_PER_RUN`` records,
beyond which only ERROR and CRITICAL ones are kept, up to twice as many in all; the others are
dropped and counted. Concurrent requests for one run may overshoot by their own size.
Reads the trace routes; never writes them (``usage.services.otlp`` does).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.db.models import Count
from django_tenants.utils import schema_context

from factory_portal.tenants.connection import zone_for_writing
from factory_portal.tenants.models import Tenant
from usage.domain.events import SLUG_RE
from usage.domain.otlp_logs import LogRecordIn, RejectedLog
from usage.models import Job, Run, RunLog
from usage.services.references import projects_ensure, runs_ensure
from usage.services.routing import ingest_transaction, tenants_by_slug
from usage.trace_routing.models import TraceRoute


@dataclass
class LogsResult:
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0  # beyond the per-run bound (also listed in ``rejected``)
    rejected: list[RejectedLog] = field(default_factory=list)


def _rejected(record: LogRecordIn, reason: str) -> RejectedLog:
    return RejectedLog(record.trace_id, record.span_id, record.time.isoformat(), reason)


def logs_ingest(*, records: Sequence[LogRecordIn], host_tenant: Tenant | None) -> LogsResult:
    """Route ``records`` to their tenants and runs and store them; ``host_tenant`` is the tenant
    whose key sent them (None: the platform key on the operator host)."""
    result = LogsResult()
    filled = _fill_from_routes(list(records), host_tenant)
    groups: dict[str, list[LogRecordIn]] = defaultdict(list)
    for record in filled:
        if host_tenant is not None:
            if record.tenant and record.tenant != host_tenant.slug:
                result.rejected.append(
                    _rejected(
                        record,
                        f"the record names tenant {record.tenant[:64]!r} but was sent with a "
                        f"key of tenant {host_tenant.slug!r}",
                    )
                )
                continue
            groups[host_tenant.slug].append(record)
        elif record.tenant:
            groups[record.tenant].append(record)
        else:
            result.rejected.append(
                _rejected(
                    record,
                    "no tenantId / run.tenant_id on the record or its resource, and its trace "
                    "is not routed to one tenant",
                )
            )
    tenants = {host_tenant.slug: host_tenant} if host_tenant else tenants_by_slug(groups)
    for slug in sorted(groups):
        tenant = tenants.get(slug)
        if tenant is None:
            result.rejected += [
                _rejected(r, f"unknown or inactive tenant {slug[:64]!r}") for r in groups[slug]
            ]
            continue
        with schema_context(tenant.schema_name):
            part = ingest_transaction(lambda group=groups[slug]: _store_tenant(group))
        result.stored += part.stored
        result.duplicates += part.duplicates
        result.dropped += part.dropped
        result.rejected += part.rejected
    return result


def _fill_from_routes(records: list[LogRecordIn], host_tenant: Tenant | None) -> list[LogRecordIn]:
    """Records missing their run or tenant completed from their trace's route (the sender's
    own routes only: a tenant key reads its tenant's, the platform key the platform's)."""
    wanting = {r.trace_id for r in records if r.trace_id and not (r.run_id and r.tenant)}
    if not wanting:
        return records
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
    filled = []
    for record in records:
        if record.tenant:
            route = routes.get((record.tenant, record.trace_id))
        elif host_tenant is not None:
            route = routes.get((host_tenant.slug, record.trace_id))
        else:
            only = by_trace.get(record.trace_id, [])
            route = only[0] if len(only) == 1 else None
        if route is not None:
            record = replace(
                record,
                tenant=record.tenant or route.tenant.slug,
                run_id=record.run_id or route.run_id,
                project=record.project or route.project,
            )
        filled.append(record)
    return filled


def _store_tenant(records: list[LogRecordIn]) -> LogsResult:
    """Store one tenant's records in the current schema (inside the caller's transaction). Starts
    from its inputs only: the transaction may run it again."""
    part = LogsResult()
    unique: dict[str, LogRecordIn] = {}
    for record in records:
        unique.setdefault(record.digest, record)
    known = set(RunLog.objects.filter(digest__in=list(unique)).values_list("digest", flat=True))
    fresh = [r for d, r in unique.items() if d not in known]
    part.duplicates = len(records) - len(fresh)
    runs = _runs_resolve(fresh, part)
    fresh = [r for r in fresh if r.run_id in runs]
    steps = _job_steps(fresh, runs)
    held = dict(
        RunLog.objects.filter(run_id__in=set(runs.values()))
        .values_list("run_id")
        .annotate(n=Count("id"))
    )
    cap = settings.RUN_LOG_MAX_PER_RUN
    rows = []
    for record in sorted(fresh, key=lambda r: r.time):
        run_pk = runs[record.run_id]
        n = held.get(run_pk, 0)
        if n >= cap and not (record.is_error and n < 2 * cap):
            part.dropped += 1
            part.rejected.append(
                _rejected(
                    record,
                    f"dropped: run {record.run_id[:64]!r} already holds {n:,} log records "
                    f"(RUN_LOG_MAX_PER_RUN {cap:,}; beyond it only ERROR and CRITICAL are kept)",
                )
            )
            continue
        held[run_pk] = n + 1
        rows.append(
            RunLog(
                run_id=run_pk,
                digest=record.digest,
                time=record.time,
                level=record.level,
                severity_number=record.severity_number,
                message=record.message,
                job_ref=record.job_id,
                step_name=record.step_name or steps.get((run_pk, record.job_id), ""),
                trace_id=record.trace_id,
                span_id=record.span_id,
                attributes=record.attributes,
            )
        )
    RunLog.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    part.stored = len(rows)
    return part


def _runs_resolve(records: list[LogRecordIn], part: LogsResult) -> dict[str, int]:
    """Run primary keys by client run id. Unknown runs of records that name their project are
    created as Requested stubs; records that cannot be placed are rejected into ``part``."""
    wanted = {r.run_id for r in records if r.run_id}
    runs = dict(Run.objects.filter(run_id__in=wanted).values_list("run_id", "id"))
    first_seen: dict[str, tuple[str, datetime]] = {}
    for record in records:
        if not record.run_id:
            part.rejected.append(
                _rejected(
                    record,
                    "no runId / run.id on the record, its body or its resource, and its trace "
                    "is not routed to a run",
                )
            )
        elif record.run_id in runs:
            continue
        elif not record.project or not re.fullmatch(SLUG_RE, record.project):
            reason = (
                f"project {record.project[:64]!r} is not a slug"
                if record.project
                else "send the run first (POST /api/v1/runs or its factory.run.execute span) "
                "or name its project (projectId / run.project_id)"
            )
            part.rejected.append(_rejected(record, f"unknown run {record.run_id[:64]!r}: {reason}"))
        elif record.run_id not in first_seen or record.time < first_seen[record.run_id][1]:
            first_seen[record.run_id] = (record.project, record.time)
    if first_seen:
        projects = projects_ensure(p for p, _ in first_seen.values())
        created = runs_ensure(
            {run: (projects[p], t) for run, (p, t) in first_seen.items()}, zone=zone_for_writing()
        )
        runs.update({run: ref.id for run, ref in created.items()})
    return runs


def _job_steps(records: list[LogRecordIn], runs: dict[str, int]) -> dict[tuple[int, str], str]:
    """Step names of the jobs records name without a step name."""
    jobs = {(runs[r.run_id], r.job_id) for r in records if r.job_id and not r.step_name}
    if not jobs:
        return {}
    rows = Job.objects.filter(
        run_id__in={run for run, _ in jobs}, job_id__in={job for _, job in jobs}
    ).values_list("run_id", "job_id", "step_name")
    return {(run, job): step for run, job, step in rows if (run, job) in jobs}
