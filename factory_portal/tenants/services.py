"""Creating and changing tenants (public schema), each with its schema, domain and first admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django_tenants.utils import schema_context, schema_exists

from factory_portal.accounts.models import Role, User
from factory_portal.accounts.services import password_check, user_create
from factory_portal.money import NUMBER_FORMATS
from factory_portal.tenants.connection import zone_lock
from factory_portal.tenants.models import (
    RAW_RETENTION_MAX_MONTHS,
    RAW_RETENTION_MIN_MONTHS,
    Domain,
    Tenant,
    slug_validator,
)
from factory_portal.tenants.signals import timezone_changed

PUBLIC_SCHEMA = "public"
RESERVED_SLUGS = frozenset({"public", "www", "api", "admin", "static", "operator", "console"})


@dataclass(frozen=True)
class TenantCreated:
    tenant: Tenant
    admin: User
    admin_password: str


def tenant_domain(slug: str) -> str:
    return f"{slug}.{settings.PORTAL_BASE_DOMAIN}"


def tenant_schema_name(slug: str) -> str:
    return slug.replace("-", "_")


@cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted (the choices a tenant may have)."""
    return tuple(sorted(available_timezones()))


def timezone_check(name: str) -> str:
    """``name`` if it is an IANA time zone (``Europe/Berlin``); else a ValidationError that says
    what is expected."""
    if name not in time_zones():
        raise ValidationError(
            f"Unknown time zone {name[:64]!r}: use an IANA name such as Europe/Berlin or UTC."
        )
    return name


def tenant_validate_new(*, slug: str, name: str, admin_email: str) -> None:
    """Raise ValidationError with a precise message when a tenant cannot be created so."""
    slug_validator(slug)
    if slug in RESERVED_SLUGS or slug.startswith("pg"):
        raise ValidationError(f"The slug {slug!r} is reserved.")
    if not name.strip():
        raise ValidationError("A tenant needs a name.")
    limit = Tenant._meta.get_field("name").max_length or 200
    if len(name.strip()) > limit:
        raise ValidationError(f"A tenant's name is at most {limit} characters.")
    validate_email(admin_email)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError(f"A tenant with slug {slug!r} already exists.")
    # django-tenants adopts an existing schema silently (information_schema, or one a removed
    # tenant left behind): the new tenant would read and write another's tables.
    if schema_exists(tenant_schema_name(slug), case_sensitive=False):
        raise ValidationError(f"The slug {slug!r} is reserved: its schema exists in the database.")


def tenant_create(
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password: str | None = None,
    currency: str = "USD",
    timezone: str = "UTC",
) -> TenantCreated:
    """Create the tenant row, its PostgreSQL schema (migrated), its domain and an admin user.
    ``timezone`` (IANA) is where the tenant's days and months begin."""
    slug = slug.strip().lower()
    tenant_validate_new(slug=slug, name=name, admin_email=admin_email)
    timezone_check(timezone)
    with schema_context(PUBLIC_SCHEMA):
        tenant = Tenant(
            schema_name=tenant_schema_name(slug),
            slug=slug,
            name=name.strip(),
            currency=currency,
            timezone=timezone,
        )
        tenant.save(verbosity=0)  # creates and migrates the schema
        Domain.objects.create(domain=tenant_domain(slug), tenant=tenant, is_primary=True)
    with schema_context(tenant.schema_name):
        admin, password = user_create(email=admin_email, role=Role.ADMIN, password=admin_password)
    return TenantCreated(tenant=tenant, admin=admin, admin_password=password)


