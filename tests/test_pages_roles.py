"""Who may open which tenant page, across the apps and the web layer: the page-role matrix, the
navigation each role sees, and every page sending anonymous visitors to log in."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.services import user_create
from tests.support import PASSWORD, host_client, logged_in_client

pytestmark = pytest.mark.django_db


def _user(tenant, email: str, role: str) -> str:
    with schema_context(tenant.schema):
        user_create(email=email, role=role, password=PASSWORD)
    return email


ROLE_MATRIX = {
    # path: (member, finance, admin)
    "/": (200, 200, 200),
    "/runs/": (200, 403, 200),
    "/runs/active/": (200, 403, 200),
    "/runs.csv": (200, 403, 200),
    "/usage/": (200, 403, 200),
    "/errors/": (200, 403, 200),
    "/steps/": (200, 403, 200),
    "/costs/": (403, 200, 200),
    "/costs/quotes/": (403, 200, 200),
    "/costs/savings/": (403, 200, 200),
    "/budgets/runs/": (403, 200, 200),
    "/reports/2026-10/csv": (403, 200, 200),
    "/settings/alert-routes/": (403, 403, 200),
    "/alerts/": (200, 200, 200),
    "/alerts/silences/": (200, 200, 200),
    "/saved/": (200, 200, 200),
}


def test_pages_are_enforced_by_role(alpha):
    clients = {
        "member": logged_in_client(alpha.host, _user(alpha, "m@alpha.test", "member")),
        "finance": logged_in_client(alpha.host, _user(alpha, "f@alpha.test", "finance")),
        "admin": logged_in_client(alpha.host, alpha.admin_email),
    }
    seen = {
        path: tuple(clients[role].get(path).status_code for role in ("member", "finance", "admin"))
        for path in ROLE_MATRIX
    }
    assert seen == ROLE_MATRIX
    # The navigation shows exactly the pages a role may open.
    member_nav = clients["member"].get("/").content.decode()
    assert 'href="/usage/"' in member_nav and 'href="/costs/"' not in member_nav
    assert 'href="/errors/"' in member_nav
    finance_nav = clients["finance"].get("/").content.decode()
    assert 'href="/costs/"' in finance_nav and 'href="/runs/"' not in finance_nav
    assert 'href="/errors/"' not in finance_nav
    assert member_nav.index('href="/usage/"') < member_nav.index('href="/steps/"')
    assert 'href="/steps/"' not in finance_nav
    for nav in (member_nav, finance_nav):  # every role sees the alerts
        assert 'href="/alerts/"' in nav


def test_anonymous_visitors_are_sent_to_log_in(alpha):
    for path in ROLE_MATRIX:
        response = host_client(alpha.host).get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_pages_need_a_login(alpha):
    for path in ("/runs/", "/runs/active/", "/runs.csv", "/runs/x/"):
        assert host_client(alpha.host).get(path).status_code == 302
