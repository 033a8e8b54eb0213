"""Prometheus metrics of the portal, and the ``/metrics`` endpoint.

Multi-process safe: when ``PROMETHEUS_MULTIPROC_DIR`` is set (the production command sets it for
gunicorn's workers and Celery's pool), every process writes its samples to files in that folder
and a scrape of any web worker adds them all up. Without it (development, tests) the samples stay
in this process.

Names of the business metrics follow the factory's own conventions: ``tokens_used_total``,
``cost_ai_total`` (US dollars), ``run_success_total``, ``run_failure_total`` and
``run_duration_seconds``. Money here is a float sample for dashboards, never a record: the ledger
is the database's ``Decimal`` columns.

Label values a client chooses are bounded, so that a client cannot grow the number of series
without limit: model names beyond ``METRICS_MODEL_LABELS_MAX`` per tenant and process, and HTTP
methods outside the standard ones, are counted as ``other``.

``/metrics`` is for the operator (every tenant's figures): a ``METRICS_TOKEN`` bearer token or a
client in ``METRICS_ALLOWED_NETWORKS``; with neither configured (the production default) it is
closed.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from factory_portal.client import client_address

logger = logging.getLogger(__name__)
MICRO_USD = Decimal("0.000001")
OTHER = "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INGEST_EVENTS = Counter(
    "ingest_events",
    "Items sent to an ingest endpoint, by outcome: accepted (stored), duplicate (known id or "
    "stale update, nothing changed) or refused (in a batch refused as a whole, nothing stored).",
    ["endpoint", "tenant", "outcome"],
)
INGEST_BATCH_SIZE = Histogram(
    "ingest_batch_size",
    "Items per ingest request.",
    ["endpoint"],
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
)
INGEST_REJECTED_BATCHES = Counter(
    "ingest_rejected_batches",
    "Ingest requests refused as a whole, by reason.",
    ["endpoint", "reason"],
)
OTLP_SPANS = Counter(
    "otlp_spans_received",
    "Spans received on /v1/traces, by outcome: stored, parked (until their run arrives), "
    "rejected, or ignored (spans that are not about runs, jobs or LLM calls).",
    ["outcome"],
)
OTLP_METRIC_POINTS = Counter(
    "otlp_metric_points_received",
    "Data points received on /v1/metrics, by outcome: stored or rejected.",
    ["outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Run time of Celery tasks, by task and final state.",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
CELERY_TASK_FAILURES = Counter(
    "celery_task_failures", "Celery tasks that raised, by task.", ["task"]
)
NOTIFICATION_DELIVERIES = Counter(
    "notification_deliveries",
    "Delivery attempts of alerts and incident pages, by channel (email, webhook, pagerduty, slack,"
    " teams) and outcome (sent, retry, failed).",
    ["channel", "outcome"],
)
TOKENS_USED = Counter(
    "tokens_used",
    "LLM tokens stored, by tenant, model and kind (input, output, cached_input, cache_write).",
    ["tenant", "model", "kind"],
)
COST_AI = Counter(
    "cost_ai", "AI cost stored, US dollars, by tenant and model.", ["tenant", "model"]
)
RUN_SUCCESS = Counter("run_success", "Runs that finished successfully, by tenant.", ["tenant"])
RUN_FAILURE = Counter("run_failure", "Runs that finished failed, by tenant.", ["tenant"])
RUN_DURATION = Histogram(
    "run_duration_seconds",
    "Execution time of finished runs, by tenant and status.",
    ["tenant", "status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)

DB_READS = Counter(
    "db_reads",
    "SQL statements run while answering page and read-API requests (GET/HEAD), by target: "
    "primary, or the replica alias (replica_0, ...) that answered (README, Read replicas).",
    ["target"],
)
DB_REPLICA_FALLBACKS = Counter(
    "db_replica_fallbacks",
    "Requests whose reads could have used a replica but used the primary, by reason: "
    "unreachable, lagging (beyond REPLICA_MAX_LAG_S), read_your_writes (the client wrote and no "
    "replica has replayed it yet) or error (the replica failed during the request).",
    ["reason"],
)


def guarded(record: Callable[[], None]) -> None:
    """Run a metrics update; a failure is logged, never raised into the work being measured."""
    try:
        record()
    except Exception:
        logger.warning("metrics update failed", exc_info=True)


class LabelValues:
    """The first ``limit`` distinct values of a client-chosen label (``label``) in each group (a
    tenant, label ``group``), then ``other``: a bound on the series one client can create.

    Counted per process, starting from the values the host's other processes have recorded
    (multi-process mode reads ``families`` from ``PROMETHEUS_MULTIPROC_DIR`` once), so recycled
    workers do not start over; processes that take new values at the same moment can each add
    one beyond the limit."""

    def __init__(
        self, limit: Callable[[], int], *, label: str, group: str, families: Iterable[str]
    ) -> None:
        self._limit, self._label, self._group = limit, label, group
        self._families = frozenset(families)
        self._seen: dict[str, set[str]] | None = None
        self._lock = threading.Lock()

    def __call__(self, group: str, value: str) -> str:
        with self._lock:
            if self._seen is None:
                self._seen = self._recorded()
            seen = self._seen.setdefault(group, set())
            if value in seen:
                return value
            if len(seen) < self._limit():
                seen.add(value)
                return value
        return OTHER

    def _recorded(self) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return seen
        from prometheus_client import multiprocess

        try:
            families: Iterable[Metric] = multiprocess.MultiProcessCollector(None).collect()
            for family in families:
                if family.name not in self._families:
                    continue
                for sample in family.samples:
                    value = sample.labels.get(self._label)
                    if value and value != OTHER:
                        seen.setdefault(sample.labels.get(self._group, ""), set()).add(value)
        except Exception:
            logger.warning("could not read the recorded %s labels", self._label, exc_info=True)
        return seen


model_label = LabelValues(
    lambda: settings.METRICS_MODEL_LABELS_MAX,
    label="model",
    group="tenant",
    families=("tokens_used", "cost_ai"),
)


def llm_usage_record(*, tenant: str, usage: Iterable[tuple[str, dict[str, int], Decimal]]) -> None:
    """Count stored LLM usage: ``usage`` holds (model, tokens by kind, cost in USD). Models
    beyond ``METRICS_MODEL_LABELS_MAX`` for the tenant in this process count as ``other``."""
    for model, tokens, cost in usage:
        label = model_label(tenant, model)
        for kind, count in tokens.items():
            if count:
                TOKENS_USED.labels(tenant, label, kind).inc(count)
        if cost:
            COST_AI.labels(tenant, label).inc(usd_sample(cost))


def method_label(method: str | None) -> str:
    """An HTTP method as a label: the standard ones, else ``other`` (any token is a method)."""
    return method if method in HTTP_METHODS else OTHER


def usd_sample(cost: Decimal) -> float:
    """The one place money becomes a float: a Prometheus sample, which is float64 by the
    exposition format (there is no decimal type). The cost is rounded to micro-dollars in
    Decimal first; the sample feeds dashboards and alerts, never a bill or a total of record."""
    return float(cost.quantize(MICRO_USD, rounding=ROUND_HALF_EVEN))


def runs_finished_record(*, tenant: str, outcomes: Iterable[tuple[str, int | None]]) -> None:
    """Count finished runs: ``outcomes`` holds (status, duration in milliseconds or None)."""
    for status, duration_ms in outcomes:
        if status == "Succeeded":
            RUN_SUCCESS.labels(tenant).inc()
        elif status == "Failed":
            RUN_FAILURE.labels(tenant).inc()
        if duration_ms is not None:
            RUN_DURATION.labels(tenant, status).observe(duration_ms / 1000)


class CeleryQueueCollector(Collector):
    """Queue lengths read from the broker at scrape time (bounded by about a second)."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from factory_portal.observability.probes import broker_health

        health = broker_health(ping_workers=False)
        up = GaugeMetricFamily("celery_broker_up", "1 when the Celery broker answered the scrape.")
        up.add_metric([], 1 if health.reachable else 0)
        yield up
        if not health.reachable:
            return
        depth = GaugeMetricFamily(
            "celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue in health.queues:
            depth.add_metric([queue.name], queue.messages)
        yield depth
        if health.in_flight is not None:
            taken = GaugeMetricFamily(
                "celery_tasks_in_flight", "Messages taken by workers and not yet acknowledged."
            )
            taken.add_metric([], health.in_flight)
            yield taken


def registry_for_scrape() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ThisProcess())
    registry.register(CeleryQueueCollector())
    return registry


