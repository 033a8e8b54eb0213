"""Storing the errors spans report (``SpanError``) and keeping their groups (``ErrorGroup``).

Each error is stored once per (trace, span, seq): a re-sent span changes nothing, and only errors
stored for the first time count in their group. Runs an error names but that are not known yet
are created as stubs (``usage.services.references``), like usage events do. Groups are upserted
in fingerprint order with ``ON CONFLICT DO UPDATE`` (concurrent requests neither lose counts nor
deadlock). The daily rollup ``ErrorGroupDaily`` is upserted the same way in the same transaction,
from the errors stored for the first time; a run counts in ``runs``/``day_runs`` only if none of
its errors of that group was stored before on that day (and, for ``runs``, template and step).
Concurrent requests carrying the same run's errors of one group and day may both count it once;
``rollups_rebuild`` recounts exactly. Writes in the current tenant schema, inside the caller's
transaction or its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from factory_portal import periods
from factory_portal.tenants.connection import zone_for_writing
from usage.domain.errors import ErrorIn, Fingerprint, fingerprint
from usage.services.ingest import _copy_insert
from usage.services.references import projects_ensure, runs_ensure
from usage.services.rollups import error_daily_rebuild

COLUMNS = (
    "run_id, job_id, job_ref, step_name, attempt, trace_id, span_id, seq, span_name, source,"
    " occurred_at, type, message, stacktrace, top_frame, fingerprint, template, run_type"
)
TYPES = ["int8", "int8", "text", "text", "int4", "text", "text", "int4", "text", "text"]
TYPES += ["timestamptz", "text", "text", "text", "text", "text", "text", "text"]
ERRORS_TEMP = (
    "CREATE TEMP TABLE errors_in (run_id bigint, job_id bigint, job_ref text, step_name text,"
    " attempt int, trace_id text, span_id text, seq int, span_name text, source text,"
    " occurred_at timestamptz, type text, message text, stacktrace text, top_frame text,"
    " fingerprint text, template text, run_type text)"
)
SPAN_ERROR_INSERT = (
    f"INSERT INTO usage_spanerror ({COLUMNS}) SELECT {COLUMNS} FROM errors_in"  # noqa: S608 - fixed names
    " ON CONFLICT (trace_id, span_id, seq) DO NOTHING"
    " RETURNING id, fingerprint, occurred_at, run_id, template, step_name"
)

GROUP_UPSERT = """
INSERT INTO usage_errorgroup (fingerprint, type, message, top_frame, first_seen, last_seen,
    occurrences)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
    %s::timestamptz[], %s::bigint[])
