"""Alert evaluation: budgets (actual and forecast), prepaid commitments (consumed and forecast
exhaustion), finished runs, cost anomalies and the run failure rate. Every evaluator is
idempotent: it raises alerts under keys that name the rule, the threshold and the period, so
running it again (or on two workers at once) raises nothing new.

Budgets: one alert per budget and evaluation, keyed ``budget:<scope>:<month>:<basis>:<highest
threshold newly crossed>`` (basis ``actual`` or ``forecast``). The lower thresholds of a jump get
no key and no row of their own: a threshold counts as announced when it is at or below the
highest threshold of the budget's alerts that month (an actual alert also announces the forecast
thresholds it names in ``forecast_thresholds_crossed``). A threshold is thus announced at most once
a month, and one that is announced covers the ones below it, which also holds when a threshold is
added to the budget later. Because "new" is read from the alerts already stored, two evaluations
of one budget take turns: each holds the budget row's lock (``SELECT … FOR UPDATE``) while it
reads the announced thresholds and raises its alert, so the second sees the first's alert and
announces only what is left. The unique key stays as the last guard (an alert is raised once per
key, whatever else happens). No rows without a notification: the alerts list shows only what was
sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from django.db import transaction
from django.db.models import Q, Sum

from alerts.domain.anomaly import hour_verdict
from alerts.domain.budgets import ACTUAL, Announced, BudgetFigures, budget_notice
from alerts.models import Alert, RunSubscription, WebhookEndpoint
from alerts.services.engine import AlertSpec, alert_raise, settings_get, staff_emails
from billing.models import Budget
from billing.selectors.budgets import budget_status
from billing.selectors.commitments import CommitmentStatus, commitments_status_now
from billing.selectors.cost_change import hour_cost_change
from factory_portal.accounts.models import Role, User
from factory_portal.money import percent, quantize_cents
from factory_portal.observability import context as log_context
from factory_portal.periods import local_date, month_last_day, month_text, zone
from factory_portal.tenants.connection import current_tenant
from factory_portal.tenants.models import Tenant
from notifications.models import Notification
from usage import selectors as usage_selectors
from usage.domain.ids import run_path
from usage.models import Job, LlmUsageEvent, LlmUsageHourly, Run, RunStatus

ANOMALY_WEEKS = 4


def budgets_evaluate(*, now: datetime) -> list[Alert]:
    """Each budget on the tenant's day of ``now``: at most one alert per budget, for what is newly
    crossed on actual spend (the budgets page's month to date) or, failing that, on forecast
    spend (month end); see ``alerts.domain.budgets`` for what it says."""
    tenant = current_tenant()
    today = local_date(now, zone(tenant.timezone))
    raised = []
    for budget_id in Budget.objects.order_by("project").values_list("pk", flat=True):
        alert = _budget_evaluate(budget_id, tenant=tenant, today=today)
        if alert is not None:
            raised.append(alert)
    return raised


def budget_alert_prefix(project: str, month: str) -> str:
    """The key prefix of a budget's alerts in ``month`` (``YYYY-MM``): ``budget:tenant:`` for the
    tenant's budget, ``budget:project=<slug, percent-encoded>:`` for a project's. A project's
    slug was used as it is, so a project named ``tenant`` shared the tenant budget's keys: its
    alerts were never raised (a review found it)."""
    scope = f"project={quote(project, safe='')}" if project else "tenant"
    return f"budget:{scope}:{month}:"


def _announced_prefixes(project: str, month: str) -> list[str]:
    """Where a budget's alerts of ``month`` may be stored: its prefix, and for a project the
    prefix its alerts had before (the bare slug; never ``tenant``, the tenant budget's), so
    thresholds announced under it are not announced again. The stored keys are not rewritten:
    a worker still running the earlier code, during a deploy or after a rollback, keeps finding
    them."""
    prefixes = [budget_alert_prefix(project, month)]
    if project and project != "tenant":
        prefixes.append(f"budget:{project}:{month}:")
    return prefixes


def _budget_evaluate(budget_id: int, *, tenant: Tenant, today: date) -> Alert | None:
    with transaction.atomic():
        # Evaluations of one budget take turns (the row lock), so the second reads what the
        # first announced before deciding what is new.
        budget = Budget.objects.select_for_update().filter(pk=budget_id).first()
        if budget is None:
            return None  # deleted meanwhile
        status = budget_status(budget, tenant=tenant, today=today)
        month = month_text(status.month)
        prefix = budget_alert_prefix(budget.project, month)
        prefixes = _announced_prefixes(budget.project, month)
        notice = budget_notice(
            BudgetFigures(
                project=budget.project,
                total_basis=budget.basis == Budget.Basis.TOTAL,
                amount=budget.amount,
                thresholds=tuple(budget.thresholds),
                today=today,
                spent=status.spent,
                forecast_month_end=status.forecast_month_end,
                month_last=month_last_day(status.month),
                crossing_expected=status.crossing_expected,
                crossing_lo80=status.crossing_lo80,
                crossing_hi80=status.crossing_hi80,
            ),
            _announced(prefixes),
        )
        if notice is None:
            return None
        forecast = status.forecast_month_end
        return alert_raise(
            AlertSpec(
                key=f"{prefix}{notice.basis}:{notice.threshold}",
                kind=Alert.Kind.BUDGET,
                severity=notice.severity,
                title=notice.title,
                body=notice.body,
                url="/budgets/",
                data={
                    "project": budget.project,
                    "budget": str(budget.amount),
                    "cost_basis": budget.basis,
                    "month": month,
                    "basis": notice.basis,
                    "threshold_percent": notice.threshold,
                    "thresholds_crossed": list(notice.crossed),
                    "forecast_thresholds_crossed": list(notice.forecast_crossed),
                    "spent": str(quantize_cents(status.spent)),
                    "spent_percent": str(percent(status.spent, budget.amount, 2)),
                    "forecast_month_end": (
                        str(quantize_cents(forecast)) if forecast is not None else None
                    ),
                    "crossing_expected": _iso(status.crossing_expected),
                    "crossing_lo80": _iso(status.crossing_lo80),
                    "crossing_hi80": _iso(status.crossing_hi80),
                },
                emails=staff_emails(),
            )
        )


def _announced(prefixes: list[str]) -> Announced:
    """The highest thresholds announced under ``prefixes`` (one budget scope and month), on
    actual spend and on forecast (an actual alert's ``forecast_thresholds_crossed`` count as
    forecast)."""
    actual = forecast = 0
    under = Q()
    for prefix in prefixes:
        under |= Q(key__startswith=prefix)
    rows = Alert.objects.filter(under, kind=Alert.Kind.BUDGET)
    for data in rows.values_list("data", flat=True):
        threshold = int(data.get("threshold_percent") or 0)
        if data.get("basis") == ACTUAL:
            actual = max(actual, threshold)
            forecast = max([forecast, *map(int, data.get("forecast_thresholds_crossed", []))])
        else:
            forecast = max(forecast, threshold)
    return Announced(actual=actual, forecast=forecast)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


# Prepaid commitments: how far ahead forecast exhaustion is announced, and the consumed shares.
COMMITMENT_EXHAUSTION_DAYS = 14
COMMITMENT_THRESHOLDS = (50, 80, 100)


def commitments_evaluate(*, now: datetime) -> list[Alert]:
    """Each prepaid commitment of the tenant on its day of ``now``: an alert when consumption
    passes 50, 80 or 100% (one for the highest threshold newly passed: a jump from 40 to 90%
    says 80%, and 50% is not announced after it), and one when the forecast says it runs out
    within ``COMMITMENT_EXHAUSTION_DAYS`` days (before its end). Each once per commitment
    (keys ``commitment:<id>:consumed:<threshold>`` and ``commitment:<id>:exhaustion``), to
    admins and finance (in-app and e-mail) and the webhooks."""
    tenant = current_tenant()
    statuses = commitments_status_now(tenant=tenant, now=now)
    if not statuses:
        return []
    staff = list(
        User.objects.filter(is_active=True, role__in=[Role.ADMIN, Role.FINANCE]).order_by("pk")
    )
    emails = staff_emails()
    raised = []
    for status in statuses:
        for spec in _commitment_specs(status):
            alert = alert_raise(replace(spec, users=staff, emails=emails))
            if alert is not None:
                raised.append(alert)
    return raised


def _commitment_specs(status: CommitmentStatus) -> list[AlertSpec]:
    c = status.commitment
    prefix = f"commitment:{c.pk}:"
    figures = {
        "commitment": c.reference,
        "name": c.name,
        "amount": str(c.amount),
        "currency": c.currency,
        "consumed": str(status.consumed),
        "remaining": str(status.remaining),
        "consumed_percent": str(percent(status.drawdown.consumed, c.amount, 2)),
        "last_day": c.last_day.isoformat(),
    }
    specs = []
    crossed = [t for t in COMMITMENT_THRESHOLDS if status.consumed_percent >= t]
    announced = [
        int(k.rsplit(":", 1)[1])
        for k in Alert.objects.filter(key__startswith=f"{prefix}consumed:").values_list(
            "key", flat=True
        )
    ]
    if crossed and crossed[-1] > max(announced, default=0):
        threshold = crossed[-1]
        used_up = threshold >= 100
        specs.append(
            AlertSpec(
                key=f"{prefix}consumed:{threshold}",
                kind=Alert.Kind.COMMITMENT,
                severity="critical" if used_up else "warning",
                title=(
                    f"{c.name} is used up"
                    if used_up
                    else f"{c.name}: {threshold}% of the prepaid amount consumed"
                ),
                body=(
                    f"{c.name} ({c.get_kind_display().lower()}, {c.amount:,.2f} {c.currency} "
                    f"to {c.last_day}): {status.consumed:,.2f} consumed, {status.remaining:,.2f}"
                    f" left ({figures['consumed_percent']}%)."
                ),
                url="/costs/commitments/",
                data={**figures, "threshold_percent": threshold},
            )
        )
    ends = status.exhaustion
    soon = status.today + timedelta(days=COMMITMENT_EXHAUSTION_DAYS)
    if (
        status.state == "active"
        and ends.expected is not None
        and ends.expected > status.today
        and ends.expected <= min(soon, c.last_day)
    ):
        interval = f"{ends.earliest} to {ends.latest or 'after its end'}"
        specs.append(
            AlertSpec(
                key=f"{prefix}exhaustion",
                kind=Alert.Kind.COMMITMENT,
                title=f"{c.name} is expected to run out on {ends.expected}",
                body=(
                    f"At the forecast spend, the {status.remaining:,.2f} {c.currency} left of "
                    f"{c.name} runs out on {ends.expected} (80% interval: {interval}), before "
                    f"its last day {c.last_day}."
                ),
                url="/costs/commitments/",
                data={
                    **figures,
                    "exhaustion_expected": _iso(ends.expected),
                    "exhaustion_earliest": _iso(ends.earliest),
                    "exhaustion_latest": _iso(ends.latest),
                    "within_days": COMMITMENT_EXHAUSTION_DAYS,
                },
            )
        )
    return specs


def runs_evaluate(*, run_ids: list[int]) -> list[Alert]:
    """Run completed / failed alerts for the users whose subscription matches each run."""
    subscriptions = list(
        RunSubscription.objects.exclude(mode=RunSubscription.Mode.NONE)
        .filter(user__is_active=True)
        .select_related("user")
    )
    runs = (
        Run.objects.filter(
            pk__in=run_ids, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED]
        )
        .select_related("project")
        .annotate(cost=usage_selectors.run_token_cost())
        .order_by("pk")
    )
    has_webhooks = WebhookEndpoint.objects.filter(enabled=True).exists()
    raised = []
    for run in runs:
        matched: list[User] = [
            s.user
            for s in subscriptions
            if s.mode == RunSubscription.Mode.ALL
            or (s.mode == RunSubscription.Mode.FAILURES and run.status == RunStatus.FAILED)
            or (s.mode == RunSubscription.Mode.PROJECT and s.project == run.project.slug)
        ]
        if not matched and not has_webhooks:
            continue
        failed = run.status == RunStatus.FAILED
        duration = f"{run.duration_ms / 1000:.0f} s" if run.duration_ms is not None else "unknown"
        cost = quantize_cents(run.cost)
        body = (
            f"Run {run.run_id} ({run.project.slug}, {run.template_recipe_id or 'no template'}) "
            f"{run.status.lower()} after {duration}; AI cost ${cost}."
        )
        if failed and run.failure_type:
            body += f" Failure: {run.failure_type}."
        with log_context.bind(run_id=run.run_id):  # its log lines name the run
            alert = alert_raise(
                AlertSpec(
                    key=f"run:{run.run_id}:{run.status}",
                    kind=Alert.Kind.RUN,
                    severity="warning" if failed else "info",
                    title=f"Run {run.run_id} {run.status.lower()}",
                    body=body,
                    url=run_path(run.run_id),
                    data={
                        **usage_selectors.run_outline(run),
                        "duration_ms": run.duration_ms,
                        "ai_cost": str(cost),
                        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                    },
                    users=matched,
                    emails=[
                        u.email
                        for u, s in _with_subs(matched, subscriptions)
                        if s.email == RunSubscription.Email.EACH
                    ],
                )
            )
        if alert is not None:
            raised.append(alert)
    return raised


def _with_subs(users: list[User], subscriptions: list[RunSubscription]):  # type: ignore[no-untyped-def]
    by_user = {s.user_id: s for s in subscriptions}
    return [(u, by_user[u.pk]) for u in users]


def anomaly_evaluate(*, now: datetime) -> Alert | None:
    """The last complete hour's AI cost against the same hour of the week in the trailing weeks."""
    config = settings_get()
    if not config.anomaly_enabled:
        return None
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    weeks = [hour - timedelta(weeks=k) for k in range(1, ANOMALY_WEEKS + 1)]
    first = usage_selectors.first_usage_day()
    if first is None:
        return None
    costs = {
        row["hour"]: row["cost"]
        for row in LlmUsageHourly.objects.filter(hour__in=[hour, *weeks])
        .values("hour")
        .annotate(cost=Sum("cost"))
    }
    history = [costs.get(h, Decimal(0)) for h in weeks if h.date() >= first]
    verdict = hour_verdict(
        costs.get(hour, Decimal(0)),
        history,
        factor=config.anomaly_factor,
        min_cost=config.anomaly_min_cost,
    )
    if not verdict.anomalous:
        return None
    cooldown = timedelta(hours=config.anomaly_cooldown_hours)
    if Alert.objects.filter(kind=Alert.Kind.ANOMALY, created_at__gte=now - cooldown).exists():
        return None
    driver = _anomaly_driver(hour, weeks)
    step = _anomaly_step(hour)
    # Why: the hour against the average of the same trailing hours the baseline is made of.
    why = hour_cost_change(hour=hour, baseline_hours=[h for h in weeks if h.date() >= first])
    top = why.top_lines(3)
    baseline = quantize_cents(verdict.baseline) if verdict.baseline is not None else None
    ratio = f"{verdict.ratio:.1f} times" if verdict.ratio is not None else "up from nothing on"
    return alert_raise(
        AlertSpec(
            key=f"anomaly:{hour:%Y-%m-%dT%H}",
            kind=Alert.Kind.ANOMALY,
            title=(
                f"AI cost spike: ${quantize_cents(verdict.cost)} in the hour from {hour:%H:00} UTC"
            ),
            body=(
                f"AI cost between {hour:%Y-%m-%d %H:00} and {hour + timedelta(hours=1):%H:00} UTC"
                f" was ${quantize_cents(verdict.cost)}, {ratio} the usual ${baseline} for that"
                f" hour of the week. Driven by project {driver[0]}, model {driver[1]}"
                + (f", step {step}." if step else ".")
                + (" Why: " + "; ".join(line.text for line in top) + "." if top else "")
            ),
            url="/costs/",
            data={
                "hour": hour.isoformat(),
                "cost": str(quantize_cents(verdict.cost)),
                "baseline": str(baseline) if baseline is not None else None,
                "factor": str(config.anomaly_factor),
                "project": driver[0],
                "model": driver[1],
                "step": step,
                "change": {
                    "before": f"{why.before:.2f}",
                    "after": f"{why.after:.2f}",
                    "change": f"{why.change:.2f}",
                    "parts": [{"part": p.part, "amount": f"{p.amount:.2f}"} for p in why.parts],
                    "top_lines": [
                        {"text": line.text, "amount": f"{line.amount:.2f}", **line.dims}
                        for line in top
                    ],
                },
            },
            emails=staff_emails(),
        )
    )


def _anomaly_driver(hour: datetime, weeks: list[datetime]) -> tuple[str, str]:
    """The project and model whose cost grew most against their own trailing mean."""
    now_rows = {
        (r["project__slug"], r["model"]): r["cost"]
        for r in LlmUsageHourly.objects.filter(hour=hour)
        .values("project__slug", "model")
        .annotate(cost=Sum("cost"))
    }
    before: dict[tuple[str, str], Decimal] = {}
    for r in (
        LlmUsageHourly.objects.filter(hour__in=weeks)
        .values("project__slug", "model")
        .annotate(cost=Sum("cost"))
    ):
        before[(r["project__slug"], r["model"])] = r["cost"] / len(weeks)
    if not now_rows:
        return ("", "")
    return max(now_rows, key=lambda k: (now_rows[k] - before.get(k, Decimal(0)), k))


def _anomaly_step(hour: datetime) -> str:
    """The job step with the most AI cost in that hour (from the hour's raw calls)."""
    row = (
        LlmUsageEvent.objects.filter(
            occurred_at__gte=hour, occurred_at__lt=hour + timedelta(hours=1), job__isnull=False
        )
        .values("job_id")
        .annotate(cost=Sum("cost"))
        .order_by("-cost")
        .first()
    )
    if row is None:
        return ""
    return Job.objects.filter(pk=row["job_id"]).values_list("step_name", flat=True).first() or ""


def failure_rate_evaluate(*, now: datetime) -> Alert | None:
    """The share of failed runs among the last N finished runs, once per cool-down window."""
    config = settings_get()
    if not config.failure_rate_enabled:
        return None
    window = config.failure_rate_window
    statuses = list(
        Run.objects.filter(
            status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED],
            finished_at__isnull=False,
        )
        .order_by("-finished_at", "-pk")
        .values_list("status", flat=True)[:window]
    )
    if len(statuses) < window:
        return None
    failed = sum(1 for s in statuses if s == RunStatus.FAILED)
    rate = percent(failed, window)
    if rate < config.failure_rate_threshold:
        return None
    cooldown = timedelta(hours=max(1, config.failure_rate_cooldown_hours))
    if Alert.objects.filter(kind=Alert.Kind.FAILURE_RATE, created_at__gte=now - cooldown).exists():
        return None
    bucket = int(now.timestamp() // cooldown.total_seconds())
    return alert_raise(
        AlertSpec(
            key=f"failure_rate:{window}:{config.failure_rate_threshold}:{bucket}",
            kind=Alert.Kind.FAILURE_RATE,
            severity="critical",
            title=f"{failed} of the last {window} runs failed ({rate:.0f}%)",
            body=(
                f"{failed} of the last {window} finished runs failed, above the "
                f"{config.failure_rate_threshold}% threshold."
            ),
            url="/runs/?status=Failed",
            data={
                "window": window,
                "failed": failed,
                "threshold_percent": config.failure_rate_threshold,
            },
            emails=staff_emails(),
        )
    )


def run_digests_send(*, now: datetime) -> list[Alert]:
    """For users who chose the hourly digest: one e-mail listing the run notifications they got
    since their last digest (once per user and hour, through the outbox like any alert)."""
    raised = []
    subscriptions = RunSubscription.objects.filter(
        email=RunSubscription.Email.DIGEST, user__is_active=True
    ).select_related("user")
    for subscription in subscriptions:
        since = subscription.digest_sent_until or now - timedelta(hours=1)
        notes = list(
            Notification.objects.filter(
                user=subscription.user,
                kind=Notification.Kind.RUN,
                created_at__gt=since,
                created_at__lte=now,
            ).order_by("created_at", "pk")
        )
        if notes:
            lines = "\n".join(f"- {n.title}: {n.body}" for n in notes)
            alert = alert_raise(
                AlertSpec(
                    key=f"run-digest:{subscription.user_id}:{now:%Y-%m-%dT%H}",
                    kind=Alert.Kind.RUN,
                    severity="info",
                    title=f"{len(notes)} run{'s' if len(notes) != 1 else ''} finished since "
                    f"{since:%H:%M} UTC",
                    body=lines,
                    url="/notifications/",
                    data={"runs": len(notes)},
                    users=[],
                    emails=[subscription.user.email],
                    webhooks=False,
                )
            )
            if alert is None:  # this hour's digest went out already: these wait for the next
                continue  # (moving on past them lost them: a second run in the hour sent none)
            raised.append(alert)
        subscription.digest_sent_until = now
        subscription.save(update_fields=["digest_sent_until"])
    return raised
