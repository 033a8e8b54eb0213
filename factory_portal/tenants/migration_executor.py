"""Which django-tenants executor ``migrate_schemas`` uses: ``--executor`` when given, else
``settings.TENANT_MIGRATION_EXECUTOR`` (``MIGRATION_EXECUTOR`` in the environment).

``standard`` migrates the schemas one after the other in one process; ``multiprocessing`` runs
``TENANT_MULTIPROCESSING_MAX_PROCESSES`` forked processes, each migrating whole schemas (the
public schema first, alone). Migrating is mostly the database's work, so more processes than
the database server has cores gain nothing (``benchmarks/tenants.py`` measures both).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_tenants.migration_executors import get_executor as library_get_executor


def get_executor(codename: str | None = None) -> type[Any]:
    """The executor class for ``codename``, or the configured one."""
    return library_get_executor(codename or settings.TENANT_MIGRATION_EXECUTOR)
