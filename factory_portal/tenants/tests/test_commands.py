"""Management commands of the tenants: tenant_create, portal_setup."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role, User
from factory_portal.accounts.services import user_create
from factory_portal.commands import command_error
from factory_portal.tenants.models import Domain, Tenant
from tests.support import logged_in_client

pytestmark = pytest.mark.django_db


def test_tenant_create_makes_schema_domain_and_admin():
    out = io.StringIO()
    call_command(
        "tenant_create",
        "--slug",
        "gamma-co",
        "--name",
        "Gamma Co",
        "--admin-email",
        "Boss@Gamma.test",
        stdout=out,
    )
    tenant = Tenant.objects.get(slug="gamma-co")
    assert tenant.schema_name == "gamma_co"
    assert Domain.objects.get(tenant=tenant).domain == "gamma-co.localhost"
    password = out.getvalue().split("Password (shown once): ")[1].strip()
    with schema_context("gamma_co"):
        admin = User.objects.get()
        assert admin.email == "boss@gamma.test"
        assert admin.role == Role.ADMIN
    assert logged_in_client("gamma-co.localhost", "boss@gamma.test", password)


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("alpha", "already exists"),
        ("Bad_Slug", "lowercase"),
        ("public", "reserved"),
        ("x", "2-40"),
    ],
)
def test_tenant_create_rejects_bad_slugs(slug, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "tenant_create",
            "--slug",
            slug,
            "--name",
            "X",
            "--admin-email",
            "a@x.test",
            stdout=io.StringIO(),
        )


def test_tenant_create_rejects_bad_email_before_creating_anything():
    with pytest.raises(CommandError, match="valid email"):
        call_command(
            "tenant_create",
            "--slug",
            "delta",
            "--name",
            "Delta",
            "--admin-email",
            "not-an-email",
            stdout=io.StringIO(),
        )
    assert not Tenant.objects.filter(slug="delta").exists()


def test_portal_setup_is_idempotent(public_host):
    for _ in range(2):
        call_command(
            "portal_setup",
            "--operator-email",
            "second-op@portal.test",
            "--operator-password",
            "a-long-password-1",
            stdout=io.StringIO(),
        )
    assert Domain.objects.filter(domain=public_host).count() == 1
    with schema_context("public"):
        assert User.objects.filter(email="second-op@portal.test", role=Role.OPERATOR).count() == 1


def test_tenant_create_sets_the_time_zone_and_refuses_unknown_ones():
    call_command(
        "tenant_create",
        *("--slug", "tokyo-co", "--name", "Tokyo Co", "--admin-email", "a@tokyo.test"),
        *("--timezone", "Asia/Tokyo"),
        stdout=io.StringIO(),
    )
    assert Tenant.objects.get(slug="tokyo-co").timezone == "Asia/Tokyo"
    with pytest.raises(CommandError, match="Unknown time zone 'Mars/Olympus': use an IANA name"):
        call_command(
            "tenant_create",
            *("--slug", "mars-co", "--name", "Mars Co", "--admin-email", "a@mars.test"),
            *("--timezone", "Mars/Olympus"),
            stdout=io.StringIO(),
        )
    assert not Tenant.objects.filter(slug="mars-co").exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("8675309218", "entirely numeric"),
        ("boss.gamma.co", "too similar to the email"),
    ],
)
def test_passwords_on_the_command_line_follow_the_site_s_rules(password, message):
    """The password forms refuse these; the commands stored them (a review found a tenant
    admin created with "123")."""
    with pytest.raises(CommandError, match=message):
        call_command(
            "tenant_create",
            *("--slug", "weak-co", "--name", "Weak Co", "--admin-email", "boss.gamma.co@x.test"),
            *("--admin-password", password),
            stdout=io.StringIO(),
        )
    assert not Tenant.objects.filter(slug="weak-co").exists()
    with pytest.raises(CommandError, match=message):
        call_command(
            "portal_setup",
            *("--operator-email", "boss.gamma.co@op.test", "--operator-password", password),
            stdout=io.StringIO(),
        )
    with schema_context("public"):
        assert not User.objects.filter(email="boss.gamma.co@op.test").exists()


def test_a_refusal_reads_as_sentences():
    with pytest.raises(CommandError) as refused:
        call_command(
            "portal_setup",
            *("--operator-email", "new-op@portal.test", "--operator-password", "123"),
            stdout=io.StringIO(),
        )
    assert str(refused.value) == (
        "This password is too short. It must contain at least 8 characters."
        " This password is too common. This password is entirely numeric."
    )
    error = command_error(ValidationError(["Slug must be lowercase", "Name is too long."]))
    assert str(error) == "Slug must be lowercase. Name is too long."


def test_portal_setup_runs_again_for_an_existing_operator_whatever_the_password():
    """Only a password that would be stored is checked: ``bin/demo`` runs portal_setup with
    its password at every start, and an operator made before the rule must not stop it."""
    with schema_context("public"):
        user_create(email="old-op@portal.test", role=Role.OPERATOR, password="123")
    out = io.StringIO()
    call_command(
        "portal_setup",
        *("--operator-email", "old-op@portal.test", "--operator-password", "123"),
        stdout=out,
    )
    assert "Operator old-op@portal.test already exists." in out.getvalue()
