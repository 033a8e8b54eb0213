"""Every ingest path writes the shared rollup rows in one order: the run ledger, then
``StepDaily``, then ``RunDaily``. Two paths taking two of them in opposite orders deadlock under
mixed load (seen as 2-5 deadlocks a run of benchmarks/load.py between events batches and
lifecycle batches, answered 503 after retries)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.support import llm_event_in
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

ORDER = ["usage_runledger", "usage_stepdaily", "usage_rundaily"]
WRITE = re.compile(
    r'(?:INSERT INTO|UPDATE|FROM) "?(usage_runledger|usage_stepdaily|usage_rundaily)\b'
)


def _tables_written(action) -> list[str]:  # type: ignore[no-untyped-def]
    """The rollup tables in the order ``action``'s SQL first locks or writes them."""
    seen: list[str] = []

    def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        locking = not sql.lstrip().upper().startswith("SELECT") or "FOR UPDATE" in sql
        if locking:
            for table in WRITE.findall(sql):
                if table not in seen:
                    seen.append(table)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        action()
    return seen


def _in_order(tables: list[str]) -> bool:
    return tables == sorted(tables, key=ORDER.index)


def test_lifecycle_and_events_batches_take_rollup_rows_in_one_order(alpha):
    at = datetime.now(UTC) - timedelta(minutes=5)
    with schema_context(alpha.schema):

        def lifecycle() -> None:
            job = JobUpdate(
                "build",
                1,
                "Succeeded",
                at,
                step_name="build",
                started_at=at,
                finished_at=at + timedelta(seconds=1),
            )
            runs_ingest(
                updates=[
                    RunUpdate(
                        0,
                        "order-1",
                        "web",
                        "Running",
                        at,
                        template_recipe_id="react-spa",
                        requested_at=at,
                        started_at=at,
                        jobs=(job,),
                    )
                ]
            )

        lifecycle_tables = _tables_written(lifecycle)
        events_tables = _tables_written(
            lambda: events_ingest(
                events=[llm_event_in("order-e1", at, project="web", run_id="order-2")],
                pricer=pricer_for(alpha.tenant),
            )
        )
    assert len(lifecycle_tables) == 3, lifecycle_tables  # the batch touched all three
    assert _in_order(lifecycle_tables), lifecycle_tables
    assert len(events_tables) >= 2, events_tables
    assert _in_order(events_tables), events_tables


def test_an_events_batch_writes_the_rollups_in_that_order_as_postgresql_runs_it(alpha):
    """Read from the database, not the SQL text: inside one statement PostgreSQL runs the
    data-modifying ``WITH`` queries nothing reads in an order of its own (the step rollup's
    insert, last in the text, ran before the ledger's). Triggers note each table's first row."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    notes: list[str] = []
    with schema_context(alpha.schema):
        job = JobUpdate("build", 1, "Running", at, step_name="build", started_at=at)
        run = RunUpdate(
            0,
            "order-3",
            "web",
            "Running",
            at,
            template_recipe_id="react-spa",
            requested_at=at,
            jobs=(job,),
        )
        runs_ingest(updates=[run])
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION pg_temp.note_write() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE NOTICE 'wrote %', TG_TABLE_NAME; RETURN NEW; END $$"
            )
            for table in ("usage_llmusageevent", *ORDER):
                cursor.execute(
                    f"CREATE TRIGGER note_write BEFORE INSERT ON {table}"
                    " FOR EACH ROW EXECUTE FUNCTION pg_temp.note_write()"
                )
        raw = connection.connection

        def note(notice) -> None:  # type: ignore[no-untyped-def]
            notes.append(notice.message_primary)

        raw.add_notice_handler(note)
        try:
            result = events_ingest(
                events=[
                    llm_event_in("order-e3", at, project="web", run_id="order-3", job_id="build")
                ],
                pricer=pricer_for(alpha.tenant),
            )
        finally:
            raw.remove_notice_handler(note)
    assert result.accepted == 1
    written = list(dict.fromkeys(n.removeprefix("wrote ") for n in notes if n.startswith("wrote ")))
    # The event first (a batch waiting for a shared event holds no rollup row), then the order.
    assert written[0].startswith("usage_llmusageevent"), written
    rollups = [t for t in written if t in ORDER]
    assert rollups[:2] == ["usage_runledger", "usage_stepdaily"], written
