"""The fast event decoder accepts exactly what the general path accepts, builds the same events,
and leaves every problem to the general path (whose error report is then the answer)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usage.domain.events import events_parse
from usage.domain.events_fast import events_decode_fast
from usage.domain.payloads import PayloadError, items_decode

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MAX_FUTURE = timedelta(seconds=300)
MAX_ITEMS = 50


def general(body: bytes, platform: bool = False) -> tuple[Any, Any] | str:
    """The general path's answer: (events, errors), or the PayloadError's status and message."""
    try:
        items = items_decode(body, "application/json", "events", MAX_ITEMS, 2_000_000)
    except PayloadError as exc:
        return f"{exc.status} {exc.message}"
    events, errors = events_parse(items, now=NOW, max_future=MAX_FUTURE, platform=platform)
    return events, [e.as_dict() for e in errors]


def fast(body: bytes, platform: bool = False) -> Any:
    return events_decode_fast(
        body, max_items=MAX_ITEMS, now=NOW, max_future=MAX_FUTURE, platform=platform
    )


def same_answer(body: bytes, platform: bool = False) -> Any:
    """The fast path agrees with the general path; answers the fast path's events (or None)."""
    expected = general(body, platform)
    got = fast(body, platform)
    if got is None:
        return None
    assert not isinstance(expected, str), f"fast path accepted a refused body: {expected}"
    assert expected[1] == [], f"fast path accepted invalid items: {expected[1]}"
    assert got == expected[0]
    # The same types too (a Decimal is not an int, a str subclass is not a str).
    for mine, theirs in zip(got, expected[0], strict=True):
        assert type(mine) is type(theirs)
        assert [type(v) for v in mine] == [type(v) for v in theirs]
    return got


def llm(**fields: Any) -> dict[str, Any]:
    event = {
        "type": "llm",
        "event_id": "e-1",
        "timestamp": "2026-03-01T11:50:00+00:00",
        "project": "checkout",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 12_000,
        "output_tokens": 800,
        "cached_input_tokens": 5_000,
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not ...}


def infra(**fields: Any) -> dict[str, Any]:
    event = {
        "type": "infra",
        "event_id": "i-1",
        "timestamp": "2026-03-01T11:50:00Z",
        "project": "checkout",
        "resource_type": "compute",
        "quantity": "36.5",
        "unit": "cpu_seconds",
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not ...}


def body(*events: Any, **top: Any) -> bytes:
    return json.dumps({"events": list(events), **top}).encode()


# Valid batches: the fast path must take them (that is its point) and build the same events.
VALID = {
    "llm": body(llm()),
    "infra": body(infra()),
    "both": body(llm(), infra(), llm(event_id="e-2", run_id="r-1", job_id="j-1")),
    "empty batch": body(),
    "null fields are absent": body(llm(run_id=None, job_id=None, operation=None, cost=None)),
    "cost number": body(llm(cost=0.125)),
    "cost keeps its digits": body(llm(cost=1.25)).replace(b"1.25", b"1.50"),
    "cost integer": body(llm(cost=3)),
    "cost string": body(llm(cost="0.0000000001")),
    "cost string with spaces": body(llm(cost=" 2.5 ")),
    "cost zero": body(llm(cost=0)),
    "uncached tokens": body(llm(input_tokens=..., uncached_input_tokens=7_000)),
    "uncached and matching input": body(llm(input_tokens=12_000, uncached_input_tokens=7_000)),
    "cache writes": body(llm(cache_write_tokens=1_000)),
    "no tokens at all": body(llm(input_tokens=..., output_tokens=..., cached_input_tokens=...)),
    "stripped text": body(llm(model="  claude  ", provider=" Anthropic ", operation=" chat ")),
    "provider lowercased": body(llm(provider="OpenAI")),
    "other time zone": body(llm(timestamp="2026-03-01T20:50:00+09:00")),
    "fractional seconds": body(llm(timestamp="2026-03-01T11:50:00.123456Z")),
    "date and time with a space": body(llm(timestamp="2026-03-01 11:50:00+00:00")),
    "just inside the skew": body(llm(timestamp="2026-03-01T12:04:59Z")),
    "ids stripped": body(llm(event_id="  e 1  ", run_id=" r/1 ", job_id=" j%1 ")),
    "unicode ids": body(llm(event_id="événement-1", run_id="lauf-ü")),
    "escaped strings": body(llm(model="claude\\u002dsonnet")),
    "quantity number": body(infra(quantity=12.000000049)),
    "quantity integer": body(infra(quantity=7)),
    "repeated values": body(*[llm(event_id=f"e-{n}", run_id=f"r-{n % 3}") for n in range(20)]),
    "repeated event ids": body(llm(), llm()),
    "duplicate key, last wins": b'{"events": [{"type": "llm", "event_id": "a", "event_id": "b",'
    b' "timestamp": "2026-03-01T11:00:00Z", "project": "p", "provider": "x", "model": "m"}]}',
    "max tokens": body(llm(input_tokens=10**12, cached_input_tokens=0)),
    "long model": body(llm(model="m" * 128)),
}

