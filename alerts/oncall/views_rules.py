"""The runtime rule settings pages: a tenant's admins set its rules (``/settings/alert-rules/``),
the operator the platform's (``/alerts/rules/`` on the operator host). One form per rule:
enabled, threshold, window, for and severity, saved as the schema's ``RuleSetting`` or reset to
the catalogue's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from alerts.oncall.domain.rules import PLATFORM, TENANT, condition_text, duration_text
from alerts.oncall.forms_rules import RuleSettingForm
from alerts.oncall.services.rule_settings import (
    RuleRow,
    rule_for,
    rule_rows,
    rule_setting_reset,
    rule_setting_save,
)
from factory_portal.accounts.permissions import role_required, signed_in_user
from factory_portal.tenants.connection import connection_zone


@dataclass(frozen=True)
class RuleCard:
    row: RuleRow
    form: RuleSettingForm
    condition: str  # the effective rule's, "…> 1,000 jobs"
    holds_for: str
    default_condition: str
    default_for: str


def _card(row: RuleRow, form: RuleSettingForm | None = None) -> RuleCard:
    return RuleCard(
        row=row,
        form=form or RuleSettingForm(row.effective),
        condition=condition_text(row.effective),
        holds_for=duration_text(row.effective.for_s),
        default_condition=condition_text(row.default),
        default_for=duration_text(row.default.for_s),
    )


@role_required("admin")
@require_http_methods(["GET", "POST"])
def tenant_rules(request: HttpRequest) -> HttpResponse:
    return _rules_page(request, TENANT)


@role_required("operator")
@require_http_methods(["GET", "POST"])
def operator_rules(request: HttpRequest) -> HttpResponse:
    return _rules_page(request, PLATFORM)


def _rules_page(request: HttpRequest, scope: str) -> HttpResponse:
    rows = rule_rows(scope)
    bound: dict[str, RuleSettingForm] = {}
    error = ""
    if request.method == "POST":
        key = request.POST.get("rule", "")
        try:
            rule = rule_for(key, scope)
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            row = next(r for r in rows if r.default.key == rule.key)
            if request.POST.get("action") == "reset":
                reset = rule_setting_reset(rule=rule)
                messages.success(
                    request,
                    f"{rule.title}: back to its defaults."
                    if reset
                    else f"{rule.title} already runs on its defaults.",
                )
                return redirect(f"{reverse('runtime-rules')}#rule-{rule.key}")
            form = RuleSettingForm(row.effective, request.POST)
            if form.is_valid():
                data = form.cleaned_data
                rule_setting_save(
                    rule=rule,
                    enabled=data["enabled"],
                    threshold=data["threshold"],
                    window_s=data["window_s"],
                    for_s=data["for_s"],
                    severity=data["severity"],
                    updated_by=signed_in_user(request.user).email,
                    now=timezone.now(),
                )
                messages.success(request, f"{rule.title}: saved; the next evaluation uses it.")
                return redirect(f"{reverse('runtime-rules')}#rule-{rule.key}")
            bound[rule.key] = form
    cards = [_card(row, bound.get(row.default.key)) for row in rows]
    return render(
        request,
        "oncall/rules.html",
        {
            "cards": cards,
            "platform": scope == PLATFORM,
            "error": error,
            "zone": connection_zone().key,
            "every": duration_text(settings.ONCALL_EVALUATE_EVERY_S),
            "clear_for": duration_text(settings.ONCALL_CLEAR_FOR_S),
        },
        status=400 if error or bound else 200,
    )
