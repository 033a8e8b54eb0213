"""The ingest path's statements are prepared on the server once per connection
(``factory_portal.pg.prepared_cursor``). A prepared statement keeps the result type it was
prepared with: while ``migrate_schemas`` has changed a column in one tenant schema and not yet in
another, the statement prepared in one fails in the other ("cached plan must not change result
type"). The ingest transaction runs the batch again without preparing, and the batch is stored:
one tenant's request, and a batch of several tenants in one transaction, which would meet their
schemas in the same order again."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for, llm_event_in
from usage.models import LlmUsageEvent
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.routing import ingest_transaction, per_tenant
from usage.tests.test_api_events import llm

pytestmark = pytest.mark.django_db


def _post(tenant, events):  # type: ignore[no-untyped-def]
    _, raw = key_for(tenant, ["ingest"])
    return host_client(tenant.host).post(
        "/api/v1/events",
        data=json.dumps({"events": events}),
        content_type="application/json",
        **bearer(raw),
    )


def _migrate(schema: str) -> None:
    """A migration of one tenant schema, as another session runs it (psycopg does not see it on
    this connection): the column the projects' lookup returns changes type."""
    altered = f'ALTER TABLE "{schema}".usage_project ALTER COLUMN slug TYPE varchar(120)'
    connection.connection.pgconn.exec_(altered.encode())


def test_a_statement_prepared_before_a_migration_is_run_again(alpha, beta, caplog):
    assert _post(alpha, [llm("before")]).status_code == 200  # prepares the path in alpha
    _migrate(beta.schema)
    with caplog.at_level(logging.INFO, logger="usage.services.routing"):
        response = _post(beta, [llm("after")])
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert "outlived a migration" in caplog.text  # the first attempt did fail
    with schema_context(beta.schema):
        assert LlmUsageEvent.objects.filter(event_id="after").exists()
    assert _post(alpha, [llm("again")]).status_code == 200


def test_a_batch_of_tenants_at_different_migration_states_is_stored(alpha, beta, caplog):
    at = datetime.now(UTC) - timedelta(minutes=5)
    groups = {
        alpha.tenant: [llm_event_in("both-alpha", at)],
        beta.tenant: [llm_event_in("both-beta", at)],
    }
    _migrate(beta.schema)

    def store(tenant, events):  # type: ignore[no-untyped-def]
        return events_ingest(events=events, pricer=pricer_for(tenant)).accepted

    with caplog.at_level(logging.INFO, logger="usage.services.routing"):
        # Alpha's schema first (slug order): its statements are prepared, then fail in beta's.
        accepted = ingest_transaction(lambda: per_tenant(groups, store))
    assert accepted == [1, 1]
    assert caplog.text.count("outlived a migration") == 1
    for tenant, event_id in ((alpha, "both-alpha"), (beta, "both-beta")):
        with schema_context(tenant.schema):
            assert LlmUsageEvent.objects.filter(event_id=event_id).exists()
