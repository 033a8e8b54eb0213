"""An events batch that refers to a known run does not wait for a lifecycle batch that is updating
that run (under mixed load ingest requests queued for seconds behind each other with idle CPU:
``INSERT ... ON CONFLICT`` on a row another transaction has updated waits for it to end)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django_tenants.utils import schema_context

from tests.support import in_own_connection, llm_event_in
from usage.models import Project, Run
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

SLUG = "lockwait"
RUN_ID = "lockwait-run-1"


def _create_run(schema: str) -> None:
    with schema_context(schema):
        project = Project.objects.create(slug=SLUG, name=SLUG)
        now = datetime.now(UTC)
        Run.objects.create(
            run_id=RUN_ID, project=project, status="Running", requested_at=now, updated_at=now
        )


def _cleanup(schema: str) -> None:
    with schema_context(schema), connection.cursor() as cursor:
        project = "(SELECT id FROM usage_project WHERE slug = %s)"
        for table in (
            "usage_llmusageevent",
            "usage_llmusagehourly",
            "usage_llmusagedaily",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE project_id IN {project}", [SLUG])  # noqa: S608
        cursor.execute(
            "DELETE FROM usage_runledger"
            " WHERE run_id IN (SELECT id FROM usage_run WHERE run_id = %s)",
            [RUN_ID],
        )
        cursor.execute("DELETE FROM usage_run WHERE run_id = %s", [RUN_ID])
        cursor.execute("DELETE FROM usage_project WHERE slug = %s", [SLUG])


def test_events_of_a_run_being_updated_do_not_wait_for_that_update(alpha):
    in_own_connection(_create_run, alpha.schema)
    updated, release = threading.Event(), threading.Event()

    def lifecycle_batch() -> None:
        """Updates the run and keeps its transaction open, as runs_ingest does while it moves
        the run's jobs and rollups."""
        with schema_context(alpha.schema), transaction.atomic():
            Run.objects.filter(run_id=RUN_ID).update(status="Succeeded")
            updated.set()
            release.wait(30)

    holder = threading.Thread(target=lambda: in_own_connection(lifecycle_batch))
    holder.start()
    try:
        assert updated.wait(30)

        def ingest() -> None:
            with schema_context(alpha.schema), transaction.atomic():
                with connection.cursor() as cursor:  # waiting on a lock fails this test
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                result = events_ingest(
                    events=[
                        llm_event_in(
                            f"lockwait-{n}", datetime.now(UTC), project=SLUG, run_id=RUN_ID
                        )
                        for n in range(3)
                    ],
                    pricer=pricer_for(alpha.tenant),
                )
                assert result.accepted == 3

        in_own_connection(ingest)
        assert not release.is_set()  # stored while the lifecycle batch still held the run
    finally:
        release.set()
        holder.join(60)
        in_own_connection(_cleanup, alpha.schema)
