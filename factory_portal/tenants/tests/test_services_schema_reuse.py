"""A new tenant never adopts a schema that already exists: django-tenants would skip creating it
and the tenant's host would read and write that schema's tables (or, for information_schema,
fall through to the public schema's operators and sessions)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from factory_portal.accounts.models import User
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_create
from tests.support import OPERATOR_EMAIL, logged_in_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("slug", ["information-schema", "left-over"])
def test_a_slug_whose_schema_exists_is_refused(slug):
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS left_over")
    with pytest.raises(ValidationError, match="its schema exists"):
        tenant_create(slug=slug, name="Mallory", admin_email="admin@mallory.test")
    assert not Tenant.objects.filter(slug=slug).exists()
    assert not User.objects.filter(email="admin@mallory.test").exists()  # public schema


def test_the_console_form_says_so(public_host):
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    answer = operator.post(
        "/tenants/new",
        {"slug": "information-schema", "name": "Mallory", "admin_email": "a@mallory.test"},
    )
    assert answer.status_code == 400
    assert "its schema exists in the database" in answer.content.decode()
