"""Raw facts of one tenant: projects, runs, jobs, LLM and infrastructure usage events.

Tenant app: every table here exists once per tenant schema, so uniqueness constraints are per
tenant by construction. The unique client-given ids (``run_id``, ``event_id``, job id + attempt)
are what make ingestion idempotent. Money columns are ``numeric``; Python sees ``Decimal``.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from usage.domain.limits import (
    ERROR_LENGTH,
    FAILURE_TYPE_LENGTH,
    MODEL_LENGTH,
    OPERATION_LENGTH,
    PROVIDER_LENGTH,
    RUN_TYPE_LENGTH,
    SERVICE_LENGTH,
    STEP_NAME_LENGTH,
    TEMPLATE_LENGTH,
    TRACE_ID_LENGTH,
    UNIT_LENGTH,
)


class Project(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    REQUESTED = "Requested"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.REQUESTED, RunStatus.RUNNING)
FINISHED_RUN_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Run(models.Model):
    run_id = models.CharField(max_length=128, unique=True)
    # No index of its own: ``run_project_idx`` (project, requested) leads with it.
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    template_recipe_id = models.CharField(max_length=TEMPLATE_LENGTH, blank=True)
    run_type = models.CharField(max_length=RUN_TYPE_LENGTH, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    failure_type = models.CharField(max_length=FAILURE_TYPE_LENGTH, blank=True)
    trace_id = models.CharField(max_length=TRACE_ID_LENGTH, blank=True)
    # Timestamp of the newest lifecycle update applied; older updates never move a run backwards.
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["-requested_at", "-id"], name="run_requested_idx"),
            models.Index(fields=["status", "-requested_at"], name="run_status_idx"),
            models.Index(fields=["project", "-requested_at"], name="run_project_idx"),
            models.Index(
                fields=["requested_at"],
                name="run_active_idx",
                condition=Q(status__in=["Requested", "Running"]),
            ),
            models.Index(
                fields=["finished_at"],
                name="run_finished_idx",
                condition=Q(finished_at__isnull=False),
            ),
            models.Index(
                fields=["duration_ms", "id"],
                name="run_duration_idx",
                condition=Q(duration_ms__isnull=False),
            ),
            # Run-id prefix search (LIKE 'abc%') under any database collation: Django's own
            # ``usage_run_run_id_..._like`` index of the unique column (varchar_pattern_ops).
            # Run-id substring search (LIKE '%84eb4%'): ``run_id_upper_trgm_idx``, trigrams of
            # the upper-cased id (pg_trgm in the public schema, migration 0009), which migration
            # 0016 creates in SQL. Upper-cased, so the planner never takes it for
            # ``run_id = ANY(...)``.
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_ms__isnull=True) | Q(duration_ms__gte=0),
                name="run_duration_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.run_id


class Job(models.Model):
    # No index of its own: ``job_unique_attempt`` (run, job id, attempt) leads with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    job_id = models.CharField(max_length=128)
    step_name = models.CharField(max_length=STEP_NAME_LENGTH)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    failure_type = models.CharField(max_length=FAILURE_TYPE_LENGTH, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)  # newest lifecycle update applied

    class Meta:
        ordering = ["run", "started_at", "attempt"]
        indexes = [
            # Runs with a retried job (an attempt after the first): what waste reads.
            models.Index(fields=["run"], name="job_retry_idx", condition=Q(attempt__gt=1)),
            # Run history filtered by step or by a job's failure type.
            models.Index(fields=["step_name", "run"], name="job_step_idx"),
            models.Index(
                fields=["failure_type", "run"],
                name="job_failure_idx",
                condition=~Q(failure_type=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run", "job_id", "attempt"], name="job_unique_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.attempt}"


class CostSource(models.TextChoices):
    PRICE_BOOK = "price_book", "Price book"
    CLIENT = "client", "Supplied by client"
    UNPRICED = "unpriced", "Unpriced (no price for model)"


# Event foreign keys have no database constraint: per-row FK triggers cost about 15% of ingest
# throughput, and ingestion resolves every id in the same transaction (projects and runs are
# never deleted by the application; the ORM still protects them).


def _event_references(
    related_name: str,
) -> tuple[models.ForeignKey, models.ForeignKey, models.ForeignKey]:
    """The project, run and job of an event (``related_name`` on each of them): fields an
    abstract base cannot hold, since each event model names its reverse relations."""

    def optional(model: type[models.Model], *, db_index: bool = True) -> models.ForeignKey:
        return models.ForeignKey(
            model,
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name=related_name,
            db_constraint=False,
            db_index=db_index,
        )

    # Only the run has an index (the model's own ``*_run_idx``): every read of raw events goes
    # through its run or its month, and the project's and the job's indexes together cost the
    # events insert about a fifth of its time (migration 0013). Projects and jobs are never
    # deleted; the one query that reads calls by job narrows them by run first.
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        related_name=related_name,
        db_constraint=False,
        db_index=False,
    )
    return project, optional(Run, db_index=False), optional(Job, db_index=False)


class UsageEvent(models.Model):
    """What every usage event has; each event model adds its project, run and job
    (``_event_references``) and its own measures.

    Both event tables are partitioned by calendar month of ``occurred_at`` (UTC bounds, plus a
    DEFAULT partition; migration 0010, ``usage.services.partitions``), so that a tenant's expired
    months are dropped whole. In the database the primary key is ``(event_id, occurred_at)``
    (a partition key must be in every unique constraint); Django still sees ``event_id``."""

    # The client's id is the primary key: one index fewer to maintain per row on the ingest path.
    # Byte order ("C" collation) keeps it fast whatever the server's locale.
    event_id = models.CharField(max_length=128, primary_key=True, db_collation="C")
    occurred_at = models.DateTimeField()
    job_ref = models.CharField(max_length=128, blank=True)  # the client's job id, even if unknown
    # The run type and template the event was rolled up under (the run's, when it arrived).
    run_type = models.CharField(max_length=RUN_TYPE_LENGTH, blank=True)
    template = models.CharField(max_length=TEMPLATE_LENGTH, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.event_id


class LlmUsageEvent(UsageEvent):
    """One LLM call. ``input_tokens`` includes cached and cache-write tokens (as in OTel GenAI)."""

    project, run, job = _event_references("llm_events")
    provider = models.CharField(max_length=PROVIDER_LENGTH)
    model = models.CharField(max_length=MODEL_LENGTH)
    operation = models.CharField(max_length=OPERATION_LENGTH, default="generation")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    # A traced call's duration (an OTLP span's ``duration_ms`` attribute, else its end minus its
    # start; it ended at ``occurred_at``), for the run's waterfall: the span is stored once, here,
    # not also as an ExternalCall. NULL for calls sent to the REST API, which carry no timing.
    duration_ms = models.BigIntegerField(null=True, blank=True)
    # USD (the price book's currency), 10 decimal places; NULL when unpriced.
    cost = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cost_source = models.CharField(max_length=16, choices=CostSource.choices)
    # Ids of the public-schema price book entry (input price) and tenant contract override that
    # produced the cost; plain ids because usage must not depend on billing.
    price_ref = models.BigIntegerField(null=True, blank=True)
    override_ref = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["run"], name="llm_run_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(input_tokens__gte=0)
                & Q(output_tokens__gte=0)
                & Q(cached_input_tokens__gte=0)
                & Q(cache_write_tokens__gte=0),
                name="llm_tokens_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(
                    input_tokens__gte=models.F("cached_input_tokens")
                    + models.F("cache_write_tokens")
                ),
                name="llm_cached_within_input",
            ),
            models.CheckConstraint(
                condition=Q(cost_source="unpriced", cost__isnull=True)
                | (~Q(cost_source="unpriced") & Q(cost__isnull=False)),
                name="llm_cost_matches_source",
            ),
        ]


class ResourceType(models.TextChoices):
    COMPUTE = "compute"
    STORAGE = "storage"
    NETWORK = "network"
    CONTROL_PLANE = "control_plane"


class InfraUsageEvent(UsageEvent):
    project, run, job = _event_references("infra_events")
    resource_type = models.CharField(max_length=16, choices=ResourceType.choices)
    quantity = models.DecimalField(max_digits=24, decimal_places=6)
    unit = models.CharField(max_length=UNIT_LENGTH)

    class Meta:
        indexes = [
            models.Index(fields=["run"], name="infra_run_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=0), name="infra_quantity_non_negative"
            ),
        ]


class ExternalCall(models.Model):
    """A call from a job to an external service (``factory.external.{service}`` spans)."""

    span_id = models.CharField(max_length=16)
    trace_id = models.CharField(max_length=TRACE_ID_LENGTH)
    # Written only by the OTLP ingest, which resolves the run and the job in its own
    # transaction (as for the raw events): no database foreign keys, whose checks at commit were
    # a fifth of a 1,000-span request's database time, and no index but ``external_call_run_idx``
    # (its first column is the run; nothing reads calls by job).
    run = models.ForeignKey(
        Run,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="external_calls",
        db_constraint=False,
        db_index=False,
    )
    job = models.ForeignKey(
        Job,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="external_calls",
        db_constraint=False,
        db_index=False,
    )
    service = models.CharField(max_length=SERVICE_LENGTH)
    # "external" (a factory.external.{service} span) or "llm" (a GenAI span stored before
    # migration usage 0015, kept here for its timing; its usage and cost are an LlmUsageEvent,
    # which now holds the timing of the calls traced since: ``LlmUsageEvent.duration_ms``).
    kind = models.CharField(max_length=16, db_default="external")
    model = models.CharField(max_length=MODEL_LENGTH, db_default="", blank=True)
    started_at = models.DateTimeField()
    duration_ms = models.BigIntegerField()
    status = models.CharField(max_length=16)  # ok | error | unset
    error = models.CharField(max_length=ERROR_LENGTH, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace_id", "span_id"], name="external_call_unique"),
        ]
        indexes = [models.Index(fields=["run", "started_at"], name="external_call_run_idx")]

    def __str__(self) -> str:
        return f"{self.service} ({self.duration_ms} ms)"


# --- Errors and logs ------------------------------------------------------------------------------
# What a person debugs a failed run from: the errors its spans reported and its log records.
# Sizes are bounded on the way in (usage.domain.limits); both are idempotent on re-send.


class ErrorSource(models.TextChoices):
    EXCEPTION = "exception", "Exception event"
    STATUS = "status", "Span status"


class SpanError(models.Model):
    """An error one span reported: an ``exception`` span event (type, message, stack trace) or,
    for a span with error status and no exception event, its status message. ``seq`` tells
    several exception events of one span apart. ``fingerprint`` groups the same error across
    runs (type + normalised message + top frame; see ``ErrorGroup``)."""

    # No index of its own: ``span_error_run_idx`` leads with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="errors", db_index=False)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="errors"
    )
    job_ref = models.CharField(max_length=128, blank=True)
    step_name = models.CharField(max_length=STEP_NAME_LENGTH, blank=True)
    attempt = models.PositiveSmallIntegerField(null=True, blank=True)
    trace_id = models.CharField(max_length=TRACE_ID_LENGTH)
    span_id = models.CharField(max_length=16)
    seq = models.PositiveSmallIntegerField(default=0)
    span_name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=16, choices=ErrorSource.choices)
    occurred_at = models.DateTimeField()
    type = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    stacktrace = models.TextField(blank=True)
    top_frame = models.CharField(max_length=300, blank=True)
    fingerprint = models.CharField(max_length=32)
    # The run's template and run type when stored: error groups read them without a join.
    template = models.CharField(max_length=TEMPLATE_LENGTH, blank=True)
    run_type = models.CharField(max_length=RUN_TYPE_LENGTH, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace_id", "span_id", "seq"], name="span_error_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["run", "occurred_at"], name="span_error_run_idx"),
            models.Index(fields=["fingerprint", "-occurred_at"], name="span_error_group_idx"),
            models.Index(fields=["-occurred_at"], name="span_error_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type or self.source}: {self.message[:60]}"


class ErrorGroup(models.Model):
    """The same error across runs (by ``SpanError.fingerprint``), kept at ingest: what it is, when
    it was first and last seen, and how often; counts over a range come from ``SpanError``."""

    fingerprint = models.CharField(max_length=32, unique=True)
    type = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)  # the normalised message
    top_frame = models.CharField(max_length=300, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    occurrences = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["-last_seen"], name="error_group_last_idx")]

    def __str__(self) -> str:
        return f"{self.type}: {self.message[:60]}"


class ErrorGroupDaily(models.Model):
    """Errors of a group by the tenant's local day, the run's template and the step, kept at
    ingest with the errors (``usage.services.errors``) and rebuilt by ``rollups_rebuild``.

    ``runs`` counts the distinct runs with an error of the group in this row. ``day_runs`` counts
    each (group, day, run) once, in the row of the run's first stored error of the group that day
    (lowest id): summed over a day's rows it is the day's distinct runs exactly; over a range it
    is the sum of the days' (a run erring on two days counts twice)."""

    fingerprint = models.CharField(max_length=32)
    day = models.DateField()
    template = models.CharField(max_length=TEMPLATE_LENGTH, blank=True)
    step_name = models.CharField(max_length=STEP_NAME_LENGTH, blank=True)
    errors = models.BigIntegerField(db_default=0)
    runs = models.BigIntegerField(db_default=0)
    day_runs = models.BigIntegerField(db_default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "day", "template", "step_name"],
                name="error_group_daily_key",
            ),
        ]
        indexes = [models.Index(fields=["day"], name="error_group_daily_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.fingerprint} {self.template} {self.step_name}"


class LogLevel(models.TextChoices):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class RunLog(models.Model):
    """A structured log record of a run (OTLP logs, ``POST /v1/logs``) with the seed's fields;
    other fields (workerId, workerPool, operation, duration_ms, error, metadata) in
    ``attributes``. Bounded per run (``RUN_LOG_MAX_PER_RUN``); ``digest`` makes re-sends
    idempotent (OTLP log records carry no id)."""

    # No index of its own: ``run_log_run_idx`` leads with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logs", db_index=False)
    digest = models.CharField(max_length=32, unique=True)
    time = models.DateTimeField()
    level = models.CharField(max_length=8, choices=LogLevel.choices)
    severity_number = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    job_ref = models.CharField(max_length=128, blank=True)
    step_name = models.CharField(max_length=STEP_NAME_LENGTH, blank=True)
    trace_id = models.CharField(max_length=TRACE_ID_LENGTH, blank=True)
    span_id = models.CharField(max_length=16, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["run", "time"], name="run_log_run_idx")]

    def __str__(self) -> str:
        return f"{self.level} {self.message[:60]}"


# --- Rollups ------------------------------------------------------------------------------------
# Kept up to date inside the ingest transaction (a client reads its own writes). Hours are UTC
# hour starts; days are the tenant's local dates (its time zone: a change of zone re-counts them).
# ``run_type``/``template`` are '' for usage outside a run.

ROLLUP_DIMENSIONS = ("project", "provider", "model", "operation", "run_type", "template")


class LlmRollup(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=PROVIDER_LENGTH)
    model = models.CharField(max_length=MODEL_LENGTH)
    operation = models.CharField(max_length=OPERATION_LENGTH)
    run_type = models.CharField(max_length=RUN_TYPE_LENGTH)
    template = models.CharField(max_length=TEMPLATE_LENGTH)
    calls = models.BigIntegerField(default=0)
    unpriced_calls = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=10, default=0)

    class Meta:
        abstract = True


