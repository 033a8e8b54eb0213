"""Re-pricing a past period after a price correction, as auditable correction entries.

Calls keep the cost they were stored with; each call whose price changed gets an
``LlmCostCorrection`` (previous cost, new cost, delta, the price entry that now applies) and the
hourly and daily rollups and the run ledger move by the delta in the call's own hour and day.
Client-supplied costs are never re-priced. Running it again changes nothing; it works in chunks
of calls, each in its own transaction, so a long period does not hold one huge transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from factory_portal.tenants.connection import current_tenant, zone_for_writing
from usage.domain.retention import raw_period_check
from usage.models import CostSource, LlmCostCorrection, LlmUsageEvent
from usage.pricing import Pricer
from usage.services.rollups import rollup_stripe

CHUNK = 5000
ZERO = Decimal(0)


@dataclass
class RepriceResult:
    examined: int = 0
    corrected: int = 0
    newly_priced: int = 0
    delta: Decimal = ZERO


def _current_costs(event_ids: list[str]) -> dict[str, Decimal | None]:
    """The latest corrected cost of events that have corrections."""
    rows = (
        LlmCostCorrection.objects.filter(event_id__in=event_ids)
        .order_by("event_id", "id")  # correction ids grow: each event's latest comes last
        .values_list("event_id", "new_cost")
    )
    return dict(rows)  # ordered by id: each event's latest correction wins


def llm_reprice(
    *, start: datetime, end: datetime, pricer: Pricer, reason: str, dry_run: bool = False
) -> RepriceResult:
    """Re-price the current schema's calls with ``start <= occurred_at < end``. A period that
    begins before the tenant's first kept raw event is refused (``RawEventsExpired``): its calls
    are gone, and re-pricing needs each call's tokens."""
    raw_period_check(start=start, retained_from=current_tenant().raw_retained_from)
    result = RepriceResult()
    last_id = ""
    while True:
        with transaction.atomic():
            zone = str(zone_for_writing())
            events = list(
                LlmUsageEvent.objects.select_for_update()
                .filter(occurred_at__gte=start, occurred_at__lt=end, event_id__gt=last_id)
                .exclude(cost_source=CostSource.CLIENT)
                .order_by("event_id")[:CHUNK]
            )
            if not events:
                return result
            last_id = events[-1].event_id
            result.examined += len(events)
            corrected = _chunk_reprice(events, pricer, reason, result)
            if corrected and not dry_run:
                LlmCostCorrection.objects.bulk_create(corrected)
                _rollups_adjust(events, corrected, zone)


def _chunk_reprice(
    events: list[LlmUsageEvent], pricer: Pricer, reason: str, result: RepriceResult
) -> list[LlmCostCorrection]:
    current = _current_costs([e.event_id for e in events])
    corrections = []
    for e in events:
        before = current.get(e.event_id, e.cost)
        priced = pricer.price(e)
        after = priced.cost if priced is not None else None
        if after == before:
            continue
        delta = (after or ZERO) - (before or ZERO)
        result.corrected += 1
        result.delta += delta
        result.newly_priced += before is None
        corrections.append(
            LlmCostCorrection(
                event=e,
                run_id=e.run_id,
                previous_cost=before,
                new_cost=after,
                delta=delta,
                price_ref=priced.price_ref if priced is not None else None,
                override_ref=priced.override_ref if priced is not None else None,
                reason=reason[:200],
            )
        )
    return corrections


