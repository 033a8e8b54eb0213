"""Forms of the budget pages: parse and validate what an admin types (no writes here)."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms

from billing.models import Budget, RunBudget

THRESHOLD_RE = re.compile(r"\d{1,6}", re.ASCII)
MAX_THRESHOLDS = 20
WHOLE_TENANT = ""


class BudgetForm(forms.Form):
    scope = forms.ChoiceField(
        required=False,  # the empty choice is the whole tenant
        help_text="A budget covers the whole tenant or one project; each scope has one budget.",
        error_messages={"invalid_choice": "Choose the whole tenant or one of your projects."},
    )
    amount = forms.DecimalField(
        label="Monthly amount (USD)",
        max_digits=14,
        decimal_places=2,
        help_text="Spend allowed per calendar month (your time zone), e.g. 500 or 1250.50.",
        widget=forms.NumberInput(attrs={"min": "0.01", "step": "0.01", "inputmode": "decimal"}),
        error_messages={
            "required": "Enter the monthly amount.",
            "invalid": "Enter an amount in USD such as 500 or 1250.50.",
            "max_decimal_places": "Use at most 2 decimals (cents).",
            "max_digits": "That amount is too large.",
            "max_whole_digits": "That amount is too large.",
        },
    )
    basis = forms.ChoiceField(
        label="Counts",
        choices=Budget.Basis.choices,
        initial=Budget.Basis.AI,
        required=False,  # AI cost unless chosen
        help_text=(
            "AI cost only, or total cost: AI plus the infrastructure allocated to you for the"
            " month (allocated when the operator runs the month's allocation)."
        ),
        error_messages={"invalid_choice": "Choose AI cost or total cost."},
    )
    thresholds = forms.CharField(
        label="Thresholds (% of the amount)",
        initial="50, 80, 100",
        max_length=200,
        help_text=(
            "Comma-separated whole percentages from 1 to 1000, e.g. 50, 80, 100. Each is watched"
            " on actual and on forecast spend."
        ),
        error_messages={"required": "Give at least one threshold, e.g. 50, 80, 100."},
    )

    def __init__(
        self,
        *args: object,
        projects: dict[str, str],  # name by slug (usage.selectors.project_names)
        budget: Budget | None = None,
        **kwargs: object,
    ) -> None:
        if budget is not None:
            kwargs.setdefault(
                "initial",
                {
                    "amount": budget.amount,
                    "basis": budget.basis,
                    "thresholds": ", ".join(map(str, budget.thresholds)),
                },
            )
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.budget = budget
        if budget is not None:
            del self.fields["scope"]  # a budget's scope is fixed; delete it to budget another
        else:
            # Each scope has one budget: those that have one say so, and the first that has
            # none is chosen (the whole tenant was, so the form as offered was always refused
            # once the tenant had a budget).
            taken = set(Budget.objects.values_list("project", flat=True))
            scopes = [
                (WHOLE_TENANT, "Whole tenant"),
                *((slug, f"Project {name} ({slug})") for slug, name in projects.items()),
            ]
            self.fields["scope"].choices = [
                (value, f"{label} (has a budget)" if value in taken else label)
                for value, label in scopes
            ]
            free = [value for value, _ in scopes if value not in taken]
            if free and not self.is_bound:
                self.fields["scope"].initial = free[0]

    def clean_scope(self) -> str:
        scope = self.cleaned_data["scope"]
        if Budget.objects.filter(project=scope).exists():
            what = f"Project {scope}" if scope else "The whole tenant"
            raise forms.ValidationError(
                f"{what} already has a budget: edit that one instead of adding another."
            )
        return scope

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError("A budget is a positive amount, e.g. 500 or 1250.50.")
        return amount

    def clean_basis(self) -> str:
        return self.cleaned_data.get("basis") or Budget.Basis.AI

    def clean_thresholds(self) -> list[int]:
        parts = [
            p.strip().removesuffix("%").strip() for p in self.cleaned_data["thresholds"].split(",")
        ]
        parts = [p for p in parts if p]
        if not parts:
            raise forms.ValidationError("Give at least one threshold, e.g. 50, 80, 100.")
        not_numbers = [p for p in parts if not THRESHOLD_RE.fullmatch(p)]
        if not_numbers:
            raise forms.ValidationError(
                "Thresholds are whole percentages separated by commas; not understood: "
                + ", ".join(f"“{p}”" for p in not_numbers)
                + "."
            )
        values = sorted({int(p) for p in parts})
        out_of_range = [v for v in values if not 1 <= v <= 1000]
        if out_of_range:
            raise forms.ValidationError(
                "Thresholds are between 1 and 1000 percent; out of range: "
                + ", ".join(map(str, out_of_range))
                + "."
            )
        if len(values) > MAX_THRESHOLDS:
            raise forms.ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")
        return values


class RunBudgetForm(forms.Form):
    project = forms.ChoiceField(
        required=False,
        help_text="Empty: runs of any project.",
        error_messages={"invalid_choice": "Choose any project or one of your projects."},
    )
    template = forms.CharField(
        required=False,
        max_length=200,
        help_text="The runs' template (recipe) id; empty: any template.",
    )
    basis = forms.ChoiceField(
        label="Limit",
        choices=RunBudget.Basis.choices,
        initial=RunBudget.Basis.AMOUNT,
        error_messages={"invalid_choice": "Choose an amount or a multiple of the P90 quote."},
    )
    amount = forms.DecimalField(
        label="Amount per run (USD)",
        required=False,
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="For a limit on an amount, e.g. 25.",
    )
    multiple = forms.DecimalField(
        label="Multiple of the P90 quote",
        required=False,
        max_digits=6,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(100),
        help_text="For a limit on the quote, e.g. 1.5 (times the P90 AI cost of comparable runs).",
    )
    warn_percent = forms.IntegerField(
        label="Warn at (% of the limit)", initial=80, min_value=1, max_value=100
    )

    def __init__(self, *args: object, projects: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["project"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101  (narrowing for mypy)
        field.choices = [("", "Any project"), *sorted(projects.items())]
