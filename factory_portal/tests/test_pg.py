"""``local_setting`` applies a setting to the statements inside and then puts back what was in
force, an outer ``SET LOCAL`` included (a ``RESET`` would drop it), or, when a statement inside
failed, leaves that to the savepoint's rollback. ``instance_fetch`` builds what the ORM builds."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Model
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey
from factory_portal.pg import instance_fetch, local_setting, model_columns
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
