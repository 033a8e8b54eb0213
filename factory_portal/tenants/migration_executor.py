"""Which django-tenants executor ``migrate_schemas`` uses, and the schemas it need not visit.

The executor is ``--executor`` when given, else ``settings.TENANT_MIGRATION_EXECUTOR``
(``MIGRATION_EXECUTOR`` in the environment): ``standard`` migrates the schemas one after the
other in one process; ``multiprocessing`` runs ``TENANT_MULTIPROCESSING_MAX_PROCESSES`` forked
processes, each migrating whole schemas (the public schema first, alone).

Running ``migrate`` in a schema that is already at head still costs about 1.6 s here (the plan,
then the post-migrate signal's content types and permissions): hours over 10,000 schemas for a
deploy without a tenant migration. With ``TENANT_MIGRATE_SKIP_CURRENT`` (on by default) the
executor first reads every schema's ``django_migrations`` (one query per 500 schemas) and visits
only the schemas missing a migration of the code's graph. Any explicit target (an app label or
migration name), ``--fake`` or ``--fake-initial`` visits every schema as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.migration_executors import get_executor as library_get_executor

SCHEMAS_PER_QUERY = 500
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def schemas_behind(schemas: Sequence[str]) -> list[str]:
    """Those of ``schemas`` (in order) that have not recorded every migration of the code's
    graph; a schema whose record cannot be read counts as behind."""
    wanted = set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
    applied: dict[str, set[tuple[str, str]]] = {s: set() for s in schemas}
    readable = [s for s in schemas if _SCHEMA_RE.fullmatch(s)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'django_migrations' AND table_schema = ANY(%s)",
            [readable],
        )
        having = {row[0] for row in cursor.fetchall()}
        readable = [s for s in readable if s in having]
        for i in range(0, len(readable), SCHEMAS_PER_QUERY):
            chunk = readable[i : i + SCHEMAS_PER_QUERY]
            sql = " UNION ALL ".join(
                f'SELECT %s, app, name FROM "{s}".django_migrations'  # noqa: S608 -- checked
                for s in chunk
            )
            cursor.execute(sql, chunk)
            for schema, app, name in cursor.fetchall():
                applied[schema].add((app, name))
    return [s for s in schemas if not wanted <= applied[s]]


class SkipCurrentSchemas:
    """Mixed into a django-tenants executor: ``run_migrations`` leaves out the tenant schemas
    already at head when the command migrates everything to head."""

    args: Sequence[Any]
    options: dict[str, Any]
    PUBLIC_SCHEMA_NAME: str

    def run_migrations(self, tenants: Sequence[str] | None = None) -> Any:
        tenants = list(tenants or [])
        explicit = bool(self.args) or any(
            self.options.get(key) for key in ("app_label", "migration_name", "fake", "fake_initial")
        )
        if getattr(settings, "TENANT_MIGRATE_SKIP_CURRENT", True) and not explicit:
            others = [t for t in tenants if t != self.PUBLIC_SCHEMA_NAME]
            behind = set(schemas_behind(others))
            tenants = [t for t in tenants if t == self.PUBLIC_SCHEMA_NAME or t in behind]
            if not tenants:
                return None
        return super().run_migrations(tenants=tenants)  # type: ignore[misc]


def get_executor(codename: str | None = None) -> type[Any]:
    """The executor class for ``codename``, or the configured one, skipping current schemas."""
    base = library_get_executor(codename or settings.TENANT_MIGRATION_EXECUTOR)
    return type(f"SkipCurrent{base.__name__}", (SkipCurrentSchemas, base), {})
