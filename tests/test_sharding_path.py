"""The promises that keep the tenant schemas movable to Citus schema-based sharding.

Under Citus each tenant schema becomes a distributed schema living on one worker, while the shared
``public`` schema stays on the coordinator (README: "Growing past one database"). That only works
while a tenant's tables reference nothing outside their schema, every table has a primary key
(shard moves replicate by it), SQL never names another schema except the documented reads of the
tenant row, and the code that visits several schemas is the short list the README explains. These
tests check each promise on plain PostgreSQL, so a change that breaks the path fails here, not
during a migration to Citus.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Modules that enter tenant schemas from outside (schema_context) and why; the README's sharding
# section names each one. Adding a module here means saying there how it behaves on Citus.
CROSS_SCHEMA_MODULES = {
    "alerts/services/operator.py",  # operator e-mails: enters public from a tenant's commit
    "billing/management/commands/budget_set.py",
    "billing/management/commands/forecast_backtest.py",
    "billing/management/commands/forecast_refresh.py",
    "billing/management/commands/quotes_backtest.py",
    "billing/management/commands/report.py",
    "billing/operator/views.py",  # a tenant's commitments, read in its schema
    "factory_portal/accounts/management/commands/apikey_create.py",
    "factory_portal/broker.py",  # publishes a task carrying its schema
    "factory_portal/db_routing.py",  # a replica connection takes the request's tenant schema
    "factory_portal/tenants/tasks.py",  # beat fan-out chunks, one tenant at a time
    "factory_portal/tenants/services.py",  # tenant creation
    "runtime/services/metrics.py",  # platform OTLP metrics, several schemas in one transaction
    "usage/management/commands/reprice.py",
    "usage/services/logs.py",  # platform OTLP logs
    "usage/services/otlp.py",  # platform spans: routing rows in public, then the tenant
    "usage/services/routing.py",  # platform ingest, several schemas in one transaction
    "web/console/selectors.py",  # a tenant's retention page (the console's figures: below)
    "web/demo/billing.py",
    "web/demo/seed.py",
}
# Modules whose SQL names many schemas' tables in one statement ("<schema>"."<table>", built from
# checked schema names): on Citus a multi-shard read through the coordinator. Each is named in
# the README's sharding section, like the modules above.
MULTI_SCHEMA_SQL_MODULES = {
    "factory_portal/tenants/migration_executor.py",  # every schema's recorded migrations
    "usage/selectors/operator.py",  # the operator's and allocation's reads of every tenant
}
SCHEMA_QUALIFIED_FSTRING = re.compile(r'"\{[a-z_]+\}"\.')
SCHEMA_SWITCHES = {"schema_context", "tenant_context", "set_tenant", "set_schema"}
SOURCE_DIRS = ("alerts", "billing", "factory_portal", "notifications", "runtime", "saved", "usage")
SOURCE_DIRS += ("web",)

# SQL (keywords upper case, as the code writes them) that names a schema:
# FROM/JOIN/INTO/UPDATE/TABLE <schema>.<table>.
QUALIFIED_TABLE = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+\"?([a-z_][a-z0-9_]*)\"?\.\"?([a-z_][a-z0-9_]*)"
)
# The one shared table tenant code may read by name: its own tenant row (a single-table read the
# coordinator answers locally; never joined with a tenant table).
ALLOWED_QUALIFIED = {("public", "tenants_tenant")}
# Modules that read several schemas' catalogues in one statement, on purpose (the README's sharding
# section says how they behave on Citus).
CATALOGUE_READERS = {"factory_portal/tenants/migration_executor.py"}


def _sources() -> list[Path]:
    paths = []
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).parts
            if "tests" in rel or "migrations" in rel:
                continue
            paths.append(path)
    return paths


def _string_constants(path: Path) -> list[str]:
    """Every string literal of ``path``, f-strings' literal parts joined (so SQL split over
    several lines is read whole)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append(
                "".join(
                    v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
                    for v in node.values
                )
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
    return found


def _switches_schema(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in SCHEMA_SWITCHES:
                return True
    return False


def _app_labels_of(names: list[str]) -> list[str]:
    return [config.label for config in apps.get_app_configs() if config.name in names]


def test_tenant_models_reference_only_tenant_models() -> None:
    """A foreign key from a tenant table to a shared one cannot exist once the tenant schema
    lives on a worker and the shared table on the coordinator."""
    tenant_labels = set(_app_labels_of(settings.TENANT_APPS))
    shared_only = set(_app_labels_of(settings.SHARED_APPS)) - tenant_labels
    wrong = []
    for model in apps.get_models():
        label = model._meta.app_label
        if label not in tenant_labels:
            continue
        for field in model._meta.get_fields():
            target = getattr(field, "related_model", None)
            if not getattr(field, "concrete", False) or target is None:
                continue
            if target._meta.app_label in shared_only:
                wrong.append(f"{model._meta.label}.{field.name} -> {target._meta.label}")
    assert wrong == []


@pytest.mark.django_db
def test_no_foreign_key_crosses_a_schema(alpha) -> None:  # type: ignore[no-untyped-def]
    """The migrated schemas themselves: no constraint in the database points from one schema to
    another (in either direction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text
            FROM pg_constraint c
            JOIN pg_class r ON r.oid = c.conrelid
            JOIN pg_class f ON f.oid = c.confrelid
            WHERE c.contype = 'f' AND r.relnamespace <> f.relnamespace
              AND (r.relnamespace = %s::regnamespace OR f.relnamespace = %s::regnamespace)
            """,
            [alpha.schema, alpha.schema],
        )
        crossing = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid"
            " WHERE c.contype = 'f' AND r.relnamespace = %s::regnamespace",
            [alpha.schema],
        )
        (inside,) = cursor.fetchone()
    assert inside > 10  # the query does see the tenant's own foreign keys
    assert crossing == []


