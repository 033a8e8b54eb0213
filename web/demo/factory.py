"""A simulated AI software factory that reports to a portal with the stock OpenTelemetry SDK.

It exports the three OTLP signals the way the factory's own runtime does (seed
``observability.txt``): traces (``factory.run.execute`` / ``factory.job.execute`` /
``factory.external.{service}`` and GenAI LLM spans; failed jobs record real exceptions with their
stack traces), metrics (queue, job, worker and run instruments, plus a token counter the portal
counts but keeps out of money) and structured logs with the seed's fields. Its queue backs up and
drains in a wave, and one worker pool throws errors. Used by ``manage.py factory_simulate`` (the
demo runs it live) and by the end-to-end test; nothing here touches the database.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

NS = 1_000_000_000
# Buckets in seconds for the duration histograms: fine enough for interpolated percentiles.
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800)
QUEUES = (("jobs-default", "normal"), ("jobs-priority", "high"))
POOLS = ("pool-a", "pool-b")
JOB_TYPES = ("generate", "build", "test", "deploy")
STEPS = (
    ("plan", "generate"),
    ("generate-repo", "generate"),
    ("build", "build"),
    ("test", "test"),
    ("deploy", "deploy"),
)
TEMPLATES = ("svc-python-api", "lib-typescript", "pipeline-etl")
MODELS = (("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1-mini"))


class GitPushRejected(RuntimeError):
    pass


class BuildFailed(RuntimeError):
    pass


class DeployTimeout(TimeoutError):
    pass


def _git_push(branch: str, sha: str) -> None:
    raise GitPushRejected(f"push rejected: remote ref refs/heads/{branch} moved to {sha}")


def _compile(target: str, errors: int) -> None:
    raise BuildFailed(f"build of {target} failed with {errors} errors")


def _wait_rollout(service: str, seconds: int) -> None:
    raise DeployTimeout(f"rollout of {service} not ready after {seconds}s")


FAILURES = {
    "generate-repo": (
        "git_error",
        lambda r: _git_push(f"feature-{r.randint(1, 9999)}", f"{r.getrandbits(40):010x}"),
    ),
    "build": (
        "build_error",
        lambda r: _compile(f"//svc:{r.choice(('api', 'worker', 'cli'))}", r.randint(1, 40)),
    ),
    "deploy": (
        "deploy_error",
        lambda r: _wait_rollout(f"svc-{r.randint(100, 999)}", r.choice((120, 300, 600))),
    ),
}


def _exception(step: str, rng: random.Random) -> tuple[str, BaseException]:
    failure_type, raiser = FAILURES[step]
    try:
        raiser(rng)
    except Exception as exc:  # a real exception with a real traceback, as a factory records it
        return failure_type, exc
    raise AssertionError("the raiser returned")  # pragma: no cover


@dataclass
class FactoryState:
    """The simulated runtime at the current tick: what the observable gauges report."""

    queued: dict[tuple[str, str], int] = field(default_factory=dict)
    processing: dict[str, int] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    dlq: dict[str, int] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)


class SimulatedFactory:
    """``tick()`` advances the factory by ``tick_seconds`` and exports what happened.

    ``endpoint`` is the portal's base URL (``http://acme.localhost:8000``); ``key`` an API key with
    the ingest scope (a tenant's key; or the platform key on the operator host, then ``tenant`` is
    sent as ``tenant.id`` / ``run.tenant_id``). ``project`` must be a project slug of the tenant.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        key: str,
        project: str,
        tenant: str = "",
        seed: int = 7,
        tick_seconds: float = 30.0,
        runs_per_tick: float = 4.0,
        wave_ticks: int = 40,
        host: str = "",
        failure_rate: float = 0.1,
    ) -> None:
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.project = project
        self.tenant = tenant
        self.tick_seconds = tick_seconds
        self.runs_per_tick = runs_per_tick
        self.wave_ticks = wave_ticks
        self.ticks = 0
        self.state = FactoryState()
        self.runs_exported = 0
        headers = {"Authorization": f"Bearer {key}"}
        if host:
            headers["Host"] = host
        base = endpoint.rstrip("/")
        # Metrics carry no tenant: with a tenant's key they are that tenant's series; with the
        # platform key they are the platform's (the shared queues and workers the operator sees).
        # Spans and logs name the tenant (with the platform key, that routes them).
        tenant_attrs = {"tenant.id": tenant} if tenant else {}
        control = Resource.create(
            {"service.name": "factory-control-plane", "service.instance.id": "cp-1"}
        )
        workers = Resource.create(
            {"service.name": "factory-worker", "service.instance.id": "workers"}
        )
        self.tracer_provider = TracerProvider(resource=control.merge(Resource(tenant_attrs)))
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers))
        )
        self.tracer = self.tracer_provider.get_tracer("factory.runtime")
        self.logger_provider = LoggerProvider(resource=workers.merge(Resource(tenant_attrs)))
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=headers))
        )
        self.log = logging.getLogger(f"factory.simulated.{id(self)}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.log.addHandler(LoggingHandler(logger_provider=self.logger_provider))
        views = [
            View(
                instrument_name=name,
                aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS),
            )
            for name in ("job_duration_seconds", "run_duration_seconds")
        ]
        self.metric_readers = []
        self.meter_providers = []
        for resource in (control, workers):
            reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=headers),
                export_interval_millis=3_600_000,  # exported at the end of every tick instead
            )
            self.metric_readers.append(reader)
            self.meter_providers.append(
                MeterProvider(resource=resource, metric_readers=[reader], views=views)
            )
        self._instruments()

    # --- metrics ------------------------------------------------------------------------------

    def _instruments(self) -> None:
        control = self.meter_providers[0].get_meter("factory.control_plane")
        worker = self.meter_providers[1].get_meter("factory.workers")
        state = self.state

        def gauge(values: Iterable[tuple[float, dict[str, Any]]]) -> Iterator[Observation]:
            return (Observation(value, attrs) for value, attrs in values)

        def queue_depth(_: CallbackOptions) -> Iterator[Observation]:
            return gauge(
                (n, {"queue_name": q, "priority": p}) for (q, p), n in state.queued.items()
            )

        def jobs_in_queue(_: CallbackOptions) -> Iterator[Observation]:
            total = sum(state.queued.values())
            shares = (0.4, 0.3, 0.2, 0.1)
            return gauge(
                (round(total * share), {"job_type": job_type, "priority": "normal"})
                for job_type, share in zip(JOB_TYPES, shares, strict=True)
            )

        def jobs_processing(_: CallbackOptions) -> Iterator[Observation]:
            return gauge(
                (n, {"job_type": "generate", "worker_pool": pool})
                for pool, n in state.processing.items()
            )

        def processing_rate(_: CallbackOptions) -> Iterator[Observation]:
            return gauge((r, {"queue_name": q}) for q, r in state.rate.items())

        def dlq_size(_: CallbackOptions) -> Iterator[Observation]:
            return gauge((n, {"queue_name": q}) for q, n in state.dlq.items())

        def memory(_: CallbackOptions) -> Iterator[Observation]:
            return gauge(
                (m, {"worker_pool": w.split("/")[0], "worker_id": w})
                for w, m in state.memory.items()
            )

        control.create_observable_gauge("queue_depth", [queue_depth], unit="{job}")
        control.create_observable_gauge("jobs_in_queue", [jobs_in_queue], unit="{job}")
        control.create_observable_gauge("queue_processing_rate", [processing_rate], unit="{job}/s")
        control.create_observable_gauge("dlq_size", [dlq_size], unit="{job}")
        worker.create_observable_gauge("jobs_processing", [jobs_processing], unit="{job}")
        worker.create_observable_gauge("worker_memory_usage", [memory], unit="By")
        self.cpu = worker.create_counter("worker_cpu_usage", unit="s")
        self.worker_errors = worker.create_counter("worker_errors_total", unit="{error}")
        self.retries = worker.create_counter("retries_total", unit="{retry}")
        self.job_duration = worker.create_histogram("job_duration_seconds", unit="s")
        self.run_duration = control.create_histogram("run_duration_seconds", unit="s")
        self.run_success = control.create_counter("run_success_total", unit="{run}")
        self.run_failure = control.create_counter("run_failure_total", unit="{run}")
        self.tokens = worker.create_counter("tokens_used_total", unit="{token}")

    # --- the simulation -------------------------------------------------------------------------

    def tick(self, now_ns: int) -> int:
        """Advance one tick ending at ``now_ns`` (wall clock, ns); export everything. Returns how
        many runs finished in it."""
        rng = self.rng
        self.ticks += 1
        # The queue backs up in the first half of every wave and drains in the second.
        phase = (self.ticks % self.wave_ticks) / self.wave_ticks
        arrivals = max(0.0, 1 + math.sin(2 * math.pi * phase)) * 60
        capacity = 55.0
        for queue, priority in QUEUES:
            share = 0.8 if priority == "normal" else 0.2
            before = self.state.queued.get((queue, priority), 0)
            after = max(0, round(before + share * (arrivals - capacity) + rng.gauss(0, 3)))
            self.state.queued[(queue, priority)] = after
            self.state.rate[queue] = round(share * capacity / self.tick_seconds, 3)
            self.state.dlq[queue] = self.state.dlq.get(queue, 0) + (rng.random() < 0.05)
        for pool in POOLS:
            self.state.processing[pool] = rng.randint(6, 12)
            for n in range(1, 4):
                worker_id = f"{pool}/w{n}"
                self.state.memory[worker_id] = rng.uniform(1.2e9, 2.4e9)
                self.cpu.add(rng.uniform(10, 28), {"worker_pool": pool, "worker_id": worker_id})
        # pool-b is the troubled one: it throws most of the errors.
        self.worker_errors.add(
            rng.randint(2, 9), {"worker_pool": "pool-b", "error_type": "oom_killed"}
        )
        if rng.random() < 0.3:
            self.worker_errors.add(1, {"worker_pool": "pool-a", "error_type": "timeout"})
        runs = max(1, round(rng.gauss(self.runs_per_tick, 1)))
        for _ in range(runs):
            self._run(now_ns)
        self.flush()
        return runs

    def _run(self, now_ns: int) -> None:
        rng = self.rng
        run_id = f"sim-{uuid.UUID(int=rng.getrandbits(128))}"
        template = rng.choice(TEMPLATES)
        steps: Sequence[tuple[str, str]] = STEPS
        durations = [rng.lognormvariate(math.log(40), 0.6) for _ in steps]
        fails_at = next(
            (
                i
                for i, (step, _) in enumerate(steps)
                if step in FAILURES and rng.random() < self.failure_rate
            ),
            None,
        )
        total = sum(durations) * 1.6 + 30
        end = now_ns - int(rng.uniform(0, self.tick_seconds) * NS)
        start = end - int(total * NS)
        tenant = {"run.tenant_id": self.tenant} if self.tenant else {}
        status = "Failed" if fails_at is not None else "Succeeded"
        run_span = self.tracer.start_span(
            "factory.run.execute",
            start_time=start,
            attributes={
                "run.id": run_id,
                "run.project_id": self.project,
                "run.template_recipe_id": template,
                "run.type": template.split("-")[0],
                **tenant,
            },
        )
        context = set_span_in_context(run_span)
        at = start + 5 * NS
        failure_type = ""
        for index, (step, job_type) in enumerate(steps):
            if fails_at is not None and index > fails_at:
                break
            attempts = 2 if index == fails_at or rng.random() < 0.12 else 1
            for attempt in range(1, attempts + 1):
                seconds = durations[index] * (0.7 if attempt > 1 else 1)
                failed = attempt < attempts or index == fails_at
                at, failure = self._job(
                    context, run_id, template, step, job_type, attempt, at, seconds, failed
                )
                failure_type = failure or failure_type
                if attempt > 1:
                    self.retries.add(1, {"job_type": job_type, "attempt": str(attempt)})
        run_span.set_attribute("run.status", status)
        run_span.set_attribute("run.duration_ms", (end - start) // 1_000_000)
        if failure_type:
            run_span.set_attribute("run.failure_type", failure_type)
            run_span.set_status(Status(StatusCode.ERROR, failure_type))
            self.run_failure.add(1, {"template_recipe_id": template, "failure_type": failure_type})
        else:
            self.run_success.add(1, {"template_recipe_id": template})
        run_span.end(end_time=end)
        self.run_duration.record(
            (end - start) / NS, {"status": status, "template_recipe_id": template}
        )
        self.runs_exported += 1

    def _job(
        self,
        parent: Any,
        run_id: str,
        template: str,
        step: str,
        job_type: str,
        attempt: int,
        at: int,
        seconds: float,
        failed: bool,
    ) -> tuple[int, str]:
        rng = self.rng
        job_id = f"{run_id}-{step}"
        end = at + int(seconds * NS)
        span = self.tracer.start_span(
            "factory.job.execute",
            context=parent,
            start_time=at,
            attributes={
                "job.id": job_id,
                "job.step_name": step,
                "job.attempt": attempt,
                "job.status": "Failed" if failed else "Succeeded",
            },
        )
        inner = set_span_in_context(span)
        fields = {"runId": run_id, "jobId": job_id, "stepName": step, "templateRecipeId": template}
        if self.tenant:
            fields["tenantId"] = self.tenant
        with _current(inner):
            self.log.info("job %s started (attempt %d)", step, attempt, extra=fields)
        cursor = at + NS
        for _ in range(rng.randint(1, 3)):
            provider, model = rng.choice(MODELS)
            took = rng.uniform(2, 12)
            input_tokens = rng.randint(2_000, 30_000)
            llm = self.tracer.start_span(
                f"chat {model}",
                context=inner,
                start_time=cursor,
                attributes={
                    "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.usage.input_tokens": input_tokens,
                    "gen_ai.usage.output_tokens": rng.randint(200, 3_000),
                },
            )
            llm.end(end_time=min(end, cursor + int(took * NS)))
            self.tokens.add(input_tokens, {"model": model, "operation_type": "chat"})
            cursor = min(end, cursor + int(took * NS))
        external = self.tracer.start_span("factory.external.git", context=inner, start_time=cursor)
        external.end(end_time=min(end, cursor + int(rng.uniform(0.5, 3) * NS)))
        failure = ""
        if failed:
            failure, exc = _exception(step if step in FAILURES else "build", rng)
            span.record_exception(exc, timestamp=end - NS // 2)
            span.set_attribute("job.failure_type", failure)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            with _current(inner):
                self.log.error(
                    "job %s failed: %s", step, exc, extra={**fields, "error": type(exc).__name__}
                )
        else:
            with _current(inner):
                self.log.info("job %s finished in %.1fs", step, seconds, extra=fields)
        span.end(end_time=end)
        self.job_duration.record(
            seconds, {"job_type": job_type, "status": "failed" if failed else "succeeded"}
        )
        return end + int(rng.uniform(1, 4) * NS), failure

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        for provider in self.meter_providers:
            provider.force_flush()

    def shutdown(self) -> None:
        self.flush()
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        for provider in self.meter_providers:
            provider.shutdown()


class _current:
    """Makes ``context`` current for a block, so log records carry its trace and span ids."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.token: Any = None

    def __enter__(self) -> None:
        self.token = otel_context.attach(self.context)

    def __exit__(self, *_: object) -> None:
        otel_context.detach(self.token)
