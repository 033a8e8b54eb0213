"""Tenants (customers) and their domains. Lives in the public schema.

A tenant is one customer of the factory, with one PostgreSQL schema holding its users, API keys,
projects, runs and usage. The ``public`` tenant row stands for the operator console itself.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import schema_exists

from factory_portal.tenants.schema_clone import schema_clone

SLUG_RE = r"^[a-z][a-z0-9-]{1,39}$"
slug_validator = RegexValidator(
    SLUG_RE, "A slug is 2-40 lowercase letters, digits or hyphens, starting with a letter."
)


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.CharField(max_length=40, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="USD")
    timezone = models.CharField(max_length=64, default="UTC")
    # How its pages write numbers (factory_portal.money.NUMBER_FORMATS); exports and the API never
    # change with it.
    number_format = models.CharField(max_length=8, default="en")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Contract weight for fixed cost parts split "by weights" (see billing allocation).
    contract_weight = models.DecimalField(max_digits=12, decimal_places=4, default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    # Newest usage timestamp of this tenant, refreshed by a periodic task: the data's freshness.
    usage_complete_until = models.DateTimeField(null=True, blank=True)

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"

    def create_schema(
        self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1
    ) -> bool:
        """The tenant's schema, cloned from the migrated template (``schema_clone``), or
        migrated one migration after the other when there is none to clone."""
        if check_if_exists and schema_exists(self.schema_name):
            return False
        if sync_schema and schema_clone(self.schema_name):
            return True
        return bool(super().create_schema(check_if_exists, sync_schema, verbosity))


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
