"""Test fixtures shared by every app.

Tenant schemas are created once per test session (creating and migrating a schema takes about a
second): the public tenant, and two customers ``alpha`` and ``beta`` with an admin each. The
price book is loaded from the installed genai-prices catalogue once, too. Each test
then runs in a transaction that is rolled back, so rows a test writes vanish afterwards while the
schemas stay.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from billing.pricing.book import pricebook_refresh
from factory_portal.accounts.models import Role
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import (
    operator_ensure,
    public_tenant_ensure,
    tenant_create,
    tenant_domain,
)
from tests.support import (
    FINANCE,
    MEMBER,
    OPERATOR_EMAIL,
    PASSWORD,
    TestTenant,
    logged_in_client,
    user_make,
)


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashing() -> Iterator[None]:
    """Passwords hashed with few PBKDF2 iterations (``tests/hashers.py``): logins are everywhere."""
    with override_settings(PASSWORD_HASHERS=["tests.hashers.QuickPBKDF2PasswordHasher"]):
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, _quick_password_hashing) -> Iterator[None]:  # type: ignore[no-untyped-def]
    # pytest-django only creates the test database when a collected test is marked django_db;
    # never let session fixtures write to the development database.
    if not connection.settings_dict["NAME"].startswith("test"):
        raise RuntimeError("the tests must run on a test database")
    with django_db_blocker.unblock():
        pricebook_refresh()
        public_tenant_ensure()
        operator_ensure(email=OPERATOR_EMAIL, password=PASSWORD)
        for slug in ("alpha", "beta"):
            tenant_create(
                slug=slug,
                name=f"{slug.title()} Inc",
                admin_email=f"admin@{slug}.test",
                admin_password=PASSWORD,
            )
    yield


@pytest.fixture(autouse=True)
def _public_schema_after_each_test() -> Iterator[None]:
    yield
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _broker_taken_as_up() -> Iterator[None]:
    """A test that made a publish fail must not make the next tests skip theirs."""
    from factory_portal.broker import broker_reset

    broker_reset()
    yield
    broker_reset()


@pytest.fixture(autouse=True)
def _partitions_known_forgotten() -> Iterator[None]:
    """Partition months a test made known in this process vanish with its rolled-back schema."""
    from usage.services.partitions import partitions_known_clear

    yield
    partitions_known_clear()


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Cached cost summaries must not outlive the rolled-back data of the test that made them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _test_tenant(slug: str) -> TestTenant:
    tenant = Tenant.objects.get(slug=slug)
    return TestTenant(tenant=tenant, host=tenant_domain(slug), admin_email=f"admin@{slug}.test")


@pytest.fixture
def alpha(db) -> TestTenant:  # type: ignore[no-untyped-def]
    return _test_tenant("alpha")


@pytest.fixture
def beta(db) -> TestTenant:  # type: ignore[no-untyped-def]
    return _test_tenant("beta")


@pytest.fixture
def public_host() -> str:
    return settings.PORTAL_BASE_DOMAIN


@pytest.fixture
def operator(public_host: str) -> Client:
    """A logged-in client of the operator on the operator host."""
    return logged_in_client(public_host, OPERATOR_EMAIL)


@pytest.fixture
def people(alpha: TestTenant) -> dict[str, Client]:
    """Logged-in clients of alpha's admin, a member and a finance user."""
    user_make(alpha, MEMBER, Role.MEMBER)
    user_make(alpha, FINANCE, Role.FINANCE)
    return {
        "admin": logged_in_client(alpha.host, alpha.admin_email),
        "member": logged_in_client(alpha.host, MEMBER),
        "finance": logged_in_client(alpha.host, FINANCE),
    }
