"""Every page answers with a Content-Security-Policy that allows scripts only from the site's
own files (no inline script, no eval), and with the other browser protections; the templates
carry no inline script or event handler the policy would block."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.services import user_create
from tests.browser.test_pages_in_chromium import OPERATOR_PAGES, TENANT_PAGES
from tests.support import OPERATOR_EMAIL, PASSWORD, host_client, logged_in_client, run_update

pytestmark = pytest.mark.django_db

# <script> elements that run: any without a src, except JSON data blocks (json_script).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def _policy(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def _assert_protected(response, name: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 403, 404, 429), name
    policy = _policy(response)
    assert policy["script-src"] == ["'self'"], name
    assert policy["default-src"] == ["'self'"], name
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], name
    assert policy["frame-ancestors"] == ["'none'"], name
    assert response["X-Frame-Options"] == "DENY", name
    assert response["X-Content-Type-Options"] == "nosniff", name
    assert response["Referrer-Policy"] == "same-origin", name
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", name
    assert "camera=()" in response["Permissions-Policy"], name
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), f"{name}: inline script"
    assert not EVENT_HANDLER.search(html), f"{name}: inline event handler"


def test_every_tenant_page_carries_the_policy(alpha):
    with schema_context(alpha.schema):
        run_update("run-1", "Succeeded", datetime(2026, 11, 1, tzinfo=UTC))
    client = logged_in_client(alpha.host, alpha.admin_email)
    pages = dict(TENANT_PAGES, **{"run-details": "/runs/run-1/", "not-found": "/runs/nope/"})
    for name, path in pages.items():
        _assert_protected(client.get(path), name)
    with schema_context(alpha.schema):
        webhook = _webhook()
    _assert_protected(client.get(f"/settings/webhooks/{webhook}/"), "webhook-detail")


def _webhook() -> int:
    from alerts.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(name="x", url="https://h.example.com/", secret="s")
    return endpoint.pk


def test_every_operator_page_and_the_login_pages_carry_the_policy(alpha, public_host):
    client = logged_in_client(public_host, OPERATOR_EMAIL)
    for name, path in OPERATOR_PAGES.items():
        _assert_protected(client.get(path), name)
    _assert_protected(host_client(public_host).get("/login/"), "operator login")
    _assert_protected(host_client(alpha.host).get("/login/"), "tenant login")
    # A page refused by role (403) is protected the same way.
    with schema_context(alpha.schema):
        user_create(email="member@alpha.test", role="member", password=PASSWORD)
    member = logged_in_client(alpha.host, "member@alpha.test")
    refused = member.get("/settings/users/")
    assert refused.status_code == 403
    _assert_protected(refused, "users page as a member")


def test_the_api_docs_work_under_the_policy(alpha):
    client = host_client(alpha.host)
    page = client.get("/api/docs/")
    _assert_protected(page, "api docs")
    # Swagger UI's start script is a file of its own, not an inline block.
    script = re.search(r'<script src="([^"]*script=[^"]*)"', page.content.decode())
    assert script, "the page loads its start script by URL"
    start = client.get(script.group(1).replace("&amp;", "&"))
    assert start.status_code == 200
    assert start["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in start.content.decode()
