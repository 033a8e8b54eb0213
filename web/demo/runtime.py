"""The demo's runtime history: what a debugging customer and an on-call operator look at.

- errors: an exception (type, message, stack trace in the language of the failing tool) for
  every failed job attempt of the generated history, so error groups form across runs;
- logs: a few structured records per job of the last ``LOG_DAYS`` days (started, LLM progress,
  warnings on retries, the error);
- metrics: OTLP ``ExportMetricsServiceRequest`` messages over the history (one point a minute
  for the last two days, one every ten minutes before): queues that back up in working hours and
  drain at night, staying under a thousand jobs, except on the incident three days ago (the pools
  down to a quarter for three hours, failing jobs re-queued) that backs ``jobs-default`` up past
  a thousand until the scaled-up pools drain it that evening; a worker pool (``pool-b``) that
  throws errors, run and job duration histograms, token counters. ``web.demo.incidents`` reads
  the incident history off the same stream.

Generation is pure; ``runtime_history_store`` stores it through the ingest services (errors,
logs, metrics), so rollups, error groups and series state are what real ingest would make.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
    ResourceMetrics,
    ScopeMetrics,
)

from factory_portal.tenants.models import Tenant
from web.demo.generate import History, JobRow, RunRow

LOG_DAYS = 14
RECENT_DAYS = 2  # one point a minute; before that, one every ten minutes
METRIC_DAYS = 14
QUEUES = (("jobs-default", "normal"), ("jobs-priority", "high"))
POOLS = ("pool-a", "pool-b")
JOB_TYPES = ("generate", "build", "test", "deploy")
CAPACITY = 15.0  # jobs a minute the pools finish per unit of scale: peaks stay under 1,000
INCIDENT_HOURS = timedelta(hours=3)
RECOVERY_HOURS = timedelta(hours=9)  # from the incident's start: pools scaled up until then
INCIDENT_REQUEUED = 14.0  # jobs a minute re-queued on the incident
DURATION_BOUNDS = (1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800)


# --- errors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoError:
    type: str
    message: str
    stacktrace: str


def _python(frames: tuple[tuple[str, int, str, str], ...], type_: str, message: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, function, code in frames:
        lines += [f'  File "{path}", line {line}, in {function}', f"    {code}"]
    return "\n".join([*lines, f"{type_}: {message}"])


_RUNNER = ("/app/factory/worker/job.py", 88, "execute", "result = step.run(context)")


def _error(failure_type: str, step: str, rng: random.Random) -> DemoError | None:
    n = rng.randint
    if failure_type == "test_failure":
        path = rng.choice(("/api/orders", "/api/cart", "/api/users"))
        message = (
            f"expected status 200, got {rng.choice((400, 500, 502))} for POST {path}/{n(1, 99999)}"
        )
        return DemoError(
            "AssertionError",
            message,
            _python(
                (
                    _RUNNER,
                    (
                        "/app/factory/steps/run_tests.py",
                        142,
                        "run",
                        "report = sandbox.pytest(args)",
                    ),
                    (
                        "/app/factory/sandbox/client.py",
                        57,
                        "pytest",
                        "raise AssertionError(failed)",
                    ),
                ),
                "AssertionError",
                message,
            ),
        )
    if failure_type in ("infra_oom", "infra_preempted", "infra_quota_exceeded"):
        node = f"gke-pool-b-{rng.getrandbits(20):05x}"
        type_, message = {
            "infra_oom": (
                "ContainerOOMKilled",
                f"container sandbox-{n(1000, 9999)} exceeded memory limit 4096Mi on {node}",
            ),
            "infra_preempted": ("WorkerPreempted", f"node {node} was preempted"),
            "infra_quota_exceeded": (
                "QuotaExceeded",
                f"quota 'CPUS' exceeded. Limit: {n(6, 12) * 16}.0 in region us-east-1",
            ),
        }[failure_type]
        return DemoError(
            type_,
            message,
            _python(
                (
                    _RUNNER,
                    (
                        "/app/factory/sandbox/pool.py",
                        203,
                        "acquire",
                        "node = self.scheduler.place(spec)",
                    ),
                    (
                        "/app/factory/sandbox/scheduler.py",
                        77,
                        "place",
                        "raise self.error_of(event)",
                    ),
                ),
                type_,
                message,
            ),
        )
    if failure_type in ("timeout", "llm_timeout"):
        seconds = rng.choice((120, 600, 1800))
        type_ = "httpx.ReadTimeout" if failure_type == "llm_timeout" else "TimeoutError"
        message = (
            f"timed out after {seconds}.0s"
            if failure_type == "llm_timeout"
            else f"step {step} exceeded {seconds} s"
        )
        return DemoError(
            type_,
            message,
            _python(
                (
                    _RUNNER,
                    (
                        "/app/factory/llm/client.py",
                        118,
                        "complete",
                        "response = self.http.post(url, json=body)",
                    ),
                    (
                        "/usr/lib/python3.12/site-packages/httpx/_transports/default.py",
                        86,
                        "map_httpcore_exceptions",
                        "raise mapped_exc(message) from exc",
                    ),
                ),
                type_,
                message,
            ),
        )
    if failure_type == "llm_rate_limited":
        model = rng.choice(("gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-pro"))
        used = n(700_000, 799_000)
        message = (
            f"Error code: 429 - Rate limit reached for {model} on tokens per min (TPM): "
            f"Limit 800000, Used {used}, Requested {n(2000, 30000)}"
        )
        return DemoError(
            "RateLimitError",
            message,
            _python(
                (
                    _RUNNER,
                    ("/app/factory/llm/client.py", 131, "complete", "raise RateLimitError(answer)"),
                ),
                "RateLimitError",
                message,
            ),
        )
    if failure_type == "llm_context_overflow":
        message = f"prompt is too long: {n(200_001, 260_000)} tokens > 200000 maximum"
        return DemoError(
            "BadRequestError",
            message,
            _python(
                (
                    _RUNNER,
                    ("/app/factory/steps/implement.py", 64, "run", "plan = agent.plan(context)"),
                    (
                        "/app/factory/llm/client.py",
                        131,
                        "complete",
                        "raise BadRequestError(answer)",
                    ),
                ),
                "BadRequestError",
                message,
            ),
        )
    if failure_type == "build_error":
        line = n(20, 400)
        message = (
            f"go build ./...: services/order.go:{line}:{n(2, 40)}: undefined: orderService.Validate"
        )
        trace = "\n".join(
            (
                "goroutine 1 [running]:",
                "main.build(0xc000124000)",
                "\t/src/factory/tools/gobuild/main.go:211 +0x1c5",
                "main.main()",
                "\t/src/factory/tools/gobuild/main.go:58 +0x85",
            )
        )
        return DemoError("BuildError", message, trace)
    if failure_type == "dependency_resolution":
        message = (
            "Could not find a version that satisfies the requirement "
            f"fastapi=={rng.choice(('0.99', '0.100', '0.101'))}.{n(0, 9)}"
        )
        return DemoError(
            "ResolutionImpossible",
            message,
            _python(
                (
                    _RUNNER,
                    (
                        "/app/factory/steps/generate_repo.py",
                        91,
                        "run",
                        "lock = resolver.lock(spec)",
                    ),
                    (
                        "/app/factory/deps/resolver.py",
                        40,
                        "lock",
                        "raise ResolutionImpossible(why)",
                    ),
                ),
                "ResolutionImpossible",
                message,
            ),
        )
    if failure_type == "deploy_error":
        message = (
            f"rollout of preview-{rng.getrandbits(24):06x} not ready after 600s: 0/2 pods available"
        )
        trace = "\n".join(
            (
                f"Error: {message}",
                "    at waitForRollout (/srv/factory/deploy/rollout.js:88:11)",
                "    at async deployPreview (/srv/factory/deploy/preview.js:41:5)",
                "    at async Runner.step (/srv/factory/runner.js:120:7)",
            )
        )
        return DemoError("DeployError", message, trace)
    if failure_type == "policy_violation":
        package = rng.choice(("left-pad@1.3.0", "event-stream@3.3.6", "colors@1.4.44"))
        message = f"generated code adds dependency {package!r}, which is on the deny list"
        return DemoError(
            "PolicyViolation",
            message,
            _python(
                (
                    _RUNNER,
                    (
                        "/app/factory/policy/checks.py",
                        52,
                        "dependencies",
                        "raise PolicyViolation(reason)",
                    ),
                ),
                "PolicyViolation",
                message,
            ),
        )
    return None  # cancelled_by_user and anything without an exception


@dataclass(frozen=True)
class JobError:
    job: JobRow
    at: datetime
    error: DemoError


def job_errors(history: History, rng: random.Random) -> list[JobError]:
    """An error for every failed job attempt of ``history`` that has one."""
    found = []
    for job in history.jobs:
        if job.status != "Failed" or not job.failure_type or job.finished_at is None:
            continue
        error = _error(job.failure_type, job.step_name, rng)
        if error is not None:
            found.append(JobError(job, job.finished_at - timedelta(milliseconds=300), error))
    return found


# --- logs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLog:
    job: JobRow
    at: datetime
    level: str
    message: str
    attributes: dict[str, str | int]


def job_logs(
    history: History, errors: list[JobError], now: datetime, rng: random.Random
) -> list[DemoLog]:
    """A few records per job attempt that started in the last ``LOG_DAYS`` days."""
    failed = {e.job.id: e for e in errors}
    since = now - timedelta(days=LOG_DAYS)
    logs = []
    for job in history.jobs:
        if job.started_at < since:
            continue
        worker = f"{rng.choice(POOLS)}/w{rng.randint(1, 6)}"
        context: dict[str, str | int] = {"workerId": worker, "workerPool": worker.split("/")[0]}
        logs.append(
            DemoLog(
                job,
                job.started_at,
                "INFO",
                f"job {job.step_name} started (attempt {job.attempt})",
                context,
            )
        )
        if job.attempt > 1:
            logs.append(
                DemoLog(
                    job,
                    job.started_at + timedelta(milliseconds=200),
                    "WARN",
                    f"retrying {job.step_name}: attempt {job.attempt} after a failed attempt",
                    context,
                )
            )
        if job.finished_at is None:
            continue
        middle = job.started_at + (job.finished_at - job.started_at) / 2
        logs.append(
            DemoLog(
                job,
                middle,
                "INFO",
                f"LLM call finished in {rng.uniform(1.5, 14):.1f}s",
                {**context, "operation": "llm_call", "duration_ms": rng.randint(1500, 14000)},
            )
        )
        if job.id in failed:
            error = failed[job.id].error
            logs.append(
                DemoLog(
                    job,
                    failed[job.id].at,
                    "ERROR",
                    f"job {job.step_name} failed: {error.type}: {error.message}",
                    {**context, "error": error.type},
                )
            )
        elif job.status == "Succeeded":
            seconds = (job.finished_at - job.started_at).total_seconds()
            logs.append(
                DemoLog(
                    job,
                    job.finished_at,
                    "INFO",
                    f"job {job.step_name} finished in {seconds:.1f}s",
                    context,
                )
            )
    return logs


# --- metrics ------------------------------------------------------------------------------------


def _attrs(**labels: str) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items()]


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@dataclass
class _Counters:
    """Cumulative state of the simulated counters and histograms since ``start``."""

    start: datetime
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]]
    sums: dict[tuple[str, tuple[tuple[str, str], ...]], float]


class _Batch:
    """The metrics of one request: one ``Metric`` per name and scope, points added to it."""

    def __init__(self, state: _Counters) -> None:
        self.state = state
        self.metrics: dict[tuple[int, str], Metric] = {}

    def metric(self, scope: ScopeMetrics, name: str, unit: str, kind: str) -> Metric:
        key = (id(scope), name)
        if key not in self.metrics:
            m = scope.metrics.add(name=name, unit=unit)
            if kind == "sum":
                m.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
                m.sum.is_monotonic = True
            elif kind == "histogram":
                m.histogram.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
            self.metrics[key] = m
        return self.metrics[key]

    def gauge(
        self, scope: ScopeMetrics, name: str, unit: str, value: float, at: int, **labels: str
    ) -> None:
        point = self.metric(scope, name, unit, "gauge").gauge.data_points.add(
            time_unix_nano=at, as_double=value
        )
        point.attributes.extend(_attrs(**labels))

    def counter(
        self, scope: ScopeMetrics, name: str, unit: str, add: float, at: int, **labels: str
    ) -> None:
        key = (name, tuple(sorted(labels.items())))
        values = self.state.values
        values[key] = values.get(key, 0.0) + add
        point = self.metric(scope, name, unit, "sum").sum.data_points.add(
            start_time_unix_nano=_ns(self.state.start), time_unix_nano=at, as_double=values[key]
        )
        point.attributes.extend(_attrs(**labels))

    def histogram(
        self, scope: ScopeMetrics, name: str, samples: list[float], at: int, **labels: str
    ) -> None:
        key = (name, tuple(sorted(labels.items())))
        counts = self.state.histograms.setdefault(key, [0] * (len(DURATION_BOUNDS) + 1))
        for sample in samples:
            index = next(
                (i for i, bound in enumerate(DURATION_BOUNDS) if sample <= bound),
                len(DURATION_BOUNDS),
            )
            counts[index] += 1
        self.state.sums[key] = self.state.sums.get(key, 0.0) + sum(samples)
        point = self.metric(scope, name, "s", "histogram").histogram.data_points.add(
            start_time_unix_nano=_ns(self.state.start),
            time_unix_nano=at,
            count=sum(counts),
            sum=self.state.sums[key],
            explicit_bounds=DURATION_BOUNDS,
            bucket_counts=counts,
        )
        point.attributes.extend(_attrs(**labels))


def _load(moment: datetime, zone_offset_hours: float) -> float:
    """Work arriving, 0..1: working hours in the tenant's zone, quieter at weekends."""
    local = moment + timedelta(hours=zone_offset_hours)
    hour = local.hour + local.minute / 60
    daily = max(0.0, math.sin(math.pi * (hour - 7) / 12)) if 7 <= hour <= 19 else 0.0
    return daily * (0.35 if local.weekday() >= 5 else 1.0)


