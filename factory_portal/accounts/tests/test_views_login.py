"""Users live per tenant; operators live in the public schema; each logs in only on its own host."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import OPERATOR_EMAIL, PASSWORD, host_client, logged_in_client

pytestmark = pytest.mark.django_db


def test_tenant_admin_logs_in_on_own_host(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/")
    assert page.status_code == 200
    assert "admin@alpha.test" in page.content.decode()


def test_tenant_user_cannot_log_in_on_another_tenant(alpha, beta):
    response = host_client(beta.host).post(
        "/login/", {"username": alpha.admin_email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_tenant_user_cannot_log_in_on_the_operator_console(alpha, public_host):
    response = host_client(public_host).post(
        "/login/", {"username": alpha.admin_email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_session_of_one_tenant_is_not_valid_on_another(alpha, beta):
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert client.get("/", HTTP_HOST=alpha.host).status_code == 200
    # The same cookie presented to beta's host: the session does not exist in beta's schema.
    response = client.get("/", HTTP_HOST=beta.host)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_operator_logs_in_and_sees_every_tenant(public_host, alpha, beta):
    client = logged_in_client(public_host, OPERATOR_EMAIL)
    page = client.get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Alpha Inc" in body
    assert "Beta Inc" in body


@pytest.mark.parametrize("role", [Role.MEMBER, Role.FINANCE, Role.ADMIN])
def test_every_tenant_role_sees_the_overview(alpha, role):
    with schema_context(alpha.schema):
        user, _ = user_create(email=f"{role}-user@alpha.test", role=role, password=PASSWORD)
    client = logged_in_client(alpha.host, user.email)
    assert client.get("/").status_code == 200


def test_logout_ends_the_session(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_role_rules():
    from factory_portal.accounts.models import User

    assert User(role=Role.ADMIN).has_role(Role.FINANCE)
    assert not User(role=Role.MEMBER).has_role(Role.FINANCE)
    assert User(role=Role.FINANCE).has_role(Role.FINANCE)
    assert not User(role=Role.ADMIN).has_role(Role.OPERATOR)
