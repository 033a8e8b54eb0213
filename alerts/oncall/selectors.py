"""Read paths of the alerts pages and API, in the connection's schema (a tenant's, or the
public one for the operator): incidents by section (firing, pending, silenced, history), one
incident with its delivery log, the silences, and the firing count of the navigation. A fixed
number of queries whatever the data; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.paginator import Page as PaginatorPage
from django.core.paginator import Paginator
from django.db.models import QuerySet

from alerts.oncall.domain.rules import (
    INCIDENT_RULES,
    RULES,
    SEVERITIES,
    Rule,
    condition_text,
    effective,
)
from alerts.oncall.models import Incident, Page, RuleSetting, Silence
from alerts.oncall.services.silences import silence_for, silences_active

HISTORY_PER_PAGE = 50
OPEN_MAX = 500  # open incidents shown (the engine keeps ≤ 50 label sets per rule)
RECENT_SILENCES = timedelta(days=7)
RECENT_SILENCES_MAX = 50
STATES = tuple(Incident.State.values)


class FilterError(ValueError):
    """A filter value that names no rule, severity or state; the message says which are and
    ``field`` which filter it was."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IncidentFilters:
    rule: str = ""
    severity: str = ""
    state: str = ""

    def apply(self, incidents: QuerySet[Incident]) -> QuerySet[Incident]:
        if self.rule:
            incidents = incidents.filter(rule=self.rule)
        if self.severity:
            incidents = incidents.filter(severity=self.severity)
        if self.state:
            incidents = incidents.filter(state=self.state)
        return incidents


def filters_parse(*, rule: str = "", severity: str = "", state: str = "") -> IncidentFilters:
    """Filters as a person or a client gives them, in any letter case; ``FilterError`` naming
    the accepted values for anything else."""
    rule, severity, state = (v.strip().lower() for v in (rule, severity, state))
    if rule and rule not in INCIDENT_RULES:
        raise FilterError(
            "rule", f"Unknown rule {rule[:64]!r}; the rules are {', '.join(INCIDENT_RULES)}."
        )
    if severity and severity not in SEVERITIES:
        raise FilterError(
            "severity",
            f"Unknown severity {severity[:64]!r}; the severities are {', '.join(SEVERITIES)}.",
        )
    if state and state not in STATES:
        raise FilterError(
            "state", f"Unknown state {state[:64]!r}; the states are {', '.join(STATES)}."
        )
    return IncidentFilters(rule=rule, severity=severity, state=state)


@dataclass(frozen=True)
class Row:
    """An incident and the silence that mutes it (an open one: the active silence matching it
    now; a resolved one: the silence it had when it fired), if any."""

    incident: Incident
    silence: Silence | None

    @property
    def rule(self) -> Rule | None:
        return RULES.get(self.incident.rule)


@dataclass(frozen=True)
class Board:
    firing: list[Row]
    pending: list[Row]
    silenced: list[Row]
    history: PaginatorPage[Incident] | None  # None: the state filter leaves no resolved ones
    history_rows: list[Row]


def _muting(incident: Incident, active: list[Silence], now: datetime) -> Silence | None:
    # Matched now, not read from ``incident.silence``: a silence set after the incident fired
    # mutes it too, and one expired early no longer does.
    return silence_for(incident.rule, incident.labels or {}, now=now, active=active)


def incident_rows(incidents: list[Incident], *, now: datetime) -> list[Row]:
    """Each incident with its silence: for an open one the active silence matching it now (one
    query for all), for a resolved one the silence it had (``select_related("silence")``)."""
    open_states = (Incident.State.PENDING, Incident.State.FIRING)
    active = silences_active(now) if any(i.state in open_states for i in incidents) else []
    return [
        Row(i, _muting(i, active, now) if i.state in open_states else i.silence) for i in incidents
    ]


def incidents(filters: IncidentFilters) -> QuerySet[Incident]:
    """The incidents the filters leave, newest first (the API's listing)."""
    return filters.apply(Incident.objects.select_related("silence")).order_by("-started_at", "-id")


def incidents_open(filters: IncidentFilters, *, now: datetime) -> list[Row]:
    """Pending and firing incidents, newest first, each with the silence muting it now."""
    query = incidents(filters).filter(state__in=[Incident.State.PENDING, Incident.State.FIRING])
    return incident_rows(list(query[:OPEN_MAX]), now=now)


def board(filters: IncidentFilters, *, now: datetime, page: Any) -> Board:
    """The alerts page: open incidents split into firing, pending and silenced, and the
    resolved ones newest first in pages of ``HISTORY_PER_PAGE``."""
    open_rows = incidents_open(filters, now=now) if filters.state != Incident.State.RESOLVED else []
    history = None
    history_rows: list[Row] = []
    if filters.state in ("", Incident.State.RESOLVED):
        resolved = incidents(filters).filter(state=Incident.State.RESOLVED)
        history = Paginator(resolved.order_by("-resolved_at", "-id"), HISTORY_PER_PAGE).get_page(
            page
        )
        history_rows = incident_rows(list(history.object_list), now=now)
    return Board(
        firing=[r for r in open_rows if r.silence is None and r.incident.state == "firing"],
        pending=[r for r in open_rows if r.silence is None and r.incident.state == "pending"],
        silenced=[r for r in open_rows if r.silence is not None],
        history=history,
        history_rows=history_rows,
    )


def firing_count() -> int:
    """Firing incidents (silenced ones too): the navigation's badge, one indexed count."""
    return Incident.objects.filter(state=Incident.State.FIRING).count()


@dataclass(frozen=True)
class Detail:
    row: Row
    rule: Rule | None  # the catalogue rule with this schema's settings; None: no longer known
    condition: str
    pages: list[Page]  # the delivery log, oldest first


def incident_detail(pk: int, *, now: datetime) -> Detail | None:
    incident = Incident.objects.select_related("silence").filter(pk=pk).first()
    if incident is None:
        return None
    rule = RULES.get(incident.rule)
    condition = ""
    if rule is not None:
        setting = RuleSetting.objects.filter(rule=rule.key).first()
        rule = effective(rule, setting)
        # The threshold the incident was evaluated against, which a later edit may have moved.
        condition = condition_text(replace(rule, threshold=Decimal(str(incident.threshold))))
    pages = list(incident.pages.select_related("route").order_by("created_at", "id"))
    row = incident_rows([incident], now=now)[0]
    return Detail(row=row, rule=rule, condition=condition, pages=pages)


def silences(*, state: str | None, now: datetime) -> QuerySet[Silence]:
    """Silences ending last first: ``state`` ``"active"`` (in force at ``now``), ``"ended"``,
    or None for all (the API's listing)."""
    found = Silence.objects.order_by("-ends_at", "-id")
    if state == "active":
        return found.filter(starts_at__lte=now, ends_at__gt=now)
    if state == "ended":
        return found.filter(ends_at__lte=now)
    return found


def silences_listing(*, now: datetime) -> tuple[list[Silence], list[Silence]]:
    """The active silences (ending soonest first) and those that ended in the last
    ``RECENT_SILENCES`` (the latest ``RECENT_SILENCES_MAX``, newest first)."""
    active = silences_active(now)
    ended = list(
        Silence.objects.filter(ends_at__lte=now, ends_at__gt=now - RECENT_SILENCES).order_by(
            "-ends_at", "-id"
        )[:RECENT_SILENCES_MAX]
    )
    return active, ended
