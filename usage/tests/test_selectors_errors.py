"""Error group selectors: counts, runs, templates, steps, daily trends in the tenant's zone,
sorts, pages and one group's detail."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from factory_portal.tenants.services import tenant_timezone_set
from usage.domain.errors import fingerprint
from usage.models import ErrorGroup
from usage.selectors.errors import error_group, error_groups
from usage.tests.errors_data import GO_PANIC, error_make

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 10)
AT = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEPLOY = fingerprint("DeployConflict", "manifest 'x' conflicts with revision 1", GO_PANIC).value


def _populate(alpha):
    # DeployConflict: 3 errors in 2 runs of 2 templates, on the 10th and 11th.
    error_make(alpha, "r-1", AT, message="manifest 'a.yaml' conflicts with revision 41")
    error_make(alpha, "r-1", AT + timedelta(hours=1), span="s2", step="verify")
    error_make(alpha, "r-2", AT + timedelta(days=1), template="react-spa", span="s3")
    # Timeout: 1 error, newest, in a third run.
    error_make(alpha, "r-3", AT + timedelta(days=2), error_type="TimeoutError", message="t/o")
    # Quota: 2 errors in 2 runs, the run count ties with DeployConflict.
    for n in range(2):
        error_make(alpha, f"q-{n}", AT, error_type="Quota", message=f"quota {n}", span=f"q{n}")


def test_groups_count_errors_runs_templates_and_steps(alpha):
    _populate(alpha)
    with schema_context(alpha.schema):
        page = error_groups(start=DAY, end=DAY + timedelta(days=6))
    assert (page.total, page.errors, page.pages) == (3, 6, 1)
    deploy = page.rows[0]
    assert deploy.fingerprint == DEPLOY
    assert (deploy.type, deploy.count, deploy.runs) == ("DeployConflict", 3, 2)
    assert deploy.message == "manifest <str> conflicts with revision <n>"
    assert deploy.top_frame == "github.com/acme/factory/steps.(*Deployer).Apply (steps/deploy.go)"
    assert deploy.templates == ["python-fastapi-service", "react-spa"]
    assert deploy.steps == ["deploy", "verify"]
    assert deploy.trend == [2, 1, 0, 0, 0, 0, 0]
    assert deploy.example_runs == ["r-2", "r-1"]  # newest first
    assert (deploy.first_seen, deploy.last_seen) == (AT, AT + timedelta(days=1))


def test_sorts_and_pages(alpha):
    _populate(alpha)
    with schema_context(alpha.schema):
        by = {
            sort: [r.type for r in error_groups(start=DAY, end=DAY + timedelta(6), sort=sort).rows]
            for sort in ("frequent", "newest", "runs")
        }
        first = error_groups(start=DAY, end=DAY + timedelta(6), per_page=2)
        second = error_groups(start=DAY, end=DAY + timedelta(6), per_page=2, page=2)
        past = error_groups(start=DAY, end=DAY + timedelta(6), per_page=2, page=9)
    assert by["frequent"] == ["DeployConflict", "Quota", "TimeoutError"]
    assert by["newest"] == ["TimeoutError", "DeployConflict", "Quota"]
    assert by["runs"] == ["DeployConflict", "Quota", "TimeoutError"]
    assert [r.type for r in first.rows + second.rows] == by["frequent"]
    assert (first.pages, second.pages, past.rows, past.total) == (2, 2, [], 3)
    with pytest.raises(ValueError, match="sort"):
        error_groups(start=DAY, end=DAY, sort="nope")


def test_the_range_is_the_tenants_days(alpha, monkeypatch):
    error_make(alpha, "late", datetime(2026, 11, 10, 20, tzinfo=UTC))  # the 11th in Auckland
    with schema_context(alpha.schema):
        utc = error_groups(start=DAY, end=DAY)
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)
    tenant_timezone_set(tenant=alpha.tenant, timezone="Pacific/Auckland")
    with schema_context(alpha.schema):
        local = error_groups(start=DAY, end=DAY)
        next_day = error_groups(start=DAY, end=DAY + timedelta(days=1))
    assert utc.errors == 1 and local.errors == 0
    assert next_day.rows[0].trend == [0, 1]


def test_one_groups_detail(alpha):
    _populate(alpha)
    with schema_context(alpha.schema):
        detail = error_group(fingerprint=DEPLOY, start=DAY, end=DAY + timedelta(days=6))
        missing = error_group(fingerprint="0" * 32, start=DAY, end=DAY)
        outside = error_group(fingerprint=DEPLOY, start=DAY - timedelta(9), end=DAY - timedelta(1))
        assert ErrorGroup.objects.get(fingerprint=DEPLOY).occurrences == 3
    assert missing is None
    assert (detail.count, detail.runs, detail.occurrences) == (3, 2, 3)
    assert [(b.template, b.step_name, b.count) for b in detail.breakdown] == [
        ("python-fastapi-service", "deploy", 1),
        ("python-fastapi-service", "verify", 1),
        ("react-spa", "deploy", 1),
    ]
    assert [x.run_id for x in detail.examples] == ["r-2", "r-1"]
    assert "main.go:19" in detail.sample_stacktrace
    assert detail.trend[:2] == [2, 1]
    # Outside the range: what the group is stays known, counts are zero, the sample is kept.
    assert (outside.count, outside.examples, outside.trend) == (0, [], [0] * 9)
    assert outside.sample_stacktrace
