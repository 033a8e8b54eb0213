"""The tenant pages of every app and the web layer make as many queries with 33 runs as with 3:
no page queries once per row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import llm_event_in, logged_in_client, run_finished, run_update
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

PAGES_WITHOUT_N_PLUS_ONE = ["/", "/runs/", "/runs/active/", "/usage/", "/costs/", "/runs/r-0/"]


@pytest.mark.parametrize("path", PAGES_WITHOUT_N_PLUS_ONE)
def test_page_queries_do_not_grow_with_the_data(alpha, path):
    now = timezone.now()

    def add(first: int, count: int) -> None:
        with schema_context(alpha.schema):
            for n in range(first, first + count):
                requested = now - timedelta(hours=n + 1)
                run_finished(f"r-{n}", "Succeeded", requested, 5, project=f"p{n % 4}")
                events_ingest(
                    events=[
                        llm_event_in(
                            f"e-{n}",
                            requested,
                            project=f"p{n % 4}",
                            run_id=f"r-{n}",
                            model=("gpt-4.1", "gpt-4.1-mini")[n % 2],
                        )
                    ],
                    pricer=pricer_for(alpha.tenant),
                )
            run_update(f"live-{first}", "Running", now, project="p0", requested_at=now)

    client = logged_in_client(alpha.host, alpha.admin_email)
    add(0, 3)
    client.get(path)  # warm caches that are filled once (sessions, cost summary)
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    add(3, 30)
    client.get(path)
    with CaptureQueriesContext(connection) as many:
        assert client.get(path).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
