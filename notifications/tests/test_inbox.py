"""The notifications inbox: empty state, newest first in pages, read state per user, personal
notifications private, no N+1; ``notification_create`` dedups and validates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role, User
from factory_portal.accounts.services import user_create
from notifications.models import Notification, NotificationRead
from notifications.services import notification_create
from tests.support import (
    FINANCE,
    MEMBER,
    PASSWORD,
    logged_in_client,
    notifications_make,
    response_text,
    unread_badge,
)

pytestmark = pytest.mark.django_db


def _titles(page: str) -> list[str]:
    return re.findall(r'notification-title">(?:<a [^>]*>)?Notice (\d\d)', page)


def test_inbox_empty_state(alpha, people):
    page = response_text(people["member"].get("/notifications/"))
    assert "No notifications yet" in page and "budget thresholds" in page
    assert unread_badge(page) == 0
    assert "all caught up" in response_text(people["member"].get("/notifications/?show=unread"))


def test_inbox_pages_newest_first(alpha, people):
    notifications_make(alpha, 30)
    client = people["member"]
    first = response_text(client.get("/notifications/"))
    assert _titles(first) == [f"{i:02d}" for i in range(29, 4, -1)]  # 25, newest first
    assert unread_badge(first) == 30
    assert 'data-testid="next-page"' in first
    second = response_text(client.get("/notifications/?page=2"))
    assert _titles(second) == ["04", "03", "02", "01", "00"]
    assert 'data-testid="next-page"' not in second
    assert client.get("/notifications/?page=999").status_code == 200
    assert "Notice 00" in response_text(client.get("/notifications/?page=999"))
    assert "Notice 29" in response_text(client.get("/notifications/?page=abc"))


def test_read_state_is_per_user(alpha, people):
    shared, _ = notifications_make(alpha, 2, severity="warning", url="/budgets/")
    admin, finance = people["admin"], people["finance"]
    response = admin.post(
        f"/notifications/{shared.pk}/read/", {"next": "/notifications/?show=unread"}
    )
    assert response.status_code == 302 and response["Location"] == "/notifications/?show=unread"
    unread = response_text(admin.get("/notifications/?show=unread"))
    assert unread_badge(unread) == 1
    assert "Notice 01" in unread and "Notice 00" not in unread
    assert (
        unread_badge(response_text(finance.get("/notifications/"))) == 2
    )  # finance has read nothing
    admin.post(f"/notifications/{shared.pk}/read/")  # twice is harmless
    with schema_context(alpha.schema):
        assert NotificationRead.objects.filter(notification=shared).count() == 1

    admin.post("/notifications/read-all/")
    page = response_text(admin.get("/notifications/"))
    assert unread_badge(page) == 0 and "Notice 01" in page  # read ones stay listed
    assert unread_badge(response_text(finance.get("/notifications/"))) == 2
    assert admin.get("/notifications/read-all/").status_code == 405


def test_personal_notifications_are_private(alpha, people):
    with schema_context(alpha.schema):
        finance_user = User.objects.get(email=FINANCE)
        private = notification_create(
            kind="run", title="Your run failed", user=finance_user, severity="critical"
        )
    assert "Your run failed" in response_text(people["finance"].get("/notifications/"))
    admin_page = response_text(people["admin"].get("/notifications/"))
    assert "Your run failed" not in admin_page and unread_badge(admin_page) == 0
    assert people["admin"].post(f"/notifications/{private.pk}/read/").status_code == 404


def test_new_users_do_not_inherit_old_shared_notifications(alpha, people):
    notifications_make(alpha, 1)
    with schema_context(alpha.schema):
        newcomer = user_create(email="late@alpha.test", role=Role.MEMBER, password=PASSWORD)[0]
        User.objects.filter(pk=newcomer.pk).update(date_joined=timezone.now() + timedelta(hours=1))
    assert "No notifications yet" in response_text(
        logged_in_client(alpha.host, "late@alpha.test").get("/notifications/")
    )


def test_mark_read_redirects_only_to_this_host(alpha, people):
    (n,) = notifications_make(alpha, 1)
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


def test_inbox_has_no_n_plus_1(alpha, people, django_assert_max_num_queries):
    client = people["member"]
    notifications_make(alpha, 1)
    client.get("/notifications/")
    with CaptureQueriesContext(connection) as few:
        client.get("/notifications/")
    made = notifications_make(alpha, 40, severity="critical")
    with schema_context(alpha.schema):
        member = User.objects.get(email=MEMBER)
        NotificationRead.objects.bulk_create(
            NotificationRead(notification=n, user=member) for n in made[::2]
        )
    with django_assert_max_num_queries(len(few)):
        page = response_text(client.get("/notifications/"))
    assert page.count('data-testid="notification"') == 25
    assert unread_badge(page) == 21
