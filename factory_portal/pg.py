"""Small PostgreSQL helpers shared by the apps."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, migrations
from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
    register_tzloader,
)
from django.db.backends.utils import CursorWrapper
from django.db.migrations.operations.base import Operation
from django.db.models import Model
from psycopg import Cursor
from psycopg import adapters as pg_adapters
from psycopg.pq import Format

ModelT = TypeVar("ModelT", bound=Model)


_SETTING_SWAP = (
    "WITH previous AS MATERIALIZED (SELECT current_setting(%s) AS value)"
    " SELECT value, set_config(%s, %s, true) FROM previous"
)


@contextmanager
def local_setting(cursor: Any, name: str, value: str) -> Iterator[None]:
    """The setting ``name`` at ``value`` for the statements run on ``cursor`` inside, then back
    to what it was (an outer ``SET LOCAL`` or a session value included; ``RESET`` would drop
    them). Local to the transaction (``set_config(…, true)``), so call it inside one: when a
    statement inside fails, the rollback of the transaction or savepoint puts it back."""
    # One round trip: the materialised CTE's row, read before the outer row's set_config, holds
    # the value in force before it (hot paths take a setting for a single statement).
    cursor.execute(_SETTING_SWAP, [name, name, value])
    previous = cursor.fetchone()[0]
    yield
    cursor.execute("SELECT set_config(%s, %s, true)", [name, previous])


# --- Statements prepared on the server ----------------------------------------------------------
# Django binds parameters on the client (the statement goes out with its values written in), so
# PostgreSQL parses, analyses and plans every statement at every execution. The ingest path's
# statements are long and read partitioned tables: planning alone was 28% of their PostgreSQL time
# (3.8 ms of planning an ingest request of the mixed load, and parsing besides). Prepared once
# per connection, they are only executed after that. Not for the ORM's own statements: Django's
# server-side binding breaks some of them (a parameter repeated in GROUP BY becomes a second,
# different one).
#
# A prepared statement keeps the result type it was prepared with: after a migration changed the
# type of a column it returns (in another session, or in the other tenant schema of a connection
# while ``migrate_schemas`` has not reached every schema), executing it fails once with
# "cached plan must not change result type". The failed transaction's rollback makes psycopg drop
# the connection's prepared statements, and ``usage.services.routing.ingest_transaction`` runs the
# batch again without preparing (``is_stale_plan``, ``statements_unprepared``: a platform batch
# meets its tenants' schemas in the same order again); any other caller fails that once and works
# the next time.


_UNPREPARED: ContextVar[bool] = ContextVar("statements_unprepared", default=False)


@contextmanager
def statements_unprepared() -> Iterator[None]:
    """``prepared_cursor`` gives plain cursors inside (this thread or task only)."""
    token = _UNPREPARED.set(True)
    try:
        yield
    finally:
        _UNPREPARED.reset(token)


def is_stale_plan(error: BaseException | None) -> bool:
    """The error of a prepared statement whose result type a migration changed."""
    cause = getattr(error, "__cause__", None) or error
    return isinstance(cause, psycopg.errors.FeatureNotSupported) and (
        "cached plan must not change result type" in str(cause)
    )


def _statements_recorded(db: Any) -> bool:
    """Whether something records statements by the connection's own cursor class: Django's query
    log (``DEBUG``, ``CaptureQueriesContext``) reads the text a client-binding cursor sent, and
    OpenTelemetry's psycopg instrumentation traces that class only."""
    if db.queries_logged:
        return True
    traced = sys.modules.get("opentelemetry.instrumentation.psycopg")
    return traced is not None and bool(
        traced.PsycopgInstrumentor().is_instrumented_by_opentelemetry
    )


_TIMESTAMPTZ = pg_adapters.types["timestamptz"].oid


@contextmanager
def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[CursorWrapper]:
    """A cursor of Django's connection ``using`` (its transaction, error translation and
    execute wrappers) whose statements are bound and prepared on the server: parsed and planned
    at a connection's first execution, after that only executed. PostgreSQL still plans again
    when it judges a plan for the values better, and parses again when the search path changed:
    a prepared statement follows the tenant schema, as a plain one does. psycopg prepares again
    after any rollback on the connection. A plain cursor instead with ``DB_PREPARE=0`` (a
    connection pooler that does not keep prepared statements), inside ``statements_unprepared``,
    and while Django logs queries or OpenTelemetry traces them (``_statements_recorded``).

    The parameters are sent typed, not written into the text: an empty list or a ``None`` whose
    type PostgreSQL cannot infer needs a cast in the statement (``%s::text[]``)."""
    db = connections[using]
    # Django's cursor first: it connects (or replaces a broken connection) and django-tenants
    # sets the tenant schema's search path on it; the prepared statements run after that.
    with db.cursor() as plain:
        if not settings.DB_PREPARE or _UNPREPARED.get() or _statements_recorded(db):
            yield plain
            return
        raw = plain.cursor.connection
        cursor = Cursor(raw)  # binds on the server; settings' prepare_threshold 0 prepares
        # As Django's own cursors: timestamps in the connection's time zone.
        loader = raw.adapters.get_loader(_TIMESTAMPTZ, Format.TEXT)
        if db.timezone != getattr(loader, "timezone", None):
            register_tzloader(db.timezone, cursor)
        # Django's wrapper, as its own cursors get it: execute wrappers, error translation
        # (django-stubs types the raw cursor it takes as the wrapper).
        with db.make_cursor(cursor) as wrapped:  # type: ignore[arg-type]
            yield wrapped


# --- Migrations that lock busy tables ------------------------------------------------------------
# Dropping an index or a foreign key, or adding a column, locks the table (ACCESS EXCLUSIVE) until
# the schema's migration commits, after waiting behind every transaction that uses it.

LOCK_WAIT_S = 10


def lock_wait_bounded(*operations: Operation, seconds: int = LOCK_WAIT_S) -> list[Operation]:
    """``operations`` between ``SET LOCAL lock_timeout`` statements for either direction
    (operations run last to first when migrating back): the migration gives up after
    ``seconds`` rather than queue the tenant's ingest and pages behind a long transaction (an
    export, a rollup rebuild); ``migrate_schemas`` then fails for that schema, and running it
    again finishes the job."""
    bound = f"SET LOCAL lock_timeout = '{int(seconds)}s'"
    return [
        migrations.RunSQL(bound, reverse_sql=migrations.RunSQL.noop),
        *operations,
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=bound),
    ]


# --- One row as a model instance, without the ORM's query compilation ----------------------------
# For the lookups every request makes (its tenant, its API key): compiling a queryset costs more
# CPU than PostgreSQL spends answering it (a tenant by host name: 1.4 ms through the ORM, 0.5 ms as
# below, most of it the round trip). The instance is what the ORM would build from the same row:
# ``Model.from_db`` with every concrete column (no field of these models converts its value).


def model_columns(model: type[Model], table: str) -> str:
    """Every concrete column of ``model``, quoted, qualified by ``table`` (an alias in the
    statement)."""
    quote = connection.ops.quote_name
    return ", ".join(f"{table}.{quote(field.column)}" for field in model._meta.concrete_fields)


def instance_fetch(
    model: type[ModelT], sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS
) -> ModelT | None:
    """The first row of ``sql`` (which selects ``model_columns(model, …)``) as an instance of
    ``model`` read from the database ``using``; None when there is no row."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(using, names, row)
