"""Storing the errors spans report (``SpanError``) and keeping their groups (``ErrorGroup``).

Each error is stored once per (trace, span, seq): a re-sent span changes nothing, and only errors
stored for the first time count in their group. Runs an error names but that are not known yet
are created as stubs (``usage.services.references``), like usage events do. Groups are upserted
in fingerprint order with ``ON CONFLICT DO UPDATE`` (concurrent requests neither lose counts nor
deadlock). Writes in the current tenant schema, inside the caller's transaction or its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from factory_portal.tenants.connection import zone_for_writing
from usage.domain.errors import ErrorIn, Fingerprint, fingerprint
from usage.services.ingest import _copy_insert
from usage.services.references import projects_ensure, runs_ensure

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
    " ON CONFLICT (trace_id, span_id, seq) DO NOTHING RETURNING fingerprint, occurred_at"
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
        stored = _copy_insert(ERRORS_TEMP, "errors_in", TYPES, rows, SPAN_ERROR_INSERT)
        with connection.cursor() as cursor:
            groups: dict[str, _Group] = {}
            for value, occurred_at in stored:
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
    after its errors names them)."""
    ordered = sorted(set(run_ids))
    if not ordered:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE usage_spanerror e SET template = r.template_recipe_id, run_type = r.run_type"
            " FROM usage_run r WHERE r.run_id = ANY(%s) AND e.run_id = r.id"
            " AND (e.template, e.run_type) IS DISTINCT FROM (r.template_recipe_id, r.run_type)",
            [ordered],
        )
