"""New tenant schemas cloned from a migrated template schema instead of migrated one by one.

Running every migration into a new schema takes about 9 s; replaying the DDL (and the few rows
the migrations write: ``django_migrations``, content types, permissions, seeded rows) of a schema
already migrated to head takes well under one. The template, ``settings.TENANT_TEMPLATE_SCHEMA``
(``_tenant_template``), is a schema no tenant owns; its ``COMMENT`` records the migration heads it
was migrated to, and it is made again (dropped and migrated) when the code's heads differ.

``pg_dump`` (the server's own major version, ``/usr/lib/postgresql/<major>/bin/pg_dump``) writes
the template once per process and set of heads; each clone runs that script with the schema name
rewritten, on the caller's connection and inside its transaction. django-tenants' own
``clone_schema`` (a PL/pgSQL function, then ``migrate_schemas --fake``) was measured at 3.5 s a
schema here, hence pg_dump. Without pg_dump, a template, or with ``TENANT_CLONE_TEMPLATE=0`` the
caller migrates as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from factory_portal.tenants.connection import tenant_connection

logger = logging.getLogger(__name__)

# pg_advisory_lock key held while the template is (re)made: one process makes it, others wait.
TEMPLATE_LOCK_KEY = 0x7465_6D70  # "temp"
HEADS_PREFIX = "heads:"
_SCHEMA_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Session settings and psql meta-commands of the dump: the clone runs on a pooled connection
# whose search path django-tenants tracks, so none of them may leak into it.
_DROPPED_LINE_RE = re.compile(r"^(SET |SELECT pg_catalog\.set_config|\\|COMMENT ON SCHEMA )")


@dataclass(frozen=True)
class _Dump:
    heads: str
    sql: str


_dump_cache: dict[str, _Dump] = {}
_dump_lock = threading.Lock()


def template_schema() -> str:
    return str(getattr(settings, "TENANT_TEMPLATE_SCHEMA", "_tenant_template"))


def clone_enabled() -> bool:
    return bool(getattr(settings, "TENANT_CLONE_TEMPLATE", True))


def migration_heads() -> str:
    """A short digest of every app's newest migrations (the graph's leaves): when it changes,
    the template is stale."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    leaves = sorted(loader.graph.leaf_nodes())
    return hashlib.sha256(repr(leaves).encode()).hexdigest()[:32]


def _server_major() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        (num,) = cursor.fetchone()
    return int(num) // 10000


def pg_dump_path() -> str | None:
    """The pg_dump of the server's major version (an older one refuses a newer server, a newer
    one may write syntax the server does not know); ``None`` when the machine has none."""
    major = _server_major()
    candidate = Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pg_dump")
    if found is None:
        return None
    version = subprocess.run(  # noqa: S603 -- fixed argument list
        [found, "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"(\d+)\.", version)
    return found if match and int(match.group(1)) == major else None


def _template_heads() -> str | None:
    """The heads the template records (committed or not, on this connection), or ``None``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            [template_schema()],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    comment = row[0] or ""
    return comment.removeprefix(HEADS_PREFIX) if comment.startswith(HEADS_PREFIX) else ""


def template_ensure(*, heads: str | None = None) -> bool:
    """Make the template schema (migrated to head) unless it is current; ``True`` when it was
    made. Needs autocommit: the schema is dumped by another connection."""
    heads = heads or migration_heads()
    name = template_schema()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK_KEY])
        try:
            if _template_heads() == heads:
                return False
            logger.info("tenant template schema made", extra={"schema": name, "heads": heads})
            cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            cursor.execute(f'CREATE SCHEMA "{name}"')
            call_command(
                "migrate_schemas",
                tenant=True,
                schema_name=name,
                interactive=False,
                verbosity=0,
            )
            tenant_connection().set_schema_to_public()
            with connection.cursor() as again:
                again.execute(f"COMMENT ON SCHEMA \"{name}\" IS '{HEADS_PREFIX}{heads}'")
            _dump_cache.clear()
            return True
        finally:
            with connection.cursor() as unlock:
                unlock.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK_KEY])


def _dump(pg_dump: str, heads: str) -> _Dump | None:
    db: dict[str, Any] = dict(settings.DATABASES["default"])
    args = [pg_dump, "--schema", template_schema(), "--no-owner", "--no-privileges", "--inserts"]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    args.append(str(db["NAME"]))
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    result = subprocess.run(  # noqa: S603 -- fixed argument list
        args, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        logger.warning("pg_dump of the tenant template failed", extra={"stderr": result.stderr})
        return None
    recorded = re.search(r"COMMENT ON SCHEMA \S+ IS '" + HEADS_PREFIX + r"(\w+)'", result.stdout)
    if recorded is None or recorded.group(1) != heads:
        return None  # not committed yet, or made for other migrations
    kept = [ln for ln in result.stdout.splitlines() if not _DROPPED_LINE_RE.match(ln)]
    return _Dump(heads=heads, sql="\n".join(kept))


def template_sql() -> _Dump | None:
    """The template's dump for the code's migration heads, making the template first when it
    is missing or stale and the connection can commit it; ``None`` when cloning is off or
    impossible (the caller migrates)."""
    if not clone_enabled():
        return None
    heads = migration_heads()
    with _dump_lock:
        cached = _dump_cache.get(heads)
        if cached is not None:
            return cached
        pg_dump = pg_dump_path()
        if pg_dump is None:
            return None
        # No template yet (a new installation's first tenant) or one for other migrations:
        # nothing to dump, so it is made first where it can be committed. (Read in this
        # transaction: one with an older snapshot than another process's new template migrates
        # instead of cloning, which costs time, not correctness.)
        dump = _dump(pg_dump, heads) if _template_heads() == heads else None
        if dump is None and not connection.in_atomic_block:
            template_ensure(heads=heads)
            dump = _dump(pg_dump, heads)
        if dump is not None:
            _dump_cache[heads] = dump
        return dump


def clone_sql(dump_sql: str, schema_name: str) -> str:
    """The template's script for ``schema_name`` (every qualified name rewritten)."""
    if not _SCHEMA_NAME_RE.match(schema_name):
        raise ValueError(f"Not a schema name the portal makes: {schema_name!r}")
    pattern = re.compile(r'(?<![\w"])"?' + re.escape(template_schema()) + r'"?(?![\w"])')
    return pattern.sub(f'"{schema_name}"', dump_sql)


def schema_clone(schema_name: str) -> bool:
    """Create ``schema_name`` as a copy of the template (tables, indexes, constraints, sequences,
    the migrations' rows); ``False`` (nothing done) when the caller must migrate instead."""
    dump = template_sql()
    if dump is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(clone_sql(dump.sql, schema_name))
    return True