def _rollups_adjust(
    events: list[LlmUsageEvent], corrections: list[LlmCostCorrection], zone: str
) -> None:
    """Move the rollups (the call's UTC hour and local day) and the run ledger (the call's run
    and local day) by each correction's cost change and change of priced state."""
    by_id = {e.event_id: e for e in events}
    rows = []
    for c in corrections:
        e = by_id[c.event_id]
        unpriced = (c.new_cost is None) - (c.previous_cost is None)
        rows.append(
            (
                e.occurred_at,
                e.project_id,
                e.provider,
                e.model,
                e.operation,
                e.run_type,
                e.template,
                c.delta,
                unpriced,
                e.run_id,
                unpriced * (e.input_tokens + e.output_tokens),
                e.job_ref,
            )
        )
    rows.sort(key=lambda r: (r[0], *r[1:7]))
    params = {f"p{i}": [row[i] for row in rows] for i in range(12)}
    params["zone"] = zone
    values = (
        "unnest(%(p0)s::timestamptz[], %(p1)s::bigint[], %(p2)s::text[], %(p3)s::text[],"
        " %(p4)s::text[], %(p5)s::text[], %(p6)s::text[], %(p7)s::numeric[], %(p8)s::int[],"
        " %(p9)s::bigint[], %(p10)s::bigint[], %(p11)s::text[]) AS v(at, project_id, provider,"
        " model, operation, run_type, template, d, u, run_id, tokens, job_ref)"
    )
    with connection.cursor() as cursor:
        for table, bucket, expression in (
            ("usage_llmusagehourly", "hour", "date_trunc('hour', v.at, 'UTC')"),
            ("usage_llmusagedaily", "day", "(v.at AT TIME ZONE %(zone)s)::date"),
        ):
            cursor.execute(
                f"UPDATE {table} AS r SET cost = r.cost + x.d, "  # noqa: S608 - fixed names
                "unpriced_calls = r.unpriced_calls + x.u "
                f"FROM (SELECT {expression} AS bucket, project_id, provider, model, operation,"
                f" run_type, template, sum(d) AS d, sum(u) AS u FROM {values}"
                " GROUP BY 1, 2, 3, 4, 5, 6, 7) AS x "
                f"WHERE r.{bucket} = x.bucket AND r.project_id = x.project_id"
                " AND r.provider = x.provider AND r.model = x.model"
                " AND r.operation = x.operation AND r.run_type = x.run_type"
                " AND r.template = x.template",
                params,
            )
        # The ledger and the step rollup are striped (usage.services.rollups.rollup_stripe): a
        # change goes to this transaction's stripe of each key that has a row.
        params["stripe"] = rollup_stripe()
        cursor.execute(
            "INSERT INTO usage_runledger (run_id, day, stripe, cost, unpriced_calls,"  # noqa: S608
            " unpriced_tokens) SELECT x.run_id, x.day, %(stripe)s, x.d, x.u, x.tokens"
            " FROM (SELECT run_id, (v.at AT TIME ZONE %(zone)s)::date AS day, sum(d) AS d,"
            f" sum(u) AS u, sum(tokens) AS tokens FROM {values} WHERE v.run_id IS NOT NULL"
            " GROUP BY 1, 2) AS x"
            " WHERE EXISTS (SELECT 1 FROM usage_runledger r"
            " WHERE r.run_id = x.run_id AND r.day = x.day)"
            " ORDER BY 1, 2"
            " ON CONFLICT (run_id, day, stripe) DO UPDATE SET"
            " cost = usage_runledger.cost + EXCLUDED.cost,"
            " unpriced_calls = usage_runledger.unpriced_calls + EXCLUDED.unpriced_calls,"
            " unpriced_tokens = usage_runledger.unpriced_tokens + EXCLUDED.unpriced_tokens",
            params,
        )
        # The step rollup counts a call under its run's day and template and its job's step.
        cursor.execute(
            "INSERT INTO usage_stepdaily (day, template, step_name, stripe, cost)"  # noqa: S608
            " SELECT x.day, x.template, x.step_name, %(stripe)s, x.d"
            " FROM (SELECT (r.requested_at AT TIME ZONE %(zone)s)::date AS day,"
            " r.template_recipe_id AS template, j.step_name, sum(v.d) AS d"
            f" FROM {values} JOIN usage_run r ON r.id = v.run_id"
            " JOIN LATERAL (SELECT step_name FROM usage_job WHERE run_id = v.run_id"
            " AND job_id = v.job_ref ORDER BY attempt DESC LIMIT 1) j ON true"
            " WHERE v.job_ref <> '' GROUP BY 1, 2, 3) AS x"
            " WHERE EXISTS (SELECT 1 FROM usage_stepdaily s WHERE s.day = x.day"
            " AND s.template = x.template AND s.step_name = x.step_name)"
            " ORDER BY 1, 2, 3"
            " ON CONFLICT (day, template, step_name, stripe)"
            " DO UPDATE SET cost = usage_stepdaily.cost + EXCLUDED.cost",
            params,
        )