class LlmUsageHourly(LlmRollup):
    hour = models.DateTimeField()
    last_occurred_at = models.DateTimeField()  # newest call in the hour: the data's freshness

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", *ROLLUP_DIMENSIONS], name="llm_hourly_key"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.model}"


class LlmUsageDaily(LlmRollup):
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", *ROLLUP_DIMENSIONS], name="llm_daily_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model}"


INFRA_DIMENSIONS = ("project", "resource_type", "unit", "run_type", "template")


class InfraRollup(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=16)
    unit = models.CharField(max_length=UNIT_LENGTH)
    run_type = models.CharField(max_length=RUN_TYPE_LENGTH)
    template = models.CharField(max_length=TEMPLATE_LENGTH)
    events = models.BigIntegerField(default=0)
    quantity = models.DecimalField(max_digits=28, decimal_places=6, default=0)

    class Meta:
        abstract = True


class InfraUsageHourly(InfraRollup):
    hour = models.DateTimeField()
    last_occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", *INFRA_DIMENSIONS], name="infra_hourly_key"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.resource_type}"


class InfraUsageDaily(InfraRollup):
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", *INFRA_DIMENSIONS], name="infra_daily_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.resource_type}"


class RunDaily(models.Model):
    """Runs by local day requested, project, run type, template and current status. A status change
    moves the run from one row to another; finished runs add their duration to a histogram."""

    day = models.DateField()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    run_type = models.CharField(max_length=RUN_TYPE_LENGTH)
    template = models.CharField(max_length=TEMPLATE_LENGTH)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    runs = models.BigIntegerField(default=0)
    duration_ms_total = models.BigIntegerField(default=0)
    # Durations of finished runs in log-spaced buckets (see usage.domain.durations).
    duration_histogram = ArrayField(models.BigIntegerField(), default=list)
    # Lead times (requested -> finished) of finished runs, in the same buckets.
    lead_time_histogram = ArrayField(models.BigIntegerField(), default=list, db_default=[])

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "project", "run_type", "template", "status"], name="run_daily_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.status} {self.runs}"


