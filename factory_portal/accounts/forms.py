"""Forms of the tenant settings pages: API keys and users (input parsing and validation only)."""

from __future__ import annotations

from django import forms

from factory_portal.accounts.models import ApiKey, User
from factory_portal.accounts.services import TENANT_ROLES

ROLE_CHOICES = [(role.value, role.label) for role in TENANT_ROLES]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses the key, e.g. “factory ingest” or “finance dashboard”.",
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.Scope.READ],
        error_messages={"required": "Choose at least one scope."},
        help_text=(
            "ingest: push usage, runs and traces; read: pull usage, costs and runs; manage:"
            " change budgets, run budgets, webhooks and savings dismissals, acknowledge alerts"
            " and silence them."
        ),
    )


class UserInviteForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    full_name = forms.CharField(label="Name", max_length=200, required=False)
    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        initial=TENANT_ROLES[0],
        error_messages={"invalid_choice": "Choose a role: member, finance or admin."},
    )

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        email = email.strip().lower()
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError(f"A user with e-mail {email} already exists.")
        return email


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        error_messages={"invalid_choice": "Choose a role: member, finance or admin."},
    )
