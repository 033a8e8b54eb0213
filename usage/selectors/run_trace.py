"""What a person debugs one run from (current tenant schema): its errors, its log records and
its waterfall of jobs with their external and LLM calls. Read only; every list is bounded and
says when it was cut. A fixed number of queries per page whatever the run holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import DateTimeField, Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.db.models.functions import Right, Substr

from usage.domain.limits import ERROR_LENGTH, TRACE_ID_LENGTH
from usage.domain.otlp import SPAN_EVENT_PREFIX, span_of_event_id
from usage.models import ExternalCall, Job, LlmUsageEvent, LogLevel, Run, RunLog, SpanError

ERRORS_SHOWN = 50
LOGS_PER_PAGE = 50
LOGS_AROUND = 8  # log lines shown before and after the error
WATERFALL_MAX_SPANS = 500
API_CALLS_MAX = 1000  # the run API's external_calls: the first, in start order
LEVELS = [level.value for level in LogLevel]


@dataclass(frozen=True)
class RunError:
    occurred_at: datetime
    type: str
    message: str
    stacktrace: str
    step_name: str
    attempt: int | None
    job_ref: str
    span_name: str
    span_id: str
    source: str


@dataclass(frozen=True)
class RunErrors:
    errors: list[RunError]  # oldest first, the first ``ERRORS_SHOWN``
    total: int

    @property
    def main(self) -> RunError | None:
        """The error a reader starts from: the last exception (what failed the run), else the
        last status message."""
        exceptions = [e for e in self.errors if e.source == "exception"]
        return (exceptions or self.errors or [None])[-1]


def run_errors(run: Run) -> RunErrors:
    rows = SpanError.objects.filter(run=run).order_by("occurred_at", "id")
    errors = [
        RunError(
            occurred_at=e.occurred_at,
            type=e.type,
            message=e.message,
            stacktrace=e.stacktrace,
            step_name=e.step_name,
            attempt=e.attempt,
            job_ref=e.job_ref,
            span_name=e.span_name,
            span_id=e.span_id,
            source=e.source,
        )
        for e in rows[:ERRORS_SHOWN]
    ]
    total = len(errors) if len(errors) < ERRORS_SHOWN else rows.count()
    return RunErrors(errors=errors, total=total)


def _levels_from(level: str) -> list[str]:
    """``level`` and the more severe ones; every level for an unknown one."""
    return LEVELS[LEVELS.index(level) :] if level in LEVELS else LEVELS


@dataclass(frozen=True)
class LogPage:
    lines: list[RunLog]
    level: str  # "" for every level
    page: int
    has_next: bool
    total: int


def run_logs(run: Run, *, level: str = "", page: int = 1) -> LogPage:
    """The run's log records at ``level`` or more severe (oldest first), ``LOGS_PER_PAGE`` a
    page. A page past the end answers the last page."""
    rows = RunLog.objects.filter(run=run, level__in=_levels_from(level)).order_by("time", "id")
    total = rows.count()
    last = max(1, -(-total // LOGS_PER_PAGE))
    page = min(max(page, 1), last)
    start = (page - 1) * LOGS_PER_PAGE
    return LogPage(
        lines=list(rows[start : start + LOGS_PER_PAGE]),
        level=level if level in LEVELS else "",
        page=page,
        has_next=page < last,
        total=total,
    )


def logs_around(run: Run, moment: datetime) -> list[RunLog]:
    """The log lines just before and after ``moment`` (an error's time), in time order."""
    before = RunLog.objects.filter(run=run, time__lte=moment).order_by("-time", "-id")
    after = RunLog.objects.filter(run=run, time__gt=moment).order_by("time", "id")
    return [*reversed(before[:LOGS_AROUND]), *after[:LOGS_AROUND]]


@dataclass(frozen=True)
class WaterfallRow:
    label: str
    depth: int  # 0: a job attempt; 1: a call inside it
    kind: str  # job | external | llm
    start: datetime
    duration_ms: int
    status: str  # the job's status, or a call's ok | error | unset
    error: bool  # failed, or a span that reported an error
    detail: str  # failure type or error text


@dataclass(frozen=True)
class Waterfall:
    rows: list[WaterfallRow]
    spans: int  # how many the run has (jobs and calls)
    shown: int

    @property
    def truncated(self) -> bool:
        return self.shown < self.spans


@dataclass(frozen=True)
class RunCall:
    """A call one of the run's jobs made: to an external service, or to an LLM (``service`` is
    then the provider; its tokens and cost are the run's usage)."""

    span_id: str
    job_id: int | None
    service: str
    kind: str  # external | llm
    model: str
    started_at: datetime
    duration_ms: int
    status: str  # ok | error | unset
    error: str


# The events' span ids, to order them as the merged list is (start, then span id).
_SPAN_ORDER = Right("event_id", 16).asc()
# A traced LLM call started its duration before it ended (``occurred_at``).
_LLM_STARTED = RawSQL(
    "occurred_at - duration_ms * interval '1 millisecond'", (), output_field=DateTimeField()
)


def _external_calls(run: Run):  # type: ignore[no-untyped-def]
    return ExternalCall.objects.filter(run=run).order_by("started_at", "span_id")


# The trace and span id in an LLM span's event id (``span_event_id``: OTLP trace ids are 32 hex
# characters, span ids 16).
_EVENT_TRACE = Substr(OuterRef("event_id"), len(SPAN_EVENT_PREFIX) + 1, TRACE_ID_LENGTH)
_EVENT_SPAN = Right(OuterRef("event_id"), 16)


def _llm_calls(run: Run):  # type: ignore[no-untyped-def]
    """LLM calls with their timing in the event. A span stored so by this code and then, re-sent,
    by a worker still running the code before migration usage 0015 (during a rolling deploy)
    also has an ExternalCall row of kind llm: that row stands for it, once."""
    also_a_call = ExternalCall.objects.filter(
        trace_id=_EVENT_TRACE, span_id=_EVENT_SPAN, run_id=OuterRef("run_id"), kind="llm"
    )
    return LlmUsageEvent.objects.filter(run=run, duration_ms__isnull=False).exclude(
        Exists(also_a_call)
    )


def run_calls(run: Run, *, limit: int | None = None) -> list[RunCall]:
    """The run's calls in start order (the first ``limit``, if given), in two queries and one
    for the LLM calls' errors: its ``ExternalCall`` rows (every external call, and the LLM calls
    traced before migration usage 0015) and its LLM usage events with a duration (the LLM calls
    traced since; an OTLP span is stored once). Such an LLM call is an error when its span
    reported one, which the first of its ``SpanError`` rows names."""
    externals = _external_calls(run)
    llm = (
        _llm_calls(run)
        .annotate(started=_LLM_STARTED)
        .order_by("started", _SPAN_ORDER)
        .values_list("event_id", "job_id", "provider", "model", "started", "duration_ms")
    )
    if limit is not None:
        externals, llm = externals[:limit], llm[:limit]
    calls = [
        RunCall(
            c.span_id,
            c.job_id,
            c.service,
            c.kind,
            c.model,
            c.started_at,
            c.duration_ms,
            c.status,
            c.error,
        )
        for c in externals
    ]
    traced = [(span_of_event_id(row[0]), *row[1:]) for row in llm]
    faults: dict[str, str] = {}
    if traced:
        errors = (
            SpanError.objects.filter(run=run, span_id__in={row[0] for row in traced})
            .order_by("span_id", "seq", "id")
            .values_list("span_id", "type", "message")
        )
        for span_id, kind, message in errors:
            faults.setdefault(span_id, (kind or message)[:ERROR_LENGTH])
    calls += [
        RunCall(
            span_id,
            job_id,
            provider,
            "llm",
            model,
            started,
            duration,
            "error" if span_id in faults else "ok",
            faults.get(span_id, ""),
        )
        for span_id, job_id, provider, model, started, duration in traced
    ]
    calls.sort(key=lambda c: (c.started_at, c.span_id))  # each query's own order, merged
    return calls if limit is None else calls[:limit]


def untimed_llm_calls(run: Run) -> int:
    """The run's LLM calls that came without a duration (usage events sent by the REST API
    usually have none): the waterfall cannot draw them, the tables count them."""
    return LlmUsageEvent.objects.filter(run=run, duration_ms__isnull=True).count()


def run_calls_count(run: Run) -> int:
    return _external_calls(run).count() + _llm_calls(run).count()


def run_calls_first(run: Run, limit: int) -> tuple[list[RunCall], int]:
    """The run's first ``limit`` calls in start order, and how many it has (counted only when
    there are more)."""
    calls = run_calls(run, limit=limit + 1)
    total = len(calls) if len(calls) <= limit else run_calls_count(run)
    return calls[:limit], total


def run_waterfall(run: Run, jobs: list[Job], *, now: datetime) -> Waterfall:
    """The run as a trace view: each job attempt in start order with its external and LLM calls
    under it (calls whose job is unknown come last). At most ``WATERFALL_MAX_SPANS`` spans, the
    earliest. Error marks come from the job or call status and from the run's span errors."""
    room = max(0, WATERFALL_MAX_SPANS - len(jobs))
    calls, call_total = run_calls_first(run, room)
    error_spans = set(SpanError.objects.filter(run=run).values_list("span_id", flat=True)[:1000])
    jobs_shown = sorted(
        (j for j in jobs if j.started_at is not None), key=lambda j: (j.started_at, j.attempt)
    )[:WATERFALL_MAX_SPANS]
    shown_ids = {j.id for j in jobs_shown}
    by_job: dict[int | None, list[RunCall]] = {}
    for call in calls:
        by_job.setdefault(call.job_id if call.job_id in shown_ids else None, []).append(call)
    rows: list[WaterfallRow] = []
    for job in jobs_shown:
        start = job.started_at or now  # jobs_shown have started
        end = job.finished_at or now
        rows.append(
            WaterfallRow(
                label=f"{job.step_name or job.job_id} #{job.attempt}",
                depth=0,
                kind="job",
                start=start,
                duration_ms=job.duration_ms
                if job.duration_ms is not None
                else max(0, int((end - start) / timedelta(milliseconds=1))),
                status=job.status,
                error=job.status == "Failed",
                detail=job.failure_type,
            )
        )
        rows.extend(_call_row(c, error_spans) for c in by_job.get(job.id, []))
    rows.extend(_call_row(c, error_spans) for c in by_job.get(None, []))
    return Waterfall(rows=rows, spans=len(jobs) + call_total, shown=len(jobs_shown) + len(calls))


def _call_row(call: RunCall, error_spans: set[str]) -> WaterfallRow:
    llm = call.kind == "llm"
    return WaterfallRow(
        label=f"LLM {call.model or call.service}" if llm else call.service,
        depth=1,
        kind="llm" if llm else "external",
        start=call.started_at,
        duration_ms=call.duration_ms,
        status=call.status,
        error=call.status == "error" or call.span_id in error_spans,
        detail=call.error,
    )


def run_error_summary(run: Run) -> list[dict[str, object]]:
    """A short list of the run's errors for the run API: newest last, at most ten."""
    rows = SpanError.objects.filter(run=run).order_by("-occurred_at", "-id")[:10]
    return [
        {
            "occurred_at": e.occurred_at,
            "type": e.type,
            "message": e.message[:500],
            "step_name": e.step_name,
            "attempt": e.attempt,
            "span_id": e.span_id,
            "source": e.source,
        }
        for e in reversed(rows)
    ]
