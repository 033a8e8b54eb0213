"""Read paths of the alert routes pages: the routes with their delivery counts and where they
send (secrets masked), and one route's delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.core.paginator import Page as PaginatorPage
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q

from alerts.oncall.models import Page, Route

LOG_PAGE_SIZE = 50
SHOWN_CHARACTERS = 4


@dataclass(frozen=True)
class RouteRow:
    route: Route
    destination: str
    sent: int
    pending: int
    failed: int
    last_page_at: datetime | None


def masked(secret: str) -> str:
    """Only the last four characters of a secret: "••••3f9a"."""
    return f"••••{secret[-SHOWN_CHARACTERS:]}" if secret else "(none)"


def route_destination(route: Route, *, admins: str = "the admins") -> str:
    """Where the route sends, for people, secrets masked: a webhook's host and the end of its
    URL, the end of a PagerDuty key, or the e-mail addresses."""
    if route.channel == Route.Channel.PAGERDUTY:
        return f"integration key {masked(route.routing_key)}"
    if route.channel in (Route.Channel.SLACK, Route.Channel.TEAMS):
        host = urlsplit(route.target).hostname or ""
        return f"{host} {masked(route.target)}".strip()
    return route.target or admins


def route_rows(*, admins: str = "the admins") -> list[RouteRow]:
    """Every route with its page counts (one query)."""
    routes = Route.objects.annotate(
        sent=Count("pages", filter=Q(pages__status=Page.Status.SENT)),
        pending=Count("pages", filter=Q(pages__status=Page.Status.PENDING)),
        failed=Count("pages", filter=Q(pages__status=Page.Status.FAILED)),
        last_page_at=Max("pages__created_at"),
    ).order_by("name", "pk")
    return [
        RouteRow(
            route=r,
            destination=route_destination(r, admins=admins),
            sent=r.sent,  # type: ignore[attr-defined]
            pending=r.pending,  # type: ignore[attr-defined]
            failed=r.failed,  # type: ignore[attr-defined]
            last_page_at=r.last_page_at,  # type: ignore[attr-defined]
        )
        for r in routes
    ]


def route_log(route: Route, page: int | str) -> PaginatorPage:
    """The route's pages, newest first, ``LOG_PAGE_SIZE`` a page."""
    rows = (
        Page.objects.filter(route=route).select_related("incident").order_by("-created_at", "-pk")
    )
    return Paginator(rows, LOG_PAGE_SIZE).get_page(page)