def tenant_timezone_set(*, tenant: Tenant, timezone: str) -> Tenant:
    """Set where the tenant's days and months begin (an IANA name, checked). Figures kept by
    local day are re-counted in the same transaction (``timezone_changed``), under the zone lock,
    so no figure is ever counted by two zones; it takes seconds per million stored calls."""
    name = timezone_check(timezone)
    with transaction.atomic():
        zone_lock(tenant.schema_name, exclusive=True)
        with schema_context(PUBLIC_SCHEMA):
            previous = (
                Tenant.objects.filter(pk=tenant.pk).values_list("timezone", flat=True).first()
            )
            Tenant.objects.filter(pk=tenant.pk).update(timezone=name)
        tenant.timezone = name
        if previous != name:
            try:
                with schema_context(tenant.schema_name):
                    timezone_changed.send(sender=Tenant, tenant=tenant, previous=previous)
            except ValidationError:  # a listener refused: the change is rolled back
                tenant.timezone = previous or tenant.timezone
                raise
    return tenant


def tenant_number_format_set(*, tenant: Tenant, number_format: str) -> Tenant:
    """How the tenant's pages write numbers (a key of ``money.NUMBER_FORMATS``)."""
    if number_format not in NUMBER_FORMATS:
        raise ValidationError(
            f"{number_format[:20]!r} is not a number format (one of {', '.join(NUMBER_FORMATS)})."
        )
    with schema_context(PUBLIC_SCHEMA):
        Tenant.objects.filter(pk=tenant.pk).update(number_format=number_format)
    tenant.number_format = number_format
    return tenant


def tenant_raw_retention_set(*, tenant: Tenant, months: int) -> Tenant:
    """How many of its months of raw usage events the tenant keeps (1-120). Takes effect at the
    next partition maintenance; a longer retention cannot bring back months already dropped."""
    if not RAW_RETENTION_MIN_MONTHS <= months <= RAW_RETENTION_MAX_MONTHS:
        raise ValidationError(
            f"Raw event retention is {RAW_RETENTION_MIN_MONTHS} to {RAW_RETENTION_MAX_MONTHS}"
            f" months, not {months}."
        )
    with schema_context(PUBLIC_SCHEMA):
        Tenant.objects.filter(pk=tenant.pk).update(raw_retention_months=months)
    tenant.raw_retention_months = months
    return tenant


def tenant_set_status(*, tenant: Tenant, status: str) -> Tenant:
    if status not in Tenant.Status.values:
        raise ValidationError(f"Unknown tenant status {status!r}.")
    tenant.status = status
    tenant.save(update_fields=["status"])
    return tenant


def tenant_usage_complete_record(*, schema_name: str, until: datetime | None) -> None:
    """Record how far a tenant's usage data reaches (the operator's freshness view)."""
    Tenant.objects.filter(schema_name=schema_name).update(usage_complete_until=until)


def tenant_delete(*, tenant: Tenant) -> None:
    """Drop a tenant with its schema and all its data (demo resets, tests)."""
    if tenant.schema_name == PUBLIC_SCHEMA:
        raise ValidationError("The public tenant cannot be deleted.")
    with schema_context(PUBLIC_SCHEMA), transaction.atomic():
        # Inside an enclosing transaction, deferred foreign-key checks on the tenant's tables
        # would block DROP SCHEMA; run them now.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        tenant.domains.all().delete()
        tenant.delete(force_drop=True)


def public_tenant_ensure() -> Tenant:
    """The row that maps the bare base domain to the public schema (the operator console)."""
    with schema_context(PUBLIC_SCHEMA):
        tenant, _ = Tenant.objects.get_or_create(
            schema_name=PUBLIC_SCHEMA,
            defaults={"slug": PUBLIC_SCHEMA, "name": "Factory Portal operators"},
        )
        Domain.objects.update_or_create(
            domain=settings.PORTAL_BASE_DOMAIN, defaults={"tenant": tenant, "is_primary": True}
        )
    return tenant


def operator_ensure(
    *, email: str, password: str | None = None, check_password: bool = False
) -> tuple[User, str | None]:
    """Create the operator (public schema) if missing. Returns the password only when created;
    ``check_password``: a given password must pass the site's password rules (raises
    ``ValidationError``), checked only when it is used."""
    with schema_context(PUBLIC_SCHEMA):
        existing = User.objects.filter(email=email.strip().lower()).first()
        if existing is not None:
            return existing, None
        if password and check_password:
            password_check(password, email=email)
        return user_create(email=email, role=Role.OPERATOR, password=password)