@pytest.mark.django_db
def test_every_tenant_table_has_a_primary_key(alpha) -> None:  # type: ignore[no-untyped-def]
    """Citus moves a tenant schema between workers by logical replication, which needs a
    replica identity on every table that is updated or deleted from: the primary key."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, EXISTS (
                SELECT 1 FROM pg_constraint p WHERE p.conrelid = c.oid AND p.contype = 'p'
            )
            FROM pg_class c
            WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p')
            """,
            [alpha.schema],
        )
        tables = dict(cursor.fetchall())
    assert "usage_llmusageevent" in tables
    assert [name for name, has_key in tables.items() if not has_key] == []


@pytest.mark.django_db
def test_tenant_tables_use_only_their_own_schema_sequences(alpha) -> None:  # type: ignore[no-untyped-def]
    """A column default drawing on another schema's sequence would be a cross-node call on every
    insert once the schema is distributed."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT d.refobjid::regclass::text, s.relnamespace::regnamespace::text
            FROM pg_depend d
            JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_class t ON t.oid = d.refobjid
            WHERE t.relnamespace = %s::regnamespace AND d.classid = 'pg_class'::regclass
            """,
            [alpha.schema],
        )
        owned = cursor.fetchall()
        cursor.execute(
            """
            SELECT table_name, column_default FROM information_schema.columns
            WHERE table_schema = %s AND column_default LIKE 'nextval(%%'
            """,
            [alpha.schema],
        )
        defaults = cursor.fetchall()
    assert owned, "every Django table has an id sequence"
    assert [row for row in owned if row[1] != alpha.schema] == []
    # Defaults as text name the sequence unqualified only when it is in the search path's first
    # schema; a qualified name pointing elsewhere is the failure.
    assert [row for row in defaults if "." in row[1] and f"{alpha.schema}." not in row[1]] == []


def test_code_visiting_several_schemas_is_the_documented_list() -> None:
    """Every module that switches schema is one the README's sharding section discusses; a new
    cross-tenant path has to say there how it behaves on Citus."""
    found = {str(p.relative_to(ROOT)) for p in _sources() if _switches_schema(p)}
    assert found == CROSS_SCHEMA_MODULES
    section = _readme_section("### Growing past one database")
    assert sorted(m for m in CROSS_SCHEMA_MODULES if f"`{m}`" not in section) == []


def test_sql_naming_many_schemas_is_the_documented_list() -> None:
    """A module that writes a schema into its SQL (``f'"{schema}"."table"'``) reads across
    tenants in one statement, which the table and string checks cannot see (the names are
    interpolated): such modules are the README's list too."""
    found = {
        str(p.relative_to(ROOT))
        for p in _sources()
        if SCHEMA_QUALIFIED_FSTRING.search(p.read_text(encoding="utf-8"))
    }
    assert found == MULTI_SCHEMA_SQL_MODULES
    section = _readme_section("### Growing past one database")
    assert sorted(m for m in MULTI_SCHEMA_SQL_MODULES if f"`{m}`" not in section) == []


def test_sql_names_no_other_schema() -> None:
    """Raw SQL reads the connection's own schema through the search path; the only table named
    with its schema is the tenant row in ``public``."""
    wrong = []
    for path in _sources():
        if str(path.relative_to(ROOT)) in CATALOGUE_READERS:
            continue
        for text in _string_constants(path):
            for schema, table in QUALIFIED_TABLE.findall(text):
                if (schema.lower(), table.lower()) not in ALLOWED_QUALIFIED:
                    wrong.append(f"{path.relative_to(ROOT)}: {schema}.{table}")
    assert wrong == []


def test_no_statement_sets_a_sequence_while_reading_a_table() -> None:
    """``SELECT setval(...) FROM <table>`` runs setval on the worker holding the table, where the
    sequence does not live: Citus refuses it. Read the maximum, then set the sequence."""
    wrong = [
        str(path.relative_to(ROOT))
        for path in _sources()
        for text in _string_constants(path)
        if re.search(r"setval\s*\(", text, re.IGNORECASE)
        and re.search(r"\bFROM\s+\w", text, re.IGNORECASE)
    ]
    assert wrong == []


def _readme_section(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_scanners_see_what_they_look_for(tmp_path: Path) -> None:
    """The source scanners above would pass vacuously if they read nothing: they must catch a
    schema-qualified join, a setval over a table and a schema switch."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from django_tenants.utils import schema_context\n"
        "def f(s, t):\n"
        "    with schema_context(s):\n"
        "        q = f'SELECT * FROM alpha.usage_run JOIN {t} ON true'\n"
        "        r = \"SELECT setval(pg_get_serial_sequence('x', 'id'), MAX(id)) FROM x\"\n"
    )
    texts = _string_constants(bad)
    assert _switches_schema(bad)
    assert ("alpha", "usage_run") in [m for t in texts for m in QUALIFIED_TABLE.findall(t)]
    assert any("setval(" in t and " FROM x" in t for t in texts)
    assert len(_sources()) > 100