# Invalid or unusual bodies: the fast path must step aside (None); the general path reports.
REFUSED = {
    "not json": b"{",
    "not an object": b"[]",
    "events not a list": body(events={}),  # replaced below
    "unknown top-level field": body(llm(), extra=1),
    "trailing data": body(llm()) + b" x",
    "item not an object": body(1),
    "item null": body(None),
    "no type": body(llm(type=...)),
    "unknown type": body(llm(type="gpu")),
    "type null": body(llm(type=None)),
    "unknown field": body(llm(color="red")),
    "infra field on llm": body(llm(unit="x")),
    "no event id": body(llm(event_id=...)),
    "event id empty": body(llm(event_id="   ")),
    "event id dot": body(llm(event_id="..")),
    "event id too long": body(llm(event_id="e" * 129)),
    "event id control character": body(llm(event_id="a\u0000b")),
    "event id number": body(llm(event_id=7)),
    "run id reserved": body(llm(run_id="active")),
    "run id suffix": body(llm(run_id="x/guard")),
    "job id newline": body(llm(job_id="a\nb")),
    "no timestamp": body(llm(timestamp=...)),
    "timestamp not iso": body(llm(timestamp="yesterday")),
    "timestamp naive": body(llm(timestamp="2026-03-01T11:50:00")),
    "timestamp number": body(llm(timestamp=1700000000)),
    "timestamp in the future": body(llm(timestamp="2026-03-01T12:05:01Z")),
    "timestamp before 2000": body(llm(timestamp="1999-12-31T23:59:59Z")),
    "no project": body(llm(project=...)),
    "project not a slug": body(llm(project="Check Out")),
    "project trailing newline": body(llm(project="checkout\n")),
    "project too long": body(llm(project="p" * 101)),
    "tenant with a tenant key": body(llm(tenant="alpha")),
    "tenant empty": body(llm(tenant="")),
    "no provider": body(llm(provider=...)),
    "provider empty": body(llm(provider="")),
    "provider too long": body(llm(provider="p" * 65)),
    "no model": body(llm(model=...)),
    "model not printable": body(llm(model="claude\u200b")),
    "model number": body(llm(model=4)),
    "operation too long": body(llm(operation="o" * 33)),
    "tokens negative": body(llm(output_tokens=-1)),
    "tokens too many": body(llm(output_tokens=10**12 + 1)),
    "tokens huge": body(llm(output_tokens=10**30)),
    "tokens fraction": body(llm(output_tokens=1.0)),
    "tokens exponent": body(llm(output_tokens=1e3)),
    "tokens bool": body(llm(output_tokens=True)),
    "tokens string": body(llm(output_tokens="5")),
    "cached over input": body(llm(input_tokens=10, cached_input_tokens=11)),
    "uncached mismatch": body(llm(input_tokens=10, uncached_input_tokens=7_000)),
    "cost negative": body(llm(cost=-0.01)),
    "cost too large": body(llm(cost=10**9 + 1)),
    "cost too precise": body(llm(cost="0.00000000001")),
    "cost not a number": body(llm(cost="cheap")),
    "cost nan": body(llm(cost="NaN")),
    "cost infinite": body(llm(cost="Infinity")),
    "cost bool": body(llm(cost=True)),
    "cost object": body(llm(cost={"usd": 1})),
    "resource type unknown": body(infra(resource_type="gpu")),
    "no resource type": body(infra(resource_type=...)),
    "no quantity": body(infra(quantity=...)),
    "quantity null": body(infra(quantity=None)),
    "quantity negative": body(infra(quantity=-1)),
    "quantity too large": body(infra(quantity=10**15 + 1)),
    "quantity text": body(infra(quantity="lots")),
    "no unit": body(infra(unit=...)),
    "one bad among good": body(llm(), llm(event_id="e-2", output_tokens=-5), infra()),
    "too many items": body(*[llm(event_id=f"e-{n}") for n in range(MAX_ITEMS + 1)]),
    "lone surrogate": body(llm(model="\ud800")),
    # Nested too deep (RecursionError: a 500 before these cases): a cost msgspec passes on as raw
    # JSON and Python's json reader cannot read, and a quantity too deep for msgspec itself.
    "cost nested too deep": body(llm(cost=1.25)).replace(b"1.25", b"[" * 1000 + b"]" * 1000),
    "quantity nested too deep": body(infra(quantity=2.5)).replace(
        b"2.5", b"[" * 100_000 + b"]" * 100_000
    ),
}
REFUSED["events not a list"] = b'{"events": {}}'

