"""Bounded work for any ingest body: item limit, decompressed size, listed errors (issue 13.9)."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib

import pytest
from django_tenants.utils import schema_context

from factory_portal.error_lists import MAX_LISTED_ERRORS, ErrorList
from tests.support import bearer, host_client, key_for
from usage.domain.payloads import PayloadError, TooManyItems, items_decode, json_values_check
from usage.models import LlmUsageEvent, Project, Run
from usage.tests.otlp_spans import factory_run_spans
from usage.tests.test_api_events import llm
from usage.tests.test_api_traces import parse_response, post_spans

pytestmark = pytest.mark.django_db
SMALL_ANSWER = 64 * 1024


@pytest.fixture
def post(alpha):
    _, raw = key_for(alpha, ["ingest"])
    client = host_client(alpha.host)

    def send(path, body, content_type="application/x-ndjson", **headers):
        return client.post(path, data=body, content_type=content_type, **bearer(raw), **headers)

    return send


def test_a_million_invalid_ndjson_lines_stop_at_the_item_limit(post):
    packed = gzip.compress(b"x\n" * 1_000_000, compresslevel=9)
    assert len(packed) < 10_000
    response = post("/api/v1/events", packed, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert len(response.content) < SMALL_ANSWER
    assert "At most 10,000 events per request" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/runs"])
def test_invalid_ndjson_lines_list_the_first_100_and_count_all(post, path, alpha):
    lines = b"".join(b"{oops\n" if n % 2 else b'{"type": "llm"}\n' for n in range(10_000))
    response = post(path, gzip.compress(lines), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 422
    assert len(response.content) < SMALL_ANSWER
    body = response.json()
    assert len(body["errors"]) == MAX_LISTED_ERRORS
    assert body["errors_total"] == 5_000
    assert body["errors"][0] == {
        "index": 1,
        "field": "",
        "message": "line 2 is not valid JSON: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)",
    }
    assert body["errors"][-1]["index"] == 199
    assert "5,000 of 10,000 lines" in body["detail"] and "first 100 of 5,000" in body["detail"]


@pytest.mark.parametrize(
    ("path", "key", "item"),
    [
        ("/api/v1/events", "events", {"type": "llm"}),
        ("/api/v1/runs", "runs", {"run_id": "r"}),
    ],
)
def test_invalid_items_list_the_first_100_and_nothing_is_stored(post, alpha, path, key, item):
    good = llm("good") if key == "events" else {"run_id": "ok", "project": "p", "status": "Running"}
    items = [good, *[item] * 9_999]
    response = post(path, json.dumps({key: items}), content_type="application/json")
    assert response.status_code == 422
    assert len(response.content) < SMALL_ANSWER
    body = response.json()
    assert body["errors_total"] == 9_999
    assert [e["index"] for e in body["errors"]] == list(range(1, 101))
    assert body["detail"].startswith("9,999 of 10,000 items are invalid; nothing was stored.")
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()
        assert not Run.objects.exists()
        assert not Project.objects.exists()


def test_made_up_field_names_are_echoed_bounded(post):
    items = [{**llm(f"e{n}"), "k" * 5_000: 1} for n in range(200)]
    response = post("/api/v1/events", json.dumps({"events": items}), "application/json")
    assert response.status_code == 422
    assert len(response.content) < SMALL_ANSWER
    assert response.json()["errors"][0]["field"] == "k" * 100 + "…"


@pytest.mark.parametrize("filler", [b"\0", b"\n"])
def test_a_gzip_bomb_is_refused_without_inflating_it(post, filler):
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = filler * (1 << 20)
    packed = b"".join(deflater.compress(chunk) for _ in range(200)) + deflater.flush()
    assert len(packed) < 400_000  # 200 MiB once inflated
    response = post("/api/v1/events", packed, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert "decompressed body exceeds 16,777,216 bytes" in response.json()["detail"]


def test_otlp_rejections_list_at_most_100_reasons(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = [s for n in range(20) for s in factory_run_spans(run_id=f"r{n}", tenant="beta")]
    answer = parse_response(post_spans(alpha.host, key, spans))
    assert answer.partial_success.rejected_spans == 140
    message = answer.partial_success.error_message
    assert message.count("names tenant 'beta'") == MAX_LISTED_ERRORS
    assert message.endswith("; and 40 more")


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/api/v1/events", "application/json", b'{"events": [' + b"{}," * 5_000_000 + b"{}]}"),
        ("/api/v1/runs", "application/x-ndjson", b"[" + b"[[[[],[]]]]," * 1_000_000 + b"1]\n"),
        ("/v1/traces", "application/json", b'{"resourceSpans": [' + b"{}," * 5_000_000 + b"{}]}"),
    ],
)
def test_json_of_millions_of_tiny_values_is_refused_before_decoding(post, path, content_type, body):
    """16 MiB of ``{},{},…`` decoded to millions of objects (1.5 s and +424 MiB for one
    request); the values are counted from the punctuation first."""
    response = post(path, gzip.compress(body), content_type, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert "more than 2,000,000 JSON values" in response.json()["detail"]


def test_a_full_batch_of_real_events_is_far_below_the_value_limit(post, alpha):
    body = json.dumps({"events": [llm(f"e{n}") for n in range(10_000)]}).encode()
    json_values_check(body, 300_000)  # about 22 per event
    with pytest.raises(PayloadError) as refused:
        json_values_check(body, 200_000)
    assert refused.value.status == 413
    response = post("/api/v1/events", body, "application/json")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["accepted"] == 10_000


# --- the pure parts -----------------------------------------------------------------------------


def test_memory_for_ndjson_of_millions_of_lines_is_bounded_by_the_item_limit():
    body = b"{}\n" * 3_000_000
    tracemalloc.start()
    try:
        with pytest.raises(TooManyItems):
            items_decode(body, "application/x-ndjson", "events", 10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # ~10,000 decoded lines, not 3 million


def test_ndjson_reading_stops_after_the_item_limit():
    with pytest.raises(TooManyItems):
        items_decode(b"1\n2\n3\n" + b"{oops\n" * 10, "application/x-ndjson", "events", 3)
    assert items_decode(b"1\n\n2\r\n3\n\n", "application/x-ndjson", "events", 3) == [1, 2, 3]


def test_a_json_list_over_the_item_limit_is_413():
    with pytest.raises(TooManyItems):
        items_decode(b'{"events": [1, 2, 3, 4]}', "application/json", "events", 3)
    assert items_decode(b'{"events": [1, 2, 3]}', "application/json", "events", 3) == [1, 2, 3]


def test_error_list_keeps_the_first_errors_and_counts_all():
    errors = ErrorList(range(250))
    assert (errors.listed, errors.total, errors.omitted) == (list(range(100)), 250, 150)
    assert errors.problem_members(str)["errors"][-1] == "99"
    assert errors.problem_members()["errors_total"] == 250
    assert errors.listed_note() == "The first 100 of 250 problems are listed."
    assert ErrorList("ab", limit=1).sentence() == "a; and 1 more"
    assert not ErrorList() and ErrorList().listed_note() == ""
