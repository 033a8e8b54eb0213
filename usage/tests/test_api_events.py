"""POST /api/v1/events: atomic, idempotent, priced, rolled up, isolated."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.operator.models import PriceBookEntry, TenantPriceOverride
from tests.support import bearer, host_client, key_for, llm_event_in
from usage.models import (
    CostSource,
    InfraUsageEvent,
    LlmUsageDaily,
    LlmUsageEvent,
    LlmUsageHourly,
    Project,
    Run,
)
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

# An event's identity is its id and its time (the tables are partitioned by time): a re-sent
# event carries the timestamp it was first sent with.
SENT_AT = (timezone.now() - timedelta(minutes=10)).isoformat()


def llm(event_id: str, **fields):
    return {
        "type": "llm",
        "event_id": event_id,
        "timestamp": SENT_AT,
        "project": "checkout",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 12_000,
        "output_tokens": 800,
        "cached_input_tokens": 5_000,
        **fields,
    }


def infra(event_id: str, **fields):
    return {
        "type": "infra",
        "event_id": event_id,
        "timestamp": SENT_AT,
        "project": "checkout",
        "resource_type": "compute",
        "quantity": "36.5",
        "unit": "cpu_seconds",
        **fields,
    }


@pytest.fixture
def ingest(alpha):
    _, raw = key_for(alpha, ["ingest"])
    client = host_client(alpha.host)

    def post(events=None, *, body=None, content_type="application/json", **headers):
        if body is None:
            body = json.dumps({"events": events})
        return client.post(
            "/api/v1/events", data=body, content_type=content_type, **bearer(raw), **headers
        )

    return post


def test_batch_is_stored_priced_and_counted(ingest, alpha):
    response = ingest([llm("a"), llm("b", model="claude-sonnet-4-5-20250929"), infra("c")])
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0}
    with schema_context(alpha.schema):
        a = LlmUsageEvent.objects.get(event_id="a")
        b = LlmUsageEvent.objects.get(event_id="b")
        entry = PriceBookEntry.objects.get(pk=a.price_ref)
        assert InfraUsageEvent.objects.get(event_id="c").quantity == Decimal("36.5")
        assert Project.objects.get(slug="checkout").name == "checkout"  # created on first use
    # 7,000 uncached x $3 + 5,000 cached x $0.30 + 800 out x $15, per million tokens
    assert a.cost == Decimal("0.0345000000")
    assert a.cost_source == CostSource.PRICE_BOOK
    assert (entry.provider, entry.model, entry.token_kind) == (
        "anthropic",
        "claude-sonnet-4-5",
        "input",
    )
    assert b.cost == a.cost  # a dated model name resolves through the catalogue


def test_resending_counts_duplicates_and_changes_nothing(ingest, alpha):
    assert ingest([llm("a"), infra("b")]).json() == {"accepted": 2, "duplicates": 0}
    assert ingest([llm("a"), infra("b"), llm("c")]).json() == {"accepted": 1, "duplicates": 2}
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.count() == 2
        assert LlmUsageHourly.objects.aggregate(n=Sum("calls"))["n"] == 2
        assert LlmUsageDaily.objects.aggregate(n=Sum("calls"))["n"] == 2


def test_duplicate_ids_within_one_batch_are_stored_once(ingest, alpha):
    assert ingest([llm("a"), llm("a")]).json() == {"accepted": 1, "duplicates": 1}


def test_ndjson_and_gzip(ingest, alpha):
    lines = "\n".join(json.dumps(e) for e in [llm("n1"), infra("n2")]) + "\n"
    response = ingest(body=lines, content_type="application/x-ndjson")
    assert response.json() == {"accepted": 2, "duplicates": 0}
    packed = gzip.compress(json.dumps({"events": [llm("g1")]}).encode())
    response = ingest(body=packed, HTTP_CONTENT_ENCODING="gzip")
    assert response.json() == {"accepted": 1, "duplicates": 0}


def test_a_gzip_body_of_several_members_is_read_whole(ingest, alpha):
    """Members are concatenated (RFC 1952; ``cat a.gz b.gz`` and streaming compressors make
    them): every line is stored, where only the first member's were (a review found it)."""
    first = gzip.compress((json.dumps(llm("m1")) + "\n").encode())
    second = gzip.compress((json.dumps(llm("m2")) + "\n").encode())
    response = ingest(
        body=first + second, content_type="application/x-ndjson", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.json() == {"accepted": 2, "duplicates": 0}
    # A member per line (as a compressor flushing each write makes them): 1,000 members,
    # across the slices the body is read in (64 KiB).
    lines = b"".join(gzip.compress((json.dumps(llm(f"b{n}")) + "\n").encode()) for n in range(1000))
    assert len(lines) > 64 * 1024
    response = ingest(body=lines, content_type="application/x-ndjson", HTTP_CONTENT_ENCODING="gzip")
    assert response.json() == {"accepted": 1000, "duplicates": 0}


def test_a_gzip_body_of_countless_members_is_refused(ingest, alpha):
    """Each member costs a decompressor: more than ``MAX_GZIP_MEMBERS`` are refused (a 16 MiB
    body of empty members would be 800,000)."""
    from usage.domain.payloads import MAX_GZIP_MEMBERS

    member = gzip.compress(b"")
    body = gzip.compress(json.dumps({"events": [llm("c1")]}).encode()) + member * MAX_GZIP_MEMBERS
    response = ingest(body=body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert f"more than {MAX_GZIP_MEMBERS:,} gzip members" in response.json()["detail"]
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()


@pytest.mark.parametrize(
    ("cut", "encoding", "message"),
    [
        (lambda packed: packed[:-6], "gzip", "ends before its end"),
        (lambda packed: packed + b"trailing", "gzip", "not valid gzip data"),
        (lambda packed: zlib.compress(gzip.decompress(packed))[:-3], "deflate", "ends before"),
        (lambda packed: zlib.compress(gzip.decompress(packed)) + b"x", "deflate", "after the end"),
    ],
    ids=["gzip cut short", "gzip then garbage", "deflate cut short", "deflate then garbage"],
)
def test_a_compressed_body_cut_short_or_followed_by_garbage_is_a_400(
    ingest, alpha, cut, encoding, message
):
    packed = gzip.compress(json.dumps({"events": [llm("z1"), llm("z2")]}).encode())
    response = ingest(body=cut(packed), HTTP_CONTENT_ENCODING=encoding)
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()


def test_any_invalid_event_rejects_the_batch_with_every_error(ingest, alpha):
    response = ingest([llm("ok"), llm("bad-1", input_tokens=-5), infra("bad-2", unit=None)])
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["errors"] == [
        {"index": 1, "field": "input_tokens", "message": "must be between 0 and 1000000000000"},
        {"index": 2, "field": "unit", "message": "is required"},
    ]
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()
        assert not Project.objects.exists()


def test_malformed_ndjson_line_is_a_422_naming_the_line(ingest):
    response = ingest(body='{"type": "llm"}\n{oops\n', content_type="application/x-ndjson")
    assert response.status_code == 422
    assert "line 2" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"body": "{not json"}, 400, "not valid JSON"),
        ({"body": '{"items": []}'}, 400, '{"events": [...]}'),
        (
            {"body": "a=b", "content_type": "application/x-www-form-urlencoded"},
            415,
            "not supported",
        ),
        ({"body": b"\x1f\x8b broken", "HTTP_CONTENT_ENCODING": "gzip"}, 400, "gzip"),
        ({"body": "{}", "HTTP_CONTENT_ENCODING": "br"}, 415, "gzip"),
    ],
)
def test_unusable_bodies_get_a_precise_4xx(ingest, kwargs, status, words):
    response = ingest(**kwargs)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_oversized_body_is_413(ingest, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    response = ingest([llm(f"e{n}") for n in range(20)])
    assert response.status_code == 413
    assert "at most 1,000 bytes" in response.json()["detail"]


def test_gzip_bomb_is_413(ingest, settings):
    settings.INGEST_MAX_BODY_BYTES = 10_000
    packed = gzip.compress(json.dumps({"events": [llm("x", model="m" * 100)] * 200}).encode())
    assert len(packed) < 10_000
    assert ingest(body=packed, HTTP_CONTENT_ENCODING="gzip").status_code == 413


def test_more_than_10000_events_is_413(ingest, settings):
    settings.INGEST_MAX_EVENTS = 3
    response = ingest([llm(f"e{n}") for n in range(4)])
    assert response.status_code == 413
    assert "At most 3 events" in response.json()["detail"]


def test_unknown_model_is_stored_unpriced_and_client_cost_wins(ingest, alpha):
    response = ingest(
        [
            llm("u", provider="self-hosted", model="in-house-coder"),
            llm("c", cost="0.5000000001"),
        ]
    )
    assert response.json() == {"accepted": 2, "duplicates": 0}
    with schema_context(alpha.schema):
        unpriced = LlmUsageEvent.objects.get(event_id="u")
        client = LlmUsageEvent.objects.get(event_id="c")
        hour = LlmUsageHourly.objects.aggregate(cost=Sum("cost"), unpriced=Sum("unpriced_calls"))
    assert (unpriced.cost, unpriced.cost_source) == (None, CostSource.UNPRICED)
    assert (client.cost, client.cost_source) == (Decimal("0.5000000001"), CostSource.CLIENT)
    assert hour == {"cost": Decimal("0.5000000001"), "unpriced": 1}


def test_late_event_lands_in_its_own_day(ingest, alpha):
    ingest([llm("late", timestamp="2026-01-15T23:30:00-05:00")])
    with schema_context(alpha.schema):
        row = LlmUsageDaily.objects.get()
        hour = LlmUsageHourly.objects.get()
    assert row.day == date(2026, 1, 16)  # 04:30 UTC
    assert hour.hour == datetime(2026, 1, 16, 4, tzinfo=UTC)


def test_events_link_to_runs_creating_a_stub_for_unknown_runs(ingest, alpha):
    ingest([llm("r1", run_id="run-42", job_id="plan"), infra("r2", run_id="run-42")])
    with schema_context(alpha.schema):
        run = Run.objects.get(run_id="run-42")
        event = LlmUsageEvent.objects.get(event_id="r1")
    assert run.status == "Requested"
    assert event.run_id == run.id
    assert event.job_ref == "plan"  # kept although the job is not known yet


def test_tenant_contract_discount_applies(ingest, alpha):
    TenantPriceOverride.objects.create(
        tenant=alpha.tenant,
        provider="anthropic",
        discount_percent=Decimal(20),
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
    )
    ingest([llm("d")])
    with schema_context(alpha.schema):
        event = LlmUsageEvent.objects.get(event_id="d")
    assert event.cost == Decimal("0.0276000000")  # 0.0345 less 20%
    assert event.override_ref is not None


def test_read_only_key_cannot_ingest(alpha):
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).post(
        "/api/v1/events",
        data=json.dumps({"events": [llm("x")]}),
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code == 403


def test_key_of_another_tenant_cannot_ingest(alpha, beta):
    _, raw = key_for(alpha, ["ingest"])
    response = host_client(beta.host).post(
        "/api/v1/events",
        data=json.dumps({"events": [llm("x")]}),
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code == 401
    for tenant in (alpha, beta):
        with schema_context(tenant.schema):
            assert not LlmUsageEvent.objects.exists()


def test_browser_session_cannot_ingest(alpha):
    from tests.support import logged_in_client

    client = logged_in_client(alpha.host, alpha.admin_email)
    response = client.post(
        "/api/v1/events", data=json.dumps({"events": [llm("x")]}), content_type="application/json"
    )
    assert response.status_code == 403


def test_tenant_field_is_refused_on_a_tenant_host(ingest):
    response = ingest([llm("x", tenant="beta")])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tenant"


@pytest.mark.django_db(transaction=False)
def test_ten_concurrent_senders_store_each_event_once(alpha, django_db_blocker):
    """Ten threads, each with its own database connection and transaction, send the same 200
    events at once: every event is stored once and counted once in the rollups."""
    now = timezone.now() - timedelta(minutes=5)
    events = [
        llm_event_in(
            f"conc-{i}",
            now,
            position=i,
            project="concurrency",
            provider="anthropic",
            model="claude-sonnet-4-5",
            input_tokens=100,
            output_tokens=10,
        )
        for i in range(200)
    ]
    results, failures = [], []
    barrier = threading.Barrier(10)

    def send():
        try:
            with schema_context(alpha.schema):
                pricer = pricer_for(alpha.tenant)
                barrier.wait()
                results.append(events_ingest(events=events, pricer=pricer))
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(10)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, failures
        assert sum(r.accepted for r in results) == 200
        assert sum(r.duplicates for r in results) == 9 * 200
        with schema_context(alpha.schema):
            assert LlmUsageEvent.objects.filter(event_id__startswith="conc-").count() == 200
            assert (
                LlmUsageHourly.objects.filter(project__slug="concurrency").aggregate(
                    n=Sum("calls")
                )["n"]
                == 200
            )
    finally:
        # The threads committed; remove what they wrote from another committed connection (this
        # test's own transaction is rolled back, so deleting here would be undone).
        cleanup = threading.Thread(target=_remove_concurrency_rows, args=(alpha.schema,))
        cleanup.start()
        cleanup.join(30)


def _remove_concurrency_rows(schema: str) -> None:
    try:
        with schema_context(schema), connection.cursor() as cursor:
            cursor.execute("DELETE FROM usage_llmusageevent WHERE event_id LIKE 'conc-%%'")
            for table in ("usage_llmusagehourly", "usage_llmusagedaily"):
                cursor.execute(
                    f"DELETE FROM {table} WHERE project_id IN "  # noqa: S608 - fixed names
                    "(SELECT id FROM usage_project WHERE slug = 'concurrency')"
                )
            cursor.execute("DELETE FROM usage_project WHERE slug = 'concurrency'")
    finally:
        connections.close_all()


def _post(tenant, body, content_type="application/json", path="/api/v1/events"):
    _, key = key_for(tenant, ["ingest"])
    return host_client(tenant.host).post(path, data=body, content_type=content_type, **bearer(key))


def _event(**fields):
    return {
        "type": "infra",
        "event_id": "x",
        "timestamp": "2026-11-20T10:00:00Z",
        "project": "web",
        "resource_type": "compute",
        "quantity": 1,
        "unit": "cpu_seconds",
        **fields,
    }


def _llm_event(**fields):
    return {
        "type": "llm",
        "event_id": "x",
        "timestamp": "2026-11-20T10:00:00Z",
        "project": "web",
        "provider": "openai",
        "model": "gpt-4o",
        **fields,
    }


def _nested(event, depth):
    """A batch of ``event`` whose value ``"N"`` is replaced by arrays nested ``depth`` deep."""
    return json.dumps({"events": [event]}).replace('"N"', "[" * depth + "]" * depth)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (json.dumps({"events": [_event(resource_type=["compute"])]}), 422),
        (json.dumps({"events": [_event(project="web\n")]}), 422),
        ("[" * 100_000, 400),
        # Valid around a value nested too deep: for msgspec itself, and for Python's json reader
        # after msgspec passed the cost on as raw JSON (both were a 500 on the fast path).
        (_nested(_event(quantity="N"), 100_000), 400),
        (_nested(_llm_event(cost="N"), 1_000), 400),
    ],
)
def test_odd_json_gets_a_4xx_not_a_500(alpha, body, status):
    assert _post(alpha, body).status_code == status


def test_content_type_parameters_are_accepted(alpha):
    response = _post(
        alpha, json.dumps({"events": [_event()]}), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200