def metrics_history(
    *,
    now: datetime,
    days: int,
    rng: random.Random,
    scale: float = 1.0,
    incident_day: datetime | None = None,
    zone_offset_hours: float = 0.0,
    batch_minutes: int = 360,
) -> Iterator[ExportMetricsServiceRequest]:
    """OTLP metric requests over ``days`` up to ``now``, oldest first, each covering
    ``batch_minutes``: gauges sampled at each step, cumulative counters and histograms since the
    history's start (so the portal sees increases, as from a long-lived SDK)."""
    start = (now - timedelta(days=days)).replace(second=0, microsecond=0)
    recent = now - timedelta(days=RECENT_DAYS)
    state = _Counters(start, {}, {}, {})
    depth = {q: 0.0 for q in QUEUES}
    dlq = {q: 0 for q, _ in QUEUES}
    moment = start
    while moment < now:
        until = min(now, moment + timedelta(minutes=batch_minutes))
        control, workers = ResourceMetrics(), ResourceMetrics()
        control.resource.attributes.extend(
            _attrs(**{"service.name": "factory-control-plane", "service.instance.id": "cp-1"})
        )
        workers.resource.attributes.extend(
            _attrs(**{"service.name": "factory-worker", "service.instance.id": "workers"})
        )
        batch = _Batch(state)
        c_scope, w_scope = control.scope_metrics.add(), workers.scope_metrics.add()
        gauge, counter, histogram = batch.gauge, batch.counter, batch.histogram
        while moment < until:
            step = timedelta(minutes=1 if moment >= recent else 10)
            minutes = step.total_seconds() / 60
            at = _ns(moment)
            load = _load(moment, zone_offset_hours)
            incident = (
                incident_day is not None and incident_day <= moment < incident_day + INCIDENT_HOURS
            )
            recovering = (
                incident_day is not None
                and incident_day + INCIDENT_HOURS <= moment < incident_day + RECOVERY_HOURS
            )
            # Jobs a minute the pools finish: a quarter on the incident, more for a while after
            # it (on-call scaled the pools up), so the backlog drains that evening.
            capacity = CAPACITY * scale * (0.25 if incident else 2.5 if recovering else 1.0)
            processed = 0.0
            for queue, priority in QUEUES:
                share = 0.8 if priority == "normal" else 0.2
                arrivals = share * scale * (2 + 14 * load) * (1 + rng.gauss(0, 0.1))
                done = min(
                    depth[(queue, priority)] + arrivals * minutes, share * capacity * minutes
                )
                depth[(queue, priority)] = max(
                    0.0, depth[(queue, priority)] + arrivals * minutes - done
                )
                if incident and queue == "jobs-default":
                    # Failing jobs are re-queued: a backlog past a thousand whatever the size.
                    depth[(queue, priority)] += INCIDENT_REQUEUED * minutes
                processed += done
                dlq[queue] += int(rng.random() < 0.004 * minutes)
                gauge(
                    c_scope,
                    "queue_depth",
                    "{job}",
                    round(depth[(queue, priority)]),
                    at,
                    queue_name=queue,
                    priority=priority,
                )
                gauge(
                    c_scope,
                    "queue_processing_rate",
                    "{job}/s",
                    round(done / (60 * minutes), 3),
                    at,
                    queue_name=queue,
                )
                gauge(c_scope, "dlq_size", "{job}", dlq[queue], at, queue_name=queue)
            waiting = sum(depth.values())
            for job_type, share in zip(JOB_TYPES, (0.4, 0.3, 0.2, 0.1), strict=True):
                gauge(
                    c_scope,
                    "jobs_in_queue",
                    "{job}",
                    round(waiting * share),
                    at,
                    job_type=job_type,
                    priority="normal",
                )
            for pool in POOLS:
                busy = min(
                    12.0, processed / len(POOLS) / max(minutes, 1) * 1.3 + rng.uniform(0, 1.5)
                )
                gauge(
                    w_scope,
                    "jobs_processing",
                    "{job}",
                    round(busy),
                    at,
                    job_type="generate",
                    worker_pool=pool,
                )
                for n in range(1, 4):
                    worker = f"{pool}/w{n}"
                    gauge(
                        w_scope,
                        "worker_memory_usage",
                        "By",
                        rng.uniform(1.1e9, 2.6e9),
                        at,
                        worker_pool=pool,
                        worker_id=worker,
                    )
                    counter(
                        w_scope,
                        "worker_cpu_usage",
                        "s",
                        busy / 3 * 60 * minutes * rng.uniform(0.6, 0.9),
                        at,
                        worker_pool=pool,
                        worker_id=worker,
                    )
                errors = rng.random() < (0.5 if pool == "pool-b" else 0.05) * minutes
                counter(
                    w_scope,
                    "worker_errors_total",
                    "{error}",
                    float(errors * (3 if incident else 1)),
                    at,
                    worker_pool=pool,
                    error_type="oom_killed" if pool == "pool-b" else "timeout",
                )
            for job_type in JOB_TYPES:
                counter(
                    w_scope,
                    "retries_total",
                    "{retry}",
                    float(rng.random() < 0.08 * minutes * (1 + load)),
                    at,
                    job_type=job_type,
                    attempt="2",
                )
                samples = [
                    rng.lognormvariate(math.log(45), 0.7)
                    for _ in range(max(0, round(processed / 4 * rng.uniform(0.8, 1.2))))
                ]
                histogram(
                    w_scope,
                    "job_duration_seconds",
                    samples,
                    at,
                    job_type=job_type,
                    status="succeeded",
                )
            runs = [
                rng.lognormvariate(math.log(420), 0.5) for _ in range(max(0, round(processed / 5)))
            ]
            histogram(
                c_scope,
                "run_duration_seconds",
                runs,
                at,
                status="Succeeded",
                template_recipe_id="all",
            )
            # The runs those durations belong to: about 5% fail (more on the incident), by type.
            failed = sum(rng.random() < (0.2 if incident else 0.05) for _ in runs)
            counter(
                c_scope,
                "run_success_total",
                "{run}",
                float(len(runs) - failed),
                at,
                template_recipe_id="all",
            )
            infra = sum(rng.random() < 0.4 for _ in range(failed))
            for failure_type, count in (("test_failure", failed - infra), ("infra_oom", infra)):
                counter(
                    c_scope,
                    "run_failure_total",
                    "{run}",
                    float(count),
                    at,
                    template_recipe_id="all",
                    failure_type=failure_type,
                )
            counter(
                w_scope,
                "tokens_used_total",
                "{token}",
                processed * rng.uniform(8_000, 14_000),
                at,
                model="claude-sonnet-4-5",
                operation_type="chat",
            )
            moment += step
        yield ExportMetricsServiceRequest(resource_metrics=[control, workers])


