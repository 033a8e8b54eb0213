"""Who may see which page and use which API operation. One table, used by the page views
(``role_required``), by the navigation (a link is shown exactly when its page would open) and by
the API's default permission for signed-in users (``authentication.DeclaredAccess``).

- every signed-in user: the overview, notifications, their own run alerts;
- member: runs (active, history, details) and usage reports;
- finance: costs, reports, budgets (read);
- member and admin: acknowledge and silence runtime alerts (every signed-in user sees them);
- admin: everything in the tenant, and manages API keys, users, alerts, webhooks and budgets;
- operator: the operator console (bare base domain).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from factory_portal.accounts.models import Role, User

AREAS: dict[str, tuple[str, ...]] = {
    "signed_in": (Role.MEMBER, Role.FINANCE, Role.ADMIN, Role.OPERATOR),
    "runs": (Role.MEMBER, Role.ADMIN),
    "costs": (Role.FINANCE, Role.ADMIN),
    "budgets": (Role.FINANCE, Role.ADMIN),
    "oncall": (Role.MEMBER, Role.ADMIN),
    "admin": (Role.ADMIN,),
    "operator": (Role.OPERATOR,),
}

# What each area holds; the denial adds the roles from AREAS, so the message cannot drift.
AREA_NAMES = {
    "signed_in": "This page is for signed-in users",
    "runs": "Runs and usage are for",
    "costs": "Costs, reports and forecasts are for",
    "budgets": "Budgets are for",
    "oncall": "Acknowledging and silencing alerts is for",
    "admin": "Tenant settings and changes are for",
    "operator": "The operator console is for",
}


def denial(area: str) -> str:
    """Why a user outside ``area`` is refused, naming the roles that may enter it."""
    roles = [str(role) for role in AREAS[area]]
    listed = roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} and {roles[-1]}"
    plural = "s" if len(roles) > 1 else ""
    if area == "signed_in":
        return f"{AREA_NAMES[area]}."
    return f"{AREA_NAMES[area]} the {listed} role{plural}."


def can(user: Any, area: str) -> bool:
    role = getattr(user, "role", None)
    return bool(getattr(user, "is_authenticated", False)) and role in AREAS[area]


def may_open(user: Any, path: str) -> bool:
    """Whether the view answering ``path`` on this host (the request's URL conf) would let
    ``user`` in: a page offers a link or a button only when this holds. False when nothing
    answers there; a view outside ``role_required`` is open to whoever reaches it."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return False
    area = getattr(match.func, "required_area", None)
    return area is None or can(user, area)


def capabilities(user: Any) -> dict[str, bool]:
    return {area: can(user, area) for area in AREAS}


def signed_in_user(user: object) -> User:
    """The ``request.user`` of a request let in with a session (by ``role_required`` or an API
    view's declared access): always a ``User``; anything else is refused."""
    if not isinstance(user, User):
        raise PermissionDenied(denial("signed_in"))
    return user


View = Callable[..., HttpResponse]


def role_required(area: str) -> Callable[[View], View]:
    """Log-in required, then 403 unless the user's role may see ``area``."""
    if area not in AREAS:
        raise ValueError(f"Unknown area {area!r}; the areas are {', '.join(AREAS)}.")

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not can(request.user, area):
                raise PermissionDenied(denial(area))
            return view(request, *args, **kwargs)

        guarded = login_required(wrapped)
        # Read by pages that offer a link or button to this view (the inbox's actions) so they
        # offer it only to users it would let in.
        guarded.required_area = area  # type: ignore[attr-defined]
        return guarded

    return decorate
