"""Hosts map to schemas: tenant subdomains, the operator console, unknown hosts, health probes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from factory_portal.tenants.middleware import TenantHostMiddleware
from factory_portal.tenants.models import Domain, Tenant
from factory_portal.tenants.services import tenant_set_status
from tests.support import broker_down, host_client, logged_in_client

pytestmark = pytest.mark.django_db


def test_tenant_host_routes_to_its_login(alpha):
    response = host_client(alpha.host).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"
    page = host_client(alpha.host).get("/login/")
    assert page.status_code == 200
    assert "Alpha Inc" in page.content.decode()


def test_request_runs_in_the_tenant_schema(alpha, beta):
    host_client(beta.host).get("/login/")
    assert connection.schema_name == beta.schema
    host_client(alpha.host).get("/login/")
    assert connection.schema_name == alpha.schema


def test_base_domain_serves_the_operator_console(public_host):
    page = host_client(public_host).get("/login/")
    assert page.status_code == 200
    assert "operator console" in page.content.decode()
    assert connection.schema_name == "public"


def test_unknown_subdomain_is_404(db):
    assert host_client("nobody.localhost").get("/login/").status_code == 404


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost", "127.0.0.1", "nobody.localhost"])
def test_healthz_answers_on_any_host(db, host):
    response = host_client(host).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(db):
    response = host_client("127.0.0.1").get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_readyz_reports_an_unreachable_broker_as_degraded_not_unready(db):
    """Without Redis the portal still serves (deferred work waits in outboxes): the instance
    stays in the load balancer, and the answer says what is missing."""
    with broker_down():
        response = host_client("127.0.0.1").get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_suspended_tenant_is_refused(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    with schema_context("public"):
        tenant_set_status(tenant=Tenant.objects.get(slug="alpha"), status="suspended")
    page = client.get("/")
    assert page.status_code == 403
    assert "suspended" in page.content.decode()
    api = client.get("/api/v1/projects")
    assert api.status_code == 403
    assert api["Content-Type"] == "application/problem+json"


def test_the_host_lookup_is_one_statement_and_reads_the_whole_tenant(alpha):
    """The middleware's own lookup (``TenantHostMiddleware``): one statement, the tenant as the ORM
    reads it (every field), its schema selected; an unknown host is the ORM's DoesNotExist, which
    django-tenants answers with a 404 (above)."""
    middleware = TenantHostMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/login/", HTTP_HOST=alpha.host)
    with CaptureQueriesContext(connection) as queries:
        assert middleware.process_request(request) is None
    statements = [q["sql"] for q in queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 1 and "tenants_domain" in statements[0]
    expected = Tenant.objects.get(slug="alpha")
    fields = [f.attname for f in Tenant._meta.concrete_fields]
    assert [getattr(request.tenant, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert connection.schema_name == alpha.schema
    with pytest.raises(Domain.DoesNotExist):
        middleware.get_tenant(Domain, "nobody.localhost")
