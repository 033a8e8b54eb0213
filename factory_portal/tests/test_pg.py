"""``local_setting`` applies a setting to the statements inside and then puts back what was in
force, an outer ``SET LOCAL`` included (a ``RESET`` would drop it), or, when a statement inside
failed, leaves that to the savepoint's rollback. ``instance_fetch`` builds what the ORM builds.
``prepared_cursor``'s statements are prepared once per connection and follow the tenant schema."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Model
from django.test import override_settings
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey
from factory_portal.pg import instance_fetch, local_setting, model_columns, prepared_cursor
from factory_portal.tenants.models import Tenant
from tests.support import key_for

pytestmark = pytest.mark.django_db


def _value(cursor) -> str:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT current_setting('work_mem')")
    return str(cursor.fetchone()[0])


def test_the_outer_value_is_back_after_the_block_and_after_a_failure_inside():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '5MB'")
        with local_setting(cursor, "work_mem", "7MB"):
            assert _value(cursor) == "7MB"
        assert _value(cursor) == "5MB"

        with (
            pytest.raises(DatabaseError),
            transaction.atomic(),
            local_setting(cursor, "work_mem", "9MB"),
        ):
            cursor.execute("SELECT 1 / 0")
        assert _value(cursor) == "5MB"


def _fields(instance: Model) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_instance_fetch_builds_what_the_orm_builds_from_the_same_row(alpha):
    """Every concrete field of a tenant (a decimal, times, nullable ones) and of an API key (an
    array) as the ORM reads them; a saved instance (not ``_state.adding``); None for no row."""
    tenant = Tenant.objects.get(slug="alpha")
    sql = f"SELECT {model_columns(Tenant, 't')} FROM tenants_tenant t WHERE t.slug = %s"  # noqa: S608
    fetched = instance_fetch(Tenant, sql, ["alpha"])
    assert fetched is not None and fetched == tenant
    assert _fields(fetched) == _fields(tenant) and not fetched._state.adding
    assert instance_fetch(Tenant, sql, ["nobody"]) is None

    api_key, _ = key_for(alpha, ["read", "ingest"])
    with schema_context(alpha.schema):
        sql = f"SELECT {model_columns(ApiKey, 'k')} FROM {ApiKey._meta.db_table} k WHERE k.id = %s"  # noqa: S608
        fetched_key = instance_fetch(ApiKey, sql, [api_key.pk])
        assert fetched_key is not None
        assert _fields(fetched_key) == _fields(ApiKey.objects.get(pk=api_key.pk))
        assert sorted(fetched_key.scopes) == ["ingest", "read"]


_KEYS = "SELECT count(*) FROM accounts_apikey WHERE revoked_at IS NULL"


def _prepared_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = %s", [_KEYS])
        return int(cursor.fetchone()[0])


@pytest.mark.parametrize("prepare", [True, False])
def test_prepared_statements_follow_the_tenant_schema(alpha, beta, prepare):
    """One statement text on one connection, alternating tenants: each execution reads the
    schema it runs in (django-tenants sets the search path before it; PostgreSQL parses a
    prepared statement again when the path changed). Prepared once, or never with DB_PREPARE
    off; a unique violation comes out as Django's IntegrityError, as from a plain cursor (the
    rollback to the savepoint makes psycopg drop the connection's prepared statements)."""
    if prepare and connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        pytest.skip("the connection prepares nothing (DB_PREPARE=0 in the environment)")
    key, _ = key_for(alpha, ["read"])
    key_for(beta, ["read"])
    key_for(beta, ["read"])
    before = _prepared_count()
    seen = []
    with override_settings(DB_PREPARE=prepare):
        for tenant in (alpha, beta, alpha, beta, alpha):
            with schema_context(tenant.schema), prepared_cursor() as cursor:
                cursor.execute(_KEYS)
                seen.append(cursor.fetchone()[0])
        prepared = _prepared_count() - before
        with (
            schema_context(alpha.schema),
            pytest.raises(IntegrityError),
            transaction.atomic(),
            prepared_cursor() as cursor,
        ):
            cursor.execute(
                "INSERT INTO accounts_apikey (name, prefix, key_hash, scopes, created_at)"
                " SELECT name, prefix, key_hash, scopes, now() FROM accounts_apikey WHERE id = %s",
                [key.pk],
            )
    assert seen == [1, 2, 1, 2, 1]
    assert prepared == (1 if prepare else 0)
