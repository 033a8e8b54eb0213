"""Budget pages of a tenant: finance and admin see every budget with its status; only admins
create, change and delete them (through ``billing.services``, as ``manage.py budget_set`` does)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from billing import services
from billing.forms import BudgetForm
from billing.models import Budget
from billing.selectors import BudgetStatus, budgets_status
from factory_portal.accounts.permissions import can, denial, role_required
from factory_portal.money import usd
from usage import selectors as usage_selectors


@dataclass(frozen=True)
class BudgetRow:
    status: BudgetStatus
    scope: str
    used: Decimal  # spent / amount (a ratio, shown as a percentage)


def _scope(project: str, names: dict[str, str]) -> str:
    return f"Project {names.get(project, project)}" if project else "Whole tenant"


def _budgets_page(request: HttpRequest, form: BudgetForm | None, status: int = 200) -> HttpResponse:
    names = {p.slug: p.name for p in usage_selectors.projects()}
    rows = [
        BudgetRow(status=s, scope=_scope(s.budget.project, names), used=s.spent / s.budget.amount)
        for s in budgets_status(today=timezone.now().date())
    ]
    return render(
        request,
        "billing/budgets.html",
        {"rows": rows, "form": form, "can_edit": form is not None, "has_projects": bool(names)},
        status=status,
    )


@role_required("budgets")
def budgets(request: HttpRequest) -> HttpResponse:
    if not can(request.user, "admin"):
        if request.method == "POST":
            raise PermissionDenied(denial("admin"))
        return _budgets_page(request, form=None)
    if request.method != "POST":
        return _budgets_page(request, form=BudgetForm(projects=usage_selectors.projects()))
    form = BudgetForm(request.POST, projects=usage_selectors.projects())
    if form.is_valid():
        try:
            budget = services.budget_set(
                amount=form.cleaned_data["amount"],
                project=form.cleaned_data["scope"],
                thresholds=form.cleaned_data["thresholds"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            names = {p.slug: p.name for p in usage_selectors.projects()}
            messages.success(
                request,
                f"Budget of {_scope(budget.project, names)} saved: {usd(budget.amount)} a month.",
            )
            return redirect("budgets")
    return _budgets_page(request, form=form, status=400)


@role_required("admin")
def budget_edit(request: HttpRequest, pk: int) -> HttpResponse:
    budget = get_object_or_404(Budget, pk=pk)
    names = {p.slug: p.name for p in usage_selectors.projects()}
    form = BudgetForm(
        request.POST if request.method == "POST" else None, projects=[], budget=budget
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.budget_set(
                amount=form.cleaned_data["amount"],
                project=budget.project,
                thresholds=form.cleaned_data["thresholds"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"Budget of {_scope(budget.project, names)} saved: {usd(saved.amount)} a month.",
            )
            return redirect("budgets")
    return render(
        request,
        "billing/budget_form.html",
        {"form": form, "budget": budget, "scope": _scope(budget.project, names)},
        status=400 if form.errors else 200,
    )


@role_required("admin")
def budget_delete(request: HttpRequest, pk: int) -> HttpResponse:
    budget = get_object_or_404(Budget, pk=pk)
    scope = _scope(budget.project, {p.slug: p.name for p in usage_selectors.projects()})
    if request.method == "POST":
        services.budget_delete(budget=budget)
        messages.success(request, f"Budget of {scope} deleted.")
        return redirect("budgets")
    return render(request, "billing/budget_delete.html", {"budget": budget, "scope": scope})
