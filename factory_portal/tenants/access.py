"""Who may use the operator console: signed-in users of the public schema with the operator role.

Anonymous visitors are sent to the login page; a signed-in user without the operator role gets
403 (a login page would only loop). Tenant users never reach these views: their sessions live in
their tenant's schema and the console's URLs exist only on the bare base domain.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from factory_portal.accounts.permissions import can, denial


def is_operator(user: object) -> bool:
    return can(user, "operator")


def operator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_operator(request.user):
            raise PermissionDenied(denial("operator"))
        return view(request, *args, **kwargs)

    return login_required(wrapped)
