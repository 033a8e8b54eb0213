"""Operator console forms for billing: contract terms, FOCUS uploads, month choices.

They parse and type the input; what makes a term or a bill valid is decided by the services.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from billing.operator.models import Commitment
from factory_portal.periods import PeriodError, day_check, local_day_start, month_parse, zone
from factory_portal.tenants.selectors import customer_tenants


class MonthField(forms.CharField):
    """A billing month typed as YYYY-MM (``<input type="month">``), cleaned to its first day."""

    widget = forms.TextInput(
        attrs={"type": "month", "placeholder": "YYYY-MM", "min": "2000-01", "max": "2100-12"}
    )

    def to_python(self, value: object) -> date | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return month_parse(text)
        except PeriodError as exc:
            raise forms.ValidationError(str(exc)) from None


def _price_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=0,
        max_digits=20,
        decimal_places=10,
        help_text="USD per million tokens",
    )


# Tenants up to which the contract term form offers them in a list; past it the slug is typed
# (a list of ten thousand tenants was a megabyte of every price book page).
TENANT_CHOICES_UP_TO = 200


class PriceOverrideForm(forms.Form):
    tenant = forms.ModelChoiceField(
        queryset=customer_tenants(),
        to_field_name="slug",
        empty_label="Choose a tenant",
        error_messages={"invalid_choice": "No tenant has the slug %(value)s."},
    )

    provider = forms.CharField(
        max_length=64, required=False, help_text="e.g. openai; empty: every provider"
    )
    model = forms.CharField(
        max_length=128, required=False, help_text="e.g. gpt-4.1; empty: every model"
    )
    discount_percent = forms.DecimalField(
        label="Discount (%)",
        required=False,
        min_value=0,
        max_value=100,
        max_digits=7,
        decimal_places=4,
        help_text="off book prices; or give custom prices instead",
    )
    input_per_mtok = _price_field("Input price")
    output_per_mtok = _price_field("Output price")
    cache_read_per_mtok = _price_field("Cache-read price")
    cache_write_per_mtok = _price_field("Cache-write price")
    effective_from = forms.DateField(
        label="Effective from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="from the tenant's midnight of that day, in its time zone; empty: now",
    )
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["tenant"]
        # One read: the list's own choices when it is short, else a typed slug.
        tenants = list(field.queryset[: TENANT_CHOICES_UP_TO + 1])  # type: ignore[attr-defined]
        if len(tenants) > TENANT_CHOICES_UP_TO:
            field.widget = forms.TextInput(attrs={"placeholder": "the tenant's slug"})
            field.help_text = "its slug, as in its address (the tenants page finds it)"
        else:
            field.widget.choices = [("", field.empty_label), *((t.slug, str(t)) for t in tenants)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        """The day becomes the instant the tenant's day starts (its calls are counted in its
        days: a term from the 1st prices the whole of its month)."""
        cleaned = super().clean() or {}
        day: date | None = cleaned.get("effective_from")
        tenant = cleaned.get("tenant")
        if day is not None and tenant is not None:
            try:
                cleaned["effective_from"] = local_day_start(day_check(day), zone(tenant.timezone))
            except PeriodError as exc:  # year 1 in Tokyo is before any time there is
                self.add_error("effective_from", str(exc))
        elif day is not None:  # no tenant: its own error is said; nothing is created
            cleaned.pop("effective_from")
        return cleaned


class FocusUploadForm(forms.Form):
    file = forms.FileField(
        label="FOCUS CSV file",
        help_text="FOCUS 1.0-1.2 cost and usage export in USD; importing the same file twice "
        "changes nothing.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    period = MonthField(
        label="Billing period",
        required=False,
        help_text="YYYY-MM: put every charge in this month; empty: each row's BillingPeriodStart",
    )
    pool_tag = forms.CharField(
        label="Pool tag",
        max_length=100,
        required=False,
        help_text="split pools by this tag's value, e.g. cost_center",
    )


class BilledUploadForm(forms.Form):
    file = forms.FileField(
        label="AI provider bill",
        help_text="FOCUS CSV (AI and Machine Learning usage), OpenAI costs (CSV or the Costs API's "
        "JSON) or Anthropic cost report (CSV or the Cost API's JSON), in USD; recognised by its "
        "columns. Importing the same file twice changes nothing.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json,text/csv,application/json"}),
    )


class CommitmentForm(forms.Form):
    """A tenant's commitment or credit as the operator types it (the service validates it)."""

    name = forms.CharField(max_length=200, help_text="e.g. Q4 2026 prepaid")
    kind = forms.ChoiceField(choices=Commitment.Kind.choices)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, help_text="e.g. 25000.00")
    currency = forms.CharField(
        max_length=3, help_text="the tenant's billing currency (ISO 4217, e.g. USD)"
    )
    start_date = forms.DateField(
        label="First day", widget=forms.DateInput(attrs={"type": "date"}), help_text="tenant's day"
    )
    end_date = forms.DateField(
        label="Last day",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="included; after the first day",
    )
    covers = forms.ChoiceField(choices=Commitment.Covers.choices, label="Covers")
