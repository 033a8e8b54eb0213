"""The operator's retention page of a tenant (``/tenants/<slug>/retention/``): its partitions and
retention, for operators only; a tenant's users never reach it, and it shows one tenant's data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal import periods
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from factory_portal.tenants.models import Tenant
from tests.support import host_client, logged_in_client
from usage.selectors.partitions import partition_months
from usage.services.partitions import partitions_ensure_months, partitions_known_clear

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    partitions_known_clear()
    yield
    partitions_known_clear()


def test_operator_sees_the_tenants_partitions_and_retention(operator, alpha, beta):
    with schema_context(beta.schema):  # another tenant's month must not show on alpha's page
        partitions_ensure_months([datetime(2023, 2, 1, tzinfo=UTC).date()])
    Tenant.objects.filter(pk=alpha.tenant.pk).update(
        raw_retained_from=datetime(2025, 12, 1, tzinfo=UTC)
    )
    response = operator.get("/tenants/alpha/retention/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"{timezone.now():%Y-%m}" in page
    assert "2023-02" not in page
    assert "2025-12-01 00:00 UTC" in page
    assert 'value="13"' in page
    assert "2023-02" in operator.get("/tenants/beta/retention/").content.decode()


def test_operator_changes_the_retention_within_1_to_120_months(operator, alpha):
    for bad in ("0", "121", "twelve", ""):
        response = operator.post("/tenants/alpha/retention/", {"raw_retention_months": bad})
        assert response.status_code == 400, bad
        assert Tenant.objects.get(slug="alpha").raw_retention_months == 13
    response = operator.post("/tenants/alpha/retention/", {"raw_retention_months": "24"})
    assert response.status_code == 302
    assert Tenant.objects.get(slug="alpha").raw_retention_months == 24
    assert Tenant.objects.get(slug="beta").raw_retention_months == 13


def test_unknown_and_public_tenants_are_404(operator):
    assert operator.get("/tenants/nope/retention/").status_code == 404
    assert operator.get("/tenants/public/retention/").status_code == 404
    assert operator.get("/tenants/al%00pha/retention/").status_code == 404  # NUL: not a 500


def test_tenant_users_never_reach_it(alpha, public_host):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    assert admin.get("/tenants/alpha/retention/").status_code == 404  # not on tenant hosts
    response = admin.get("/tenants/alpha/retention/", HTTP_HOST=public_host)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = admin.post(
        "/tenants/alpha/retention/", {"raw_retention_months": "1"}, HTTP_HOST=public_host
    )
    assert response.status_code == 302
    assert Tenant.objects.get(slug="alpha").raw_retention_months == 13
    anonymous = host_client(public_host).get("/tenants/alpha/retention/")
    assert anonymous.status_code == 302


def test_a_public_user_without_the_operator_role_gets_403(public_host):
    user_create(email="viewer@portal.test", role=Role.MEMBER, password="another-long-passphrase")
    client = logged_in_client(public_host, "viewer@portal.test", "another-long-passphrase")
    assert client.get("/tenants/alpha/retention/").status_code == 403
    assert (
        client.post("/tenants/alpha/retention/", {"raw_retention_months": "1"}).status_code == 403
    )
    assert connection.schema_name == "public"


def test_a_partition_never_analysed_is_not_shown_as_empty(operator, alpha):
    """Autovacuum may not have reached a partition yet (reltuples -1): its rows are unknown, not
    0, and the total says so; known counts are grouped by thousands."""
    month = timezone.now().date().replace(day=1)
    with schema_context(alpha.schema), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1 WHERE relname LIKE 'usage_%%event_p%%'"
            " AND relnamespace = current_schema()::regnamespace"
        )
        cursor.execute(
            "UPDATE pg_class SET reltuples = 1234567 WHERE relname = %s"
            " AND relnamespace = current_schema()::regnamespace",
            [f"usage_llmusageevent_p{month:%Y_%m}"],
        )
        cursor.execute(
            "UPDATE pg_class SET reltuples = 1000 WHERE relname = %s"
            " AND relnamespace = current_schema()::regnamespace",
            [f"usage_infrausageevent_p{month:%Y_%m}"],
        )
    page = operator.get("/tenants/alpha/retention/").content.decode()
    assert "1,235,567" in page  # this month: both tables analysed
    assert "not analysed yet" in page  # next month: neither
    assert "not known" in page  # the total


def test_the_page_and_the_change_say_which_months_the_retention_drops(operator, alpha):
    now = timezone.now()
    old = [periods.months_ending(now.date().replace(day=1), 4)[0]]  # three months back
    with schema_context(alpha.schema):
        partitions_ensure_months(old)
    page = operator.get("/tenants/alpha/retention/").content.decode()
    assert 'data-testid="dropped-next"' not in page  # 13 months keep it
    assert "dropped</span>" not in page
    response = operator.post(
        "/tenants/alpha/retention/", {"raw_retention_months": "2"}, follow=True
    )
    page = response.content.decode()
    # Tests that commit may have left other months of alpha's behind: every month before the
    # two kept is dropped, and the message names their span, newest last.
    kept_from = periods.months_ending(now.date().replace(day=1), 2)[0]
    with schema_context(alpha.schema):
        dropped = sorted(m.month for m in partition_months() if m.month and m.month < kept_from)
    assert old[0] in dropped
    span = (f"{dropped[0]:%Y-%m} to " if len(dropped) > 1 else "") + f"{dropped[-1]:%Y-%m} ("
    assert f"it drops {span}" in page  # the message
    assert f"drops the raw events of {span}" in page  # the page, from now on
    assert page.count("dropped</span>") == len(dropped)
