"""The operator console (bare base domain) is for operators only, over the web layer's pages and
billing's: anonymous visitors log in, a tenant's session does not open it, a public user without
the operator role gets 403."""

from __future__ import annotations

import pytest

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from factory_portal.tenants.models import Tenant
from tests.support import host_client, logged_in_client

pytestmark = pytest.mark.django_db

PAGES = ("/", "/customer-costs/", "/price-book/", "/pools/", "/health/")


def test_anonymous_visitors_are_sent_to_the_login_page(public_host):
    client = host_client(public_host)
    for path in (*PAGES, "/customer-costs.csv"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path
    for path in ("/tenants/new", "/tenants/alpha/status", "/price-book/refresh", "/pools/upload"):
        assert client.post(path).status_code == 302, path


def test_a_tenant_admin_session_does_not_open_the_console(alpha, public_host):
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    for path in PAGES[1:]:
        assert tenant_admin.get(path).status_code == 404, path  # no such page on tenant hosts
    # The same browser on the operator host: its session does not exist in the public schema.
    for path in PAGES:
        response = tenant_admin.get(path, HTTP_HOST=public_host)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), path
    response = tenant_admin.post(
        "/tenants/alpha/status", {"status": "suspended"}, HTTP_HOST=public_host
    )
    assert response.status_code == 302
    assert Tenant.objects.get(slug="alpha").status == Tenant.Status.ACTIVE


def test_a_public_user_without_the_operator_role_gets_403(public_host):
    user_create(email="viewer@portal.test", role=Role.MEMBER, password="another-long-passphrase")
    client = logged_in_client(public_host, "viewer@portal.test", "another-long-passphrase")
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    assert client.post("/tenants/alpha/status", {"status": "suspended"}).status_code == 403