class StepDaily(models.Model):
    """Steps of runs by the run's local day requested, template and step name: a row counts the
    (run, step) pairs, their attempts and outcomes, job durations (log buckets), failure types of
    failed attempts and the AI cost of calls made in the step's jobs.

    A (run, step) pair is *settled* once all its first attempts finished; it passed first time
    when they all succeeded, and was *reworked* when any of its jobs had more than one attempt.
    Kept with the run's jobs (``usage.services.runs``) and with the calls (``usage.services.
    ingest``: a call counts once its job is known), rebuilt by ``rollups_rebuild``. A key's
    figures are the sum of its rows (one per ``stripe`` written)."""

    day = models.DateField()
    template = models.CharField(max_length=TEMPLATE_LENGTH)
    step_name = models.CharField(max_length=STEP_NAME_LENGTH)
    runs = models.BigIntegerField(db_default=0)  # (run, step) pairs
    settled = models.BigIntegerField(db_default=0)
    first_pass = models.BigIntegerField(db_default=0)
    reworked = models.BigIntegerField(db_default=0)
    attempts = models.BigIntegerField(db_default=0)
    retries = models.BigIntegerField(db_default=0)  # attempts after a job's first
    finished_attempts = models.BigIntegerField(db_default=0)
    failed_attempts = models.BigIntegerField(db_default=0)
    duration_ms_total = models.BigIntegerField(db_default=0)
    duration_histogram = ArrayField(models.BigIntegerField(), default=list, db_default=[])
    failure_types = models.JSONField(default=dict, db_default={})  # type -> failed attempts
    calls = models.BigIntegerField(db_default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=10, db_default=0)  # USD
    # A key has a row per stripe a writer used: a transaction writes only the stripe it holds
    # (``usage.services.rollups.rollup_stripe``), so concurrent batches never wait for each
    # other's rows here. Readers sum a key's rows.
    stripe = models.SmallIntegerField(db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "template", "step_name", "stripe"], name="step_daily_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.template} {self.step_name}"


