"""Who may see which tenant page. One table, used by the views (``role_required``) and by the
navigation, so a link is shown exactly when its page would open.

- member: runs (active, history, details) and usage reports;
- finance: costs, reports, budgets (read);
- admin: everything in the tenant, and manages API keys, users and budgets.

Everyone signed in sees the overview and their notifications.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from factory_portal.accounts.models import Role

AREAS: dict[str, tuple[str, ...]] = {
    "runs": (Role.MEMBER, Role.ADMIN),
    "costs": (Role.FINANCE, Role.ADMIN),
    "budgets": (Role.FINANCE, Role.ADMIN),
    "admin": (Role.ADMIN,),
}

AREA_NAMES = {
    "runs": "Runs and usage are for the member and admin roles.",
    "costs": "Costs and reports are for the finance and admin roles.",
    "budgets": "Budgets are for the finance and admin roles.",
    "admin": "Only a tenant admin can do this.",
}


def can(user: Any, area: str) -> bool:
    role = getattr(user, "role", None)
    return bool(getattr(user, "is_authenticated", False)) and role in AREAS[area]


def capabilities(user: Any) -> dict[str, bool]:
    return {area: can(user, area) for area in AREAS}


View = Callable[..., HttpResponse]


def role_required(area: str) -> Callable[[View], View]:
    """Log-in required, then 403 unless the user's role may see ``area``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not can(request.user, area):
                raise PermissionDenied(AREA_NAMES[area])
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorate
