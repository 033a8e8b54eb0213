"""OTLP decoding and span mapping (pure), on SDK-built spans and the official JSON example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from usage.domain.otlp import (
    FlatSpan,
    OtlpDecodeError,
    TooManySpans,
    TooManyValues,
    flatten,
    spans_map,
    traces_decode,
)
from usage.tests.otlp_spans import as_otlp_json, as_request, factory_run_spans

EXAMPLE = Path(__file__).resolve().parent / "data" / "otlp_example_trace.json"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_a_factory_run_maps_to_run_jobs_llm_calls_and_an_external_call():
    records, rejected = spans_map(flatten(as_request(factory_run_spans())))
    assert rejected == []
    kinds = sorted(r.kind for r in records)
    assert kinds == ["external", "job", "job", "llm", "llm", "llm", "run"]
    run = next(r for r in records if r.kind == "run")
    assert run.context.run_id == "run-otel-1"
    assert (run.context.tenant, run.context.project) == ("alpha", "checkout")
    assert run.status == "Succeeded"
    assert run.template_recipe_id == "python-fastapi-service"
    jobs = sorted((r for r in records if r.kind == "job"), key=lambda r: r.attempt)
    assert [(j.job_id, j.attempt, j.status) for j in jobs] == [
        ("implement", 1, "Failed"),
        ("implement", 2, "Succeeded"),
    ]
    llm = {r.model: r for r in records if r.kind == "llm"}
    sonnet = llm["claude-sonnet-4-5-20250929"]  # the response model wins over the request model
    assert (
        sonnet.provider,
        sonnet.input_tokens,
        sonnet.cached_input_tokens,
    ) == ("anthropic", 12_000, 5_000)
    assert sonnet.operation == "chat"
    assert sonnet.job_id == "implement"
    assert sonnet.context.run_id == "run-otel-1"  # inherited from the trace's run span
    assert (
        llm["gpt-4.1"].provider,
        llm["gpt-4.1"].input_tokens,
        llm["gpt-4.1"].output_tokens,
    ) == ("openai", 2_000, 100)
    assert (
        llm["gemini-2.5-flash"].provider,
        llm["gemini-2.5-flash"].input_tokens,
    ) == ("google", 3_000)
    external = next(r for r in records if r.kind == "external")
    assert (external.service, external.status, external.job_id) == (
        "github",
        "ok",
        "implement",
    )


def test_tenant_comes_from_the_resource_when_spans_do_not_name_it():
    spans = factory_run_spans(tenant=None, resource={"run.tenant_id": "beta"})
    records, _ = spans_map(flatten(as_request(spans)))
    assert {r.context.tenant for r in records} == {"beta"}


def test_cache_tokens_counted_apart_are_added_to_input():
    spans = factory_run_spans(
        llm_attributes={
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.cache_read.input_tokens": 900,
            "gen_ai.usage.cache_creation.input_tokens": 50,
        }
    )
    records, _ = spans_map(flatten(as_request(spans)))
    sonnet = next(r for r in records if getattr(r, "provider", None) == "anthropic")
    assert (
        sonnet.input_tokens,
        sonnet.cached_input_tokens,
        sonnet.cache_write_tokens,
    ) == (1050, 900, 50)


def test_unusable_spans_are_rejected_with_a_reason():
    spans = factory_run_spans(
        llm_attributes={"gen_ai.request.model": "", "gen_ai.response.model": ""}
    )
    _, rejected = spans_map(flatten(as_request(spans)))
    assert len(rejected) == 1
    assert "no gen_ai.request.model" in rejected[0].reason


def test_protobuf_round_trip_and_json_with_hex_ids():
    message = as_request(factory_run_spans())
    assert traces_decode(message.SerializeToString(), "application/x-protobuf") == message
    decoded = traces_decode(as_otlp_json(message), "application/json")
    assert decoded == message


def test_the_official_otlp_json_example_decodes():
    message = traces_decode(EXAMPLE.read_bytes(), "application/json")
    [span] = flatten(message)
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.resource == {"service.name": "my.service"}
    records, rejected = spans_map([span])
    assert records == [] and rejected == []  # not a factory or GenAI span: nothing to take


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", "not an OTLP protobuf"),
        (b"{oops", "application/json", "not OTLP/JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            "not hex",
        ),
        (b"", "text/plain", "Content-Type"),
    ],
)
def test_bad_bodies_are_refused(body, content_type, words):
    with pytest.raises(OtlpDecodeError, match=words):
        traces_decode(body, content_type)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    key, length = bytes([number << 3 | 2]), len(payload)
    varint = bytearray()
    while True:
        varint.append(length & 0x7F | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            return key + bytes(varint) + payload


def test_the_span_limit_counts_exactly():
    body = as_request(factory_run_spans()).SerializeToString()  # 7 spans
    assert len(flatten(traces_decode(body, "application/x-protobuf", max_spans=7))) == 7
    with pytest.raises(TooManySpans, match="At most 6 spans per request"):
        traces_decode(body, "application/x-protobuf", max_spans=6)
    with pytest.raises(TooManySpans, match="this one has 7"):
        traces_decode(
            as_otlp_json(as_request(factory_run_spans())), "application/json", max_spans=6
        )


@pytest.mark.parametrize(
    "body",
    [
        # a million empty spans in one scope (2 bytes each: 8 million in a 16 MB body)
        _field(1, _field(2, _field(2, b"") * 1_000_000)),
        # a million empty scopes, or resources: no span at all, as much parsing
        _field(1, _field(2, b"") * 1_000_000),
        _field(1, b"") * 1_000_000,
    ],
)
def test_bodies_of_countless_empty_entries_are_refused_before_parsing(body):
    with pytest.raises(TooManySpans):
        traces_decode(body, "application/x-protobuf", max_spans=10_000)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"null", "must be a JSON object"),
        (b"[]", "must be a JSON object"),
        (b"17", "must be a JSON object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab cd"}]}]}]}', "not hex"),
    ],
)
def test_json_that_is_not_an_otlp_object_is_refused(body, words):
    with pytest.raises(OtlpDecodeError, match=words):
        traces_decode(body, "application/json")


@pytest.mark.parametrize(
    "attribute",
    [
        _field(9, b"") * 1_000_000,  # a million empty attributes on one span
        # one attribute whose value is an array of a million empty values
        _field(9, _field(1, b"k") + _field(2, _field(5, _field(1, b"") * 1_000_000))),
    ],
)
def test_countless_attribute_values_are_refused_before_conversion(attribute):
    span = _field(1, b"t" * 16) + _field(2, b"s" * 8) + attribute
    message = traces_decode(_field(1, _field(2, _field(2, span))), "application/x-protobuf")
    with pytest.raises(TooManyValues, match="At most 4,224 attribute values"):
        flatten(message)


def test_a_span_with_the_sdks_attribute_limit_is_fine():
    span = _field(1, b"t" * 16) + _field(2, b"s" * 8)
    span += b"".join(_field(9, _field(1, f"k{n}".encode())) for n in range(128))
    message = traces_decode(_field(1, _field(2, _field(2, span))), "application/x-protobuf")
    assert len(flatten(message)[0].attrs) == 128


def _span(**fields):
    values = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "parent_span_id": "",
        "name": "factory.job.execute",
        "start": NOW - timedelta(minutes=1),
        "end": NOW,
        "attrs": {"job.id": "build", "run.id": "r1", "run.project_id": "web"},
        "resource": {},
        "status_code": 0,
        "status_message": "",
    }
    values.update(fields)
    return FlatSpan(**values)


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (_span(start=None), "start or end"),
        (_span(end=NOW + timedelta(days=400)), "future"),
        (_span(attrs={"job.id": "build", "job.attempt": 70_000}), "job.attempt"),
        (_span(attrs={"job.id": "j" * 500}), "job.id"),
        (
            _span(
                name="chat", attrs={"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": -5}
            ),
            "input tokens",
        ),
        (_span(attrs={"job.id": "build", "run.id": "r" * 300}), "run.id"),
    ],
)
def test_unusable_spans_are_rejected_not_crashed(span, words):
    records, rejected = spans_map([span], latest=NOW + timedelta(minutes=5))
    assert records == []
    assert words in rejected[0].reason


@pytest.mark.parametrize("given", ["²", "٣", "9" * 5000, "12a", ""])
def test_a_duration_that_is_not_ascii_digits_is_not_a_number(given):
    """ "²" is a digit to ``str.isdigit`` and Python refuses to read 5,000 digits: such text is
    no duration, as any other text is (the span's own times give it), not a rejection with
    Python's message (a review found "invalid literal for int()")."""
    span = _span(attrs={"job.id": "build", "run.id": "r1", "job.duration_ms": given})
    records, rejected = spans_map([span], latest=NOW + timedelta(minutes=5))
    assert rejected == []
    assert records[0].duration_ms == 60_000
