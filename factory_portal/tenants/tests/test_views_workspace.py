"""The tenant admin's workspace page: the time zone is set by admins only, checked, and applies to
their own tenant only."""

from __future__ import annotations

import pytest

from factory_portal.tenants.models import Tenant
from tests.support import host_client, logged_in_client

pytestmark = pytest.mark.django_db
PAGE = "/settings/workspace/"


def _timezone(site) -> str:
    return Tenant.objects.get(pk=site.tenant.pk).timezone


def test_the_admin_sets_the_time_zone(alpha, people, monkeypatch):
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored afterwards
    page = people["admin"].get(PAGE)
    assert page.status_code == 200
    assert 'data-testid="timezone">UTC<' in page.content.decode()
    saved = people["admin"].post(PAGE, {"timezone": "Europe/Berlin"}, follow=True)
    assert "Time zone set to Europe/Berlin." in saved.content.decode()
    assert 'data-testid="timezone">Europe/Berlin<' in saved.content.decode()
    assert _timezone(alpha) == "Europe/Berlin"


@pytest.mark.parametrize("value", ["Mars/Olympus", "", "../../etc/passwd"])
def test_an_unknown_time_zone_is_refused_in_words(alpha, people, value):
    refused = people["admin"].post(PAGE, {"timezone": value})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert ("Unknown time zone" in body) if value else ("This field is required." in body)
    assert _timezone(alpha) == "UTC"


@pytest.mark.parametrize("role", ["member", "finance"])
def test_other_roles_may_neither_open_nor_change_it(alpha, people, role):
    assert people[role].get(PAGE).status_code == 403
    assert people[role].post(PAGE, {"timezone": "Asia/Tokyo"}).status_code == 403
    assert _timezone(alpha) == "UTC"
    anonymous = host_client(alpha.host).post(PAGE, {"timezone": "Asia/Tokyo"})
    assert anonymous.status_code == 302 and _timezone(alpha) == "UTC"


def test_an_admin_sets_only_their_own_tenants_time_zone(alpha, beta, people, monkeypatch):
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)
    people["admin"].post(PAGE, {"timezone": "America/Los_Angeles"})
    assert (_timezone(alpha), _timezone(beta)) == ("America/Los_Angeles", "UTC")
    beta_admin = logged_in_client(beta.host, beta.admin_email)
    assert 'data-testid="timezone">UTC<' in beta_admin.get(PAGE).content.decode()


def test_a_huge_time_zone_value_is_refused_without_echoing_it(alpha, people):
    refused = people["admin"].post(PAGE, {"timezone": "X" * 100_000})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "Unknown time zone" in body and "X" * 65 not in body
    assert _timezone(alpha) == "UTC"


def test_the_admin_chooses_how_numbers_are_written_on_this_workspace_only(alpha, beta, people):
    try:
        saved = people["admin"].post(PAGE, {"form": "number_format", "number_format": "de"})
        assert saved.status_code == 302
        page = people["admin"].get(PAGE).content.decode()
        assert 'data-testid="number-format">1.234.567,89\u00a0$<' in page
        assert "1.234.567 runs" in page and "45,67%" in page
        assert 'data-separators=",."' in page  # charts: decimal comma, thousands point
        beta_admin = logged_in_client(beta.host, beta.admin_email)
        assert 'data-testid="number-format">$1,234,567.89<' in beta_admin.get(PAGE).content.decode()
        refused = people["admin"].post(PAGE, {"form": "number_format", "number_format": "xx"})
        assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
        assert Tenant.objects.get(pk=alpha.tenant.pk).number_format == "de"
        for role in ("member", "finance"):
            people[role].post(PAGE, {"form": "number_format", "number_format": "fr"})
        assert Tenant.objects.get(pk=alpha.tenant.pk).number_format == "de"
    finally:
        Tenant.objects.filter(pk=alpha.tenant.pk).update(number_format="en")
