"""Tenant settings pages: API keys, users and invitations, budgets, the notifications inbox and
the reports index. Who may open what, what each form refuses, secrets shown once, per-user read
state, no N+1 queries on the lists, and one tenant's data never on another's host."""

from __future__ import annotations

import re
import socket
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Budget
from billing.views import recent_months
from factory_portal.accounts.models import ApiKey, Role, User
from factory_portal.accounts.services import (
    api_key_create,
    user_create,
    user_deactivate,
    user_role_set,
)
from notifications.models import Notification, NotificationRead
from notifications.services import notification_create
from tests.support import OPERATOR_EMAIL, PASSWORD, bearer, host_client, logged_in_client
from usage.models import Project
from web.context_processors import portal

pytestmark = pytest.mark.django_db

MEMBER, FINANCE = "member@alpha.test", "finance@alpha.test"


def _user(tenant, email: str, role: str) -> User:
    with schema_context(tenant.schema):
        return user_create(email=email, role=role, password=PASSWORD)[0]


@pytest.fixture
def people(alpha):
    """Logged-in clients of alpha's admin, a member and a finance user."""
    _user(alpha, MEMBER, Role.MEMBER)
    _user(alpha, FINANCE, Role.FINANCE)
    return {
        "admin": logged_in_client(alpha.host, alpha.admin_email),
        "member": logged_in_client(alpha.host, MEMBER),
        "finance": logged_in_client(alpha.host, FINANCE),
    }


def _text(response) -> str:
    return response.content.decode()


def _titles(page: str) -> list[str]:
    return re.findall(r'notification-title">(?:<a [^>]*>)?Notice (\d\d)', page)


def _badge(page: str) -> int:
    match = re.search(r'data-testid="unread-count">(\d+)<', page)
    return int(match.group(1)) if match else 0


# --- Who may open what ----------------------------------------------------------------------------

