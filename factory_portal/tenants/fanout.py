"""One way to run a Celery task once per customer tenant (the beat's fan-out), bounded.

The beat runs in the public schema; each task is published from inside its tenant's schema, so
tenant-schemas-celery carries the schema and the task runs there. Tasks take no model
instances: whatever they need they read in their tenant's schema.

With many tenants the fan-out stays bounded: the tenants are cut into chunks of
``TENANT_FAN_OUT_CHUNK`` (200); the beat's task only publishes one ``fan_out_chunk`` task per
chunk, each with a ``countdown`` spreading them over the first half of the task's interval,
and the chunk tasks publish the tenants' tasks. A fan-out whose scope is ``"active"`` skips
tenants idle for ``TENANT_IDLE_AFTER_DAYS`` (``factory_portal.tenants.activity``); ``"all"``
(month close, retention, alert rules that watch for silence) never skips. Scope and interval of
each beat task come from ``settings._FAN_OUT_TASKS`` (one entry per task); a fan-out not listed
there runs for all tenants at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from celery import current_task
from django.conf import settings
from django.utils import timezone

from factory_portal.tenants.activity import TenantActivityRow, active_schemas
from factory_portal.tenants.selectors import customer_tenants
from factory_portal.tenants.tasks import fan_out_chunk, publish_in_schemas

Scope = Literal["active", "all"]
# Chunks are spread over this share of the interval, so a round is published before the next.
SPREAD_SHARE = 0.5
UNSCHEDULED_EXPIRES_S = 24 * 3600.0


def fan_out_plan(
    schemas: Sequence[str], *, chunk: int, spread_s: float
) -> list[tuple[float, list[str]]]:
    """``(countdown seconds, schemas)`` per chunk of at most ``chunk`` schemas, the countdowns
    evenly spaced over ``spread_s`` from 0."""
    if chunk < 1:
        raise ValueError("A fan-out chunk holds at least one tenant.")
    chunks = [list(schemas[i : i + chunk]) for i in range(0, len(schemas), chunk)]
    step = spread_s / len(chunks) if chunks else 0.0
    return [(round(i * step, 3), c) for i, c in enumerate(chunks)]


def fan_out_settings(task_name: str | None) -> tuple[Scope, float]:
    """The scope and interval (seconds) ``settings._FAN_OUT_TASKS`` gives the beat task
    ``task_name``: ``("all", 0)`` for a fan-out not listed there."""
    for entry in getattr(settings, "_FAN_OUT_TASKS", ()):
        if entry["task"] == task_name:
            return entry["tenants"], float(entry["every"])
    return "all", 0.0


def fan_out_schemas(scope: Scope) -> list[str]:
    rows = customer_tenants().values_list("schema_name", "created_at", "usage_complete_until")
    if scope == "all":
        return [schema for schema, _, _ in rows]
    return active_schemas((TenantActivityRow(*row) for row in rows), now=timezone.now())


def tenants_fan_out(
    task: Any,
    *,
    args: Sequence[Any] = (),
    tenants: Scope | None = None,
    spread_s: float | None = None,
) -> int:
    """Publish ``task(*args)`` once in the schema of every customer tenant (every active one
    when the scope is ``"active"``); returns how many. ``tenants`` and ``spread_s`` default to
    what ``settings._FAN_OUT_TASKS`` says of the calling beat task."""
    caller = getattr(current_task, "name", None) if current_task else None
    listed_scope, every = fan_out_settings(caller)
    scope: Scope = tenants or listed_scope
    spread = every * SPREAD_SHARE if spread_s is None else spread_s
    schemas = fan_out_schemas(scope)
    chunk = int(getattr(settings, "TENANT_FAN_OUT_CHUNK", 200))
    plan = fan_out_plan(schemas, chunk=chunk, spread_s=spread)
    if len(plan) == 1:  # one chunk: published here, no chunk task needed
        return publish_in_schemas(task.name, args, plan[0][1])
    for countdown, schemas_chunk in plan:
        # A chunk still queued when the next round starts is dropped (that round covers it);
        # a fan-out off the beat (a month's close) keeps its chunks for a day.
        fan_out_chunk.apply_async(
            args=(task.name, list(args), schemas_chunk),
            countdown=countdown,
            expires=countdown + (every or UNSCHEDULED_EXPIRES_S),
        )
    return len(schemas)
