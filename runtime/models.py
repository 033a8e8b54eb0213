"""Runtime metrics: series, raw points, 1-minute and 1-hour rollups, and heartbeats.

The tables exist in the public schema (platform-wide series: the operator's) and in each tenant
schema (that tenant's series). Values are measurements, not money: ``float`` is right here; token
and cost instruments are stored as series but never read as money (spans carry that truth).

Retention (settings ``METRICS_RAW_RETENTION_DAYS``, ``METRICS_MINUTE_RETENTION_DAYS``,
``METRICS_HOUR_RETENTION_DAYS``): raw points for 7 days, minutes for 14, hours for 13 months.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class MetricKind(models.TextChoices):
    GAUGE = "gauge", "Gauge"
    SUM = "sum", "Sum (counter)"
    HISTOGRAM = "histogram", "Histogram"


class MetricCategory(models.TextChoices):
    RUNTIME = "runtime", "Runtime instrument"  # in the seed's catalogue (queue, job, worker, run)
    USAGE = "usage", "Token or cost instrument"  # counted, never money
    UNKNOWN = "unknown", "Unknown instrument"  # kept and listed, not used by pages


class MetricSeries(models.Model):
    """One time series: an instrument with one set of labels (data point attributes, plus the
    resource's ``service.name`` / ``service.instance.id``). ``key`` is a digest of name, kind and
    labels. The ``last_*`` columns keep the previous cumulative point, so that a cumulative sum or
    histogram is stored as increases (deltas) and a counter reset (a new start time, or a value
    that went down) starts counting again from the new value."""

    key = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=MetricKind.choices)
    category = models.CharField(max_length=16, choices=MetricCategory.choices)
    unit = models.CharField(max_length=64, blank=True)
    monotonic = models.BooleanField(default=False)
    labels = models.JSONField(default=dict)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_start = models.DateTimeField(null=True, blank=True)
    last_time = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)  # sum: cumulative total; hist: count
    last_sum = models.FloatField(null=True, blank=True)  # histogram: cumulative sum
    last_counts = ArrayField(models.BigIntegerField(), null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["name"], name="metric_series_name_idx")]
        verbose_name_plural = "metric series"

    def __str__(self) -> str:
        return f"{self.name}{self.labels}"


class MetricPoint(models.Model):
    """A raw data point at its own resolution (kept ``METRICS_RAW_RETENTION_DAYS``).

    gauge: ``value``. sum: ``value`` = the increase since the previous point (a delta point's own
    value; for a cumulative one the difference, or the value itself after a reset) and ``total``
    = the reported cumulative value. histogram: ``count``/``sum``/``bucket_counts`` as increases
    (same rule), ``bounds`` the explicit bucket upper bounds, ``min``/``max`` when reported."""

    id = models.BigAutoField(primary_key=True)
    series = models.ForeignKey(
        MetricSeries, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    time = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    total = models.FloatField(null=True, blank=True)
    count = models.BigIntegerField(null=True, blank=True)
    sum = models.FloatField(null=True, blank=True)
    min = models.FloatField(null=True, blank=True)
    max = models.FloatField(null=True, blank=True)
    bounds = ArrayField(models.FloatField(), null=True, blank=True)
    bucket_counts = ArrayField(models.BigIntegerField(), null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["series", "time"], name="metric_point_series_idx"),
            models.Index(fields=["time"], name="metric_point_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.time:%Y-%m-%dT%H:%M:%S}"


class MetricRollup(models.Model):
    """A series over one bucket (a minute or an hour, UTC): for gauges min/max/avg (``total`` /
    ``samples``)/last; for sums the ``increase``; for histograms the merged increases (``count``,
    ``sum``, ``bucket_counts`` over ``bounds``, and the min/max seen)."""

    # No index of its own: each bucket table's key (series, start) leads with it.
    series = models.ForeignKey(
        MetricSeries, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    start = models.DateTimeField()
    samples = models.BigIntegerField(default=0)
    min = models.FloatField(null=True, blank=True)
    max = models.FloatField(null=True, blank=True)
    total = models.FloatField(null=True, blank=True)  # gauge: sum of values (avg = total/samples)
    last = models.FloatField(null=True, blank=True)
    last_time = models.DateTimeField(null=True, blank=True)
    increase = models.FloatField(null=True, blank=True)
    count = models.BigIntegerField(null=True, blank=True)
    sum = models.FloatField(null=True, blank=True)
    bounds = ArrayField(models.FloatField(), null=True, blank=True)
    bucket_counts = ArrayField(models.BigIntegerField(), null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.series_id}@{self.start:%Y-%m-%dT%H:%M}"


class MetricMinute(MetricRollup):
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "start"], name="metric_minute_key"),
        ]
        indexes = [models.Index(fields=["start"], name="metric_minute_start_idx")]


class MetricHour(MetricRollup):
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "start"], name="metric_hour_key"),
        ]
        indexes = [models.Index(fields=["start"], name="metric_hour_start_idx")]


class Heartbeat(models.Model):
    """The last time a part of the factory reported (any OTLP signal), by its resource's
    ``service.name`` and ``service.instance.id``: what health's "last reported" reads, and how
    "control plane down" is seen when it stops."""

    service = models.CharField(max_length=200)
    instance = models.CharField(max_length=200, blank=True)
    signal = models.CharField(max_length=16)  # metrics | traces | logs: the last one seen
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "instance"], name="heartbeat_key"),
        ]

    def __str__(self) -> str:
        return f"{self.service}/{self.instance}"
