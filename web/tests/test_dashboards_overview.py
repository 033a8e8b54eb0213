"""The overview page (web.dashboards.overview): empty states, recent success rates, top projects
and models."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import llm_event_in, logged_in_client, run_finished
from usage.models import Project
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def test_overview_of_an_empty_tenant_has_empty_states(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert "No forecast yet" in page and "No budget set" in page
    assert "vendor/plotly/plotly.min.js" in page


def test_overview_shows_recent_success_and_top_projects_and_models(alpha):
    now = timezone.now()
    with schema_context(alpha.schema):
        run_finished("a", "Succeeded", now - timedelta(minutes=30), 5)
        events_ingest(
            events=[
                llm_event_in("x1", now - timedelta(minutes=5), project="big", cost=Decimal("9")),
                llm_event_in("x2", now - timedelta(minutes=5), project="small", cost=Decimal("1")),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        assert Project.objects.filter(slug="big").exists()
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert "success rate: last hour 100.0%" in page
    top = re.search(r'data-testid="top-projects">(.*?)</table>', page, re.S).group(1)
    assert top.index("big") < top.index("small") and "$9.00" in top
    assert "Usage complete up to" in page
