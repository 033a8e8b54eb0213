"""Settings pages of the accounts: API keys (secret shown once, form errors, empty state, no N+1)
and users with invitations (the invitation email and link, role changes, deactivation, the last
admin stays, no N+1)."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from factory_portal.accounts.models import ApiKey, Role, User
from factory_portal.accounts.services import (
    api_key_create,
    user_create,
    user_deactivate,
    user_role_set,
)
from tests.support import (
    MEMBER,
    PASSWORD,
    bearer,
    host_client,
    logged_in_client,
    response_text,
    user_make,
)

pytestmark = pytest.mark.django_db


def _admin(tenant) -> User:
    with schema_context(tenant.schema):
        return User.objects.get(email=tenant.admin_email)


def test_api_key_is_shown_once_then_authenticates_until_revoked(alpha, people):
    admin = people["admin"]
    response = admin.post("/settings/api-keys/", {"name": "factory ingest", "scopes": ["read"]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'data-testid="raw-key">([^<]+)<', response_text(response)).group(1)

    whoami = host_client(alpha.host).get("/api/v1/whoami", **bearer(raw))
    assert whoami.status_code == 200
    prefix = whoami.json()["api_key"]["prefix"]
    assert whoami.json()["api_key"]["name"] == "factory ingest"
    with schema_context(alpha.schema):
        stored = ApiKey.objects.get(prefix=prefix)
        assert stored.created_by.email == alpha.admin_email
        assert raw not in (stored.key_hash, stored.prefix, stored.name)

    listing = response_text(admin.get("/settings/api-keys/"))
    assert raw not in listing and raw.split("_", 2)[2] not in listing
    assert f"fp_{prefix}_" in listing and "factory ingest" in listing
    assert alpha.admin_email in listing  # created by
    assert ">never<" not in listing  # last used: by the whoami call above
    assert raw not in str(dict(admin.session))

    assert admin.get(f"/settings/api-keys/{stored.pk}/revoke/").status_code == 200  # confirm
    with schema_context(alpha.schema):
        assert ApiKey.objects.get(pk=stored.pk).revoked_at is None
    revoked = admin.post(f"/settings/api-keys/{stored.pk}/revoke/", follow=True)
    assert "now get 401" in response_text(revoked)
    assert "Revoked" in response_text(revoked)
    assert host_client(alpha.host).get("/api/v1/whoami", **bearer(raw)).status_code == 401


def test_api_key_form_errors(alpha, people):
    admin = people["admin"]
    no_scope = admin.post("/settings/api-keys/", {"name": "x"})
    assert no_scope.status_code == 400
    assert "Choose at least one scope." in response_text(no_scope)
    bad_scope = admin.post("/settings/api-keys/", {"name": "x", "scopes": ["admin"]})
    assert bad_scope.status_code == 400
    no_name = admin.post("/settings/api-keys/", {"name": "", "scopes": ["read"]})
    assert no_name.status_code == 400 and "This field is required." in response_text(no_name)
    with schema_context(alpha.schema):
        assert not ApiKey.objects.exists()
    assert admin.get("/settings/api-keys/99999/revoke/").status_code == 404


def test_api_keys_page_empty_state_and_labels(alpha, people):
    page = response_text(people["admin"].get("/settings/api-keys/"))
    assert "No API keys yet" in page
    assert '<label for="id_name"' in page and "<legend>Scopes" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_api_keys_list_has_no_n_plus_1(alpha, people, django_assert_max_num_queries):
    admin = people["admin"]
    admin.get("/settings/api-keys/")  # warm the session
    with CaptureQueriesContext(connection) as one:
        admin.get("/settings/api-keys/")
    creators = [user_make(alpha, f"creator{i}@alpha.test", Role.ADMIN) for i in range(10)]
    with schema_context(alpha.schema):
        for i in range(30):
            api_key_create(name=f"key {i}", scopes=["read"], created_by=creators[i % 10])
    with django_assert_max_num_queries(len(one)):
        page = response_text(admin.get("/settings/api-keys/"))
    assert page.count('data-testid="api-key"') == 30


def test_invitation_email_sets_a_password_once(alpha, people, mailoutbox):
    admin = people["admin"]
    response = admin.post(
        "/settings/users/", {"email": "New.Person@Alpha.test", "role": "finance", "full_name": "N"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["new.person@alpha.test"]
    link = re.search(r"https?://\S+/invite/\S+/", mail.body).group(0)
    html, mimetype = mail.alternatives[0]
    assert mimetype == "text/html" and link in html
    assert link in response_text(response)  # shown once to the admin, too
    assert urlsplit(link).netloc == alpha.host
    assert link not in response_text(admin.get("/settings/users/"))
    assert "Invited" in response_text(admin.get("/settings/users/"))

    with schema_context(alpha.schema):
        invited = User.objects.get(email="new.person@alpha.test")
        assert invited.role == Role.FINANCE and not invited.has_usable_password()
    assert (
        host_client(alpha.host)
        .post("/login/", {"username": "new.person@alpha.test", "password": ""})
        .status_code
        == 200
    )  # cannot log in before accepting

    visitor = host_client(alpha.host)
    landing = visitor.get(urlsplit(link).path)
    assert landing.status_code == 302 and landing["Location"].endswith("/set-password/")
    form = visitor.get(landing["Location"])
    assert form.status_code == 200 and "Choose your password" in response_text(form)
    mismatch = visitor.post(
        landing["Location"], {"new_password1": "Tr1cky-pass-42", "new_password2": "other"}
    )
    assert mismatch.status_code == 400 and "two password fields didn" in response_text(mismatch)
    done = visitor.post(
        landing["Location"],
        {"new_password1": "Tr1cky-pass-42", "new_password2": "Tr1cky-pass-42"},
    )
    assert done.status_code == 302 and done["Location"] == "/login/"

    logged_in = logged_in_client(alpha.host, "new.person@alpha.test", "Tr1cky-pass-42")
    assert logged_in.get("/reports/").status_code == 200  # finance

    reuse = host_client(alpha.host).get(urlsplit(link).path, follow=True)
    assert reuse.status_code == 400
    assert "not valid" in response_text(reuse)


def test_invitation_link_does_not_open_another_tenants_account(alpha, beta, people, mailoutbox):
    people["admin"].post("/settings/users/", {"email": "x@alpha.test", "role": "member"})
    path = urlsplit(re.search(r"https?://\S+/invite/\S+/", mailoutbox[0].body).group(0)).path
    response = host_client(beta.host).get(path, follow=True)
    assert response.status_code == 400 and "not valid" in response_text(response)


def test_invitation_shows_link_when_email_cannot_be_sent(alpha, people, settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    response = people["admin"].post("/settings/users/", {"email": "y@alpha.test", "role": "member"})
    assert response.status_code == 200
    page = response_text(response)
    assert "could not be sent" in page
    assert re.search(r'data-testid="invite-link">https?://[^<]+/invite/', page)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "admin@alpha.test", "role": "member"}, "already exists"),
        ({"email": "ADMIN@alpha.test", "role": "member"}, "already exists"),
        ({"email": "someone@alpha.test", "role": "operator"}, "Choose a role"),
        ({"email": "someone@alpha.test", "role": "boss"}, "Choose a role"),
        ({"email": "not-an-address", "role": "member"}, "Enter a valid email address."),
    ],
)
def test_invitation_form_errors(alpha, people, mailoutbox, data, message):
    response = people["admin"].post("/settings/users/", data)
    assert response.status_code == 400
    assert message in response_text(response)
    assert mailoutbox == []
    with schema_context(alpha.schema):
        assert User.objects.count() == 3


def test_role_change_and_deactivation(alpha, people):
    admin = people["admin"]
    with schema_context(alpha.schema):
        member = User.objects.get(email=MEMBER)
    response = admin.post(f"/settings/users/{member.pk}/role/", {"role": "finance"}, follow=True)
    assert "member@alpha.test is now finance" in response_text(response)
    assert people["member"].get("/reports/").status_code == 200  # the new role applies at once
    bad = admin.post(f"/settings/users/{member.pk}/role/", {"role": "operator"})
    assert bad.status_code == 400 and "Choose a role" in response_text(bad)

    admin.post(f"/settings/users/{member.pk}/deactivate/")
    assert people["member"].get("/notifications/").status_code == 302  # session ends
    assert (
        host_client(alpha.host)
        .post("/login/", {"username": MEMBER, "password": PASSWORD})
        .status_code
        == 200
    )
    assert "Deactivated" in response_text(admin.get("/settings/users/"))
    admin.post(f"/settings/users/{member.pk}/reactivate/")
    logged_in_client(alpha.host, MEMBER)
    assert admin.get(f"/settings/users/{member.pk}/deactivate/").status_code == 405
    assert admin.post("/settings/users/99999/role/", {"role": "member"}).status_code == 404


def test_admin_cannot_demote_or_deactivate_themselves(alpha, people):
    admin = people["admin"]
    me = _admin(alpha)
    demote = admin.post(f"/settings/users/{me.pk}/role/", {"role": "member"})
    assert demote.status_code == 400
    assert "You cannot demote yourself" in response_text(demote)
    deactivate = admin.post(f"/settings/users/{me.pk}/deactivate/")
    assert deactivate.status_code == 400
    assert "You cannot deactivate yourself" in response_text(deactivate)
    with schema_context(alpha.schema):
        me.refresh_from_db()
        assert me.role == Role.ADMIN and me.is_active


def test_the_last_active_admin_stays(alpha, people):
    second = user_make(alpha, "second@alpha.test", Role.ADMIN)
    me = _admin(alpha)
    # With two admins, one may demote the other ...
    response = people["admin"].post(f"/settings/users/{second.pk}/role/", {"role": "member"})
    assert response.status_code == 302
    with schema_context(alpha.schema):
        # ... but then the one left is the last: nobody can take it away, not even a
        # (former) admin acting through the service.
        second.refresh_from_db()
        with pytest.raises(ValidationError, match="last active admin"):
            user_role_set(user=me, role=Role.MEMBER, by=second)
        with pytest.raises(ValidationError, match="last active admin"):
            user_deactivate(user=me, by=second)
        inactive_admin = user_create(email="gone@alpha.test", role=Role.ADMIN)[0]
        user_deactivate(user=inactive_admin, by=me)
        with pytest.raises(ValidationError, match="last active admin"):
            user_role_set(user=me, role=Role.FINANCE, by=second)
        me.refresh_from_db()
        assert me.role == Role.ADMIN and me.is_active


def test_users_list_has_no_n_plus_1(alpha, people, django_assert_max_num_queries):
    admin = people["admin"]
    admin.get("/settings/users/")
    with CaptureQueriesContext(connection) as few:
        admin.get("/settings/users/")
    for i in range(25):
        user_make(alpha, f"user{i:02d}@alpha.test", Role.MEMBER)
    with django_assert_max_num_queries(len(few)):
        page = response_text(admin.get("/settings/users/"))
    assert page.count('data-testid="user"') == 28
    assert '<label for="id_email"' in page and '<label for="id_role"' in page