MATRIX = {
    "/settings/api-keys/": {"member": 403, "finance": 403, "admin": 200},
    "/settings/users/": {"member": 403, "finance": 403, "admin": 200},
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


def test_finance_sees_budgets_read_only(alpha, people):
    with schema_context(alpha.schema):
        budget = Budget.objects.create(project="", amount=Decimal("300.00"), thresholds=[80])
    page = _text(people["finance"].get("/budgets/"))
    assert "$300.00" in page and "Whole tenant" in page
    assert "Add a budget" not in page and f"/budgets/{budget.pk}/delete/" not in page
    assert people["finance"].get(f"/budgets/{budget.pk}/").status_code == 403
    assert people["finance"].post(f"/budgets/{budget.pk}/delete/").status_code == 403
    with schema_context(alpha.schema):
        assert Budget.objects.filter(pk=budget.pk).exists()


def test_posts_need_the_csrf_token(alpha):
    client = Client(HTTP_HOST=alpha.host, enforce_csrf_checks=True)
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    login = {"username": alpha.admin_email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    assert client.post("/login/", login).status_code == 302
    page = _text(client.get("/settings/api-keys/"))
    assert 'name="csrfmiddlewaretoken"' in page
    response = client.post("/settings/api-keys/", {"name": "x", "scopes": ["read"]})
    assert response.status_code == 403
    with schema_context(alpha.schema):
        assert not ApiKey.objects.exists()


def _admin(tenant) -> User:
    with schema_context(tenant.schema):
        return User.objects.get(email=tenant.admin_email)


# --- API keys -------------------------------------------------------------------------------------


def test_api_key_is_shown_once_then_authenticates_until_revoked(alpha, people):
    admin = people["admin"]
    response = admin.post("/settings/api-keys/", {"name": "factory ingest", "scopes": ["read"]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'data-testid="raw-key">([^<]+)<', _text(response)).group(1)

    whoami = host_client(alpha.host).get("/api/v1/whoami", **bearer(raw))
    assert whoami.status_code == 200
    prefix = whoami.json()["api_key"]["prefix"]
    assert whoami.json()["api_key"]["name"] == "factory ingest"
    with schema_context(alpha.schema):
        stored = ApiKey.objects.get(prefix=prefix)
        assert stored.created_by.email == alpha.admin_email
        assert raw not in (stored.key_hash, stored.prefix, stored.name)

    listing = _text(admin.get("/settings/api-keys/"))
    assert raw not in listing and raw.split("_", 2)[2] not in listing
    assert f"fp_{prefix}_" in listing and "factory ingest" in listing
    assert alpha.admin_email in listing  # created by
    assert ">never<" not in listing  # last used: by the whoami call above
    assert raw not in str(dict(admin.session))

    assert admin.get(f"/settings/api-keys/{stored.pk}/revoke/").status_code == 200  # confirm
    with schema_context(alpha.schema):
        assert ApiKey.objects.get(pk=stored.pk).revoked_at is None
    revoked = admin.post(f"/settings/api-keys/{stored.pk}/revoke/", follow=True)
    assert "now get 401" in _text(revoked)
    assert "Revoked" in _text(revoked)
    assert host_client(alpha.host).get("/api/v1/whoami", **bearer(raw)).status_code == 401


def test_api_key_form_errors(alpha, people):
    admin = people["admin"]
    no_scope = admin.post("/settings/api-keys/", {"name": "x"})
    assert no_scope.status_code == 400
    assert "Choose at least one scope." in _text(no_scope)
    bad_scope = admin.post("/settings/api-keys/", {"name": "x", "scopes": ["admin"]})
    assert bad_scope.status_code == 400
    no_name = admin.post("/settings/api-keys/", {"name": "", "scopes": ["read"]})
    assert no_name.status_code == 400 and "This field is required." in _text(no_name)
    with schema_context(alpha.schema):
        assert not ApiKey.objects.exists()
    assert admin.get("/settings/api-keys/99999/revoke/").status_code == 404


def test_api_keys_page_empty_state_and_labels(alpha, people):
    page = _text(people["admin"].get("/settings/api-keys/"))
    assert "No API keys yet" in page
    assert '<label for="id_name"' in page and "<legend>Scopes" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_api_keys_list_has_no_n_plus_1(alpha, people, django_assert_max_num_queries):
    admin = people["admin"]
    admin.get("/settings/api-keys/")  # warm the session
    with CaptureQueriesContext(connection) as one:
        admin.get("/settings/api-keys/")
    creators = [_user(alpha, f"creator{i}@alpha.test", Role.ADMIN) for i in range(10)]
    with schema_context(alpha.schema):
        for i in range(30):
            api_key_create(name=f"key {i}", scopes=["read"], created_by=creators[i % 10])
    with django_assert_max_num_queries(len(one)):
        page = _text(admin.get("/settings/api-keys/"))
    assert page.count('data-testid="api-key"') == 30


# --- Users and invitations ------------------------------------------------------------------------


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
    assert link in _text(response)  # shown once to the admin, too
    assert urlsplit(link).netloc == alpha.host
    assert link not in _text(admin.get("/settings/users/"))
    assert "Invited" in _text(admin.get("/settings/users/"))

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
    assert form.status_code == 200 and "Choose your password" in _text(form)
    mismatch = visitor.post(
        landing["Location"], {"new_password1": "Tr1cky-pass-42", "new_password2": "other"}
    )
    assert mismatch.status_code == 400 and "two password fields didn" in _text(mismatch)
    done = visitor.post(
        landing["Location"],
        {"new_password1": "Tr1cky-pass-42", "new_password2": "Tr1cky-pass-42"},
    )
    assert done.status_code == 302 and done["Location"] == "/login/"

    logged_in = logged_in_client(alpha.host, "new.person@alpha.test", "Tr1cky-pass-42")
    assert logged_in.get("/reports/").status_code == 200  # finance

    reuse = host_client(alpha.host).get(urlsplit(link).path, follow=True)
    assert reuse.status_code == 400
    assert "not valid" in _text(reuse)


def test_invitation_link_does_not_open_another_tenants_account(alpha, beta, people, mailoutbox):
    people["admin"].post("/settings/users/", {"email": "x@alpha.test", "role": "member"})
    path = urlsplit(re.search(r"https?://\S+/invite/\S+/", mailoutbox[0].body).group(0)).path
    response = host_client(beta.host).get(path, follow=True)
    assert response.status_code == 400 and "not valid" in _text(response)


def test_invitation_shows_link_when_email_cannot_be_sent(alpha, people, settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    response = people["admin"].post("/settings/users/", {"email": "y@alpha.test", "role": "member"})
    assert response.status_code == 200
    page = _text(response)
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
    assert message in _text(response)
    assert mailoutbox == []
    with schema_context(alpha.schema):
        assert User.objects.count() == 3


def test_role_change_and_deactivation(alpha, people):
    admin = people["admin"]
    with schema_context(alpha.schema):
        member = User.objects.get(email=MEMBER)
    response = admin.post(f"/settings/users/{member.pk}/role/", {"role": "finance"}, follow=True)
    assert "member@alpha.test is now finance" in _text(response)
    assert people["member"].get("/reports/").status_code == 200  # the new role applies at once
    bad = admin.post(f"/settings/users/{member.pk}/role/", {"role": "operator"})
    assert bad.status_code == 400 and "Choose a role" in _text(bad)

    admin.post(f"/settings/users/{member.pk}/deactivate/")
    assert people["member"].get("/notifications/").status_code == 302  # session ends
    assert (
        host_client(alpha.host)
        .post("/login/", {"username": MEMBER, "password": PASSWORD})
        .status_code
        == 200
    )
    assert "Deactivated" in _text(admin.get("/settings/users/"))
    admin.post(f"/settings/users/{member.pk}/reactivate/")
    logged_in_client(alpha.host, MEMBER)
    assert admin.get(f"/settings/users/{member.pk}/deactivate/").status_code == 405
    assert admin.post("/settings/users/99999/role/", {"role": "member"}).status_code == 404


def test_admin_cannot_demote_or_deactivate_themselves(alpha, people):
    admin = people["admin"]
    me = _admin(alpha)
    demote = admin.post(f"/settings/users/{me.pk}/role/", {"role": "member"})
    assert demote.status_code == 400
    assert "You cannot demote yourself" in _text(demote)
    deactivate = admin.post(f"/settings/users/{me.pk}/deactivate/")
    assert deactivate.status_code == 400
    assert "You cannot deactivate yourself" in _text(deactivate)
    with schema_context(alpha.schema):
        me.refresh_from_db()
        assert me.role == Role.ADMIN and me.is_active


def test_the_last_active_admin_stays(alpha, people):
    second = _user(alpha, "second@alpha.test", Role.ADMIN)
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
        _user(alpha, f"user{i:02d}@alpha.test", Role.MEMBER)
    with django_assert_max_num_queries(len(few)):
        page = _text(admin.get("/settings/users/"))
    assert page.count('data-testid="user"') == 28
    assert '<label for="id_email"' in page and '<label for="id_role"' in page


# --- Budgets --------------------------------------------------------------------------------------


def test_budget_create_edit_delete(alpha, people):
    admin = people["admin"]
    assert "No budgets yet" in _text(admin.get("/budgets/"))
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web shop")
    created = admin.post(
        "/budgets/", {"scope": "web", "amount": "1250.50", "thresholds": "50%, 80 ,100"}
    )
    assert created.status_code == 302
    admin.post("/budgets/", {"scope": "", "amount": "5000", "thresholds": "100"})
    with schema_context(alpha.schema):
        budget = Budget.objects.get(project="web")
        assert budget.amount == Decimal("1250.50") and budget.thresholds == [50, 80, 100]
        assert Budget.objects.get(project="").amount == Decimal("5000.00")
    page = _text(admin.get("/budgets/"))
    assert "Project Web shop" in page and "$1,250.50" in page and "$5,000.00" in page
    assert "On track" in page and page.count('data-testid="budget"') == 2

    form = admin.get(f"/budgets/{budget.pk}/")
    assert form.status_code == 200 and 'value="50, 80, 100"' in _text(form)
    edited = admin.post(f"/budgets/{budget.pk}/", {"amount": "900", "thresholds": "90, 95"})
    assert edited.status_code == 302
    with schema_context(alpha.schema):
        budget.refresh_from_db()
        assert budget.amount == Decimal("900.00") and budget.thresholds == [90, 95]
        assert budget.project == "web"
    bad_edit = admin.post(f"/budgets/{budget.pk}/", {"amount": "-1", "thresholds": "90"})
    assert bad_edit.status_code == 400 and "positive amount" in _text(bad_edit)

    assert admin.get(f"/budgets/{budget.pk}/delete/").status_code == 200  # confirm
    deleted = admin.post(f"/budgets/{budget.pk}/delete/", follow=True)
    assert "deleted" in _text(deleted)
    with schema_context(alpha.schema):
        assert not Budget.objects.filter(pk=budget.pk).exists()
    assert admin.get(f"/budgets/{budget.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "0"}, "A budget is a positive amount"),
        ({"amount": "-5"}, "A budget is a positive amount"),
        ({"amount": "12.345"}, "Use at most 2 decimals (cents)."),
        ({"amount": "abc"}, "Enter an amount in USD"),
        ({"amount": "NaN"}, "Enter an amount in USD"),
        ({"amount": ""}, "Enter the monthly amount."),
        ({"amount": "1" * 15}, "That amount is too large."),
        ({"thresholds": "50, abc"}, "not understood: “abc”"),
        ({"thresholds": "50.5"}, "not understood: “50.5”"),
        ({"thresholds": "0, 80, 1200"}, "out of range: 0, 1200"),
        ({"thresholds": " , "}, "Give at least one threshold"),
        ({"scope": "no-such-project"}, "Choose the whole tenant or one of your projects."),
        ({"scope": "existing"}, "already has a budget"),
    ],
)
def test_budget_validation_errors(alpha, people, data, message):
    with schema_context(alpha.schema):
        Budget.objects.create(project="", amount=Decimal("10.00"), thresholds=[100])
    fields = {"scope": "web", "amount": "100", "thresholds": "50, 100"} | data
    if fields["scope"] == "existing":
        fields["scope"] = ""
    with schema_context(alpha.schema):
        Project.objects.create(slug="web", name="Web")
    response = people["admin"].post("/budgets/", fields)
    assert response.status_code == 400
    assert message in _text(response)
    with schema_context(alpha.schema):
        assert list(Budget.objects.values_list("project", flat=True)) == [""]


# --- Notifications --------------------------------------------------------------------------------


def _notify(tenant, count: int, **fields) -> list[Notification]:
    start = timezone.now()
    with schema_context(tenant.schema):
        made = [
            notification_create(kind="budget", title=f"Notice {i:02d}", **fields)
            for i in range(count)
        ]
        for i, n in enumerate(made):  # distinct, increasing times: Notice 00 is the oldest
            Notification.objects.filter(pk=n.pk).update(created_at=start + timedelta(seconds=i))
    return made


def test_inbox_empty_state(alpha, people):
    page = _text(people["member"].get("/notifications/"))
    assert "No notifications yet" in page and "budget thresholds" in page
    assert _badge(page) == 0
    assert "all caught up" in _text(people["member"].get("/notifications/?show=unread"))


def test_inbox_pages_newest_first(alpha, people):
    _notify(alpha, 30)
    client = people["member"]
    first = _text(client.get("/notifications/"))
    assert _titles(first) == [f"{i:02d}" for i in range(29, 4, -1)]  # 25, newest first
    assert _badge(first) == 30
    assert 'data-testid="next-page"' in first
    second = _text(client.get("/notifications/?page=2"))
    assert _titles(second) == ["04", "03", "02", "01", "00"]
    assert 'data-testid="next-page"' not in second
    assert client.get("/notifications/?page=999").status_code == 200
    assert "Notice 00" in _text(client.get("/notifications/?page=999"))
    assert "Notice 29" in _text(client.get("/notifications/?page=abc"))


def test_read_state_is_per_user(alpha, people):
    shared, _ = _notify(alpha, 2, severity="warning", url="/budgets/")
    admin, finance = people["admin"], people["finance"]
    response = admin.post(
        f"/notifications/{shared.pk}/read/", {"next": "/notifications/?show=unread"}
    )
    assert response.status_code == 302 and response["Location"] == "/notifications/?show=unread"
    unread = _text(admin.get("/notifications/?show=unread"))
    assert _badge(unread) == 1
    assert "Notice 01" in unread and "Notice 00" not in unread
    assert _badge(_text(finance.get("/notifications/"))) == 2  # finance has read nothing
    admin.post(f"/notifications/{shared.pk}/read/")  # twice is harmless
    with schema_context(alpha.schema):
        assert NotificationRead.objects.filter(notification=shared).count() == 1

    admin.post("/notifications/read-all/")
    page = _text(admin.get("/notifications/"))
    assert _badge(page) == 0 and "Notice 01" in page  # read ones stay listed
    assert _badge(_text(finance.get("/notifications/"))) == 2
    assert admin.get("/notifications/read-all/").status_code == 405


def test_personal_notifications_are_private(alpha, people):
    with schema_context(alpha.schema):
        finance_user = User.objects.get(email=FINANCE)
        private = notification_create(
            kind="run", title="Your run failed", user=finance_user, severity="critical"
        )
    assert "Your run failed" in _text(people["finance"].get("/notifications/"))
    admin_page = _text(people["admin"].get("/notifications/"))
    assert "Your run failed" not in admin_page and _badge(admin_page) == 0
    assert people["admin"].post(f"/notifications/{private.pk}/read/").status_code == 404


def test_new_users_do_not_inherit_old_shared_notifications(alpha, people):
    _notify(alpha, 1)
    with schema_context(alpha.schema):
        newcomer = user_create(email="late@alpha.test", role=Role.MEMBER, password=PASSWORD)[0]
        User.objects.filter(pk=newcomer.pk).update(date_joined=timezone.now() + timedelta(hours=1))
    assert "No notifications yet" in _text(
        logged_in_client(alpha.host, "late@alpha.test").get("/notifications/")
    )


def test_mark_read_redirects_only_to_this_host(alpha, people):
    (n,) = _notify(alpha, 1)
    response = people["admin"].post(f"/notifications/{n.pk}/read/", {"next": "https://evil.test/"})
    assert response["Location"] == "/notifications/"


def test_notification_create_dedups_and_validates(alpha):
    with schema_context(alpha.schema):
        first = notification_create(kind="budget", title="80% of budget", dedup_key="b:2026-11:80")
        again = notification_create(kind="budget", title="80% of budget", dedup_key="b:2026-11:80")
        assert first.pk == again.pk and Notification.objects.count() == 1
        for bad in (
            {"kind": "nope", "title": "x"},
            {"kind": "run", "title": "x", "severity": "fatal"},
            {"kind": "run", "title": "  "},
            {"kind": "run", "title": "x", "url": "javascript:alert(1)"},
            {"kind": "run", "title": "x", "url": "//evil.test/x"},
        ):
            with pytest.raises(ValidationError):
                notification_create(**bad)
        assert notification_create(kind="system", title="x", url="https://status.test/").url


def test_unread_badge_shows_on_other_pages_but_never_on_the_operator_console(
    alpha, people, public_host, rf
):
    _notify(alpha, 3)
    assert _badge(_text(people["finance"].get("/reports/"))) == 3
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    assert 'data-testid="unread-count"' not in _text(operator.get("/"))
    request = rf.get("/")
    connection.set_schema_to_public()  # the public schema has no inbox table to count in
    request.user = User.objects.get(email=OPERATOR_EMAIL)
    assert portal(request)["portal_unread"] == 0
    request.user = AnonymousUser()
    with schema_context(alpha.schema):
        assert portal(request)["portal_unread"] == 0


def test_inbox_has_no_n_plus_1(alpha, people, django_assert_max_num_queries):
    client = people["member"]
    _notify(alpha, 1)
    client.get("/notifications/")
    with CaptureQueriesContext(connection) as few:
        client.get("/notifications/")
    made = _notify(alpha, 40, severity="critical")
    with schema_context(alpha.schema):
        member = User.objects.get(email=MEMBER)
        NotificationRead.objects.bulk_create(
            NotificationRead(notification=n, user=member) for n in made[::2]
        )
    with django_assert_max_num_queries(len(few)):
        page = _text(client.get("/notifications/"))
    assert page.count('data-testid="notification"') == 25
    assert _badge(page) == 21


# --- Reports --------------------------------------------------------------------------------------


def test_recent_months_cross_the_year():
    months = recent_months(date(2026, 2, 10))
    assert len(months) == 12
    assert months[0] == date(2026, 2, 1) and months[1] == date(2026, 1, 1)
    assert months[2] == date(2025, 12, 1) and months[-1] == date(2025, 3, 1)


def test_reports_index_links_twelve_months_in_the_tenant_timezone(alpha, people, monkeypatch):
    client = people["finance"]
    alpha.tenant.timezone = "Asia/Tokyo"
    alpha.tenant.save(update_fields=["timezone"])
    # 20:00 UTC on Oct 31 is already November 1 in Tokyo.
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 10, 31, 20, tzinfo=UTC))
    page = _text(client.get("/reports/"))
    assert page.count('data-testid="report-month"') == 12
    for fmt in ("csv", "xlsx", "focus"):
        assert f'href="/reports/2026-11/{fmt}"' in page
        assert f'href="/reports/2025-12/{fmt}"' in page
    assert 'href="/reports/2025-11/csv"' not in page
    current = re.search(r"November 2026.*?</th>", page, re.S).group(0)
    assert "month to date" in current and page.count("month to date") == 1
    monkeypatch.undo()
    download = client.get("/reports/2026-11/csv")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"


# --- Isolation ------------------------------------------------------------------------------------


def test_one_tenants_settings_never_show_on_anothers_host(alpha, beta, people, mailoutbox):
    admin = people["admin"]
    created = admin.post("/settings/api-keys/", {"name": "alpha-secret-key", "scopes": ["read"]})
    raw = re.search(r'data-testid="raw-key">([^<]+)<', _text(created)).group(1)
    admin.post("/settings/users/", {"email": "invitee@alpha.test", "role": "member"})
    _notify(alpha, 2)
    admin.post("/budgets/", {"scope": "", "amount": "777", "thresholds": "50"})
    with schema_context(alpha.schema):
        alpha_key = ApiKey.objects.get(name="alpha-secret-key")
        alpha_budget = Budget.objects.get()

    refused = host_client(beta.host).post(
        "/login/", {"username": alpha.admin_email, "password": PASSWORD}
    )
    assert refused.status_code == 200 and "did not match" in _text(refused)
    stolen = host_client(beta.host)
    stolen.cookies = admin.cookies  # alpha's session cookie presented to beta's host
    assert stolen.get("/settings/users/").status_code == 302

    beta_admin = logged_in_client(beta.host, beta.admin_email)
    keys = _text(beta_admin.get("/settings/api-keys/"))
    assert "alpha-secret-key" not in keys and alpha_key.prefix not in keys
    assert "No API keys yet" in keys
    users = _text(beta_admin.get("/settings/users/"))
    assert "alpha.test" not in users and beta.admin_email in users
    inbox = _text(beta_admin.get("/notifications/"))
    assert "Notice" not in inbox and _badge(inbox) == 0
    assert "$777.00" not in _text(beta_admin.get("/budgets/"))
    assert beta_admin.get(f"/budgets/{alpha_budget.pk}/").status_code == 404
    assert beta_admin.post(f"/settings/api-keys/{alpha_key.pk}/revoke/").status_code == 404
    assert host_client(beta.host).get("/api/v1/whoami", **bearer(raw)).status_code == 401
    with schema_context(alpha.schema):
        assert ApiKey.objects.get(pk=alpha_key.pk).revoked_at is None
