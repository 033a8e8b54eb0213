"""Small PostgreSQL helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, migrations
from django.db.migrations.operations.base import Operation
from django.db.models import Model

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
