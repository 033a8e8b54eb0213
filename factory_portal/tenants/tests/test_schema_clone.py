"""A tenant schema cloned from the template is the schema migrations make: same tables, columns,
indexes, constraints, sequences, recorded migrations and seeded rows."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from factory_portal.tenants import schema_clone
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_create

pytestmark = pytest.mark.django_db

CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, ''),
               coalesce(character_maximum_length, 0), coalesce(numeric_precision, 0),
               coalesce(numeric_scale, 0), is_identity
        FROM information_schema.columns WHERE table_schema = %(s)s""",
    "tables": """
        SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %(s)s""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid),
               c.condeferrable, c.condeferred
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = %(s)s""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, increment
        FROM information_schema.sequences WHERE sequence_schema = %(s)s""",
    "relations": """
        SELECT relname, relkind, reloptions::text FROM pg_class
        WHERE relnamespace = %(s)s::regnamespace AND relkind NOT IN ('t')""",
}


# A restored expression is deparsed with its casts placed otherwise ("(ARRAY['a'::varchar])::text[]"
# comes back as "ARRAY[('a'::varchar)::text]"): the same predicate, written differently.
_CASTS = re.compile(r"::(character varying|text|integer|bigint|numeric)(\[\])?|[()\s]")


def _normalized(value: object, schema: str) -> str:
    text = str(value).replace(f'"{schema}".', "S.").replace(f"{schema}.", "S.")
    return _CASTS.sub("", text)


def _catalog(schema: str) -> dict[str, set[tuple[object, ...]]]:
    result = {}
    with connection.cursor() as cursor:
        for key, sql in CATALOG_QUERIES.items():
            cursor.execute(sql, {"s": schema})
            rows = {tuple(_normalized(v, schema) for v in r) for r in cursor.fetchall()}
            result[key] = rows
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')  # noqa: S608
        result["migrations"] = set(cursor.fetchall())
        cursor.execute(f'SELECT app_label, model FROM "{schema}".django_content_type')  # noqa: S608
        result["content_types"] = set(cursor.fetchall())
        cursor.execute(f'SELECT codename FROM "{schema}".auth_permission')  # noqa: S608
        result["permissions"] = set(cursor.fetchall())
    return result


def test_a_cloned_schema_equals_a_migrated_one():
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA migrated_one")
    call_command(
        "migrate_schemas", tenant=True, schema_name="migrated_one", interactive=False, verbosity=0
    )
    connection.set_schema_to_public()
    assert schema_clone.schema_clone("cloned_one") is True

    migrated, cloned = _catalog("migrated_one"), _catalog("cloned_one")
    assert len(migrated["tables"]) > 40 and len(migrated["indexes"]) > 100
    assert len(migrated["migrations"]) > 40
    for key in migrated:
        assert cloned[key] == migrated[key], key
    # The clone's sequences and rows are its own, not the template's.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cloned_one.django_content_type (app_label, model) VALUES ('x', 'y')"
        )
        template = schema_clone.template_schema()
        cursor.execute(f"SELECT count(*) FROM {template}.django_content_type")  # noqa: S608
        assert cursor.fetchone()[0] == len(migrated["content_types"])


def test_tenant_create_clones_and_the_tenant_works(people):
    # The template's dump (made again here if an earlier test dropped the cache) is what cloning
    # replays; whatever ran before, this test starts from it.
    assert schema_clone.template_sql() is not None
    created = tenant_create(slug="gamma", name="Gamma", admin_email="admin@gamma.test")
    assert schema_clone._dump_cache  # the clone read it, not a migration
    assert _catalog("gamma")["migrations"] == _catalog("alpha")["migrations"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM gamma.accounts_user")
        assert cursor.fetchall() == [(created.admin.email,)]


def test_without_cloning_the_schema_is_migrated(monkeypatch):
    calls = []
    monkeypatch.setattr(
        schema_clone, "_dump", lambda *a: calls.append(a) or None
    )  # cloning impossible
    schema_clone._dump_cache.clear()
    with override_settings(TENANT_CLONE_TEMPLATE=False):
        assert schema_clone.schema_clone("never_made") is False
    assert calls == []
    # in a transaction, with no usable dump, the template is not (re)made: the caller migrates
    monkeypatch.setattr(schema_clone, "_template_heads", schema_clone.migration_heads)
    assert schema_clone.schema_clone("never_made") is False
    assert len(calls) == 1
    tenant = Tenant(schema_name="delta", slug="delta", name="Delta")
    tenant.save(verbosity=0)
    assert _catalog("delta")["migrations"] == _catalog("alpha")["migrations"]


def test_a_missing_template_is_not_dumped(monkeypatch, caplog):
    """A new installation's first tenant: with no template (or one of other migrations) there is
    nothing to dump, so pg_dump is not run and no failure is logged; in a transaction the
    template cannot be made either, and the caller migrates."""
    calls = []
    monkeypatch.setattr(schema_clone, "_dump", lambda *a: calls.append(a) or None)
    schema_clone._dump_cache.clear()
    for recorded in (None, "0" * 32):
        monkeypatch.setattr(schema_clone, "_template_heads", lambda recorded=recorded: recorded)
        with caplog.at_level("WARNING", logger=schema_clone.logger.name):
            assert schema_clone.template_sql() is None
    assert calls == []
    logged = [r for r in caplog.records if r.name == schema_clone.logger.name]
    assert not [r for r in logged if r.levelname == "WARNING"]  # other loggers may warn here


def test_the_template_is_made_again_when_the_migrations_change():
    heads = schema_clone.migration_heads()
    assert schema_clone.template_ensure(heads=heads) is False  # current: untouched
    assert schema_clone.template_ensure(heads="0" * 32) is True  # "other migrations": remade
    assert schema_clone._template_heads() == "0" * 32
    assert _catalog(schema_clone.template_schema())["migrations"] == _catalog("alpha")["migrations"]


@pytest.mark.parametrize("name", ["Bad", "a;drop", "x" * 64, ""])
def test_only_plain_schema_names_are_cloned(name):
    with pytest.raises(ValueError, match="Not a schema name"):
        schema_clone.clone_sql("CREATE SCHEMA _tenant_template;", name)
