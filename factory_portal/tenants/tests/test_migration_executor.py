"""migrate_schemas takes its executor from the settings unless --executor names one, and visits
only the tenant schemas missing a migration (unless told a target)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.migration_executors.multiproc import MultiprocessingExecutor
from django_tenants.migration_executors.standard import StandardExecutor

from factory_portal.tenants.migration_executor import (
    SkipCurrentSchemas,
    get_executor,
    schemas_behind,
)


def test_the_configured_executor_is_used_unless_one_is_named():
    with override_settings(TENANT_MIGRATION_EXECUTOR="multiprocessing"):
        assert issubclass(get_executor(), MultiprocessingExecutor)
        assert issubclass(get_executor("standard"), StandardExecutor)
        assert not issubclass(get_executor("standard"), MultiprocessingExecutor)
    with override_settings(TENANT_MIGRATION_EXECUTOR="standard"):
        assert issubclass(get_executor(), StandardExecutor)
        assert issubclass(get_executor(), SkipCurrentSchemas)


def test_an_unknown_executor_is_refused():
    with (
        override_settings(TENANT_MIGRATION_EXECUTOR="threads"),
        pytest.raises(NotImplementedError, match="threads"),
    ):
        get_executor()


@pytest.mark.django_db
def test_only_schemas_missing_a_migration_are_behind(alpha, beta):
    assert schemas_behind(["alpha", "beta"]) == []
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA empty_one")
        cursor.execute(FORGET_NEWEST)
    assert schemas_behind(["alpha", "beta", "empty_one", "Not-A-Schema"]) == [
        "beta",
        "empty_one",
        "Not-A-Schema",
    ]


FORGET_NEWEST = (
    "DELETE FROM beta.django_migrations WHERE id = (SELECT max(id) FROM beta.django_migrations)"
)


class _Recorder:
    PUBLIC_SCHEMA_NAME = "public"

    def __init__(self, args, options):
        self.args, self.options = args, options

    def run_migrations(self, tenants=None):
        return tenants


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "options", "visited"),
    [
        ((), {}, ["public", "beta"]),
        ((), {"fake": True}, ["public", "alpha", "beta"]),
        ((), {"app_label": "usage", "migration_name": "0001"}, ["public", "alpha", "beta"]),
    ],
)
def test_the_executor_visits_the_schemas_behind_unless_told_a_target(
    alpha, beta, args, options, visited
):
    with connection.cursor() as cursor:
        cursor.execute(FORGET_NEWEST)
    executor = type("Skipping", (SkipCurrentSchemas, _Recorder), {})(args, options)
    assert executor.run_migrations(tenants=["public", "alpha", "beta"]) == visited
    with override_settings(TENANT_MIGRATE_SKIP_CURRENT=False):
        assert executor.run_migrations(tenants=["public", "alpha", "beta"]) == [
            "public",
            "alpha",
            "beta",
        ]