class _ThisProcess(Collector):
    """The default registry's samples (this process's metrics and its process/GC collectors)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_allowed(request: HttpRequest) -> bool:
    """``METRICS_TOKEN`` set: a matching bearer token is required. Otherwise the client address
    (``client_address``: behind the TLS proxy, the one it forwarded for, not the proxy's)
    must be in ``METRICS_ALLOWED_NETWORKS`` (unset: loopback with ``DEBUG`` on, none with it off,
    as a reverse proxy on the same host makes every visitor a loopback client)."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


CLOSED_MESSAGE = (
    "/metrics is closed: neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set (with DEBUG "
    "off, loopback is not allowed by default). Set METRICS_TOKEN and scrape with "
    "'Authorization: Bearer <token>', or list the scrapers' networks in METRICS_ALLOWED_NETWORKS."
)
_closed_logged = False


def metrics_closed() -> bool:
    """True when no scrape can succeed: no token and no allowed network."""
    return not settings.METRICS_TOKEN and not settings.METRICS_ALLOWED_NETWORKS


def metrics_response(request: HttpRequest) -> HttpResponse:
    global _closed_logged
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(
            "Use GET.\n", status=405, content_type="text/plain", headers={"Allow": "GET"}
        )
    if metrics_closed():
        if not _closed_logged:  # once per process, not once per scrape
            _closed_logged = True
            logger.warning(CLOSED_MESSAGE)
        return HttpResponse(CLOSED_MESSAGE + "\n", status=403, content_type="text/plain")
    if not scrape_allowed(request):
        return HttpResponse(
            "Metrics need the METRICS_TOKEN bearer token or an allowed network.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(registry_for_scrape()), content_type=CONTENT_TYPE_LATEST)
