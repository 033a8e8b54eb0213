"""The operator console's tenant pages (web.console.views): the tenant list, creating a tenant
(its admin password shown once), suspending and reactivating, form errors."""

from __future__ import annotations

import html
import re

import pytest

from factory_portal.tenants.models import Tenant
from tests.support import host_client, logged_in_client

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_tenant_list_shows_each_tenant_with_suspend_buttons(operator, alpha, beta):
    page = _text(operator.get("/"))
    for tenant in (alpha, beta):
        assert tenant.tenant.name in page
        assert f'action="/tenants/{tenant.tenant.slug}/status"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    for field in ("slug", "name", "admin_email"):
        assert f'<label for="id_{field}"' in page


def test_create_a_tenant_then_suspend_and_reactivate_it(operator):
    response = operator.post(
        "/tenants/new", {"slug": "gamma", "name": "Gamma Ltd", "admin_email": "boss@gamma.test"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = _text(response)
    password = re.search(r'data-testid="admin-password">([^<]+)</code>', page).group(1)
    assert "shown only this once" in page
    gamma = Tenant.objects.get(slug="gamma")
    host = gamma.domains.get().domain
    assert host in page

    admin = logged_in_client(host, "boss@gamma.test", password)  # the password works
    assert admin.get("/").status_code == 200
    assert password not in _text(operator.get("/"))  # and is never shown again

    assert operator.post("/tenants/gamma/status", {"status": "suspended"}).status_code == 302
    refused = admin.get("/")
    assert refused.status_code == 403 and "suspended" in refused.content.decode()
    listing = _text(operator.get("/"))
    assert "Gamma Ltd is suspended" in listing
    assert 'aria-label="Reactivate Gamma Ltd"' in listing

    assert operator.post("/tenants/gamma/status", {"status": "active"}).status_code == 302
    assert admin.get("/").status_code == 200
    assert "Gamma Ltd is active again" in _text(operator.get("/"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"slug": "alpha", "name": "Again", "admin_email": "a@x.test"}, "already exists"),
        ({"slug": "Not A Slug!", "name": "X", "admin_email": "a@x.test"}, "2-40 lowercase"),
        ({"slug": "admin", "name": "X", "admin_email": "a@x.test"}, "reserved"),
        ({"slug": "delta", "name": "X", "admin_email": "not-an-email"}, "valid email"),
        ({"slug": "delta", "name": "", "admin_email": "a@x.test"}, "required"),
    ],
)
def test_create_tenant_shows_validation_errors_on_the_form(operator, alpha, data, message):
    before = Tenant.objects.count()
    response = operator.post("/tenants/new", data)
    assert response.status_code == 400
    page = _text(response)
    assert message in page
    assert f'value="{data["slug"]}"' in page  # the form keeps what was typed
    assert Tenant.objects.count() == before


def test_the_operator_chooses_the_new_tenants_time_zone(operator):
    form = _text(operator.get("/"))
    assert '<label for="id_timezone"' in form and '<option value="Europe/Berlin">' in form
    refused = operator.post(
        "/tenants/new",
        {"slug": "epsilon", "name": "Eps", "admin_email": "a@eps.test", "timezone": "Nowhere/X"},
    )
    assert refused.status_code == 400 and "Unknown time zone 'Nowhere/X'" in _text(refused)
    assert not Tenant.objects.filter(slug="epsilon").exists()
    created = operator.post(
        "/tenants/new",
        {
            "slug": "berlin",
            "name": "Berlin",
            "admin_email": "a@b.test",
            "timezone": "Europe/Berlin",
        },
    )
    assert created.status_code == 200
    assert Tenant.objects.get(slug="berlin").timezone == "Europe/Berlin"


def test_unknown_tenant_or_status_is_refused(operator, alpha):
    assert operator.post("/tenants/nope/status", {"status": "suspended"}).status_code == 404
    assert operator.get("/tenants/alpha/status").status_code == 405
    response = operator.post("/tenants/alpha/status", {"status": "deleted"}, follow=True)
    assert "Unknown tenant status" in _text(response)
    assert Tenant.objects.get(slug="alpha").status == Tenant.Status.ACTIVE


@pytest.mark.parametrize(
    ("extra", "suffix"),
    [({}, ""), ({"SERVER_PORT": "8000"}, ":8000"), ({"wsgi.url_scheme": "https"}, ":80")],
)
def test_the_new_tenants_site_is_a_real_link(operator, extra, suffix):
    response = operator.post(
        "/tenants/new",
        {"slug": "gamma", "name": "Gamma Ltd", "admin_email": "boss@gamma.test"},
        **extra,
    )
    assert response.status_code == 200
    host = Tenant.objects.get(slug="gamma").domains.get().domain
    scheme = extra.get("wsgi.url_scheme", "http")
    url = f"{scheme}://{host}{suffix}/"
    link = re.search(r'<a href="([^"]+)" data-testid="tenant-site">', _text(response))
    assert link and link.group(1) == url
    # The link leads to the tenant's site (its sign-in page).
    site = host_client(host).get("/", follow=True)
    assert site.status_code == 200 and "/login/" in site.redirect_chain[-1][0]


def test_the_month_to_date_total_is_the_sum_of_the_rows_shown(operator, alpha, beta):
    """Each tenant's $0.006 shows as $0.01: the total shows $0.02, not the $0.01 the exact sum
    rounds to (an operator review found it)."""
    from decimal import Decimal

    from django.utils import timezone
    from django_tenants.utils import schema_context

    from tests.support import llm_event_in
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest

    for tenant in (alpha, beta):
        with schema_context(tenant.schema):
            events_ingest(
                events=[llm_event_in("c", timezone.now(), cost=Decimal("0.006"))],
                pricer=pricer_for(tenant.tenant),
            )
    page = _text(operator.get("/"))
    assert re.search(r'data-testid="total-cost">\$0\.02<', page), page[:2000]
