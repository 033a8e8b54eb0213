"""Realistic demo history for one tenant: pure generation, no database.

Given a profile, a random generator and the moment "now", produce projects, runs, jobs (with
retries), LLM calls and infrastructure usage over the last ``days`` days:

- runs arrive with weekly seasonality, a growth trend and day-to-day noise, mostly in working hours;
- each run type runs its own sequence of steps; step and queue durations are log-normal
  (long tails);
- about 95% of finished runs succeed; failures and cancellations stop a run at a realistic step with
  a failure type that fits it; one incident day per tenant fails far more often;
- about 5% of job attempts fail transiently and are retried, repeating part of their LLM calls;
- every LLM call adds a real request drawn from the Azure traces to its job's agent loop: a turn's
  prompt is the previous prompt, the previous answer and the new request's context tokens, so
  prompts grow within a job and prompt caching reads the previous prompt back (Anthropic models
  also pay a cache write for the new part);
- runs that would still be going at "now" are left Requested or Running, with the step in progress;
- ``CACHE_BREAK_DAYS`` days before "now" a prompt change breaks most of the Anthropic prompt cache
  (a turn reads back only ``CACHE_KEPT_AFTER_BREAK`` of its previous prompt and writes the rest),
  so the costs page's "Why did cost change?" has a story to tell.

Output rows carry their own integer ids so the loader can COPY them without round trips.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from web.demo.traces import TokenSample


@dataclass(frozen=True)
class StepSpec:
    median_s: float
    sigma: float
    calls: tuple[int, int]
    trace: str  # "code" or "conv"
    tier: str  # which model of the tenant's line-up: plan | main | light | embed
    operation: str = "generation"
    cores: int = 1


STEPS: dict[str, StepSpec] = {
    "index-context": StepSpec(35, 0.4, (1, 3), "conv", "embed", "embedding"),
    "plan": StepSpec(50, 0.5, (2, 4), "conv", "plan", "reasoning"),
    "generate-repo": StepSpec(95, 0.5, (3, 8), "code", "main"),
    "implement": StepSpec(420, 0.7, (6, 16), "code", "main", cores=2),
    "write-tests": StepSpec(200, 0.6, (3, 9), "code", "main"),
    "run-tests": StepSpec(240, 0.8, (0, 2), "code", "light", cores=4),
    "review": StepSpec(80, 0.5, (2, 4), "conv", "light"),
    "deploy-preview": StepSpec(150, 0.6, (0, 0), "conv", "light", cores=2),
}

# The full step sequence of a code run; run types use it or a part of it, in this order.
_CODE_STEPS = (
    "index-context",
    "plan",
    "generate-repo",
    "implement",
    "write-tests",
    "run-tests",
    "review",
    "deploy-preview",
)


def _steps(*, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(step for step in _CODE_STEPS if step not in without)


RUN_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # run type: (steps, templates)
    "microservice": (
        _steps(),
        ("python-fastapi-service", "go-grpc-service", "node-express-api"),
    ),
    "library": (_steps(without=("deploy-preview",)), ("python-library", "typescript-library")),
    "pipeline": (
        ("plan", "implement", "run-tests", "deploy-preview"),
        ("dbt-pipeline", "airflow-dag"),
    ),
    "frontend": (_steps(without=("index-context",)), ("react-spa", "nextjs-app")),
}

# Failure types by the step a run fails in; "*" applies anywhere.
FAILURES: dict[str, tuple[tuple[str, float], ...]] = {
    "run-tests": (("test_failure", 0.7), ("infra_oom", 0.15), ("timeout", 0.15)),
    "implement": (("build_error", 0.5), ("llm_context_overflow", 0.3), ("timeout", 0.2)),
    "generate-repo": (("dependency_resolution", 0.7), ("build_error", 0.3)),
    "deploy-preview": (("deploy_error", 0.8), ("infra_quota_exceeded", 0.2)),
    "*": (("llm_rate_limited", 0.4), ("policy_violation", 0.2), ("infra_oom", 0.4)),
}
TRANSIENT_FAILURES = (("llm_rate_limited", 0.45), ("llm_timeout", 0.35), ("infra_preempted", 0.2))

P_FAIL = 0.038
P_CANCEL = 0.01
P_RETRY = 0.05
P_UNPRICED = 0.01  # calls to a self-hosted model the price book cannot know
CACHE_BREAK_DAYS = 10
CACHE_KEPT_AFTER_BREAK = 0.3


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str
    caching: str  # "anthropic" (explicit writes + reads), "auto" (reads only), "none"


@dataclass(frozen=True)
class ProjectSpec:
    slug: str
    name: str
    run_types: tuple[tuple[str, float], ...]  # weights


@dataclass(frozen=True)
class TenantProfile:
    slug: str
    name: str
    runs_per_day: float
    growth: float  # volume at "now" relative to the start of the history
    projects: tuple[ProjectSpec, ...]
    models: dict[str, ModelRef]  # tier -> model
    unpriced_model: ModelRef | None = None
    active_now: int = 4  # runs started in the last quarter hour
    # step -> (another model, share of the step's runs on it): a team trying a cheaper model on
    # part of a step's runs (what the savings page compares)
    alternates: dict[str, tuple[ModelRef, float]] = field(default_factory=dict)


# --- rows (ids are assigned here; the loader writes them as they are) ---------------------------


@dataclass
class ProjectRow:
    id: int
    slug: str
    name: str
    created_at: datetime


@dataclass
class RunRow:
    id: int
    run_id: str
    project_id: int
    template_recipe_id: str
    run_type: str
    status: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    failure_type: str
    trace_id: str
    updated_at: datetime


@dataclass
class JobRow:
    id: int
    run_id: int
    job_id: str
    step_name: str
    attempt: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    failure_type: str

    @property
    def updated_at(self) -> datetime:
        """A generated job was last updated when it finished (or started, if it still runs)."""
        return self.finished_at or self.started_at


@dataclass
class LlmRow:
    event_id: str
    occurred_at: datetime
    project_id: int
    run_id: int
    job_id: int
    provider: str
    model: str
    operation: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    duration_ms: int | None = None  # the demo's calls come as REST events: no timing


@dataclass
class InfraRow:
    event_id: str
    occurred_at: datetime
    project_id: int
    run_id: int | None
    job_id: int | None
    resource_type: str
    quantity: Decimal
    unit: str


@dataclass
class History:
    projects: list[ProjectRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    llm: list[LlmRow] = field(default_factory=list)
    infra: list[InfraRow] = field(default_factory=list)
    cache_break_at: datetime | None = None  # from then on Anthropic cache reads fall


# --- generation ---------------------------------------------------------------------------------


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*options, strict=True)
    return rng.choices(names, weights=weights)[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:  # normal approximation keeps large days cheap
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _lognormal_s(rng: random.Random, median_s: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median_s), sigma)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _quantity(value: float, places: int = 6) -> Decimal:
    # Quantities are measurements (not money); generated as floats, stored as exact decimals.
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))


class _Ids:
    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def __call__(self, table: str) -> int:
        self._next[table] = self._next.get(table, 0) + 1
        return self._next[table]


def generate_history(
    *,
    profile: TenantProfile,
    rng: random.Random,
    now: datetime,
    days: int,
    samples: Callable[[str], TokenSample],
    incident_day: int | None = None,
) -> History:
    """History of ``profile`` over the ``days`` days before ``now`` (aware UTC)."""
    history = History()
    if days > 2 * CACHE_BREAK_DAYS:
        history.cache_break_at = now - timedelta(days=CACHE_BREAK_DAYS)
    ids = _Ids()
    start_day = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    project_rows = []
    for spec in profile.projects:
        row = ProjectRow(ids("project"), spec.slug, spec.name, start_day - timedelta(days=30))
        project_rows.append((row, spec))
        history.projects.append(row)

    for day in range(days + 1):
        day_start = start_day + timedelta(days=day)
        progress = day / max(days, 1)
        trend = 1 + (profile.growth - 1) * progress
        weekday = 0.35 if day_start.weekday() >= 5 else 1.0
        expected = profile.runs_per_day * trend * weekday * rng.lognormvariate(0, 0.15)
        fail_boost = 6.0 if day == incident_day else 1.0
        for _ in range(_poisson(rng, expected)):
            if rng.random() < 0.8:  # working hours, around 14:00 UTC
                offset_h = min(23.99, max(0.0, rng.gauss(14, 3.5)))
            else:  # scheduled and overnight runs
                offset_h = rng.uniform(0, 24)
            requested_at = day_start + timedelta(hours=offset_h)
            if requested_at >= now:
                continue
            project, spec = rng.choice(project_rows)
            _simulate_run(
                history, ids, rng, profile, project, spec, requested_at, now, samples, fail_boost
            )
    # What is going on right now: a few runs in progress and a couple just queued.
    in_progress = [rng.uniform(60, 900) for _ in range(profile.active_now)]
    queued = [rng.uniform(0, 5) for _ in range(max(1, profile.active_now // 2))]
    for seconds_ago in in_progress + queued:
        project, spec = rng.choice(project_rows)
        requested_at = now - timedelta(seconds=seconds_ago)
        _simulate_run(history, ids, rng, profile, project, spec, requested_at, now, samples, 1.0)
    return history


def _simulate_run(
    history: History,
    ids: _Ids,
    rng: random.Random,
    profile: TenantProfile,
    project: ProjectRow,
    spec: ProjectSpec,
    requested_at: datetime,
    now: datetime,
    samples: Callable[[str], TokenSample],
    fail_boost: float,
) -> None:
    run_type = _weighted(rng, spec.run_types)
    steps, templates = RUN_TYPES[run_type]
    outcome_roll = rng.random()
    p_fail = P_FAIL * fail_boost * (1.5 if run_type == "pipeline" else 1.0)
    if outcome_roll < p_fail:
        outcome = "Failed"
        stop_at = rng.choices(
            range(len(steps)), weights=[1 + 2 * (i >= 2) for i in range(len(steps))]
        )[0]
    elif outcome_roll < p_fail + P_CANCEL:
        outcome = "Cancelled"
        stop_at = rng.randrange(len(steps))
    else:
        outcome, stop_at = "Succeeded", len(steps)

    run = RunRow(
        id=ids("run"),
        run_id=f"run-{requested_at:%Y%m%d}-{rng.getrandbits(40):010x}",
        project_id=project.id,
        template_recipe_id=rng.choice(templates),
        run_type=run_type,
        status="Requested",
        requested_at=requested_at,
        started_at=None,
        finished_at=None,
        duration_ms=None,
        failure_type="",
        trace_id=f"{rng.getrandbits(128):032x}",
        updated_at=requested_at,
    )
    history.runs.append(run)
    started_at = requested_at + timedelta(seconds=_lognormal_s(rng, 15, 1.0))
    if started_at >= now:
        return  # still queued
    run.status, run.started_at, run.updated_at = "Running", started_at, started_at

    clock = started_at
    for index, step in enumerate(steps[: stop_at + 1] if outcome != "Succeeded" else steps):
        step_spec = STEPS[step]
        job_key = f"{run.run_id}-{step}"
        model = _step_model(profile, step, job_key)
        attempt = 1
        while True:
            failing_here = outcome != "Succeeded" and index == stop_at
            transient = not failing_here and rng.random() < P_RETRY
            duration = _lognormal_s(rng, step_spec.median_s, step_spec.sigma)
            if failing_here or transient:
                duration *= rng.uniform(0.2, 0.9)
            end = clock + timedelta(seconds=duration)
            job = JobRow(
                ids("job"), run.id, job_key, step, attempt, "Running", clock, None, None, ""
            )
            history.jobs.append(job)
            _llm_calls(
                history,
                ids,
                rng,
                profile,
                run,
                project,
                job,
                step_spec,
                clock,
                min(end, now),
                duration,
                samples,
                cut_short=failing_here or transient,
                model=model,
            )
            if end > now:
                run.updated_at = clock
                return  # this step is in progress
            job.finished_at, job.duration_ms = end, int(duration * 1000)
            _compute_usage(history, ids, rng, run, project, job, step_spec, duration)
            if failing_here:
                job.status = outcome
                job.failure_type = (
                    "cancelled_by_user"
                    if outcome == "Cancelled"
                    else _weighted(rng, FAILURES.get(step, FAILURES["*"]))
                )
            elif transient:
                job.status, job.failure_type = "Failed", _weighted(rng, TRANSIENT_FAILURES)
            else:
                job.status = "Succeeded"
            clock = end + timedelta(seconds=rng.uniform(1, 6))
            if transient:
                attempt += 1
                continue
            break
        if outcome != "Succeeded" and index == stop_at:
            run.failure_type = job.failure_type
            break

    run.status = outcome
    run.finished_at = clock
    run.duration_ms = int((clock - started_at).total_seconds() * 1000)
    run.updated_at = clock
    _run_usage(history, ids, rng, run, project, clock)


def _step_model(profile: TenantProfile, step: str, job_key: str) -> ModelRef | None:
    """The alternate model when this run's step is among the share tried on it; chosen from a
    hash of the job (not the generator, so every other draw stays as it was)."""
    alternate = profile.alternates.get(step)
    if alternate is None:
        return None
    bucket = int(hashlib.sha256(job_key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return alternate[0] if bucket < alternate[1] else None


def _llm_calls(
    history: History,
    ids: _Ids,
    rng: random.Random,
    profile: TenantProfile,
    run: RunRow,
    project: ProjectRow,
    job: JobRow,
    step: StepSpec,
    start: datetime,
    until: datetime,
    duration_s: float,
    samples: Callable[[str], TokenSample],
    cut_short: bool,
    model: ModelRef | None = None,
) -> None:
    low, high = step.calls
    planned = rng.randint(low, high)
    if cut_short:  # a failing attempt stops part-way through its calls
        planned = round(planned * rng.uniform(0.3, 1.0))
    offsets = sorted(rng.uniform(0, duration_s) for _ in range(planned))
    context = 0  # an agent loop resends its conversation: each turn's prompt is the last one plus
    previous_prompt = 0  # the new material (a real trace request) and the last answer
    chosen = model or profile.models[step.tier]
    for offset in offsets:
        at = start + timedelta(seconds=offset)
        if at > until:
            break
        model = chosen
        if profile.unpriced_model and step.tier == "main" and rng.random() < P_UNPRICED:
            model = profile.unpriced_model
        sample = samples(step.trace)
        if step.operation == "embedding":
            input_tokens, output_tokens, cached, write = sample.input_tokens, 0, 0, 0
        else:
            input_tokens = context + sample.input_tokens
            output_tokens = sample.output_tokens
            cached = previous_prompt if model.caching != "none" else 0
            if model.caching == "auto":
                cached -= cached % 128  # automatic caching reuses whole 128-token blocks
            broken = history.cache_break_at is not None and at >= history.cache_break_at
            if model.caching == "anthropic" and broken:
                cached = int(cached * CACHE_KEPT_AFTER_BREAK)
            write = input_tokens - cached if model.caching == "anthropic" else 0
            context = input_tokens + output_tokens
            previous_prompt = input_tokens
        history.llm.append(
            LlmRow(
                event_id=_uuid(rng),
                occurred_at=at,
                project_id=project.id,
                run_id=run.id,
                job_id=job.id,
                provider=model.provider,
                model=model.model,
                operation=step.operation,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached,
                cache_write_tokens=write,
            )
        )


def _compute_usage(
    history: History,
    ids: _Ids,
    rng: random.Random,
    run: RunRow,
    project: ProjectRow,
    job: JobRow,
    step: StepSpec,
    duration_s: float,
) -> None:
    cpu_seconds = duration_s * step.cores * rng.uniform(0.3, 0.9)
    history.infra.append(
        InfraRow(
            _uuid(rng),
            job.finished_at or job.started_at,
            project.id,
            run.id,
            job.id,
            "compute",
            _quantity(cpu_seconds, 3),
            "cpu_seconds",
        )
    )


def _run_usage(
    history: History,
    ids: _Ids,
    rng: random.Random,
    run: RunRow,
    project: ProjectRow,
    at: datetime,
) -> None:
    hours = (run.duration_ms or 0) / 3_600_000
    repo_gb = rng.uniform(0.2, 3.0)
    # Run-level usage (no job); each quantity is drawn after its event id, in this order.
    for resource_type, quantity, unit in (
        ("storage", lambda: _quantity(repo_gb * max(hours, 0.01)), "gb_hours"),
        ("network", lambda: _quantity(rng.lognormvariate(math.log(0.3), 0.8)), "gb"),
        ("control_plane", lambda: _quantity(float(rng.randint(40, 400)), 0), "requests"),
    ):
        history.infra.append(
            InfraRow(_uuid(rng), at, project.id, run.id, None, resource_type, quantity(), unit)
        )
