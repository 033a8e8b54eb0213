"""migrate_schemas takes its executor from the settings unless --executor names one."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_tenants.migration_executors.multiproc import MultiprocessingExecutor
from django_tenants.migration_executors.standard import StandardExecutor

from factory_portal.tenants.migration_executor import get_executor


def test_the_configured_executor_is_used_unless_one_is_named():
    with override_settings(TENANT_MIGRATION_EXECUTOR="multiprocessing"):
        assert get_executor() is MultiprocessingExecutor
        assert get_executor("standard") is StandardExecutor
    with override_settings(TENANT_MIGRATION_EXECUTOR="standard"):
        assert get_executor() is StandardExecutor


def test_an_unknown_executor_is_refused():
    with (
        override_settings(TENANT_MIGRATION_EXECUTOR="threads"),
        pytest.raises(NotImplementedError, match="threads"),
    ):
        get_executor()
