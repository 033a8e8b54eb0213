"""Folding the striped rollups' older rows into stripe 0.

``StepDaily`` and ``RunLedger`` get a row per key and stripe a writer used
(``usage.services.rollups.rollup_stripe``): under concurrent ingest a key gathers up to as many
rows as there were concurrent writers, and readers sum them all, for ever. Once a day is past,
its keys are rarely written again, so the beat folds them: each key's rows in another stripe are
added to its stripe 0 row and deleted. Every figure stays the same (readers sum a key's rows
either way); only the number of rows drops.

One short transaction per stripe: it holds that stripe and stripe 0 with the writers' advisory
locks (so writers keep the other 30 and never meet it), skips a stripe a writer holds (a later
fold takes it), and holds the tenant's zone lock shared, as writers do, so a change of time zone
(which rebuilds these tables) waits for it. Only a writer that found every stripe taken shares
one without its lock and may meet the fold's rows; the fold then gives way within
``FOLD_LOCK_TIMEOUT``, long before PostgreSQL's deadlock check (1 s by default) could pick the
writer as the victim.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, models, transaction
from psycopg import errors as pg_errors

from factory_portal.pg import local_setting
from factory_portal.tenants.connection import zone_for_writing
from usage.models import RunLedger
from usage.services.rollups import STEP_ROW, StepRollupDeltas, step_row_figures

logger = logging.getLogger(__name__)

FOLD_LOCK_TIMEOUT = "50ms"  # any lock wait of the fold: it gives way, writers go on
STRIPE_0_TRIES = 10  # stripe 0 is the one writers take first: tried again this many times,
STRIPE_0_PAUSE_S = 0.1  # this far apart (a writer holds it for one batch)

_LEDGER_KEY = ("id", "run_id", "day", "stripe")
_LEDGER_MEASURES = tuple(
    f.column for f in RunLedger._meta.concrete_fields if f.column not in _LEDGER_KEY
)
if not all(
    isinstance(RunLedger._meta.get_field(f.name), models.IntegerField | models.DecimalField)
    for f in RunLedger._meta.concrete_fields
    if f.column in _LEDGER_MEASURES
):
    raise ImproperlyConfigured("every RunLedger column beside its key must be a summable number")

_STRIPE_LOCK = "pg_try_advisory_xact_lock(hashtext(current_schema() || ':rollup-stripe'), %s)"
# A stripe's ledger rows of the days deleted and added to stripe 0, in one statement; answers
# how many rows were folded. A key that had no stripe 0 row gets one (zero sums included).
LEDGER_FOLD = f"""
WITH gone AS (
    DELETE FROM usage_runledger
    WHERE day >= %(since)s AND day < %(before)s AND stripe = %(stripe)s
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
WHERE day >= %(since)s AND day < %(before)s AND stripe = %(stripe)s
RETURNING {STEP_ROW}
"""  # noqa: S608 - fixed names
_STRIPES_USED = """
SELECT stripe FROM usage_runledger WHERE day >= %(since)s AND day < %(before)s AND stripe <> 0
UNION
SELECT stripe FROM usage_stepdaily WHERE day >= %(since)s AND day < %(before)s AND stripe <> 0
ORDER BY 1
"""


_GIVE_WAY = (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected)


@dataclass(frozen=True)
class FoldResult:
    ledger_rows: int  # run ledger rows folded into stripe 0 (deleted)
    step_rows: int  # step rollup rows folded
    complete: bool  # False: a stripe was held by a writer, or the fold gave way to one


def stripes_fold(*, since: date, before: date) -> FoldResult:
    """Fold the current tenant's striped rows of the days ``since <= day < before`` into
    stripe 0, a stripe at a time. Meant to run on its own (a beat task): called inside a
    transaction, the stripes it took stay held until that transaction ends."""
    ledger = steps = 0
    complete = True
    for stripe in _stripes_used(since, before):
        try:
            with transaction.atomic():
                folded = _fold_stripe(stripe, since, before)
        except OperationalError as exc:
            if not isinstance(
                exc.__cause__, pg_errors.LockNotAvailable | pg_errors.DeadlockDetected
            ):
                raise
            logger.info("stripe fold gave way to a writer", extra={"stripe": stripe})
            complete = False
            continue
        if folded is None:
            complete = False
            continue
        ledger, steps = ledger + folded[0], steps + folded[1]
    return FoldResult(ledger, steps, complete)


def _stripes_used(since: date, before: date) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(_STRIPES_USED, {"since": since, "before": before})
        return [int(stripe) for (stripe,) in cursor.fetchall()]


def _take(stripe: int, tries: int = 1) -> bool:
    """Hold ``stripe`` until the transaction ends, as a writer would; never waits for it."""
    with connection.cursor() as cursor:
        for attempt in range(tries):
            if attempt:
                time.sleep(STRIPE_0_PAUSE_S)
            cursor.execute(f"SELECT {_STRIPE_LOCK}", [stripe])
            if cursor.fetchone()[0]:
                return True
    return False


def _fold_stripe(stripe: int, since: date, before: date) -> tuple[int, int] | None:
    """One transaction: ``stripe``'s rows of the days moved into stripe 0; rows folded of each
    table, or None when a writer held ``stripe`` or stripe 0 throughout."""
    with (
        connection.cursor() as cursor,
        local_setting(cursor, "lock_timeout", FOLD_LOCK_TIMEOUT),
    ):
        zone_for_writing()  # the zone lock, shared: a change of time zone waits for the fold
        if not _take(stripe) or not _take(0, tries=STRIPE_0_TRIES):
            return None
        params = {"since": since, "before": before, "stripe": stripe}
        cursor.execute(LEDGER_FOLD, params)
        (ledger,) = cursor.fetchone()
        cursor.execute(STEP_FOLD, params)
        gone = cursor.fetchall()
        # Added to stripe 0 as writers add (rows locked in key order): this transaction holds
        # stripe 0, so ``rollup_stripe`` answers 0 inside it. A key whose rows add up to nothing
        # keeps no row (as ``rollups_rebuild`` leaves it); readers sum the same either way.
        deltas = StepRollupDeltas(ZoneInfo("UTC"))  # the zone is unused: keys carry their day
        for row in gone:
            deltas.add((row[1], row[2], row[3]), step_row_figures(row))
        deltas.apply()
    return int(ledger), len(gone)
