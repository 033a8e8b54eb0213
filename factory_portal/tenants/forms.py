"""Operator console forms for tenants (input parsing only; the rules live in the services)."""

from __future__ import annotations

from django import forms

from factory_portal.tenants.models import Tenant, slug_validator


class TenantCreateForm(forms.Form):
    slug = forms.CharField(
        max_length=40,
        validators=[slug_validator],
        help_text="2-40 lowercase letters, digits or hyphens; it names the tenant's host.",
    )
    name = forms.CharField(max_length=200)
    admin_email = forms.EmailField(label="Admin e-mail")

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        return slug.strip().lower()


class TenantStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Tenant.Status.choices)
