"""Operator console pages for billing (operator host): cost per customer, the price book and
contract terms, FOCUS imports and cost pools, allocation, tenants' prepaid commitments."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_tenants.utils import schema_context

from billing.exports import write_customers_csv
from billing.operator import billed_selectors, selectors
from billing.operator.forms import (
    BilledUploadForm,
    CommitmentForm,
    FocusUploadForm,
    PriceOverrideForm,
)
from billing.operator.models import AllocationRule, AllocationRun, Commitment, CostPool
from billing.operator.selectors import customer_cost_table
from billing.operator.services.allocation import (
    AllocationRefused,
    RunOutcome,
    allocation_run,
)
from billing.operator.services.billed import (
    BilledImportError,
    billed_upload_import,
    month_trueup,
)
from billing.operator.services.commitments import FIELDS as COMMITMENT_FIELDS
from billing.operator.services.commitments import (
    commitment_create,
    commitment_end,
    commitment_update,
)
from billing.operator.services.focus import FocusImportError, focus_upload_import
from billing.operator.services.rules import RULE_FIELDS, allocation_rule_create
from billing.pricing.book import pricebook_refresh
from billing.pricing.overrides import price_override_create, term_start_text
from billing.selectors.commitments import commitments_status_now
from factory_portal.money import usd
from factory_portal.pagination import numbered_page, query_keeping
from factory_portal.periods import PeriodError, month_of, month_parse, month_text, months_ending
from factory_portal.tenants.access import operator_required as console_operator_required
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import tenant_by_slug

CUSTOMER_COST_MONTHS = 6


class RuleForm(forms.ModelForm):
    field_order = ["name", "service_category", "provider"]  # what it applies to reads best so

    class Meta:
        model = AllocationRule
        fields = [f for f in RULE_FIELDS if f != "active"]  # a new rule is active
        widgets = {
            "fixed_split": forms.Select(
                choices=[("even", "evenly"), ("weights", "by contract weights")]
            )
        }


def _period(value: str) -> date:
    try:
        return month_parse(value)
    except PeriodError as exc:
        raise Http404(str(exc)) from exc


@console_operator_required
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
        .annotate(pools=Count("id"), amount=Sum("effective_cost"), changed_at=Max("created_at"))
        .order_by("-period")
    )
    runs = {run.period: run for run in AllocationRun.objects.all()}
    rows = []
    for p in periods:
        run = runs.get(p["period"])
        stale = selectors.draft_staleness(run, pools_changed_at=p["changed_at"])
        rows.append({**p, "run": run, "stale": stale})
    return render(
        request,
        "billing/allocation.html",
        {"form": form, "rules": AllocationRule.objects.all(), "periods": rows},
    )


def _period_context(month: date) -> dict[str, object]:
    run = AllocationRun.objects.filter(period=month).first()
    totals = selectors.run_tenant_totals(run)
    names = dict(Tenant.objects.filter(slug__in=totals).values_list("slug", "name"))
    return {
        "month": month,
        "period": month_text(month),
        "run": run,
        "stale": selectors.draft_staleness(run),
        # (name, amount, slug) by name, "Unallocated" (slug "") last.
        "totals": sorted(
            (
                (names.get(slug, "Unallocated"), amount, slug if slug in names else "")
                for slug, amount in totals.items()
            ),
            key=lambda item: (item[0] == "Unallocated", item[0].casefold()),
        ),
        "draft_totals": totals if run is not None else None,
    }


def _names(needle: str, name: str, slug: str) -> bool:
    """Whether a tenant's name or slug holds ``needle`` (casefolded), as the operator's
    searches of tenants match (the console's in SQL, ``tenants_search``)."""
    return needle in name.casefold() or needle in slug.casefold()


# Tenants a page of the allocation's per-tenant shares and of its what-if lists.
ALLOCATION_PAGE_SIZE = 50
SEARCH_FROM = 10  # tenants listed from which the page offers a search


@console_operator_required
def allocation_period(request: HttpRequest, period: str) -> HttpResponse:
    """A period's pools, run and per-tenant shares; with ``?what_if=1`` the shares under each
    method. Both tenant lists are ``ALLOCATION_PAGE_SIZE`` a page (``?page=``, ``?what_if_page=``)
    and filtered by ``?q=`` (the tenant's slug or name, any case); a page that is not one is
    said (400, the first shown)."""
    month = _period(period)
    context = _period_context(month)
    query = _clean(request, "q")[:100]
    needle = query.casefold()
    every: list[tuple[str, Decimal, str]] = context["totals"]  # type: ignore[assignment]
    totals = [row for row in every if _names(needle, row[0], row[2])]
    page, page_error = numbered_page(totals, ALLOCATION_PAGE_SIZE, request.GET.get("page", "1"))
    what_if_page = None
    searchable = bool(query) or len(every) > SEARCH_FROM
    if request.GET.get("what_if"):
        rows = selectors.allocation_comparison(
            period=month,
            draft=context["draft_totals"],  # type: ignore[arg-type]
        )
        searchable = searchable or len(rows) > SEARCH_FROM
        what_if_page, problem = numbered_page(
            [r for r in rows if _names(needle, r.name, r.slug)],
            ALLOCATION_PAGE_SIZE,
            request.GET.get("what_if_page", "1"),
        )
        page_error = page_error or problem
    return render(
        request,
        "billing/allocation_period.html",
        {
            **context,
            "tenants_page": page,
            "tenants_keep": query_keeping(request.GET, "page"),
            "what_if_keep": query_keeping(request.GET, "what_if_page"),
            "query": query,
            "searchable": searchable,
            "page_error": page_error,
            "pools": CostPool.objects.filter(period=month).order_by("name"),
            "what_if_page": what_if_page,
            "what_if_labels": list(selectors.COMPARISON_LABELS.values()),
        },
        status=400 if page_error else 200,
    )


@console_operator_required
@require_POST
def allocation_period_run(request: HttpRequest, period: str) -> HttpResponse:
    """The everyday action: (re)compute the period's draft, or the corrections of a closed one.
    Closing never happens here, only through the confirmation page."""
    month = _period(period)
    if request.POST.get("close"):
        messages.warning(request, "Closing a month needs its confirmation: nothing was changed.")
        return redirect("allocation-period-close", period=month_text(month))
    try:
        _allocated(request, allocation_run(period=month), month)
    except AllocationRefused as exc:
        messages.error(request, str(exc))
    return redirect("allocation-period", period=month_text(month))


def _allocated(request: HttpRequest, outcome: RunOutcome, month: date) -> None:
    if outcome.corrections:
        messages.info(
            request,
            f"{month_text(month)} is closed: {outcome.corrections} correction lines "
            "went to the next open period.",
        )
    else:
        messages.success(
            request,
            f"{month_text(month)} allocated ({outcome.run.get_status_display().lower()}): "
            f"{usd(outcome.allocated)} allocated, {usd(outcome.unallocated)} unallocated.",
        )


class CloseMonthForm(forms.Form):
    """Closing is confirmed by typing the month: a slip of the mouse cannot close one."""

    confirm_month = forms.CharField(label="Type the month to close (YYYY-MM)", max_length=20)

    def __init__(self, *args: object, period: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.period = period

    def clean_confirm_month(self) -> str:
        typed = self.cleaned_data["confirm_month"].strip()
        if typed != self.period:
            raise ValidationError(f"Type {self.period} exactly to close this month.")
        return typed


@console_operator_required
def allocation_period_close(request: HttpRequest, period: str) -> HttpResponse:
    """The month close: a page that says what closing does, confirmed by typing the month."""
    month = _period(period)
    context = _period_context(month)
    run = context["run"]
    if isinstance(run, AllocationRun) and run.status == AllocationRun.Status.CLOSED:
        messages.info(request, f"{month_text(month)} is already closed.")
        return redirect("allocation-period", period=month_text(month))
    form = CloseMonthForm(request.POST or None, period=month_text(month))
    if request.method == "POST":
        if form.is_valid():
            try:
                _allocated(request, allocation_run(period=month, close=True), month)
            except AllocationRefused as exc:
                messages.error(request, str(exc))
            return redirect("allocation-period", period=month_text(month))
        status = 400
    else:
        status = 200
    pools = CostPool.objects.filter(period=month).aggregate(
        n=Count("id"), amount=Sum("effective_cost")
    )
    return render(
        request,
        "billing/allocation_close.html",
        {**context, "form": form, "pool_count": pools["n"], "pool_amount": pools["amount"]},
        status=status,
    )


def _form_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form, by field where it names one."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _selected_month(request: HttpRequest, name: str = "month") -> tuple[date | None, str]:
    """The month ``?month=`` names (None when not given) and, for one that is not a month or
    lies outside the supported years, the reason (a review found it silently replaced by this
    month, in the page and in its CSV)."""
    raw = request.GET.get(name, "")
    if not raw:
        return None, ""
    try:
        return month_parse(raw), ""
    except PeriodError as exc:
        return None, str(exc)


# Customers a page of the cost per customer lists (the totals are every customer's).
CUSTOMER_COSTS_PAGE_SIZE = 50


@console_operator_required
def customer_costs(request: HttpRequest) -> HttpResponse:
    """Each customer's cost of the month and the last months, ``CUSTOMER_COSTS_PAGE_SIZE``
    customers a page (``?page=``), filtered by ``?q=`` (slug or name, any case); the totals are
    every customer's. A month or page that is not one is said (a page: 400, the first shown)."""
    chosen, problem = _selected_month(request)
    month = chosen or month_of(timezone.now().date())
    table = customer_cost_table(months=months_ending(month, CUSTOMER_COST_MONTHS))
    query = _clean(request, "q")[:100]
    needle = query.casefold()
    matching = [c for c in table.customers if _names(needle, c.tenant.name, c.tenant.slug)]
    page, page_error = numbered_page(
        matching, CUSTOMER_COSTS_PAGE_SIZE, request.GET.get("page", "1")
    )
    return render(
        request,
        "operator/customer_costs.html",
        {
            "month": month,
            "table": table,
            "page": page,
            "query": query,
            "page_error": page_error,
            "keep": query_keeping(request.GET, "page"),
            "pager_noun": "customers matching" if query else "customers",
            "rows": [(c, c.months[month]) for c in page.object_list],
            "month_total": table.totals[month],
            "month_unallocated": table.unallocated[month],
            "month_status": table.allocation_status[month],
            "problem": f"{problem} Showing this month." if problem else "",
        },
        status=400 if page_error else 200,
    )


@console_operator_required
def customer_costs_csv(request: HttpRequest) -> HttpResponse:
    """The operator's cost per customer for one month, as ``manage.py report --customers``; a
    month that is not one is a 404 with the reason, as the tenants' report downloads."""
    chosen, problem = _selected_month(request)
    if problem:
        raise Http404(problem)
    month = chosen or month_of(timezone.now().date())
    table = customer_cost_table(months=[month])
    rows = [
        (c.tenant.slug, c.tenant.name, c.months[month].ai, c.months[month].infrastructure)
        for c in table.customers
    ]
    out = io.StringIO()
    write_customers_csv(rows, month_text(month), out)
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="customers-{month_text(month)}.csv"'
    return response


def _clean(request: HttpRequest, name: str) -> str:
    # PostgreSQL cannot compare text with a NUL in it (500): the character is dropped.
    return request.GET.get(name, "").replace("\x00", "").strip()


def _price_book(request: HttpRequest, form: PriceOverrideForm, status: int = 200) -> HttpResponse:
    """One row per model (``?in_use=1``: only models some tenant has calls of); with ``?model=``
    (and its ``provider``) that model's every entry, history and scheduled prices included."""
    search, provider, model = (
        _clean(request, "q"),
        _clean(request, "provider"),
        _clean(request, "model"),
    )
    in_use = request.GET.get("in_use") == "1"
    now = timezone.now()
    page_number = request.GET.get("page", 1)
    if model:
        page = selectors.price_book_page(
            search="", provider=provider, model=model, page=page_number, now=now
        )
    else:
        page = selectors.price_book_models_page(
            search=search,
            provider=provider,
            page=page_number,
            now=now,
            in_use=selectors.models_in_use() if in_use else None,
        )
    return render(
        request,
        "operator/price_book.html",
        {
            "page": page,
            "providers": selectors.price_book_providers(),
            "search": search,
            "provider": provider,
            "model": model,
            "in_use": in_use,
            "now": now,
            "overrides": selectors.price_overrides_page(page=request.GET.get("terms_page", 1)),
            "terms_keep": query_keeping(request.GET, "terms_page"),
            "form": form,
        },
        status=status,
    )


@console_operator_required
def price_book(request: HttpRequest) -> HttpResponse:
    return _price_book(request, PriceOverrideForm())


@console_operator_required
@require_POST
def price_override_add(request: HttpRequest) -> HttpResponse:
    form = PriceOverrideForm(request.POST)
    if form.is_valid():
        try:
            override = price_override_create(**form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(
                request,
                f"Contract term added for {override.tenant.name} from "
                f"{term_start_text(override)}. Calls already stored keep their "
                "cost until the period is re-priced (manage.py reprice).",
            )
            return redirect("price-book")
    return _price_book(request, form, status=400)


@console_operator_required
@require_POST
def price_book_refresh(request: HttpRequest) -> HttpResponse:
    result = pricebook_refresh()
    messages.success(
        request,
        f"Price book refreshed from genai-prices {result.version}: {result.created} new, "
        f"{result.changed} changed, {result.unchanged} unchanged entries.",
    )
    return redirect("price-book")


def _pools(request: HttpRequest, form: FocusUploadForm, status: int = 200) -> HttpResponse:
    period, problem = _selected_month(request, "period")
    return render(
        request,
        "operator/pools.html",
        {
            "imports": selectors.focus_imports_page(page=request.GET.get("imports_page", 1)),
            "months": selectors.cost_pool_months(),
            "pools": selectors.cost_pools_page(period=period, page=request.GET.get("page", 1)),
            "period": period,
            "problem": f"{problem} Showing every period." if problem else "",
            "form": form,
        },
        status=status,
    )


@console_operator_required
def pools(request: HttpRequest) -> HttpResponse:
    return _pools(request, FocusUploadForm())


@console_operator_required
@require_POST
def pools_upload(request: HttpRequest) -> HttpResponse:
    form = FocusUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = focus_upload_import(
                chunks=upload.chunks(),
                filename=upload.name,
                period=form.cleaned_data["period"],
                pool_tag=form.cleaned_data["pool_tag"].strip(),
            )
        except FocusImportError as exc:
            first, *rows = exc.lines()
            form.add_error("file", [f"{upload.name}: {first}. Nothing was imported.", *rows])
        else:
            record = result.focus_import
            if result.created:
                periods = ", ".join(
                    f"{month_text(p)}: {n:,} rows" for p, n in sorted(result.rows_by_period.items())
                )
                messages.success(
                    request,
                    f"Imported {record.rows:,} charges (FOCUS {record.focus_version}) from "
                    f"{record.filename} into {result.pools} cost pools ({periods}).",
                )
            else:
                messages.info(
                    request,
                    f"This file was already imported on {record.imported_at:%Y-%m-%d %H:%M} UTC "
                    f"as {record.filename}; nothing changed.",
                )
            return redirect("pools")
    return _pools(request, form, status=400)


def _billed(request: HttpRequest, form: BilledUploadForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "operator/billed.html",
        {
            "form": form,
            "months": billed_selectors.billed_months(),
            "imports": billed_selectors.billed_imports(),
        },
        status=status,
    )


@console_operator_required
def billed(request: HttpRequest) -> HttpResponse:
    return _billed(request, BilledUploadForm())


@console_operator_required
@require_POST
def billed_upload(request: HttpRequest) -> HttpResponse:
    form = BilledUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = billed_upload_import(chunks=upload.chunks(), filename=upload.name)
        except BilledImportError as exc:
            first, *rows = exc.lines()
            form.add_error("file", [f"{upload.name}: {first}. Nothing was imported.", *rows])
        else:
            record = result.billed_import
            if result.created:
                months = ", ".join(month_text(m) for m in result.months)
                messages.success(
                    request,
                    f"Imported {record.rows:,} AI charges ({record.layout}) from "
                    f"{record.filename} for {months}; {record.skipped:,} rows of other services "
                    "or charge categories skipped.",
                )
            else:
                messages.info(
                    request,
                    f"This file was already imported on {record.imported_at:%Y-%m-%d %H:%M} UTC "
                    f"as {record.filename}; nothing changed.",
                )
            return redirect("billed")
    return _billed(request, form, status=400)


def _tolerance(request: HttpRequest) -> Decimal | None:
    raw = request.GET.get("tolerance", "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        return None
    return value if value.is_finite() and 0 <= value <= 1000 else None


@console_operator_required
def billed_month(request: HttpRequest, period: str) -> HttpResponse:
    month = _period(period)
    drift = billed_selectors.billed_drift(month, tolerance=_tolerance(request))
    return render(
        request,
        "operator/billed_month.html",
        {
            "month": month,
            "period": period,
            "drift": drift,
            "alerts": billed_selectors.drift_alerts(month),
            "trueups": billed_selectors.trueups(month),
        },
    )


@console_operator_required
@require_POST
def billed_month_trueup(request: HttpRequest, period: str) -> HttpResponse:
    month = _period(period)
    made = month_trueup(period=month)
    total = sum((t.amount for t in made), Decimal(0))
    messages.success(
        request,
        f"{month_text(month)} trued up to the bill: {len(made)} provider/model corrections, "
        f"{total:,.2f} USD in all, split over tenants by their share of the estimate.",
    )
    return redirect("billed-month", period=period)


# Prepaid commitments of a tenant


def _customer(slug: str) -> Tenant:
    tenant = tenant_by_slug(slug)
    if tenant is None or tenant.is_public:
        raise Http404("No such tenant")
    return tenant


def _commitments_page(
    request: HttpRequest, tenant: Tenant, form: CommitmentForm, status: int = 200
) -> HttpResponse:
    # What the tenant sees: drawdown reads its rollups, in its schema.
    with schema_context(tenant.schema_name):
        statuses = commitments_status_now(tenant=tenant, now=timezone.now())
    return render(
        request,
        "operator/commitments.html",
        {"tenant": tenant, "form": form, "statuses": statuses},
        status=status,
    )


@console_operator_required
def tenant_commitments(request: HttpRequest, slug: str) -> HttpResponse:
    """A tenant's commitments and credits, and the form that records a new one."""
    tenant = _customer(slug)
    if request.method != "POST":
        return _commitments_page(
            request, tenant, CommitmentForm(initial={"currency": tenant.currency})
        )
    form = CommitmentForm(request.POST)
    if form.is_valid():
        try:
            made = commitment_create(
                tenant=tenant, created_by=getattr(request.user, "email", ""), **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(
                request,
                f"{made.get_kind_display()} {made.name} of {made.amount:,.2f} {made.currency} "
                f"recorded for {tenant.name}, {made.start_date} to {made.end_date}.",
            )
            return redirect("tenant-commitments", slug=slug)
    return _commitments_page(request, tenant, form, status=400)


def _commitment(tenant: Tenant, pk: int) -> Commitment:
    found = Commitment.objects.filter(tenant=tenant, pk=pk).select_related("tenant").first()
    if found is None:
        raise Http404("No such commitment")
    return found


@console_operator_required
def tenant_commitment_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    tenant = _customer(slug)
    commitment = _commitment(tenant, pk)
    initial = {f: getattr(commitment, f) for f in COMMITMENT_FIELDS}
    form = CommitmentForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                commitment_update(commitment=commitment, **form.cleaned_data)
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, f"{commitment.name} changed.")
                return redirect("tenant-commitments", slug=slug)
        status = 400
    return render(
        request,
        "operator/commitment_edit.html",
        {"tenant": tenant, "commitment": commitment, "form": form},
        status=status,
    )


@console_operator_required
@require_POST
def tenant_commitment_end(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    tenant = _customer(slug)
    commitment = commitment_end(commitment=_commitment(tenant, pk))
    messages.success(
        request,
        f"{commitment.name} ended: its last day of drawdown is {commitment.last_day}.",
    )
    return redirect("tenant-commitments", slug=slug)