# Valid, but not in the form the fast path reads: the general path accepts them.
UNUSUAL = {
    "byte order mark": b"\xef\xbb\xbf" + body(llm()),
    "utf-16": json.dumps({"events": [llm()]}).encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_batches_take_the_fast_path_with_the_same_events(name: str) -> None:
    assert same_answer(VALID[name]) is not None


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_problems_are_left_to_the_general_path(name: str) -> None:
    expected = general(REFUSED[name])
    assert isinstance(expected, str) or expected[1], f"case {name!r} is not invalid"
    assert fast(REFUSED[name]) is None


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_valid_bodies_take_the_general_path(name: str) -> None:
    expected = general(UNUSUAL[name])
    assert not isinstance(expected, str) and expected[0] and not expected[1]
    assert fast(UNUSUAL[name]) is None


def test_platform_batches_need_a_tenant_on_every_event() -> None:
    with_tenant = body(llm(tenant="alpha"), infra(tenant=" beta "))
    assert same_answer(with_tenant, platform=True) is not None
    assert fast(body(llm(), infra(tenant="beta")), platform=True) is None
    assert fast(body(llm(tenant="t" * 41)), platform=True) is None


def test_cost_digits_are_the_clients() -> None:
    (event,) = same_answer(body(llm(cost=1.25)).replace(b"1.25", b"1.50"))
    assert str(event.cost) == "1.50"
    assert isinstance(event.cost, Decimal)


# Property: for generated events (valid and not), the fast path gives the general path's events
# or steps aside, never anything else.
_text = st.one_of(
    st.none(),
    st.sampled_from(["claude", " gpt-4o ", "", " ", "a\nb", "x" * 129, "OpenAI", "p-1", ".."]),
    st.text(max_size=6),
)
_number = st.one_of(
    st.none(),
    st.integers(min_value=-2, max_value=10**13),
    st.sampled_from([0, 1, 5000, 10**12, 1.5, True, "7", "0.25"]),
)
_time = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026-03-01T11:50:00Z",
            "2026-03-01T11:50:00+02:00",
            "2026-03-01T11:50:00",
            "2026-03-02T11:50:00Z",
            "1990-01-01T00:00:00Z",
            "2026-03-01 11:00:00.5+00:00",
            "soon",
        ]
    ),
)
_llm_event = st.fixed_dictionaries(
    {"type": st.just("llm"), "event_id": _text, "timestamp": _time, "project": _text},
    optional={
        "run_id": _text,
        "job_id": _text,
        "tenant": _text,
        "provider": _text,
        "model": _text,
        "operation": _text,
        "input_tokens": _number,
        "output_tokens": _number,
        "cached_input_tokens": _number,
        "cache_write_tokens": _number,
        "uncached_input_tokens": _number,
        "cost": _number,
        "unit": _text,
    },
)
_infra_event = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["infra", "llm", "other"]),
        "event_id": _text,
        "timestamp": _time,
        "project": _text,
    },
    optional={
        "resource_type": st.sampled_from(["compute", "storage", "gpu", None]),
        "quantity": _number,
        "unit": _text,
        "tenant": _text,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.one_of(_llm_event, _infra_event), max_size=4),
    platform=st.booleans(),
)
def test_generated_batches_agree(events: list[dict[str, Any]], platform: bool) -> None:
    same_answer(json.dumps({"events": events}).encode(), platform)


@settings(max_examples=150, deadline=None)
@given(
    models=st.lists(st.sampled_from(["claude", "gpt-4o", "gemini-2.5-pro"]), min_size=1),
    tokens=st.integers(min_value=0, max_value=10**6),
)
def test_generated_valid_batches_take_the_fast_path(models: list[str], tokens: int) -> None:
    events = [
        llm(event_id=f"e-{n}", model=model, input_tokens=tokens, cached_input_tokens=tokens // 2)
        for n, model in enumerate(models)
    ]
    assert same_answer(body(*events)) is not None
