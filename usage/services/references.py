"""Resolving the projects, runs and jobs that ingested items refer to (current tenant schema).

Projects and runs referenced for the first time are created, so no item is ever refused or
dropped for arriving before what it belongs to; creation uses ``ON CONFLICT DO NOTHING`` in key
order, so concurrent batches create each once. Those that exist are read first and only the
missing ones inserted: an insert that meets a row another transaction has updated waits for that
transaction to end (ingest batches queued behind every lifecycle batch of their runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from factory_portal.pg import prepared_cursor
from usage.services.rollups import RunRollupDeltas


@dataclass(frozen=True)
class RunRef:
    id: int
    run_type: str
    template: str


def projects_ensure(slugs: Iterable[str]) -> dict[str, int]:
    """Project ids by slug; projects seen for the first time are created (named by their slug)."""
    ordered = sorted(set(slugs))
    if not ordered:
        return {}
    with prepared_cursor() as cursor:
        cursor.execute("SELECT slug, id FROM usage_project WHERE slug = ANY(%s)", [ordered])
        found = dict(cursor.fetchall())
        if missing := [
            s for s in ordered if s not in found
        ]:  # known ones are only read (never wait)
            cursor.execute(
                "INSERT INTO usage_project (slug, name, created_at)"
                " SELECT s, s, now() FROM unnest(%s::text[]) AS s"
                " ON CONFLICT (slug) DO NOTHING",
                [missing],
            )
            cursor.execute("SELECT slug, id FROM usage_project WHERE slug = ANY(%s)", [missing])
            found.update(cursor.fetchall())
        return found


def runs_ensure(
    first_seen: dict[str, tuple[int, datetime]],
    *,
    zone: ZoneInfo,
    deltas: RunRollupDeltas | None = None,
    created_ids: set[str] | None = None,
) -> dict[str, RunRef]:
    """Runs by client run id. A run not known yet is created as a Requested stub with the project
    and time it was first seen with; its lifecycle updates fill it in later. Stubs are counted in
    the run rollup like any run (on their local day in ``zone``): into ``deltas`` when given,
    which the caller applies as late in its transaction as it can (the rollup rows stay locked
    until the commit, and concurrent batches of the same project and day wait for them), else
    at once. ``created_ids``, when given, receives the run ids created here."""
    if not first_seen:
        return {}
    ordered = sorted(first_seen)
    select = "SELECT run_id, id, run_type, template_recipe_id FROM usage_run WHERE run_id = ANY(%s)"
    created: list[tuple[int, datetime]] = []
    with prepared_cursor() as cursor:
        # Known runs are only read: an INSERT ... ON CONFLICT that meets a row another
        # transaction is updating (a lifecycle batch) waits for that whole transaction.
        cursor.execute(select, [ordered])
        found = {row[0]: RunRef(row[1], row[2], row[3]) for row in cursor.fetchall()}
        if missing := [r for r in ordered if r not in found]:
            cursor.execute(
                "INSERT INTO usage_run (run_id, project_id, template_recipe_id, run_type, status,"
                " requested_at, failure_type, trace_id, updated_at)"
                " SELECT r, p, '', '', 'Requested', t, '', '', t"
                " FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) AS x(r, p, t)"
                " ON CONFLICT (run_id) DO NOTHING RETURNING project_id, requested_at, run_id",
                [missing, [first_seen[r][0] for r in missing], [first_seen[r][1] for r in missing]],
            )
            rows = cursor.fetchall()
            created = [(project_id, requested_at) for project_id, requested_at, _ in rows]
            if created_ids is not None:
                created_ids.update(run_id for _, _, run_id in rows)
            cursor.execute(select, [missing])
            found.update((row[0], RunRef(row[1], row[2], row[3])) for row in cursor.fetchall())
    counted = deltas if deltas is not None else RunRollupDeltas(zone)
    for project_id, requested_at in created:
        counted.count(
            requested_at=requested_at,
            project_id=project_id,
            run_type="",
            template="",
            status="Requested",
            duration_ms=None,
            sign=1,
        )
    if deltas is None:
        counted.apply()
    return found


# One descent of the job key (run, job, attempt) per pair, whatever the table's size or what the
# planner believes it is: a lateral subquery with a LIMIT is never flattened into a join. As a
# semi-join the planner read the whole table while its statistics lagged its growth (a young
# tenant, between autovacuum's analyses): 1.6 ms a batch at 9,000 jobs, and growing.
JOBS_LOOKUP = (
    "SELECT k.run_id, k.job_id, j.id FROM unnest(%s::bigint[], %s::text[]) AS k(run_id, job_id)"
    " CROSS JOIN LATERAL (SELECT id FROM usage_job WHERE run_id = k.run_id AND job_id = k.job_id"
    " ORDER BY attempt DESC LIMIT 1) AS j"
)


def jobs_lookup(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Latest attempt's job id for (run id, client job id) pairs that exist."""
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    with prepared_cursor() as cursor:
        cursor.execute(JOBS_LOOKUP, [[p[0] for p in pairs], [p[1] for p in pairs]])
        return {(row[0], row[1]): row[2] for row in cursor.fetchall()}
