"""The tenant's costs page (billing.views.costs): for finance and admins, forgiving of bad
parameters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import PASSWORD, RUNS_START, add_llm_call, logged_in_client, runs_make
from usage.models import Project, Run

pytestmark = pytest.mark.django_db


def test_costs_page_is_for_finance_and_admin(alpha):
    runs_make(alpha, 3)
    with schema_context(alpha.schema):
        for n in range(3):  # runs are listed by what they used
            add_llm_call(
                project=Project.objects.get(slug="web"),
                run=Run.objects.get(run_id=f"run-{n:03d}"),
                event_id=f"call-{n}",
                at=RUNS_START + timedelta(minutes=n, seconds=10),
                cost=Decimal("0.25"),
            )
        user_create(email="cfo@alpha.test", role=Role.FINANCE, password=PASSWORD)
        user_create(email="dev@alpha.test", role=Role.MEMBER, password=PASSWORD)
    finance = logged_in_client(alpha.host, "cfo@alpha.test")
    page = finance.get("/costs/?by=template&grain=week&month=2026-11")
    assert page.status_code == 200
    body = page.content.decode()
    assert "react-spa" in body and "Cost per successful run" in body
    assert "No shared cost allocated" in body
    assert finance.get("/costs/?by=nonsense&grain=hour&month=x").status_code == 200
    assert logged_in_client(alpha.host, "dev@alpha.test").get("/costs/").status_code == 403
