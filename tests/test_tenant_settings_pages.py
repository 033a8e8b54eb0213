"""Tenant settings pages across apps: who may open and write which page (API keys, users,
budgets, notifications, reports), the CSRF token on every form, the unread badge on every page but
the operator console, and one tenant's settings never on another's host. Each page's own tests
live with its app (accounts, billing, notifications)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from billing.models import Budget
from factory_portal.accounts.models import ApiKey, User
from tests.support import (
    OPERATOR_EMAIL,
    PASSWORD,
    bearer,
    host_client,
    logged_in_client,
    notifications_make,
    response_text,
    unread_badge,
)
from web.context_processors import portal

pytestmark = pytest.mark.django_db

# --- Who may open what ----------------------------------------------------------------------------

MATRIX = {
    "/settings/api-keys/": {"member": 403, "finance": 403, "admin": 200},
    "/settings/users/": {"member": 403, "finance": 403, "admin": 200},
    "/settings/workspace/": {"member": 403, "finance": 403, "admin": 200},
    "/budgets/": {"member": 403, "finance": 200, "admin": 200},
    "/notifications/": {"member": 200, "finance": 200, "admin": 200},
    "/reports/": {"member": 403, "finance": 200, "admin": 200},
}


@pytest.mark.parametrize("path", MATRIX)
def test_role_matrix(alpha, people, path):
    for role, expected in MATRIX[path].items():
        response = people[role].get(path)
        assert response.status_code == expected, (role, path)
    anonymous = host_client(alpha.host).get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/?next=")


@pytest.mark.parametrize(
    ("role", "path", "data"),
    [
        ("member", "/settings/api-keys/", {"name": "x", "scopes": ["read"]}),
        ("finance", "/settings/api-keys/", {"name": "x", "scopes": ["read"]}),
        ("finance", "/settings/users/", {"email": "x@alpha.test", "role": "admin"}),
        ("finance", "/budgets/", {"scope": "", "amount": "10", "thresholds": "50"}),
        ("member", "/budgets/", {"scope": "", "amount": "10", "thresholds": "50"}),
    ],
)
def test_writes_are_refused_to_other_roles(alpha, people, role, path, data):
    assert people[role].post(path, data).status_code == 403
    with schema_context(alpha.schema):
        assert not ApiKey.objects.exists()
        assert not Budget.objects.exists()
        assert not User.objects.filter(email="x@alpha.test").exists()


def test_posts_need_the_csrf_token(alpha):
    client = Client(HTTP_HOST=alpha.host, enforce_csrf_checks=True)
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    login = {"username": alpha.admin_email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    assert client.post("/login/", login).status_code == 302
    page = response_text(client.get("/settings/api-keys/"))
    assert 'name="csrfmiddlewaretoken"' in page
    response = client.post("/settings/api-keys/", {"name": "x", "scopes": ["read"]})
    assert response.status_code == 403
    with schema_context(alpha.schema):
        assert not ApiKey.objects.exists()


# --- Notifications --------------------------------------------------------------------------------


def test_unread_badge_shows_on_other_pages_but_never_on_the_operator_console(
    alpha, people, public_host, rf
):
    notifications_make(alpha, 3)
    assert unread_badge(response_text(people["finance"].get("/reports/"))) == 3
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    assert 'data-testid="unread-count"' not in response_text(operator.get("/"))
    request = rf.get("/")
    connection.set_schema_to_public()  # the public schema has no inbox table to count in
    request.user = User.objects.get(email=OPERATOR_EMAIL)
    assert portal(request)["portal_unread"] == 0
    request.user = AnonymousUser()
    with schema_context(alpha.schema):
        assert portal(request)["portal_unread"] == 0


# --- Isolation ------------------------------------------------------------------------------------


def test_one_tenants_settings_never_show_on_anothers_host(alpha, beta, people, mailoutbox):
    admin = people["admin"]
    created = admin.post("/settings/api-keys/", {"name": "alpha-secret-key", "scopes": ["read"]})
    raw = re.search(r'data-testid="raw-key">([^<]+)<', response_text(created)).group(1)
    admin.post("/settings/users/", {"email": "invitee@alpha.test", "role": "member"})
    notifications_make(alpha, 2)
    admin.post("/budgets/", {"scope": "", "amount": "777", "thresholds": "50"})
    with schema_context(alpha.schema):
        alpha_key = ApiKey.objects.get(name="alpha-secret-key")
        alpha_budget = Budget.objects.get()

    refused = host_client(beta.host).post(
        "/login/", {"username": alpha.admin_email, "password": PASSWORD}
    )
    assert refused.status_code == 200 and "did not match" in response_text(refused)
    stolen = host_client(beta.host)
    stolen.cookies = admin.cookies  # alpha's session cookie presented to beta's host
    assert stolen.get("/settings/users/").status_code == 302

    beta_admin = logged_in_client(beta.host, beta.admin_email)
    keys = response_text(beta_admin.get("/settings/api-keys/"))
    assert "alpha-secret-key" not in keys and alpha_key.prefix not in keys
    assert "No API keys yet" in keys
    users = response_text(beta_admin.get("/settings/users/"))
    assert "alpha.test" not in users and beta.admin_email in users
    inbox = response_text(beta_admin.get("/notifications/"))
    assert "Notice" not in inbox and unread_badge(inbox) == 0
    assert "$777.00" not in response_text(beta_admin.get("/budgets/"))
    assert beta_admin.get(f"/budgets/{alpha_budget.pk}/").status_code == 404
    assert beta_admin.post(f"/settings/api-keys/{alpha_key.pk}/revoke/").status_code == 404
    assert host_client(beta.host).get("/api/v1/whoami", **bearer(raw)).status_code == 401
    with schema_context(alpha.schema):
        assert ApiKey.objects.get(pk=alpha_key.pk).revoked_at is None
