"""Per-tenant billing tables: budgets and cost forecasts (tenant schema).

Platform-wide billing data (price book, cost pools, allocation) lives in ``billing.operator``.
"""

from __future__ import annotations

from functools import cached_property

from django.contrib.postgres.fields import ArrayField
from django.db import models

from billing.domain.forecasting import ForecastDay
from usage.domain.limits import TEMPLATE_LENGTH


def default_thresholds() -> list[int]:
    return [50, 80, 100]


class Budget(models.Model):
    """A monthly budget for the tenant (``project`` empty) or one project, with percent thresholds
    watched on actual and on forecast spend, on AI cost or on total cost (AI plus the month's
    allocated infrastructure)."""

    class Basis(models.TextChoices):
        AI = "ai", "AI cost"
        TOTAL = "total", "Total cost (AI + infrastructure)"

    project = models.CharField(max_length=100, blank=True)
    basis = models.CharField(max_length=8, choices=Basis.choices, default=Basis.AI)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    thresholds = ArrayField(models.PositiveSmallIntegerField(), default=default_thresholds)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project"], name="budget_one_per_scope"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="budget_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project or 'tenant'}: {self.amount}/month"


class CostForecast(models.Model):
    """The latest forecast of daily AI cost for the tenant (``project`` empty) or a project.
    Amounts are USD strings with cents, kept as computed (JSON)."""

    project = models.CharField(max_length=100, blank=True, unique=True)
    computed_at = models.DateTimeField()
    method = models.CharField(max_length=20)
    start = models.DateField()  # first forecast day
    daily = models.JSONField()  # 90 days, each ``ForecastDay.to_json()``; read ``days``
    month_end = models.JSONField()  # rest of the month: mean, lo80, hi80, lo95, hi95
    next_30 = models.JSONField()
    next_90 = models.JSONField()
    backtest = models.JSONField(default=dict)  # method -> {mase, smape, coverage80, coverage95}

    def __str__(self) -> str:
        return f"forecast {self.project or 'tenant'} from {self.start} ({self.method})"

    @cached_property
    def days(self) -> list[ForecastDay]:
        """The stored rows, typed (parsed once per instance)."""
        return [ForecastDay.from_json(row) for row in self.daily]


class RecommendationDismissal(models.Model):
    """A savings recommendation an admin dismissed (``billing.domain.savings``: its stable key).
    Dismissed recommendations are listed apart, and undoing deletes the row. ``dismissed_by``
    names the user (e-mail) or API key that dismissed it: keys have no user to point at."""

    key = models.CharField(max_length=64, unique=True)
    dismissed_by = models.CharField(max_length=254)
    dismissed_at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.key} dismissed by {self.dismissed_by}"


class RunBudget(models.Model):
    """A limit on each run of a project and/or template (empty: any), as a USD amount or a
    multiple of the P90 AI cost quoted for the run; ``warn_percent`` of it is the warn level.
    The most specific budget matching a run applies (``billing.domain.guard.budget_choose``)."""

    class Basis(models.TextChoices):
        AMOUNT = "amount", "Amount (USD)"
        P90_MULTIPLE = "p90_multiple", "Multiple of the P90 quote"

    project = models.CharField(max_length=100, blank=True)
    template = models.CharField(max_length=TEMPLATE_LENGTH, blank=True)
    basis = models.CharField(max_length=12, choices=Basis.choices, default=Basis.AMOUNT)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    multiple = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    warn_percent = models.PositiveSmallIntegerField(default=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "template"], name="run_budget_one_per_scope"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(basis="amount", amount__gt=0, multiple__isnull=True)
                    | models.Q(basis="p90_multiple", multiple__gt=0, amount__isnull=True)
                ),
                name="run_budget_limit_matches_basis",
            ),
            models.CheckConstraint(
                condition=models.Q(warn_percent__gte=1, warn_percent__lte=100),
                name="run_budget_warn_percent",
            ),
        ]

    def __str__(self) -> str:
        scope = "/".join(p for p in (self.project, self.template) if p) or "tenant"
        limit = f"{self.amount}" if self.basis == self.Basis.AMOUNT else f"{self.multiple}x P90"
        return f"{scope}: {limit} per run"


class RunGuard(models.Model):
    """The guard's latest figures of one run that has a run budget (kept after the run finished:
    its final figures). ``crossed_at`` is when the state last rose (the alert's key)."""

    run = models.OneToOneField(
        "usage.Run", on_delete=models.CASCADE, related_name="guard", db_constraint=False
    )
    budget = models.ForeignKey(
        RunBudget, null=True, blank=True, on_delete=models.SET_NULL, related_name="guards"
    )
    state = models.CharField(max_length=4, default="ok")
    cost_so_far = models.DecimalField(max_digits=24, decimal_places=10)
    expected_remaining = models.DecimalField(max_digits=24, decimal_places=10)
    projected_cost = models.DecimalField(max_digits=24, decimal_places=10)
    limit = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField()
    crossed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["run"], name="run_guard_open_idx", condition=models.Q(finished=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.state} {self.projected_cost}/{self.limit}"
