"""The tenant's costs page (billing.views.costs): for finance and admins, forgiving of bad
parameters."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import PASSWORD, logged_in_client, runs_make

pytestmark = pytest.mark.django_db


def test_costs_page_is_for_finance_and_admin(alpha):
    runs_make(alpha, 3)
    with schema_context(alpha.schema):
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
