"""The ingest path's statements are prepared on the server once per connection
(``factory_portal.pg.prepared_cursor``). A prepared statement keeps the result type it was
prepared with: while ``migrate_schemas`` has changed a column in one tenant schema and not yet in
another, the statement prepared in one fails in the other ("cached plan must not change result
type"). The ingest transaction runs the batch again, its rollback having dropped the prepared
statements, and the batch is stored."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for
from usage.models import LlmUsageEvent
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


def test_a_statement_prepared_before_a_migration_is_prepared_again(alpha, beta, caplog):
    assert _post(alpha, [llm("before")]).status_code == 200  # prepares the path in alpha
    # beta's migration, as another session runs it: psycopg does not see it on this connection.
    altered = f'ALTER TABLE "{beta.schema}".usage_project ALTER COLUMN slug TYPE varchar(120)'
    connection.connection.pgconn.exec_(altered.encode())
    with caplog.at_level(logging.INFO, logger="usage.services.routing"):
        response = _post(beta, [llm("after")])
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert "outlived a migration" in caplog.text  # the first attempt did fail
    with schema_context(beta.schema):
        assert LlmUsageEvent.objects.filter(event_id="after").exists()
    assert _post(alpha, [llm("again")]).status_code == 200