class RunLedger(models.Model):
    """What one run used on one local day: its calls, tokens by kind and AI cost (re-pricing
    corrections included), its infrastructure driver quantities and its jobs' run time.

    Written in the statement that stores the run's events (and moved by corrections and job
    updates), so a run's or a period's per-run figures read these rows, never the raw events. A
    run has rows for each day it used something (one per stripe written; a day's figures are
    their sum): a run with no row used nothing."""

    # No index of its own: ``run_ledger_key`` (run, day, stripe) leads with it.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="ledger", db_constraint=False, db_index=False
    )
    day = models.DateField()
    calls = models.BigIntegerField(db_default=0)
    unpriced_calls = models.BigIntegerField(db_default=0)
    unpriced_tokens = models.BigIntegerField(db_default=0)  # input + output of unpriced calls
    input_tokens = models.BigIntegerField(db_default=0)
    output_tokens = models.BigIntegerField(db_default=0)
    cached_input_tokens = models.BigIntegerField(db_default=0)
    cache_write_tokens = models.BigIntegerField(db_default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=10, db_default=0)
    infra_events = models.BigIntegerField(db_default=0)
    cpu_seconds = models.DecimalField(max_digits=28, decimal_places=6, db_default=0)
    gb_hours = models.DecimalField(max_digits=28, decimal_places=6, db_default=0)
    job_ms = models.BigIntegerField(db_default=0)  # run time of jobs started that day
    # A run's day has a row per stripe a writer used (see ``StepDaily.stripe``); readers sum.
    stripe = models.SmallIntegerField(db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "day", "stripe"], name="run_ledger_key"),
        ]
        indexes = [models.Index(fields=["day", "run"], name="run_ledger_day_idx")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.day}: {self.cost}"


