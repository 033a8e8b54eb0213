"""The alerts pages: ``/alerts/`` (firing, pending, silenced, history), ``/alerts/<pk>/`` (one
incident with its timeline, silence, delivery log and links to what is behind it),
acknowledging, and ``/alerts/silences/``. The same views serve a tenant's site (its incidents;
everyone reads, members and admins act) and the operator console (the platform's incidents in
the public schema; operators only). Thin: parse, call a selector or a service, render."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from alerts.oncall import selectors
from alerts.oncall.domain.rules import (
    INCIDENT_RULES,
    RUN_OVER_BUDGET,
    SEVERITIES,
    duration_text,
    rule_title,
)
from alerts.oncall.domain.silence_input import matchers_text
from alerts.oncall.domain.wording import figure_text, history_text, span_text, timeline
from alerts.oncall.forms import SilenceForm
from alerts.oncall.models import Incident, Silence
from alerts.oncall.services.incidents import IncidentResolved, incident_acknowledge
from alerts.oncall.services.silences import silence_create, silence_expire
from factory_portal import periods
from factory_portal.accounts.permissions import can, denial, may_open, role_required
from factory_portal.tenants.connection import connection_zone
from usage.domain.ids import run_path


@dataclass(frozen=True)
class Site:
    """Who reads and who acts on the alerts of one kind of host."""

    operator: bool
    read: str  # the role table's area that sees the pages
    act: str  # ...and that acknowledges and silences


TENANT = Site(operator=False, read="signed_in", act="oncall")
OPERATOR = Site(operator=True, read="operator", act="operator")

# What is behind each rule's alerts: (label, path) on a tenant's site and on the operator
# console. A page shows only those the viewer's role may open (``permissions.may_open``).
BEHIND: dict[str, tuple[tuple[str, str], ...]] = {
    "factory_run_failure_rate_high": (
        ("Failed runs", "/runs/?status=failed"),
        ("Factory health", "/health/factory/"),
    ),
    "factory_queue_depth_high": (("Queues & workers", "/health/queues/"),),
    "factory_worker_error_rate_spike": (
        ("Errors", "/errors/"),
        ("Factory health", "/health/factory/"),
    ),
    "factory_ai_cost_anomaly": (("Costs", "/costs/"), ("Steps", "/steps/")),
    "factory_control_plane_down": (("Factory health", "/health/factory/"), ("Status", "/status/")),
}
BEHIND_PLATFORM: dict[str, tuple[tuple[str, str], ...]] = {
    "factory_run_failure_rate_high": (("Factory health", "/health/factory/"),),
    "factory_queue_depth_high": (("Queues & workers", "/health/queues/"),),
    "factory_worker_error_rate_spike": (
        ("Queues & workers", "/health/queues/"),
        ("Factory health", "/health/factory/"),
    ),
    "factory_control_plane_down": (
        ("Factory health", "/health/factory/"),
        ("System health", "/health/"),
    ),
}


def _zone(site: Site) -> ZoneInfo:
    return ZoneInfo("UTC") if site.operator else connection_zone()


def _user_name(request: HttpRequest) -> str:
    return str(getattr(request.user, "email", "") or request.user)


def _row(row: selectors.Row, *, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    incident = row.incident
    rule = row.rule
    unit = rule.unit if rule else ""
    return {
        "incident": incident,
        "silence": row.silence,
        "title": rule_title(incident.rule),
        "value": figure_text(incident.value, unit),
        "threshold": figure_text(incident.threshold, unit),
        "peak": figure_text(incident.peak, unit),
        "history": history_text(
            incident.started_at, incident.fired_at, incident.resolved_at, now=now, zone=zone
        ),
    }


def _behind(site: Site, incident: Incident, zone: ZoneInfo) -> list[tuple[str, str]]:
    links = (BEHIND_PLATFORM if site.operator else BEHIND).get(incident.rule, ())
    run_id = str(incident.labels.get("run_id") or "")
    if incident.rule == RUN_OVER_BUDGET and run_id and not site.operator:
        # The run that crossed its budget, and the budgets (a review found the page saying
        # nothing was behind it, to an admin too).
        links = (("The run", run_path(run_id)), ("Run budgets", "/budgets/runs/"))
    # Run history narrowed to the incident's days (the tenant's), not all of time.
    days = urlencode(
        {
            "from": periods.local_date(incident.started_at, zone),
            "to": periods.local_date(incident.resolved_at or timezone.now(), zone),
        }
    )
    return [
        (label, f"{path}&{days}" if path.startswith("/runs/?") else path) for label, path in links
    ]


def _alerts(request: HttpRequest, site: Site) -> HttpResponse:
    now, zone = timezone.now(), _zone(site)
    context: dict[str, Any] = {
        "site": site,
        "zone": zone.key,
        "rules": [(key, rule_title(key)) for key in INCIDENT_RULES],
        "severities": SEVERITIES,
        "states": selectors.STATES,
        "chosen": {k: request.GET.get(k, "") for k in ("rule", "severity", "state")},
    }
    try:
        filters = selectors.filters_parse(**context["chosen"])
    except selectors.FilterError as exc:
        return render(request, "oncall/alerts.html", {**context, "problem": str(exc)}, status=400)
    board = selectors.board(filters, now=now, page=request.GET.get("page"))
    context.update(
        filtered=filters != selectors.IncidentFilters(),
        chosen={"rule": filters.rule, "severity": filters.severity, "state": filters.state},
        show_open=filters.state != "resolved",
        firing=[_row(r, now=now, zone=zone) for r in board.firing],
        pending=[_row(r, now=now, zone=zone) for r in board.pending],
        silenced=[_row(r, now=now, zone=zone) for r in board.silenced],
        show_history=board.history is not None,
        history=board.history,
        history_rows=[_row(r, now=now, zone=zone) for r in board.history_rows],
    )
    return render(request, "oncall/alerts.html", context)


def _incident(request: HttpRequest, pk: int, site: Site) -> HttpResponse:
    now, zone = timezone.now(), _zone(site)
    detail = selectors.incident_detail(pk, now=now)
    if detail is None:
        raise Http404("No such alert.")
    incident = detail.row.incident
    phases = timeline(
        incident.started_at,
        incident.fired_at,
        incident.resolved_at,
        now=now,
        acknowledged_at=incident.acknowledged_at,
    )
    return render(
        request,
        "oncall/incident.html",
        {
            "site": site,
            "zone": zone.key,
            "now": now,
            "item": _row(detail.row, now=now, zone=zone),
            "rule": detail.rule,
            "condition": detail.condition,
            "pages": detail.pages,
            "pending_for": span_text(phases.pending_s),
            "firing_for": None if phases.firing_s is None else span_text(phases.firing_s),
            "acknowledged_after": None
            if phases.acknowledged_s is None
            else span_text(phases.acknowledged_s),
            "behind": [
                (label, path)
                for label, path in _behind(site, incident, zone)
                if may_open(request.user, path)
            ],
            "may_act": can(request.user, site.act),
            "rule_for": duration_text(detail.rule.for_s) if detail.rule else "",
        },
    )


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """Where the form came from (``next``), when it is a path on this host; else ``default``."""
    target = request.POST.get("next", "")
    local = target.startswith("/") and not target.startswith(("//", "/\\"))
    if not local or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = default
    return HttpResponseRedirect(target)


def _acknowledge(request: HttpRequest, pk: int, site: Site) -> HttpResponse:
    try:
        incident, first = incident_acknowledge(
            incident_id=pk, by=_user_name(request), now=timezone.now()
        )
    except Incident.DoesNotExist:
        raise Http404("No such alert.") from None
    except IncidentResolved as exc:
        messages.error(request, str(exc))
    else:
        if first:
            messages.success(request, f"Acknowledged: {incident.summary}")
        else:
            when = incident.acknowledged_at or timezone.now()
            messages.info(
                request,
                f"Already acknowledged by {incident.acknowledged_by} at"
                f" {when.astimezone(_zone(site)):%Y-%m-%d %H:%M %Z}.",
            )
    return _back(request, reverse("incident", args=[pk]))


def _silence_initial(request: HttpRequest) -> dict[str, str]:
    """``?incident=<pk>`` (the incident page's "Silence this"): its rule and labels."""
    raw = request.GET.get("incident", "")
    # ASCII digits only, and few of them: "²" is a digit to isdigit() and int() refuses it.
    plain = raw.isascii() and raw.isdigit() and len(raw) <= 18
    incident = Incident.objects.filter(pk=int(raw)).first() if plain else None
    if incident is None:
        return {}
    return {"rule": incident.rule, "matchers": matchers_text(incident.labels or {})}


def _silences(request: HttpRequest, site: Site) -> HttpResponse:
    now, zone = timezone.now(), _zone(site)
    may_act = can(request.user, site.act)
    status = 200
    if request.method == "POST":
        if not may_act:
            raise PermissionDenied(denial(site.act))
        form = SilenceForm(request.POST, now=now, zone=zone)
        if form.is_valid():
            data = form.cleaned_data
            try:
                silence = silence_create(
                    rule=data["rule"],
                    matchers=data["matchers"],
                    ends_at=data["ends_at"],
                    reason=data["reason"],
                    created_by=_user_name(request),
                    now=now,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                until = silence.ends_at.astimezone(zone)
                messages.success(
                    request, f"Silenced {_silence_scope(silence)} until {until:%Y-%m-%d %H:%M %Z}."
                )
                return redirect("silences")
        status = 400
    else:
        form = SilenceForm(initial=_silence_initial(request), now=now, zone=zone)
    active, ended = selectors.silences_listing(now=now)
    return render(
        request,
        "oncall/silences.html",
        {
            "site": site,
            "zone": zone.key,
            "now": now,
            "may_act": may_act,
            "form": form if may_act else None,
            "active": active,
            "ended": ended,
            "rule_titles": {key: rule_title(key) for key in INCIDENT_RULES},
        },
        status=status,
    )


def _silence_scope(silence: Silence) -> str:
    rule = rule_title(silence.rule) if silence.rule else "every rule"
    labels = ", ".join(f"{k}={v}" for k, v in sorted((silence.matchers or {}).items()))
    return f"{rule} ({labels})" if labels else rule


def _expire(request: HttpRequest, pk: int) -> HttpResponse:
    silence = get_object_or_404(Silence, pk=pk)
    silence_expire(silence, now=timezone.now())
    messages.success(request, f"The silence of {_silence_scope(silence)} has ended.")
    return redirect("silences")


# A tenant's site: every signed-in user reads; members and admins act.
@role_required(TENANT.read)
def alerts(request: HttpRequest) -> HttpResponse:
    return _alerts(request, TENANT)


@role_required(TENANT.read)
def incident(request: HttpRequest, pk: int) -> HttpResponse:
    return _incident(request, pk, TENANT)


@role_required(TENANT.act)
@require_POST
def incident_ack(request: HttpRequest, pk: int) -> HttpResponse:
    return _acknowledge(request, pk, TENANT)


@role_required(TENANT.read)
def silences(request: HttpRequest) -> HttpResponse:
    return _silences(request, TENANT)


@role_required(TENANT.act)
@require_POST
def silence_end_now(request: HttpRequest, pk: int) -> HttpResponse:
    return _expire(request, pk)


# The operator console: the platform's incidents (public schema), operators only.
@role_required(OPERATOR.read)
def operator_alerts(request: HttpRequest) -> HttpResponse:
    return _alerts(request, OPERATOR)


@role_required(OPERATOR.read)
def operator_incident(request: HttpRequest, pk: int) -> HttpResponse:
    return _incident(request, pk, OPERATOR)


@role_required(OPERATOR.act)
@require_POST
def operator_incident_ack(request: HttpRequest, pk: int) -> HttpResponse:
    return _acknowledge(request, pk, OPERATOR)


@role_required(OPERATOR.read)
def operator_silences(request: HttpRequest) -> HttpResponse:
    return _silences(request, OPERATOR)


@role_required(OPERATOR.act)
@require_POST
def operator_silence_end_now(request: HttpRequest, pk: int) -> HttpResponse:
    return _expire(request, pk)
