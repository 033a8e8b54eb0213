"""Server time of large OTLP requests: 5,000 spans parked, released, and sent with their runs.

Usage (PostgreSQL as configured by DATABASE_URL):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/otlp.py [--spans 5000] [--repeat 3]

Creates a scratch tenant ``bench-otlp`` and an ingest key, then posts OTLP protobuf requests
through Django's full stack in this process (everything but the socket) and prints the median
seconds of each of ``repeat`` rounds (fresh trace ids every round) for:
- ``parked``: ``spans`` LLM and job spans whose run spans have not arrived (all kept waiting);
- ``release``: the run spans of those traces, which store every waiting span;
- ``with_runs``: ``spans`` spans sent together with their run spans.
Each request carries 50 traces (runs) of ``spans / 50`` spans. Drops the tenant afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import chat_span  # noqa: E402  (needs ROOT on the path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")

TRACES = 50


def traces(round_: int, spans: int) -> tuple[bytes, bytes, bytes]:
    """Protobuf bodies: children without their run spans, those run spans, and whole traces."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    def finished(prefix: str) -> list:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("bench")
        per_trace = spans // TRACES
        for n in range(TRACES):
            with tracer.start_as_current_span(
                "factory.run.execute",
                attributes={
                    "run.id": f"{prefix}-{round_}-{n}",
                    "run.project_id": "traced",
                    "run.status": "succeeded",
                },
            ):
                sent = 0
                step = 0
                while sent < per_trace:
                    with tracer.start_as_current_span(
                        "factory.job.execute",
                        attributes={"job.id": f"step-{step}", "job.step_name": f"step-{step}"},
                    ):
                        sent += 1
                        for _ in range(min(9, per_trace - sent)):
                            with chat_span(tracer):
                                sent += 1
                    step += 1
        provider.shutdown()
        return list(exporter.get_finished_spans())

    late = finished("late")
    runs = [s for s in late if s.name == "factory.run.execute"]
    children = [s for s in late if s.name != "factory.run.execute"]
    whole = finished("whole")
    whole = [s for s in whole if s.name != "factory.run.execute"][: spans - TRACES] + [
        s for s in whole if s.name == "factory.run.execute"
    ]
    return tuple(encode_spans(group).SerializeToString() for group in (children, runs, whole))


def timed_post(client, key: str, body: bytes) -> float:  # type: ignore[no-untyped-def]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    started = time.perf_counter()
    response = client.post(
        "/v1/traces",
        data=body,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    if answer.partial_success.rejected_spans:
        raise SystemExit(f"spans rejected: {answer.partial_success.error_message[:300]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django_tenants.utils import schema_context

    from billing.pricing.book import pricebook_refresh
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
    from usage.models import LlmUsageEvent
    from usage.trace_routing.models import PendingSpan

    settings.ALLOWED_HOSTS = ["*"]
    public_tenant_ensure()
    pricebook_refresh()
    if (old := tenant_by_slug("bench-otlp")) is not None:
        tenant_delete(tenant=old)
    tenant = tenant_create(slug="bench-otlp", name="Benchmark", admin_email="b@bench.test").tenant
    with schema_context(tenant.schema_name):
        _, key = api_key_create(name="bench", scopes=["ingest"])
    client = Client(HTTP_HOST=f"bench-otlp.{settings.PORTAL_BASE_DOMAIN}")

    figures: dict[str, list[float]] = {"parked": [], "release": [], "with_runs": []}
    try:
        timed_post(client, key, traces(-1, 500)[2])  # warm-up: imports, price book
        for round_ in range(args.repeat):
            children, runs, whole = traces(round_, args.spans)
            figures["parked"].append(timed_post(client, key, children))
            figures["release"].append(timed_post(client, key, runs))
            figures["with_runs"].append(timed_post(client, key, whole))
        with schema_context(tenant.schema_name):
            stored = LlmUsageEvent.objects.count()
        waiting = PendingSpan.objects.filter(tenant_hint=tenant.slug).count()
    finally:
        tenant_delete(tenant=tenant)

    print(f"otlp_spans_per_request {args.spans}")
    for name, seconds in figures.items():
        print(f"otlp_{name}_seconds {statistics.median(seconds):.2f}")
    print(f"otlp_llm_calls_stored {stored}")
    print(f"otlp_spans_still_waiting {waiting}")


if __name__ == "__main__":
    main()