class RunAllocatedCost(models.Model):
    """Infrastructure cost allocated to a run for one of the tenant's months: its share of its
    project's allocation, computed by billing from the month's allocation lines and drivers and
    kept here so that run lists can show and sort by total cost (AI from the ledger + this)."""

    # No index of its own: ``run_allocated_key`` (run, month) leads with it.
    run = models.ForeignKey(
        Run,
        on_delete=models.CASCADE,
        related_name="allocated",
        db_constraint=False,
        db_index=False,
    )
    month = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "month"], name="run_allocated_key"),
        ]
        indexes = [models.Index(fields=["month"], name="run_allocated_month_idx")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.month:%Y-%m}: {self.amount}"


class LlmCostCorrection(models.Model):
    """A change of an LLM call's cost after it was stored (a price correction re-priced its
    period). The call keeps its original cost; its current cost is that plus its corrections, and
    the rollups were adjusted by ``delta`` in the call's own hour and day."""

    # No database constraint: the event table is partitioned (its key is (event_id, occurred_at)).
    # A month dropped by retention leaves its calls' corrections as the cost's history.
    event = models.ForeignKey(
        LlmUsageEvent,
        on_delete=models.CASCADE,
        related_name="corrections",
        db_constraint=False,
    )
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    previous_cost = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    new_cost = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    delta = models.DecimalField(max_digits=20, decimal_places=10)
    price_ref = models.BigIntegerField(null=True, blank=True)
    override_ref = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run"], name="llm_correction_run_idx")]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.previous_cost} -> {self.new_cost}"
