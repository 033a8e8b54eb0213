"""Steps of a run as the step rollup counts them (pure: no database).

A run's jobs are grouped by step name into (run, step) pairs. For each pair: its attempts, the
attempts after each job's first (retries), whether its first attempts all finished (*settled*),
whether they all succeeded (*first pass*), whether any job needed more than one attempt
(*reworked*), the durations of its finished attempts, the failure types of its failed attempts,
and the calls and AI cost of its jobs (calls name their job by the client's job id).

``StepFigures`` add and subtract, so a service moves a run's figures from what they were to what
they are (``run_steps`` before and after a change) without reading anything else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from usage.domain import durations

FINISHED = frozenset({"Succeeded", "Failed", "Cancelled"})
UNSPECIFIED_FAILURE = "unspecified"  # a failed attempt that named no failure type


class JobLike(Protocol):
    @property
    def job_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def step_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def duration_ms(self) -> int | None: ...
    @property
    def failure_type(self) -> str: ...


@dataclass
class StepFigures:
    runs: int = 0
    settled: int = 0
    first_pass: int = 0
    reworked: int = 0
    attempts: int = 0
    retries: int = 0
    finished_attempts: int = 0
    failed_attempts: int = 0
    duration_ms_total: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * durations.BUCKETS)
    failure_types: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    cost: Decimal = Decimal(0)

    COUNTS = (
        "runs",
        "settled",
        "first_pass",
        "reworked",
        "attempts",
        "retries",
        "finished_attempts",
        "failed_attempts",
        "duration_ms_total",
        "calls",
    )

    def add(self, other: StepFigures, sign: int = 1) -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        self.cost += sign * other.cost
        self.histogram = [
            a + sign * b for a, b in zip(self.histogram, other.histogram, strict=True)
        ]
        for kind, n in other.failure_types.items():
            self.failure_types[kind] = self.failure_types.get(kind, 0) + sign * n
        self.failure_types = {k: n for k, n in self.failure_types.items() if n}

    def is_zero(self) -> bool:
        return (
            not any(getattr(self, name) for name in self.COUNTS)
            and not self.cost
            and not any(self.histogram)
            and not self.failure_types
        )


def run_steps(
    jobs: Iterable[JobLike], calls_by_job: Mapping[str, tuple[int, Decimal]] | None = None
) -> dict[str, StepFigures]:
    """One run's figures per step name. ``calls_by_job`` gives the calls and AI cost per client
    job id; calls of a job id the run has no job for belong to no step."""
    by_step: dict[str, list[JobLike]] = defaultdict(list)
    step_of_job: dict[str, tuple[int, str]] = {}
    for job in jobs:
        by_step[job.step_name].append(job)
        if job.job_id not in step_of_job or job.attempt > step_of_job[job.job_id][0]:
            step_of_job[job.job_id] = (job.attempt, job.step_name)
    result = {name: _pair(attempts) for name, attempts in by_step.items()}
    for job_id, (calls, cost) in (calls_by_job or {}).items():
        if job_id in step_of_job:
            figures = result[step_of_job[job_id][1]]
            figures.calls += calls
            figures.cost += cost
    return result


def _pair(attempts: list[JobLike]) -> StepFigures:
    figures = StepFigures(runs=1, attempts=len(attempts))
    first: dict[str, JobLike] = {}
    count: dict[str, int] = defaultdict(int)
    for job in attempts:
        count[job.job_id] += 1
        if job.job_id not in first or job.attempt < first[job.job_id].attempt:
            first[job.job_id] = job
        if job.status in FINISHED:
            figures.finished_attempts += 1
            if job.duration_ms is not None:
                figures.duration_ms_total += job.duration_ms
                figures.histogram[durations.bucket_of(job.duration_ms)] += 1
        if job.status == "Failed":
            figures.failed_attempts += 1
            kind = job.failure_type or UNSPECIFIED_FAILURE
            figures.failure_types[kind] = figures.failure_types.get(kind, 0) + 1
    figures.retries = len(attempts) - len(first)
    figures.reworked = int(any(n > 1 for n in count.values()))
    firsts = first.values()
    if all(job.status in FINISHED for job in firsts):
        figures.settled = 1
        figures.first_pass = int(all(job.status == "Succeeded" for job in firsts))
    return figures