# --- storing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeStored:
    errors: int
    logs: int
    metric_points: int
    series: int
    incidents: int


def _span_id(job: JobRow, salt: int = 0) -> str:
    return f"{(job.id * 7919 + salt) & 0xFFFFFFFFFFFFFFFF:016x}"


def runtime_history_store(
    *,
    history: History,
    tenant: Tenant,
    now: datetime,
    rng: random.Random,
    days: int = METRIC_DAYS,
    scale: float = 1.0,
    zone_offset_hours: float = 0.0,
) -> RuntimeStored:
    """Store the runtime history of ``history`` in the current tenant schema (``tenant``: its
    Tenant, the sender of the metrics and logs)."""
    from usage.domain.errors import ErrorIn
    from usage.domain.otlp_logs import LogRecordIn
    from usage.services.errors import span_errors_ingest
    from usage.services.logs import logs_ingest

    runs: dict[int, RunRow] = {r.id: r for r in history.runs}
    slugs = {p.id: p.slug for p in history.projects}
    errors = job_errors(history, rng)
    stored_errors = span_errors_ingest(
        errors=[
            ErrorIn(
                trace_id=runs[e.job.run_id].trace_id or f"{e.job.run_id:032x}",
                span_id=_span_id(e.job),
                seq=0,
                run_id=runs[e.job.run_id].run_id,
                project=slugs[runs[e.job.run_id].project_id],
                job_id=e.job.job_id,
                step_name=e.job.step_name,
                attempt=e.job.attempt,
                span_name="factory.job.execute",
                source="exception",
                occurred_at=e.at,
                type=e.error.type,
                message=e.error.message,
                stacktrace=e.error.stacktrace,
            )
            for e in errors
        ]
    )
    levels = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "CRITICAL": 21}
    records = []
    for n, log in enumerate(job_logs(history, errors, now, rng)):
        run = runs[log.job.run_id]
        records.append(
            LogRecordIn(
                digest=f"{n:08x}{log.job.id:024x}",
                time=log.at,
                level=log.level,
                severity_number=levels[log.level],
                message=log.message,
                run_id=run.run_id,
                job_id=log.job.job_id,
                step_name=log.job.step_name,
                tenant="",
                project=slugs[run.project_id],
                template_recipe_id=run.template_recipe_id,
                trace_id=run.trace_id,
                span_id=_span_id(log.job),
                attributes=dict(log.attributes),
            )
        )
    logs = logs_ingest(records=records, host_tenant=tenant)
    points, series, incidents = metrics_store(
        now=now,
        rng=rng,
        days=days,
        scale=scale,
        zone_offset_hours=zone_offset_hours,
        tenant=tenant,
    )
    return RuntimeStored(stored_errors, logs.stored, points, series, incidents)


