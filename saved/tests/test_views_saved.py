"""The saved views page and its forms: what can be saved (an analytics page of this host the
user may open, never another site or the API), names, limits, sharing, who may delete, roles,
and tenant isolation."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role, User
from saved import domain
from saved.models import SavedView
from tests.support import MEMBER, logged_in_client, response_text, user_make

ANALYTICS = ["/", "/usage/", "/steps/", "/runs/", "/errors/", "/costs/", "/health/factory/"]


def _save(client, path, query="", name="Mine", **extra):
    return client.post(
        "/saved/new", {"path": path, "query": query, "name": name, **extra}, follow=True
    )


def _views(schema: str) -> list[tuple[str, str, str, bool]]:
    with schema_context(schema):
        return [
            (v.owner.email, v.name, v.href, v.shared)
            for v in SavedView.objects.select_related("owner").order_by("pk")
        ]


@pytest.mark.parametrize("path", [*ANALYTICS, "/health/queues/"])
def test_every_analytics_page_offers_save_view(people, path):
    page = response_text(people["admin"].get(path))
    assert 'data-testid="save-view"' in page
    assert 'action="/saved/new"' in page


def test_a_page_is_saved_with_its_filters_and_opens_again(alpha, people):
    response = _save(people["member"], "/usage/", "range=7d&project=web&page=2", "Web, 7 days")
    assert response.redirect_chain[-1][0] == "/usage/?range=7d&project=web"
    assert "Saved as “Web, 7 days”" in response_text(response)
    assert _views(alpha.schema) == [(MEMBER, "Web, 7 days", "/usage/?range=7d&project=web", False)]
    listing = response_text(people["member"].get("/saved/"))
    assert 'href="/usage/?range=7d&amp;project=web"' in listing


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("https://evil.example/usage/", "Only pages of this site"),
        ("//evil.example/usage/", "Only pages of this site"),
        ("/api/v1/usage", "Only the analytics pages"),
        ("/settings/users/", "Only the analytics pages"),
        ("/reports/", "Only the analytics pages"),
        ("/nowhere/", "There is no page"),
        ("", "Only pages of this site"),
    ],
)
def test_only_analytics_pages_of_this_site_can_be_saved(alpha, people, path, reason):
    response = _save(people["admin"], path)
    assert reason in response_text(response)
    assert response.redirect_chain[-1][0] == "/saved/"  # never back to a posted URL
    assert _views(alpha.schema) == []


def test_a_page_the_user_cannot_open_cannot_be_saved(alpha, people):
    response = _save(people["finance"], "/runs/", "status=failed")
    assert "You cannot open that page" in response_text(response)
    assert _views(alpha.schema) == []


def test_names_are_unique_per_owner_and_views_are_capped(alpha, people, monkeypatch):
    _save(people["member"], "/usage/", name="Mine")
    again = _save(people["member"], "/steps/", name="Mine")
    assert "You already have a saved view named “Mine”" in response_text(again)
    _save(people["admin"], "/usage/", name="Mine")  # another owner: fine
    monkeypatch.setattr("saved.services.VIEWS_PER_USER", 2)
    _save(people["member"], "/steps/", name="Second")
    third = _save(people["member"], "/errors/", name="Third")
    assert "You have 2 saved views, the most there can be." in response_text(third)
    assert [v[1] for v in _views(alpha.schema)] == ["Mine", "Mine", "Second"]


def test_a_query_over_the_cap_is_refused_on_the_page(alpha, people):
    response = _save(people["member"], "/usage/", "q=" + "x" * domain.QUERY_MAX)
    assert "too long to save" in response_text(response)
    assert response.redirect_chain[-1][0] == "/usage/"
    assert _views(alpha.schema) == []


def test_shared_views_are_seen_by_the_tenant_private_ones_by_their_owner(alpha, people):
    _save(people["admin"], "/costs/", "by=project", "Shared costs", shared="on")
    _save(people["admin"], "/steps/", "", "Private steps")
    _save(people["admin"], "/runs/", "status=failed", "Failed runs", shared="on")
    member = response_text(people["member"].get("/saved/"))
    assert "Failed runs" in member and "Private steps" not in member
    # a member is not offered costs, a finance user not run history (each would answer 403)
    assert "Shared costs" not in member
    finance = response_text(people["finance"].get("/saved/"))
    assert "Shared costs" in finance and "Failed runs" not in finance


def test_only_the_owner_renames_and_shares_owner_or_admin_deletes(alpha, people):
    _save(people["member"], "/usage/", "", "Usage", shared="on")
    with schema_context(alpha.schema):
        pk = SavedView.objects.get().pk
    user_make(alpha, "other@alpha.test", Role.MEMBER)
    other = logged_in_client(alpha.host, "other@alpha.test")
    assert "Only its owner" in response_text(
        other.post(f"/saved/{pk}/rename", {"name": "Hijacked"}, follow=True)
    )
    assert "Only its owner or an admin" in response_text(
        other.post(f"/saved/{pk}/delete", follow=True)
    )
    people["member"].post(f"/saved/{pk}/rename", {"name": "Usage, all"})
    people["member"].post(f"/saved/{pk}/share", {})  # unshare
    assert _views(alpha.schema) == [(MEMBER, "Usage, all", "/usage/", False)]
    assert other.post(f"/saved/{pk}/delete").status_code == 404  # private now: not seen
    people["member"].post(f"/saved/{pk}/share", {"shared": "on"})
    people["admin"].post(f"/saved/{pk}/delete")
    assert _views(alpha.schema) == []


def test_bad_input_is_a_clear_4xx_never_a_500(people):
    admin = people["admin"]
    assert admin.post("/saved/999999/delete").status_code == 404
    assert admin.post("/saved/999999/rename", {"name": "x"}).status_code == 404
    assert admin.get("/saved/new").status_code == 405
    assert admin.post("/saved/schedules/999999/delete").status_code == 404
    response = admin.post("/saved/schedules/new", {"view": "abc", "cadence": "weekly"}, follow=True)
    assert "choose a saved view or the monthly report" in response_text(response)


def test_signed_out_users_are_sent_to_sign_in(alpha, client):
    response = client.get("/saved/", HTTP_HOST=alpha.host)
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post("/saved/new", {"path": "/usage/", "name": "x"}, HTTP_HOST=alpha.host)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_another_tenants_views_are_never_visible_or_usable(alpha, beta, people):
    _save(people["admin"], "/usage/", "range=7d", "Alpha shared", shared="on")
    with schema_context(alpha.schema):
        pk = SavedView.objects.get().pk
    beta_admin = logged_in_client(beta.host, beta.admin_email)
    assert "Alpha shared" not in response_text(beta_admin.get("/saved/"))
    assert beta_admin.post(f"/saved/{pk}/delete").status_code == 404
    assert beta_admin.post(f"/saved/{pk}/rename", {"name": "x"}).status_code == 404
    response = beta_admin.post(
        "/saved/schedules/new", {"view": pk, "cadence": "weekly"}, follow=True
    )
    assert "choose a saved view" in response_text(response)
    assert len(_views(alpha.schema)) == 1 and _views(beta.schema) == []
    with schema_context(beta.schema):
        assert not User.objects.filter(email=alpha.admin_email).exists()
