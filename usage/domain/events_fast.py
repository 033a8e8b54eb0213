"""The hot path of ``POST /api/v1/events``: a JSON batch decoded and validated in one pass by
msgspec's compiled decoder into typed structs, then checked by one tight loop (pure, no database).

It accepts only what ``usage.domain.events`` accepts and builds exactly the same events; anything
it is not sure of (any problem, any unusual body) answers None, and the caller takes the general
path (``payloads.items_decode`` then ``events.events_parse``), which reports every bad item with
its index, field and message. So the error reports are those of the general path, byte for byte;
only valid batches are faster. Values that repeat across a batch (projects, providers, models,
run ids) are checked once per batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from factory_portal.periods import EARLIEST
from usage.domain.events import (
    COST_PLACES,
    QUANTITY_QUANTUM,
    RESOURCE_TYPES,
    SLUG_RE,
    EventIn,
    InfraEventIn,
    Invalid,
    LlmEventIn,
    _decimal,
)
from usage.domain.ids import id_check
from usage.domain.limits import (
    MAX_COST,
    MAX_QUANTITY,
    MAX_TOKENS,
    MODEL_LENGTH,
    OPERATION_LENGTH,
    PROVIDER_LENGTH,
    TENANT_LENGTH,
    UNIT_LENGTH,
)

_NULL = b"null"


# Every field is optional here (JSON null is "absent", as on the general path); which are
# required is checked below. Unknown fields, a missing or unknown ``type`` and wrong JSON types
# fail the decode, and the general path then says what is wrong. Money and quantities stay raw
# JSON and are read exactly as the general path reads them (``Decimal`` of the JSON text).
class _Llm(msgspec.Struct, tag_field="type", tag="llm", forbid_unknown_fields=True):
    event_id: str | None = None
    timestamp: str | None = None
    project: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    tenant: str | None = None
    provider: str | None = None
    model: str | None = None
    operation: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    uncached_input_tokens: int | None = None
    cost: msgspec.Raw = msgspec.Raw(_NULL)


class _Infra(msgspec.Struct, tag_field="type", tag="infra", forbid_unknown_fields=True):
    event_id: str | None = None
    timestamp: str | None = None
    project: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    tenant: str | None = None
    resource_type: str | None = None
    quantity: msgspec.Raw = msgspec.Raw(_NULL)
    unit: str | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[_Llm | _Infra]


_DECODER = msgspec.json.Decoder(_Batch)


# position, event_id, occurred_at, project, run_id, job_id, tenant (as in ``events``)
_Common = tuple[int, str, datetime, str, str, str, str]


class _Unsure(Exception):
    """Something the general path must look at (it reports it, or accepts it)."""


def _text(value: str, max_length: int) -> str:
    """``events.text_field`` for a present value."""
    stripped = value.strip()
    if not stripped or len(value) > max_length or not value.isprintable():
        raise _Unsure
    return stripped


def _cached(cache: dict[str, str], check: Callable[[str], str], value: str) -> str:
    known = cache.get(value)
    if known is None:
        known = cache[value] = check(value)
    return known


def _project(value: str) -> str:
    if not SLUG_RE.fullmatch(value):
        raise _Unsure
    return value


def _run_id(value: str) -> str:
    return id_check(value, run=True)


def _provider(value: str) -> str:
    return _text(value, PROVIDER_LENGTH).lower()


def _model(value: str) -> str:
    return _text(value, MODEL_LENGTH)


def _operation(value: str) -> str:
    return _text(value, OPERATION_LENGTH)


def _unit(value: str) -> str:
    return _text(value, UNIT_LENGTH)


def _tenant(value: str) -> str:
    return _text(value, TENANT_LENGTH)


def _raw_decimal(raw: msgspec.Raw, field: str) -> Decimal | None:
    """The number of a raw JSON value as the general path reads it; None for null."""
    data = bytes(raw)
    if data == _NULL:
        return None
    return _decimal(json.loads(data, parse_float=Decimal), field)


def events_decode_fast(
    body: bytes,
    *,
    max_items: int,
    now: datetime,
    max_future: timedelta,
    platform: bool = False,
) -> list[EventIn] | None:
    """Every event of the JSON body ``{"events": [...]}`` when all are valid, else None (also
    for more than ``max_items`` events): then the general path decides and explains."""
    try:
        items = _DECODER.decode(body).events
    except msgspec.DecodeError:  # ValidationError included
        return None
    if len(items) > max_items:
        return None
    try:
        return _events(items, now + max_future, platform)
    except (_Unsure, Invalid, ValueError, ArithmeticError):
        return None


def _events(items: list[_Llm | _Infra], latest: datetime, platform: bool) -> list[EventIn]:
    caches: dict[str, dict[str, str]] = {
        name: {} for name in ("project", "run", "job", "provider", "model", "op", "unit", "tenant")
    }
    projects, runs, jobs = caches["project"], caches["run"], caches["job"]
    providers, models, operations = caches["provider"], caches["model"], caches["op"]
    fromisoformat, utc, earliest = datetime.fromisoformat, UTC, EARLIEST
    events: list[EventIn] = []
    append = events.append
    for index, item in enumerate(items):
        tenant = item.tenant
        if tenant is None:
            if platform:
                raise _Unsure
            tenant = ""
        elif not platform:
            raise _Unsure
        else:
            tenant = _cached(caches["tenant"], _tenant, tenant)
        if item.event_id is None or item.timestamp is None or item.project is None:
            raise _Unsure
        event_id = id_check(item.event_id)
        parsed = fromisoformat(item.timestamp)
        if parsed.tzinfo is None or parsed > latest or parsed < earliest:
            raise _Unsure
        run_id = item.run_id
        job_id = item.job_id
        common: _Common = (
            index,
            event_id,
            parsed.astimezone(utc),
            _cached(projects, _project, item.project),
            "" if run_id is None else _cached(runs, _run_id, run_id),
            "" if job_id is None else _cached(jobs, id_check, job_id),
            tenant,
        )
        if type(item) is _Llm:
            append(_llm(item, common, providers, models, operations))
        else:
            append(_infra(item, common, caches["unit"]))  # type: ignore[arg-type]
    return events


def _count(value: int | None) -> int | None:
    if value is not None and (value < 0 or value > MAX_TOKENS):
        raise _Unsure
    return value


def _llm(
    item: _Llm,
    common: _Common,
    providers: dict[str, str],
    models: dict[str, str],
    operations: dict[str, str],
) -> LlmEventIn:
    """``events._llm`` on a decoded struct."""
    input_tokens = _count(item.input_tokens)
    uncached = _count(item.uncached_input_tokens)
    cached = _count(item.cached_input_tokens) or 0
    cache_write = _count(item.cache_write_tokens) or 0
    output_tokens = _count(item.output_tokens) or 0
    if uncached is not None:
        total = uncached + cached + cache_write
        if input_tokens is not None and input_tokens != total:
            raise _Unsure
        input_tokens = total
    input_tokens = input_tokens or 0
    if cached + cache_write > input_tokens:
        raise _Unsure
    cost = _raw_decimal(item.cost, "cost")
    if cost is not None:
        exponent = cost.as_tuple().exponent
        if cost < 0 or cost > MAX_COST or not isinstance(exponent, int) or -exponent > COST_PLACES:
            raise _Unsure
    if item.provider is None or item.model is None:
        raise _Unsure
    operation = item.operation
    return LlmEventIn(
        *common,
        _cached(providers, _provider, item.provider),
        _cached(models, _model, item.model),
        "generation" if operation is None else _cached(operations, _operation, operation),
        input_tokens,
        output_tokens,
        cached,
        cache_write,
        cost,
    )


def _infra(item: _Infra, common: _Common, units: dict[str, str]) -> InfraEventIn:
    """``events._infra`` on a decoded struct."""
    if item.resource_type not in RESOURCE_TYPES or item.unit is None:
        raise _Unsure
    quantity = _raw_decimal(item.quantity, "quantity")
    if quantity is None or quantity < 0 or quantity > MAX_QUANTITY:
        raise _Unsure
    return InfraEventIn(
        *common,
        item.resource_type,
        quantity.quantize(QUANTITY_QUANTUM),
        _cached(units, _unit, item.unit),
    )
