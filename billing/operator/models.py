"""The price book: unit prices per provider, model and token kind, with effective dates.

Public schema. Prices are USD per million tokens with 10 decimal places. An entry is never edited
in place once used; a new price gets a new ``effective_from``.
"""

from __future__ import annotations

from datetime import date

from django.db import models

from factory_portal.periods import month_text


class TokenKind(models.TextChoices):
    INPUT = "input"
    OUTPUT = "output"
    CACHE_READ = "cache_read"
    CACHE_WRITE = "cache_write"


class PriceBookEntry(models.Model):
    class Source(models.TextChoices):
        CATALOGUE = "catalogue", "genai-prices catalogue"
        OPERATOR = "operator", "Operator"

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    token_kind = models.CharField(max_length=16, choices=TokenKind.choices)
    price_per_mtok = models.DecimalField(max_digits=20, decimal_places=10)
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateTimeField()
    # 0 for the base price; N > 0: applies to every token of a request with more than N input
    # tokens (tiered "cliff" pricing, chosen per request).
    tier_start = models.PositiveBigIntegerField(default=0)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_version = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "model", "token_kind", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "token_kind", "tier_start", "effective_from"],
                name="pricebook_unique_effective",
            ),
            models.CheckConstraint(
                condition=models.Q(price_per_mtok__gte=0), name="pricebook_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.token_kind} {self.price_per_mtok}/MTok"


class PricesVersion(models.Model):
    """The version of the prices: one row whose ``version`` the database raises, by triggers, in
    every statement that writes the price book (``PriceBookEntry``) or the tenants' contract
    terms (``TenantPriceOverride``): insert, update, delete, truncate (migration ``0004``), in
    that statement's transaction. Processes keep the indexed book and the terms they read in
    memory and read only this row to know whether either changed (``billing.pricing``). A
    version is the clock in microseconds and always above the one before, so it never comes
    back: not after the tables are emptied, the migration is taken back and made again, or a
    backup is restored. Writers of prices queue on this row (they are rare)."""

    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"prices version {self.version}"


class TenantPriceOverride(models.Model):
    """A tenant's contract term: a discount on book prices, or custom prices for a model.

    Empty provider/model match any; the most specific override in force at the call wins. Custom
    prices are USD per million tokens; cache prices fall back to the custom input price.
    """

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="price_overrides"
    )
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)
    discount_percent = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    input_per_mtok = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    output_per_mtok = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cache_read_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True
    )
    cache_write_per_mtok = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True
    )
    effective_from = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "provider", "model", "-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(discount_percent__isnull=False, input_per_mtok__isnull=True)
                    | models.Q(discount_percent__isnull=True, input_per_mtok__isnull=False)
                ),
                name="override_discount_xor_prices",
            ),
            models.CheckConstraint(
                condition=models.Q(discount_percent__isnull=True)
                | models.Q(discount_percent__gte=0, discount_percent__lte=100),
                name="override_discount_range",
            ),
        ]

    def __str__(self) -> str:
        target = f"{self.provider or '*'}/{self.model or '*'}"
        if self.discount_percent is not None:
            return f"{self.tenant_id}: {target} -{self.discount_percent}%"
        return f"{self.tenant_id}: {target} custom prices"


class FocusImport(models.Model):
    """One imported FOCUS file. Its content hash makes importing the same file twice a no-op."""

    sha256 = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=300)
    focus_version = models.CharField(max_length=8)
    rows = models.BigIntegerField()
    billed_cost = models.DecimalField(max_digits=30, decimal_places=12)
    effective_cost = models.DecimalField(max_digits=30, decimal_places=12)
    list_cost = models.DecimalField(max_digits=30, decimal_places=12)
    imported_at = models.DateTimeField(auto_now_add=True)
    # The billing period it was imported into (``--period``); None: each charge's own month
    # (and files imported before this was kept).
    period_given = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.rows} rows)"


