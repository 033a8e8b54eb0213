"""Ingest throughput against a real server process, next to the raw COPY rate of the same rows.

Usage (the demo's environment; PostgreSQL as configured by DATABASE_URL; DEBUG off unless set,
as in production: with it on, Django logs every statement and none is prepared):
    .venv/bin/python benchmarks/ingest.py [--batches 20] [--batch-size 5000]
        [--clients 2] [--workers 2] [--span-requests 100] [--spans-per-request 1000]
        [--cpu-batches 5] [--only otlp] [--history-months 0] [--history-rows 150000]

Creates a scratch tenant ``bench-ingest`` and an ingest key, starts gunicorn on a free loopback
port, and measures:
- POST /api/v1/events: sustained events/s over ``batches`` batches of realistic LLM events (token
  counts from the Azure traces, several real models, cached tokens; 95% from the last ten minutes,
  5% up to three days late), sent by ``clients`` threads; with the fast decoder
  (``INGEST_FAST_DECODE``, the default) and without it, twice each in the order fast, general,
  general, fast (fresh event ids each time);
- POST /v1/traces: spans/s for OTLP protobuf requests of factory runs (run, job and GenAI spans);
- raw COPY of the same event rows into a bare table with the same columns;
- in this process, the CPU milliseconds (this process's, not the database's) of one batch: decode
  and validate, then the whole batch with storing, fast decoder on and off (steadier than the
  HTTP rates on a loaded machine: other processes' load does not count);
- the CPU time the server's processes and PostgreSQL's used per HTTP request of each pass (from
  Linux's /proc; other work on the machine slows the rates but adds nothing to these);
- after each pass, the COPY rate again (best of two) and the pass's ratio to it, and the mean of
  those ratios (a machine whose speed drifts within the run moves both figures of a pair);
then prints one line per figure with the 1-minute load average, and the ratios HTTP / COPY and
OTLP / COPY (COPY measured in the same run). Drops the tenant afterwards. ``--only otlp`` measures
the OTLP rate, its CPU per request and the COPY rate only (no REST batches, no in-process CPU
figures): a quicker loop when working on the trace receiver.
``--history-months 12`` first loads ``--history-rows`` calls into each of the 12 months before
this one, so that the tenant holds as many months as the default retention keeps (the current
month gets the benchmark's own): each batch's stored-id lookup then probes every one of them, as
it does for a tenant at full retention, where a fresh tenant's months are nearly empty.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402  (needs ROOT on the path)
    MODELS,
    chat_span,
    cpu_sample,
    cpu_used,
    gunicorn_pid,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("PORTAL_SECURE", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


def _age_seconds(rng: random.Random) -> float:
    """How old an event is when it arrives: a live exporter sends the last minutes' calls; a few
    arrive late (retries, backfills), up to three days."""
    if rng.random() < 0.95:
        return rng.uniform(0, 600)
    return rng.uniform(600, 3 * 86_400)


def load() -> str:
    return f"load={os.getloadavg()[0]:.2f}"


def make_events(rng: random.Random, count: int, samples: list) -> list[dict]:
    now = datetime.now(UTC)
    events = []
    for n in range(count):
        sample = rng.choice(samples)
        provider, model = rng.choice(MODELS)
        cached = int(sample.input_tokens * rng.uniform(0, 0.8))
        events.append(
            {
                "type": "llm",
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "timestamp": (now - timedelta(seconds=_age_seconds(rng))).isoformat(),
                "project": f"project-{n % 5}",
                "run_id": f"run-{n % 200}",
                "provider": provider,
                "model": model,
                "input_tokens": sample.input_tokens,
                "output_tokens": sample.output_tokens,
                "cached_input_tokens": cached,
            }
        )
    return events


def post_batches(
    port: int, host: str, key: str, path: str, bodies: list[bytes], content_type: str, clients: int
) -> float:
    """Send every body, ``clients`` at a time; returns the seconds taken. Fails on any non-200."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Host": host,
                    "Authorization": f"Bearer {key}",
                    "Content-Type": content_type,
                },
            )
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                errors.append(f"{response.status}: {payload[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed


def span_payloads(requests: int, spans_per_request: int) -> tuple[list[bytes], int]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    payloads = []
    total = 0
    for r in range(requests):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("bench")
        spans = 0
        run = 0
        while spans < spans_per_request:
            run += 1
            with tracer.start_as_current_span(
                "factory.run.execute",
                attributes={
                    "run.id": f"otel-{r}-{run}",
                    "run.project_id": "traced",
                    "run.template_recipe_id": "python-library",
                    "run.status": "succeeded",
                },
            ):
                for step in range(4):
                    with tracer.start_as_current_span(
                        "factory.job.execute",
                        attributes={"job.id": f"step-{step}", "job.step_name": f"step-{step}"},
                    ):
                        for _ in range(8):
                            with chat_span(tracer):
                                pass
            spans += 1 + 4 * 9
        provider.shutdown()
        payloads.append(encode_spans(exporter.get_finished_spans()).SerializeToString())
        total += spans
    return payloads, total


def copy_rate(events: list[dict]) -> float:
    """Rows/s of a plain COPY of the same rows into a bare table with the stored columns."""
    from django.db import connection

    rows = [
        (
            e["event_id"],
            datetime.fromisoformat(e["timestamp"]),
            1,
            None,
            None,
            "",
            e["provider"],
            e["model"],
            "generation",
            e["input_tokens"],
            e["output_tokens"],
            e["cached_input_tokens"],
            0,
            None,
            "unpriced",
            None,
            None,
        )
        for e in events
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (event_id varchar(128), occurred_at timestamptz,"
            " project_id bigint, run_id bigint, job_id bigint, job_ref varchar(128),"
            " provider varchar(64), model varchar(128), operation varchar(32),"
            " input_tokens bigint, output_tokens bigint, cached_input_tokens bigint,"
            " cache_write_tokens bigint, cost numeric(20, 10), cost_source varchar(16),"
            " price_ref bigint, override_ref bigint)"
        )
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    # 100 requests store 2,800 runs: enough for a lookup that grows with the runs table to show
    # (20 requests hid the run-id trigram plan of usage 0016, which cost 2.7x the spans/s).
    parser.add_argument("--span-requests", type=int, default=100)
    parser.add_argument("--spans-per-request", type=int, default=1000)
    parser.add_argument("--cpu-batches", type=int, default=5)
    parser.add_argument("--only", choices=["otlp"], help="measure only OTLP (and COPY)")
    # A tenant with history: every batch's stored-id lookup probes each month that holds rows.
    parser.add_argument("--history-months", type=int, default=0)
    parser.add_argument("--history-rows", type=int, default=150_000, help="calls a month")
    args = parser.parse_args()
    only_otlp = args.only == "otlp"

    import django

    django.setup()
    from django.conf import settings
    from django_tenants.utils import schema_context

    from benchmarks.server import gunicorn
    from billing.pricing.book import pricebook_refresh
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
    from web.demo.traces import trace_samples

    public_tenant_ensure()
    pricebook_refresh()
    if (old := tenant_by_slug("bench-ingest")) is not None:
        tenant_delete(tenant=old)
    tenant = tenant_create(slug="bench-ingest", name="Benchmark", admin_email="b@bench.test").tenant
    with schema_context(tenant.schema_name):
        _, key = api_key_create(name="bench", scopes=["ingest"])
        if args.history_months:
            seconds = _history(args.history_months, args.history_rows)
            print(
                f"history {args.history_months} past months of {args.history_rows:,} calls"
                f" loaded in {seconds:.1f} s",
                flush=True,
            )
    host = f"bench-ingest.{settings.PORTAL_BASE_DOMAIN}"

    rng = random.Random(7)
    samples = list(trace_samples("code")) + list(trace_samples("conv"))
    count = args.batches * args.batch_size
    # Both modes twice, in the order fast, general, general, fast: neither profits from going
    # first (cold server, runs and projects created) or from a quieter moment of the machine.
    order = ["fast"] if only_otlp else ["fast", "general", "general", "fast"]
    sets = [(mode, make_events(rng, count, samples)) for mode in order]
    spans, span_count = span_payloads(args.span_requests, args.spans_per_request)
    figures: list[str] = []

    def say(line: str) -> None:
        figures.append(f"{line} {load()}")
        print(figures[-1], flush=True)

    rates: dict[str, list[float]] = {"fast": [], "general": []}
    # Each pass against a COPY measured right after it: this machine's speed drifts by a
    # third within minutes, so a ratio of two figures taken minutes apart says little.
    paired: dict[str, list[float]] = {"fast": [], "general": [], "otlp": []}
    spans_seconds = 0.0
    for mode, events in sets:
        bodies = [
            json.dumps({"events": events[i : i + args.batch_size]}).encode()
            for i in range(0, len(events), args.batch_size)
        ]
        env = {"INGEST_FAST_DECODE": "1" if mode == "fast" else "0"}
        with gunicorn(workers=args.workers, env=env) as port:
            # warm-up: small batches per worker (imports, price book load)
            warm = [
                json.dumps({"events": make_events(rng, 50, samples)}).encode()
                for _ in range(args.workers * 2)
            ]
            post_batches(port, host, key, "/api/v1/events", warm, "application/json", args.workers)
            server = gunicorn_pid(port)
            if not only_otlp:
                before = cpu_sample(server)
                seconds = post_batches(
                    port, host, key, "/api/v1/events", bodies, "application/json", args.clients
                )
                used = cpu_used(before, cpu_sample(server))
                rates[mode].append(len(events) / seconds)
                say(f"http_events_per_second_{mode} {rates[mode][-1]:,.0f}")
                say(f"http_batch_mean_seconds_{mode} {seconds / len(bodies):.3f}")
                say(f"http_cpu_ms_per_batch_{mode} {_cpu_per(used, len(bodies))}")
                paired[mode].append(rates[mode][-1] / max(copy_rate(events) for _ in range(2)))
                say(f"http_to_adjacent_copy_ratio_{mode} {paired[mode][-1]:.3f}")
            if mode == "fast" and not spans_seconds:
                before = cpu_sample(server)
                spans_seconds = post_batches(
                    port, host, key, "/v1/traces", spans, "application/x-protobuf", args.clients
                )
                used = cpu_used(before, cpu_sample(server))
                say(f"otlp_spans_per_second {span_count / spans_seconds:,.0f}")
                say(f"otlp_cpu_ms_per_request {_cpu_per(used, len(spans))}")
                copy_now = max(copy_rate(sets[0][1]) for _ in range(2))
                paired["otlp"].append(span_count / spans_seconds / copy_now)
                say(f"otlp_to_adjacent_copy_ratio {paired['otlp'][-1]:.3f}")

    with schema_context(tenant.schema_name):
        from usage.models import LlmUsageEvent

        stored = LlmUsageEvent.objects.exclude(event_id__startswith="otlp-").count()
        if not only_otlp:
            for line in cpu_per_batch(tenant, rng, samples, args.batch_size, args.cpu_batches):
                say(line)
        # The best of three, so that a noisy neighbour does not flatter the ratio.
        copy_rows_per_second = max(copy_rate(sets[0][1]) for _ in range(3))
    tenant_delete(tenant=tenant)

    if not only_otlp:
        print(f"events_sent {len(sets) * count}")
        print(f"events_stored {stored}")
    print(f"otlp_spans_sent {span_count}")
    say(f"raw_copy_rows_per_second {copy_rows_per_second:,.0f}")
    for mode, measured in rates.items():
        if not measured:
            continue
        rate = sum(measured) / len(measured)
        say(
            f"http_to_copy_ratio_{mode} {rate / copy_rows_per_second:.3f} (mean of {len(measured)})"
        )
    say(f"otlp_to_copy_ratio {span_count / spans_seconds / copy_rows_per_second:.3f}")
    for name, ratios in paired.items():
        if ratios:
            mean = sum(ratios) / len(ratios)
            say(f"{name}_to_adjacent_copy_ratio_mean {mean:.3f} (of {len(ratios)})")


def _history(months: int, rows_a_month: int) -> float:
    """Load ``rows_a_month`` LLM calls into each of the ``months`` months before this one (UTC),
    as ``benchmarks/partitions.py`` does, in the current tenant schema; answers the seconds."""
    from django.db import connection

    from benchmarks.partitions import ROWS_SQL
    from factory_portal import periods
    from usage.domain import retention
    from usage.models import Project
    from usage.services.partitions import partitions_ensure_months

    this_month = retention.utc_month(datetime.now(UTC))
    loaded = periods.months_ending(periods.previous_month(this_month), months)
    partitions_ensure_months(loaded)
    start = retention.month_bounds(loaded[0])[0]
    span = retention.month_bounds(loaded[-1])[1] - start
    project = Project.objects.get_or_create(slug="history", defaults={"name": "history"})[0].pk
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            ROWS_SQL,
            {
                "start": start,
                "span": span,
                "rows": months * rows_a_month,
                "offset": 0,
                "project": project,
            },
        )
        cursor.execute("ANALYZE usage_llmusageevent")
    return time.perf_counter() - started


def _cpu_per(used: dict[str, float], requests: int) -> str:
    """CPU ms a request of the server's processes and of PostgreSQL's (every backend: the
    benchmark's own queries are all it runs), and their sum: steadier than the rates when other
    work shares the machine, which slows every request but adds nothing to these."""
    server = used["server"] * 1000 / requests
    postgres = used["postgres"] * 1000 / requests
    return f"server {server:.1f} postgres {postgres:.1f} total {server + postgres:.1f}"


def cpu_per_batch(
    tenant: object, rng: random.Random, samples: list, size: int, batches: int
) -> list[str]:
    """This process's CPU ms (median over ``batches`` fresh batches) of one JSON batch of ``size``
    events: decoded and validated only, and stored too, with the fast decoder and without."""
    import statistics
    from datetime import timedelta

    from django.utils import timezone

    from usage.domain.events import events_parse
    from usage.domain.events_fast import events_decode_fast
    from usage.domain.payloads import items_decode
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest

    skew = timedelta(seconds=300)
    pricer = pricer_for(tenant)

    def parse(body: bytes, fast: bool) -> list:
        now = timezone.now()
        if fast:
            events = events_decode_fast(body, max_items=10_000, now=now, max_future=skew)
            if events is None:
                raise SystemExit("the fast decoder refused a valid batch")
            return events
        items = items_decode(body, "application/json", "events", 10_000, 2_000_000)
        events, errors = events_parse(items, now=now, max_future=skew)
        if errors:
            raise SystemExit(f"invalid events: {errors[:3]}")
        return events

    lines = []
    for mode in ("fast", "general"):
        decode: list[float] = []
        whole: list[float] = []
        for _ in range(batches + 1):  # the first is a warm-up
            body = json.dumps({"events": make_events(rng, size, samples)}).encode()
            started = time.process_time()
            events = parse(body, mode == "fast")
            parsed = time.process_time()
            events_ingest(events=events, pricer=pricer)
            decode.append((parsed - started) * 1000)
            whole.append((time.process_time() - started) * 1000)
        lines.append(f"cpu_ms_decode_validate_{mode}_{size} {statistics.median(decode[1:]):.1f}")
        lines.append(f"cpu_ms_batch_stored_{mode}_{size} {statistics.median(whole[1:]):.1f}")
    return lines


if __name__ == "__main__":
    main()