ORDER BY 1
ON CONFLICT (fingerprint) DO UPDATE SET
    first_seen = LEAST(usage_errorgroup.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(usage_errorgroup.last_seen, EXCLUDED.last_seen),
    occurrences = usage_errorgroup.occurrences + EXCLUDED.occurrences
"""


# What the batch's (run, group) pairs already stored, by day, template and step, before the insert.
DAILY_BEFORE = """
SELECT e.fingerprint, e.run_id, (e.occurred_at AT TIME ZONE %(zone)s)::date, e.template,
    e.step_name
FROM usage_spanerror e
JOIN (SELECT DISTINCT * FROM unnest(%(runs)s::bigint[], %(prints)s::text[])) p(run_id, fingerprint)
    ON e.run_id = p.run_id AND e.fingerprint = p.fingerprint
WHERE e.occurred_at >= %(low)s AND e.occurred_at < %(high)s
GROUP BY 1, 2, 3, 4, 5
"""

DAILY_UPSERT = """
INSERT INTO usage_errorgroupdaily (fingerprint, day, template, step_name, errors, runs, day_runs,
    first_seen, last_seen)
SELECT * FROM unnest(%s::text[], %s::date[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],
    %s::bigint[], %s::timestamptz[], %s::timestamptz[])
ORDER BY 1, 2, 3, 4
ON CONFLICT (fingerprint, day, template, step_name) DO UPDATE SET
    errors = usage_errorgroupdaily.errors + EXCLUDED.errors,
    runs = usage_errorgroupdaily.runs + EXCLUDED.runs,
    day_runs = usage_errorgroupdaily.day_runs + EXCLUDED.day_runs,
    first_seen = LEAST(usage_errorgroupdaily.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(usage_errorgroupdaily.last_seen, EXCLUDED.last_seen)
"""

DailyKey = tuple[str, date, str, str]  # fingerprint, day, template, step


@dataclass
class _Daily:
    first_seen: datetime
    last_seen: datetime
    errors: int = 0
    runs: int = 0
    day_runs: int = 0


@dataclass
class _Group:
    type: str
    message: str
    top_frame: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int = 0


def span_errors_ingest(*, errors: Sequence[ErrorIn]) -> int:
    """Store ``errors`` (each once) and count the new ones in their groups; returns how many
    were new."""
    errors = list({(e.trace_id, e.span_id, e.seq): e for e in errors}.values())
    if not errors:
        return 0
    with transaction.atomic():
        zone = zone_for_writing()
        projects = projects_ensure(e.project for e in errors)
        first_seen: dict[str, tuple[int, datetime]] = {}
        for e in errors:
            if e.run_id not in first_seen or e.occurred_at < first_seen[e.run_id][1]:
                first_seen[e.run_id] = (projects[e.project], e.occurred_at)
        runs = runs_ensure(first_seen, zone=zone)
        jobs = _job_attempts((runs[e.run_id].id, e.job_id) for e in errors if e.job_id)
        rows: list[tuple] = []
        prints = {}
        known: dict[tuple[str, str, str], Fingerprint] = {}  # an error storm repeats itself
        for e in errors:
            run = runs[e.run_id]
            found = jobs.get((run.id, e.job_id), {})
            job_pk = found.get(e.attempt or 0) or (max(found.items())[1] if found else None)
            key = (e.type, e.message, e.stacktrace)
            printed = known.get(key) or known.setdefault(key, fingerprint(*key))
            prints[printed.value] = (e.type, printed.normalised_message, printed.top_frame)
            rows.append(
                (
                    run.id,
                    job_pk,
                    e.job_id,
                    e.step_name,
                    e.attempt,
                    e.trace_id,
                    e.span_id,
                    e.seq,
                    e.span_name,
                    e.source,
                    e.occurred_at,
                    e.type,
                    e.message,
                    e.stacktrace,
                    printed.top_frame,
                    printed.value,
                    run.template,
                    run.run_type,
                )
            )
        with connection.cursor() as cursor:
            before = _daily_before(cursor, zone, rows)
        stored = _copy_insert(ERRORS_TEMP, "errors_in", TYPES, rows, SPAN_ERROR_INSERT)
        with connection.cursor() as cursor:
            _daily_count(cursor, zone, stored, before)
            groups: dict[str, _Group] = {}
            for _, value, occurred_at, *_ in stored:
                group = groups.setdefault(value, _Group(*prints[value], occurred_at, occurred_at))
                group.first_seen = min(group.first_seen, occurred_at)
                group.last_seen = max(group.last_seen, occurred_at)
                group.occurrences += 1
            if groups:
                ordered = sorted(groups.items())
                cursor.execute(
                    GROUP_UPSERT,
                    [
                        [k for k, _ in ordered],
                        [g.type for _, g in ordered],
                        [g.message for _, g in ordered],
                        [g.top_frame for _, g in ordered],
                        [g.first_seen for _, g in ordered],
                        [g.last_seen for _, g in ordered],
                        [g.occurrences for _, g in ordered],
                    ],
                )
    return len(stored)


def _daily_before(
    cursor: CursorWrapper, zone: ZoneInfo, rows: list[tuple]
) -> set[tuple[str, int, date, str, str]]:
    """(group, run, day, template, step) of the errors stored before of the batch's runs and
    groups, on the batch's days (an index range per run)."""
    if not rows:
        return set()
    days = [row[10].astimezone(zone).date() for row in rows]
    low, high = periods.local_bounds(min(days), max(days) + timedelta(days=1), zone)
    pairs = sorted({(row[0], row[15]) for row in rows})
    cursor.execute(
        DAILY_BEFORE,
        {
            "zone": str(zone),
            "runs": [p[0] for p in pairs],
            "prints": [p[1] for p in pairs],
            "low": low,
            "high": high,
        },
    )
    return {(fp, run, day, template, step) for fp, run, day, template, step in cursor.fetchall()}


def _daily_count(
    cursor: CursorWrapper,
    zone: ZoneInfo,
    stored: Sequence[tuple],
    before: set[tuple[str, int, date, str, str]],
) -> None:
    """Count the newly stored errors in ``ErrorGroupDaily``."""
    daily: dict[DailyKey, _Daily] = {}
    first_of_day: dict[tuple[str, date, int], tuple[int, DailyKey]] = {}
    seen: set[tuple[str, int, date, str, str]] = set()
    old_days = {(fp, day, run) for fp, run, day, _, _ in before}
    for pk, fp, occurred_at, run, template, step in stored:
        day = occurred_at.astimezone(zone).date()
        key = (fp, day, template, step)
        row = daily.setdefault(key, _Daily(occurred_at, occurred_at))
        row.errors += 1
        row.first_seen = min(row.first_seen, occurred_at)
        row.last_seen = max(row.last_seen, occurred_at)
        pair = (fp, run, day, template, step)
        if pair not in before and pair not in seen:
            seen.add(pair)
            row.runs += 1
        if (fp, day, run) not in old_days:
            found = first_of_day.get((fp, day, run))
            if found is None or pk < found[0]:
                first_of_day[(fp, day, run)] = (pk, key)
    for _, key in first_of_day.values():
        daily[key].day_runs += 1
    if not daily:
        return
    ordered = sorted(daily.items())
    cursor.execute(
        DAILY_UPSERT,
        [
            [k[0] for k, _ in ordered],
            [k[1] for k, _ in ordered],
            [k[2] for k, _ in ordered],
            [k[3] for k, _ in ordered],
            [d.errors for _, d in ordered],
            [d.runs for _, d in ordered],
            [d.day_runs for _, d in ordered],
            [d.first_seen for _, d in ordered],
            [d.last_seen for _, d in ordered],
        ],
    )


def _job_attempts(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], dict[int, int]]:
    """Job row ids by (run id, client job id), then attempt."""
    ordered = sorted(set(pairs))
    if not ordered:
        return {}
    found: dict[tuple[int, str], dict[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT run_id, job_id, attempt, id FROM usage_job"
            " WHERE (run_id, job_id) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
            [[p[0] for p in ordered], [p[1] for p in ordered]],
        )
        for run_id, job_id, attempt, pk in cursor.fetchall():
            found.setdefault((run_id, job_id), {})[attempt] = pk
    return found


def span_errors_runs_refresh(*, run_ids: Iterable[str]) -> None:
    """Copy the template and run type of these runs onto their errors (a run span that arrives
    after its errors names them), and recount the daily rollup of the groups and days whose
    errors changed template."""
    ordered = sorted(set(run_ids))
    if not ordered:
        return
    with transaction.atomic():
        zone = zone_for_writing()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE usage_spanerror e"
                " SET template = r.template_recipe_id, run_type = r.run_type"
                " FROM usage_run r WHERE r.run_id = ANY(%s) AND e.run_id = r.id AND"
                " (e.template, e.run_type) IS DISTINCT FROM (r.template_recipe_id, r.run_type)"
                " RETURNING e.fingerprint, e.occurred_at",
                [ordered],
            )
            moved = {(fp, at.astimezone(zone).date()) for fp, at in cursor.fetchall()}
        error_daily_rebuild(zone=zone, keys=moved)