class CostPool(models.Model):
    """Shared infrastructure cost of one billing period, to be allocated to tenants and projects:
    the charges of an imported bill grouped by provider, service category, charge category and
    (optionally) one tag's value. Amounts keep the bill's precision; negative pools are credits."""

    period = models.DateField()  # first day of the month
    name = models.CharField(max_length=300)
    provider = models.CharField(max_length=100)
    service_category = models.CharField(max_length=100)
    charge_category = models.CharField(max_length=32)
    tag_key = models.CharField(max_length=100, blank=True)
    tag_value = models.CharField(max_length=200, blank=True)
    currency = models.CharField(max_length=3)
    billed_cost = models.DecimalField(max_digits=30, decimal_places=12)
    effective_cost = models.DecimalField(max_digits=30, decimal_places=12)
    list_cost = models.DecimalField(max_digits=30, decimal_places=12)
    rows = models.BigIntegerField()
    source = models.ForeignKey(
        FocusImport, null=True, blank=True, on_delete=models.PROTECT, related_name="pools"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["period", "provider", "service_category", "charge_category", "tag_value"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "source",
                    "period",
                    "provider",
                    "service_category",
                    "charge_category",
                    "tag_key",
                    "tag_value",
                    "currency",
                ],
                name="cost_pool_unique_per_import",
            ),
        ]

    def __str__(self) -> str:
        return f"{month_text(self.period)} {self.name}: {self.effective_cost} {self.currency}"


class AllocationRule(models.Model):
    """How the operator splits matching cost pools. Empty filters match any pool; the most
    specific active rule wins. Every change bumps ``version``, which allocation lines record."""

    class Method(models.TextChoices):
        USAGE = "usage", "Usage-based"
        PROPORTIONAL = "proportional", "Proportional"
        FIXED_VARIABLE = "fixed_variable", "Fixed + variable"

    class Driver(models.TextChoices):
        TOKENS = "tokens", "Tokens"
        TOKEN_COST = "token_cost", "Token cost"
        JOB_SECONDS = "job_seconds", "Job-seconds"
        CPU_SECONDS = "cpu_seconds", "CPU seconds"
        GB_HOURS = "gb_hours", "GB-hours"
        RUNS = "runs", "Runs"
        EVEN = "even", "Evenly"

    name = models.CharField(max_length=200)
    provider = models.CharField(max_length=100, blank=True)
    service_category = models.CharField(max_length=100, blank=True)
    charge_category = models.CharField(max_length=32, blank=True)
    method = models.CharField(max_length=16, choices=Method.choices)
    driver = models.CharField(max_length=16, choices=Driver.choices)
    fixed_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    fixed_fraction = models.DecimalField(max_digits=7, decimal_places=6, null=True, blank=True)
    fixed_split = models.CharField(max_length=8, default="even")  # even | weights
    version = models.PositiveIntegerField(default=1)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def specificity(self) -> int:
        return sum(bool(f) for f in (self.provider, self.service_category, self.charge_category))


class AllocationRun(models.Model):
    """The allocation of one billing period. A draft is recomputed from its inputs (same inputs,
    same lines); a closed run is frozen and later changes become correction lines in the next
    open period."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        CLOSED = "closed", "Closed"

    period = models.DateField(unique=True)  # first day of the month
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    inputs_digest = models.CharField(max_length=64)
    computed_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period"]

    def __str__(self) -> str:
        return f"{month_text(self.period)} ({self.status})"


class AllocationLine(models.Model):
    """One share of a pool: to a tenant (level ``tenant``) or to one of its projects (level
    ``project``), with how it was computed. ``tenant`` is empty on an unallocated line."""

    run = models.ForeignKey(AllocationRun, on_delete=models.CASCADE, related_name="lines")
    pool = models.ForeignKey(CostPool, on_delete=models.PROTECT, related_name="lines")
    level = models.CharField(max_length=8)  # tenant | project
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="allocation_lines",
    )
    project = models.CharField(max_length=100, blank=True)  # '' on tenant lines; 'unallocated'
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=16)
    driver = models.CharField(max_length=16)
    driver_quantity = models.DecimalField(max_digits=30, decimal_places=6)
    ratio = models.DecimalField(max_digits=12, decimal_places=10)
    part = models.CharField(max_length=8)  # all | fixed | variable
    rule = models.ForeignKey(
        AllocationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule_version = models.PositiveIntegerField()
    corrects_period = models.DateField(null=True, blank=True)  # set on correction lines

    class Meta:
        indexes = [models.Index(fields=["run", "tenant"], name="allocation_line_tenant_idx")]

    def __str__(self) -> str:
        who = self.tenant_id or "unallocated"
        return (
            f"{month_text(self.run.period)} {self.pool_id} -> {who}/{self.project}: {self.amount}"
        )


class BilledImport(models.Model):
    """One imported bill of an AI provider (FOCUS, OpenAI costs or Anthropic cost report). Its
    content hash makes importing the same file twice a no-op. For a provider and UTC day, the
    newest import that has charges of that day is the bill (a corrected export replaces the
    earlier one for the days it covers; it never adds to it)."""

    sha256 = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=300)
    layout = models.CharField(max_length=16)  # focus | openai | anthropic
    rows = models.BigIntegerField()  # AI usage rows taken
    skipped = models.BigIntegerField(default=0)  # rows of other services or charge categories
    amount = models.DecimalField(max_digits=30, decimal_places=12)
    first_day = models.DateField()
    last_day = models.DateField()
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.layout}, {self.rows} rows)"


class BilledCost(models.Model):
    """What a provider billed for one model on one UTC day, by one import (USD, the file's
    precision). Provider and model are normalised (``billing.domain.billed.model_key``)."""

    source = models.ForeignKey(BilledImport, on_delete=models.CASCADE, related_name="costs")
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128, blank=True)
    day = models.DateField()
    amount = models.DecimalField(max_digits=30, decimal_places=12)
    rows = models.BigIntegerField()

    class Meta:
        ordering = ["day", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "provider", "model", "day"], name="billed_cost_unique"
            ),
        ]
        indexes = [models.Index(fields=["day", "provider"], name="billed_cost_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}: {self.amount}"


class BilledDriftAlert(models.Model):
    """Raised once per month, provider and model when the bill differs from the estimate by more
    than the tolerance; the row is the alert's "once" (a second check finds the key taken)."""

    period = models.DateField()  # first day of the UTC month
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128, blank=True)
    billed = models.DecimalField(max_digits=30, decimal_places=12)
    estimated = models.DecimalField(max_digits=30, decimal_places=12)
    percent = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    tolerance = models.DecimalField(max_digits=7, decimal_places=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "provider", "model"], name="billed_drift_alert_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{month_text(self.period)} {self.provider}/{self.model}: {self.percent}%"


