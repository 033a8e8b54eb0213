"""Run history's filter choices are read from the rollups once and kept per tenant schema for
``FILTER_CHOICES_SECONDS``: a tenant never sees another's, a value seen for the first time is
offered once they expire, and at once when a filter names it (in any letter case)."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context

from tests.support import logged_in_client
from usage.models import Project, RunDaily
from usage.selectors import (
    FILTER_CHOICES_SECONDS,
    RunFilters,
    run_filter_choices,
    run_filters_canonical,
)

pytestmark = pytest.mark.django_db


def _template(schema: str, name: str) -> None:
    with schema_context(schema):
        project, _ = Project.objects.get_or_create(slug="p", defaults={"name": "p"})
        RunDaily.objects.create(
            day=date(2026, 11, 2),
            project=project,
            run_type="feature",
            template=name,
            status="Succeeded",
            runs=1,
        )


def test_choices_are_kept_per_tenant_until_they_expire(alpha, beta, monkeypatch):
    _template(alpha.schema, "alpha-tpl")
    _template(beta.schema, "beta-tpl")
    reads = []
    from usage import selectors

    original = selectors._run_filter_choices_read
    monkeypatch.setattr(
        selectors, "_run_filter_choices_read", lambda: reads.append(1) or original()
    )
    with schema_context(alpha.schema):
        assert run_filter_choices().templates == ["alpha-tpl"]
    with schema_context(beta.schema):
        assert run_filter_choices().templates == ["beta-tpl"]
    _template(alpha.schema, "alpha-new")
    with schema_context(alpha.schema):
        assert run_filter_choices().templates == ["alpha-tpl"]  # kept
    assert len(reads) == 2
    assert 0 < FILTER_CHOICES_SECONDS <= 300
    cache.clear()  # as when they expire
    with schema_context(alpha.schema):
        assert run_filter_choices().templates == ["alpha-new", "alpha-tpl"]
    assert len(reads) == 3


def test_the_runs_page_offers_only_the_tenants_own_choices(alpha, beta):
    _template(alpha.schema, "alpha-tpl")
    _template(beta.schema, "beta-tpl")
    for tenant, own, other in ((alpha, "alpha-tpl", "beta-tpl"), (beta, "beta-tpl", "alpha-tpl")):
        client = logged_in_client(tenant.host, tenant.admin_email)
        for _ in range(2):  # read, then kept
            page = client.get("/runs/").content.decode()
            assert f'value="{own}"' in page
            assert other not in page


def test_a_filter_naming_a_new_value_reads_the_choices_again(alpha):
    _template(alpha.schema, "old-tpl")
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert 'value="old-tpl"' in client.get("/runs/").content.decode()  # kept from here on
    _template(alpha.schema, "New-Tpl")
    with schema_context(alpha.schema):
        assert run_filter_choices().templates == ["old-tpl"]
        assert run_filters_canonical(RunFilters(template="new-tpl")).template == "New-Tpl"
        assert run_filter_choices().templates == ["New-Tpl", "old-tpl"]  # kept, read again
    _template(alpha.schema, "third-tpl")
    page = client.get("/runs/?template=THIRD-TPL").content.decode()
    assert '<option value="third-tpl" selected>' in page
