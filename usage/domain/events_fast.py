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
from typing import Annotated

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
_RAW_NULL = msgspec.Raw(_NULL)  # compared as is: no bytes made of a call's absent cost
# A token count as ``events._count`` accepts it, checked by the compiled decoder: a JSON integer
# (not a bool, not 1.0) from 0 to MAX_TOKENS; anything else fails the decode.
_Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]


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
    input_tokens: _Tokens | None = None
    output_tokens: _Tokens | None = None
    cached_input_tokens: _Tokens | None = None
    cache_write_tokens: _Tokens | None = None
    uncached_input_tokens: _Tokens | None = None
    cost: msgspec.Raw = _RAW_NULL


class _Infra(msgspec.Struct, tag_field="type", tag="infra", forbid_unknown_fields=True):
    event_id: str | None = None
    timestamp: str | None = None
    project: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    tenant: str | None = None
    resource_type: str | None = None
    quantity: msgspec.Raw = _RAW_NULL
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
    except (msgspec.DecodeError, RecursionError):  # ValidationError included; JSON too deep
        return None
    if len(items) > max_items:
        return None
    try:
        return _events(items, now + max_future, platform)
    except (_Unsure, Invalid, ValueError, ArithmeticError, RecursionError):
        # RecursionError: a cost or quantity nested deeper than ``json`` reads, which msgspec
        # passed on as raw JSON; the general path refuses the body as JSON.
        return None


def _events(items: list[_Llm | _Infra], latest: datetime, platform: bool) -> list[EventIn]:
    """The events of decoded ``items``, or ``_Unsure`` (or the general path's exceptions).

    One loop with the LLM call's checks written out: at 5,000 events a batch, a Python call per
    field (a helper per check, a tuple of the common fields unpacked into each event) cost more
    than the checks themselves. Values that repeat are checked once per batch (the dicts)."""
    tenants: dict[str, str] = {}
    projects: dict[str, str] = {}
    runs: dict[str, str] = {}
    jobs: dict[str, str] = {}
    providers: dict[str, str] = {}
    models: dict[str, str] = {}
    operations: dict[str, str] = {}
    units: dict[str, str] = {}
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
            tenant = _cached(tenants, _tenant, tenant)
        event_id, timestamp, project = item.event_id, item.timestamp, item.project
        if event_id is None or timestamp is None or project is None:
            raise _Unsure
        event_id = id_check(event_id)
        parsed = fromisoformat(timestamp)
        if parsed.tzinfo is None or parsed > latest or parsed < earliest:
            raise _Unsure
        occurred_at = parsed.astimezone(utc)
        if (checked := projects.get(project)) is None:
            checked = projects[project] = _project(project)
        project = checked
        run_id = item.run_id
        if run_id is None:
            run_id = ""
        else:
            if (checked := runs.get(run_id)) is None:
                checked = runs[run_id] = _run_id(run_id)
            run_id = checked
        job_id = item.job_id
        if job_id is None:
            job_id = ""
        else:
            if (checked := jobs.get(job_id)) is None:
                checked = jobs[job_id] = id_check(job_id)
            job_id = checked
        if isinstance(item, _Infra):
            common: _Common = (index, event_id, occurred_at, project, run_id, job_id, tenant)
            append(_infra(item, common, units))
            continue
        # ``events._llm`` on the decoded struct (the counts' bounds were checked by the decoder).
        input_tokens = item.input_tokens
        uncached = item.uncached_input_tokens
        cached = item.cached_input_tokens or 0
        cache_write = item.cache_write_tokens or 0
        if uncached is not None:
            total = uncached + cached + cache_write
            if input_tokens is not None and input_tokens != total:
                raise _Unsure
            input_tokens = total
        elif input_tokens is None:
            input_tokens = 0
        if cached + cache_write > input_tokens:
            raise _Unsure
        cost = None if item.cost == _RAW_NULL else _raw_decimal(item.cost, "cost")
        if cost is not None:
            exponent = cost.as_tuple().exponent
            if (
                cost < 0
                or cost > MAX_COST
                or not isinstance(exponent, int)
                or -exponent > COST_PLACES
            ):
                raise _Unsure
        provider, model, operation = item.provider, item.model, item.operation
        if provider is None or model is None:
            raise _Unsure
        if (checked := providers.get(provider)) is None:
            checked = providers[provider] = _provider(provider)
        provider = checked
        if (checked := models.get(model)) is None:
            checked = models[model] = _model(model)
        model = checked
        if operation is None:
            operation = "generation"
        else:
            if (checked := operations.get(operation)) is None:
                checked = operations[operation] = _operation(operation)
            operation = checked
        append(
            LlmEventIn(
                index,
                event_id,
                occurred_at,
                project,
                run_id,
                job_id,
                tenant,
                provider,
                model,
                operation,
                input_tokens,
                item.output_tokens or 0,
                cached,
                cache_write,
                cost,
            )
        )
    return events


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
