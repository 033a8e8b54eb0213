"""Forms for tenants: the operator's (create, suspend) and the tenant admin's (time zone). Input
parsing only; the rules live in the services."""

from __future__ import annotations

from django import forms

from factory_portal.money import NUMBER_FORMATS
from factory_portal.tenants.models import (
    RAW_RETENTION_MAX_MONTHS,
    RAW_RETENTION_MIN_MONTHS,
    Tenant,
    slug_validator,
)
from factory_portal.tenants.services import time_zones, timezone_check

TIMEZONE_HELP = "Where the tenant's days and months begin (an IANA name such as Europe/Berlin)."


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in time_zones()]


class _TimezoneField(forms.ChoiceField):
    def validate(self, value: object) -> None:
        if value:
            timezone_check(str(value))  # the service's rule and message (the name cut to 64)
        super().validate(value)


def _timezone_field(*, required: bool) -> forms.ChoiceField:
    return _TimezoneField(
        label="Time zone",
        required=required,
        # A callable: the zone list (~40 ms to read) is read when a form is first used, not
        # when every process imports the URL confs.
        choices=_timezone_choices,
        initial="UTC",
        help_text=TIMEZONE_HELP,
    )


class TenantCreateForm(forms.Form):
    slug = forms.CharField(
        max_length=40,
        validators=[slug_validator],
        help_text="2-40 lowercase letters, digits or hyphens; it names the tenant's host.",
    )
    name = forms.CharField(max_length=200)
    admin_email = forms.EmailField(label="Admin e-mail")
    timezone = _timezone_field(required=False)

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        return slug.strip().lower()

    def clean_timezone(self) -> str:
        timezone: str = self.cleaned_data["timezone"]
        return timezone or "UTC"  # not chosen: UTC, as tenant_create does


class TenantStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Tenant.Status.choices)


class TenantTimezoneForm(forms.Form):
    timezone = _timezone_field(required=True)


class TenantNumberFormatForm(forms.Form):
    number_format = forms.ChoiceField(
        label="Number format",
        choices=[(key, style.label) for key, style in NUMBER_FORMATS.items()],
        help_text="How amounts, counts and percentages are written on this workspace's pages."
        " Exports and the API always write plain numbers (1234.57).",
    )


class TenantRetentionForm(forms.Form):
    raw_retention_months = forms.IntegerField(
        label="Keep raw usage events for (months)",
        min_value=RAW_RETENTION_MIN_MONTHS,
        max_value=RAW_RETENTION_MAX_MONTHS,
        help_text="The tenant's calendar months, the current one included. Older months of raw"
        " events are dropped by the daily maintenance; run ledger and rollups keep history.",
    )