def incident_start(now: datetime) -> datetime:
    """When the demo's runtime incident began: 14:00 UTC three days before ``now``."""
    return (now - timedelta(days=3)).replace(hour=14, minute=0, second=0, microsecond=0)


def metrics_store(
    *,
    now: datetime,
    rng: random.Random,
    days: int = METRIC_DAYS,
    scale: float = 1.0,
    zone_offset_hours: float = 0.0,
    tenant: Tenant | None = None,
) -> tuple[int, int, int]:
    """``days`` (at most ``METRIC_DAYS``) of metrics through the ingest service, and the
    incidents they make (``web.demo.incidents``): into ``tenant`` (its Tenant), or the
    platform's (public schema) when None. Returns the points, series and incidents stored."""
    from runtime.domain.metrics import metrics_flatten
    from runtime.services.metrics import metrics_ingest
    from web.demo.incidents import MetricTrace, demo_incidents, incidents_store

    incident = incident_start(now)
    trace = MetricTrace()
    points = series = 0
    for request in metrics_history(
        now=now,
        days=min(days, METRIC_DAYS),
        rng=rng,
        scale=scale,
        incident_day=incident,
        zone_offset_hours=zone_offset_hours,
        batch_minutes=120,
    ):
        result = metrics_ingest(
            batch=metrics_flatten(request, latest=now + timedelta(minutes=5)),
            host_tenant=tenant,
            now=now,
        )
        points += result.stored
        series = max(series, result.series)
        trace.add(request)
    incidents = incidents_store(demo_incidents(trace, incident=incident, hours=INCIDENT_HOURS))
    return points, series, incidents
