"""Operator console pages for cost pools and allocation (operator host)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.domain.allocation import Method
from billing.platform.models import AllocationLine, AllocationRule, AllocationRun, CostPool
from billing.platform.services.allocation import allocation_run, allocation_what_if
from billing.platform.services.rules import allocation_rule_create
from factory_portal.accounts.models import Role


def _is_operator(user: object) -> bool:
    return getattr(user, "role", None) == Role.OPERATOR


operator_required = user_passes_test(_is_operator)


class RuleForm(forms.ModelForm):
    class Meta:
        model = AllocationRule
        fields = [
            "name",
            "service_category",
            "provider",
            "charge_category",
            "method",
            "driver",
            "fixed_amount",
            "fixed_fraction",
            "fixed_split",
        ]
        widgets = {
            "fixed_split": forms.Select(
                choices=[("even", "evenly"), ("weights", "by contract weights")]
            )
        }


def _period(value: str) -> date:
    try:
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
    except ValueError as exc:
        raise Http404("No such period") from exc


@login_required
@operator_required
def allocation_overview(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rule = allocation_rule_create(**form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Rule {rule.name} added.")
            return redirect("allocation")
    periods = (
        CostPool.objects.values("period")
        .annotate(pools=Count("id"), amount=Sum("effective_cost"))
        .order_by("-period")
    )
    runs = {run.period: run for run in AllocationRun.objects.all()}
    return render(
        request,
        "billing/allocation.html",
        {
            "form": form,
            "rules": AllocationRule.objects.all(),
            "periods": [{**p, "run": runs.get(p["period"])} for p in periods],
        },
    )


@login_required
@operator_required
def allocation_period(request: HttpRequest, period: str) -> HttpResponse:
    month = _period(period)
    pools = CostPool.objects.filter(period=month).order_by("name")
    run = AllocationRun.objects.filter(period=month).first()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    if run is not None:
        for row in (
            AllocationLine.objects.filter(run=run, level="tenant")
            .values("tenant__name")
            .annotate(amount=Sum("amount"))
        ):
            totals[row["tenant__name"] or "unallocated"] += row["amount"]
    what_if = allocation_what_if(month) if request.GET.get("what_if") else None
    return render(
        request,
        "billing/allocation_period.html",
        {
            "month": month,
            "period": period,
            "pools": pools,
            "run": run,
            "totals": sorted(totals.items()),
            "what_if": sorted((what_if or {}).items()),
            "methods": Method.ALL,
        },
    )


@login_required
@operator_required
@require_POST
def allocation_period_run(request: HttpRequest, period: str) -> HttpResponse:
    month = _period(period)
    close = request.POST.get("close") == "1"
    outcome = allocation_run(period=month, close=close)
    if outcome.corrections:
        messages.info(
            request,
            f"{month:%Y-%m} is closed: {outcome.corrections} correction lines "
            "went to the next open period.",
        )
    else:
        messages.success(
            request,
            f"{month:%Y-%m} allocated ({outcome.run.status}): "
            f"{outcome.allocated:,.2f} allocated, "
            f"{outcome.unallocated:,.2f} unallocated.",
        )
    return redirect("allocation-period", period=period)
