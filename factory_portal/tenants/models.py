"""Tenants (customers) and their domains. Lives in the public schema.

A tenant is one customer of the factory, with one PostgreSQL schema holding its users, API keys,
projects, runs and usage. The ``public`` tenant row stands for the operator console itself.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

SLUG_RE = r"^[a-z][a-z0-9-]{1,39}$"
slug_validator = RegexValidator(
    SLUG_RE, "A slug is 2-40 lowercase letters, digits or hyphens, starting with a letter."
)

# How many of its calendar months of raw usage events a tenant keeps (usage.domain.retention).
RAW_RETENTION_MIN_MONTHS = 1
RAW_RETENTION_MAX_MONTHS = 120
RAW_RETENTION_DEFAULT_MONTHS = 13


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
    # Raw usage events are kept for this many of the tenant's months (the current one included);
    # older monthly partitions are dropped by maintenance. Run ledger and rollups keep history.
    raw_retention_months = models.PositiveSmallIntegerField(
        default=RAW_RETENTION_DEFAULT_MONTHS,
        validators=[
            MinValueValidator(RAW_RETENTION_MIN_MONTHS),
            MaxValueValidator(RAW_RETENTION_MAX_MONTHS),
        ],
    )
    # The first instant whose raw events are still kept (set by partition maintenance; None:
    # nothing was ever expired). Older events are refused at ingest; re-pricing and exports
    # refuse periods that begin before it.
    raw_retained_from = models.DateTimeField(null=True, blank=True)

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    raw_retention_months__gte=RAW_RETENTION_MIN_MONTHS,
                    raw_retention_months__lte=RAW_RETENTION_MAX_MONTHS,
                ),
                name="tenant_raw_retention_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
