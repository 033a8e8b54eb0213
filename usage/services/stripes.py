"""Folding the striped rollups' older rows into stripe 0.

``StepDaily`` and ``RunLedger`` get a row per key and stripe a writer used
(``usage.services.rollups.rollup_stripe``): under concurrent ingest a key gathers up to as many
rows as there were concurrent writers, and readers sum them all, for ever. Once a day is past,
its keys are rarely written again, so the beat folds them: each key's rows in other stripes are
added to its stripe 0 row and deleted, in one transaction per few days. Every figure stays the
same (readers sum a key's rows either way); only the number of rows drops.

A fold holds the stripes it moves rows out of and stripe 0 (advisory locks, as writers do), so
writers holding a stripe never meet it: it skips stripes held at the time (a later fold takes
them). Only a writer that found every stripe taken shares one without its lock and may wait for
the fold's rows; the fold's short ``lock_timeout`` (below PostgreSQL's deadlock timeout) makes
the fold, never the writer, give way should they wait for each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db import OperationalError, connection, transaction
from psycopg import errors as pg_errors

from usage.models import RunLedger
from usage.services import rollups
from usage.services.rollups import STEP_ROW, StepRollupDeltas, rollup_stripes_hold, step_row_figures

logger = logging.getLogger(__name__)

FOLD_DAYS_PER_TRANSACTION = 7
FOLD_LOCK_TIMEOUT = "500ms"  # below deadlock_timeout (1 s by default): the fold gives way

_LEDGER_KEY = ("id", "run_id", "day", "stripe")
_LEDGER_MEASURES = tuple(
    f.column for f in RunLedger._meta.concrete_fields if f.column not in _LEDGER_KEY
)
# One statement: a few days' ledger rows in the held stripes other than 0 deleted and added to
# stripe 0, in key order (the order of every writer). Answers how many rows were folded.
LEDGER_FOLD = f"""
WITH gone AS (
    DELETE FROM usage_runledger
    WHERE day >= %(start)s AND day < %(end)s AND stripe = ANY(%(stripes)s)
    RETURNING run_id, day, {", ".join(_LEDGER_MEASURES)}
), folded AS (
    INSERT INTO usage_runledger (run_id, day, stripe, {", ".join(_LEDGER_MEASURES)})
    SELECT run_id, day, 0, {", ".join(f"sum({m})" for m in _LEDGER_MEASURES)}
    FROM gone GROUP BY run_id, day ORDER BY run_id, day
    ON CONFLICT (run_id, day, stripe) DO UPDATE SET
    {", ".join(f"{m} = usage_runledger.{m} + EXCLUDED.{m}" for m in _LEDGER_MEASURES)}
)
SELECT count(*) FROM gone
"""  # noqa: S608 - fixed names
STEP_FOLD = f"""
DELETE FROM usage_stepdaily
WHERE day >= %(start)s AND day < %(end)s AND stripe = ANY(%(stripes)s)
RETURNING {STEP_ROW}
"""  # noqa: S608 - fixed names
_FOLD_DAYS = """
SELECT day FROM usage_runledger WHERE day < %(before)s AND stripe <> 0
UNION
SELECT day FROM usage_stepdaily WHERE day < %(before)s AND stripe <> 0
ORDER BY 1
"""


@dataclass(frozen=True)
class FoldResult:
    ledger_rows: int  # run ledger rows folded into stripe 0 (deleted)
    step_rows: int  # step rollup rows folded
    complete: bool  # False: stripes were held by writers, or a lock wait made the fold give way


def stripes_fold(*, before: date) -> FoldResult:
    """Fold the striped rows of the current tenant's days before ``before`` into stripe 0."""
    days = _fold_days(before)
    ledger = steps = 0
    complete = True
    for first in range(0, len(days), FOLD_DAYS_PER_TRANSACTION):
        chunk = days[first : first + FOLD_DAYS_PER_TRANSACTION]
        try:
            with transaction.atomic():
                folded = _fold(chunk[0], chunk[-1] + timedelta(days=1))
        except OperationalError as exc:
            if not isinstance(exc.__cause__, pg_errors.LockNotAvailable):
                raise
            logger.info("stripe fold gave way to a writer", extra={"day": str(chunk[0])})
            return FoldResult(ledger, steps, complete=False)
        if folded is None:
            return FoldResult(ledger, steps, complete=False)
        ledger, steps = ledger + folded[0], steps + folded[1]
        complete = complete and folded[2]
    return FoldResult(ledger, steps, complete)


def _fold_days(before: date) -> list[date]:
    with connection.cursor() as cursor:
        cursor.execute(_FOLD_DAYS, {"before": before})
        return [day for (day,) in cursor.fetchall()]


def _fold(start: date, end: date) -> tuple[int, int, bool] | None:
    """One transaction's fold of the days ``[start, end)``: rows folded of each table and
    whether every stripe was free; None when stripe 0 itself is held (by a writer)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{FOLD_LOCK_TIMEOUT}'")
        held = rollup_stripes_hold()
        if 0 not in held:
            return None
        stripes = [k for k in held if k]
        params = {"start": start, "end": end, "stripes": stripes}
        cursor.execute(LEDGER_FOLD, params)
        (ledger,) = cursor.fetchone()
        cursor.execute(STEP_FOLD, params)
        gone = cursor.fetchall()
    # Added to stripe 0 the way writers add (its rows locked in key order): this transaction
    # holds stripe 0, so ``rollup_stripe`` answers 0 inside it.
    deltas = StepRollupDeltas(ZoneInfo("UTC"))  # the zone is unused: keys carry their day
    for row in gone:
        deltas.add((row[1], row[2], row[3]), step_row_figures(row))
    deltas.apply()
    return int(ledger), len(gone), len(held) == rollups.ROLLUP_STRIPES