class TrueUp(models.Model):
    """A month's AI cost trued up to the bill for one provider and model: the difference
    (billed - estimated, rounded to the cent) split into correction lines per tenant by each
    tenant's share of the estimate. Truing up a month again replaces its lines."""

    period = models.DateField()  # first day of the UTC month
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128, blank=True)
    billed = models.DecimalField(max_digits=30, decimal_places=12)
    estimated = models.DecimalField(max_digits=30, decimal_places=12)
    amount = models.DecimalField(max_digits=20, decimal_places=2)  # the lines' sum, exactly
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-period", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "provider", "model"], name="trueup_once_per_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{month_text(self.period)} {self.provider}/{self.model}: {self.amount}"


class TrueUpLine(models.Model):
    """One tenant's correction line of a true-up (``tenant`` empty: nobody had an estimate for
    the model that month, so the amount stays unallocated)."""

    trueup = models.ForeignKey(TrueUp, on_delete=models.CASCADE, related_name="lines")
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="trueup_lines",
    )
    estimated = models.DecimalField(max_digits=30, decimal_places=12)  # the tenant's estimate
    amount = models.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        ordering = ["trueup", "tenant"]
        indexes = [models.Index(fields=["tenant", "trueup"], name="trueup_line_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.trueup} -> {self.tenant_id or 'unallocated'}: {self.amount}"


class Commitment(models.Model):
    """A tenant's prepaid spend: a commitment it paid for, or a credit granted to it, in the
    tenant's currency, drawn down by the covered spend of its days ``start_date`` to
    ``end_date`` (the tenant's days, both included; ``ended_on`` cuts it short). How spend is
    drawn and in which order is ``billing.domain.commitments``'s; the operator writes it only
    through ``billing.operator.services.commitments``."""

    class Kind(models.TextChoices):
        COMMITMENT = "commitment", "Prepaid commitment"
        CREDIT = "credit", "Credit (grant)"

    class Covers(models.TextChoices):
        AI = "ai", "AI cost"
        INFRASTRUCTURE = "infrastructure", "Infrastructure"
        TOTAL = "total", "Total (AI + allocated infrastructure)"

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="commitments"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COMMITMENT)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    start_date = models.DateField()
    end_date = models.DateField()
    covers = models.CharField(max_length=16, choices=Covers.choices, default=Covers.TOTAL)
    ended_on = models.DateField(null=True, blank=True)  # ended early: its last day
    created_by = models.CharField(max_length=254, blank=True)  # the operator's e-mail
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "end_date", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="commitment_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__gt=models.F("start_date")),
                name="commitment_end_after_start",
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="commitment_name_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.name} {self.amount} {self.currency}"

    @property
    def reference(self) -> str:
        """Its id in exports (FOCUS CommitmentDiscountId) and the API."""
        return f"commitment-{self.pk}"

    @property
    def last_day(self) -> date:
        """The last day it draws on (the end, or the day it was ended)."""
        return min(self.end_date, self.ended_on) if self.ended_on else self.end_date
