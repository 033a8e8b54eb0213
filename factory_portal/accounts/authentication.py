"""DRF authentication with API keys (``Authorization: Bearer <key>``) and the one permission of
every API view: keys by scope, signed-in users by the page role table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.permissions import AREAS, can, denial
from factory_portal.accounts.selectors import api_key_for_raw
from factory_portal.accounts.services import api_key_touch

if TYPE_CHECKING:  # rest_framework.views imports this module (DEFAULT_AUTHENTICATION_CLASSES)
    from rest_framework.request import Request
    from rest_framework.views import APIView


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The ``request.user`` of a key-authenticated request."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self) -> str:
        return f"apikey:{self.api_key.prefix}"

    def has_role(self, *roles: str) -> bool:
        return False


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <key>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("API key contains invalid characters.") from exc
        api_key = api_key_for_raw(raw)
        if api_key is None:
            raise AuthenticationFailed("Invalid, revoked or unknown API key for this host.")
        api_key_touch(api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="factory-portal"'


ANY_KEY = "any"


@dataclass(frozen=True)
class Access:
    """Who may make one kind of request (reads or writes) to an API view.

    ``area``: signed-in users whose role the page role table (``permissions.AREAS``) admits to
    this area; ``None``: no browser session. ``scope``: API keys holding this scope; ``ANY_KEY``:
    every valid key of the host; ``None``: no key.
    """

    area: str | None
    scope: str | None

    def __post_init__(self) -> None:
        if self.area is not None and self.area not in AREAS:
            raise ValueError(f"Unknown area {self.area!r}; the areas are {', '.join(AREAS)}.")
        if self.scope not in (None, ANY_KEY, *ApiKey.Scope.values):
            raise ValueError(f"Unknown scope {self.scope!r}.")
        if self.area is None and self.scope is None:
            raise ValueError("Nobody could use this: give an area, a scope or both.")


@dataclass(frozen=True)
class ApiAccess:
    """What an API view declares as ``access``: who may read (GET, HEAD, OPTIONS) and who may
    write (POST, PUT, PATCH, DELETE). A kind left ``None`` is not offered: the view answers 405
    (or, if it has a handler for the method anyway, refuses it)."""

    read: Access | None = None
    write: Access | None = None


class DeclaredAccess(BasePermission):
    """The default (and only) permission of every API view: keys need the scope the view declares,
    signed-in users need a role the page role table admits to the view's area — the same table
    and check as the pages (``permissions.can``). A view that declares no ``access`` refuses every
    request, so a new endpoint cannot forget to say who may use it."""

    message = "Forbidden."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # 401 with WWW-Authenticate
        if request.method is None:  # never for a request Django parsed; typed optional
            return False
        declared = getattr(view, "access", None)
        if not isinstance(declared, ApiAccess):
            self.message = "This endpoint declares no access and refuses every request."
            return False
        rule = self._rule(declared, request.method)
        if rule is None:  # no such kind of request here: the view answers 405
            if hasattr(view, request.method.lower()):
                self.message = f"{request.method} is not offered here."
                return False
            return True
        if isinstance(request.auth, ApiKey):
            return self._key_may(rule, request.auth)
        return self._user_may(rule, user)

    @staticmethod
    def _rule(declared: ApiAccess, method: str) -> Access | None:
        if method in ("GET", "HEAD"):
            return declared.read
        if method == "OPTIONS":
            return declared.read or declared.write
        return declared.write

    def _key_may(self, rule: Access, key: ApiKey) -> bool:
        if rule.scope is None:
            self.message = f"API keys cannot do this. {denial(rule.area or 'signed_in')}"
            return False
        if rule.scope == ANY_KEY:
            return True
        self.message = f"This API key lacks the '{rule.scope}' scope."
        return rule.scope in key.scopes

    def _user_may(self, rule: Access, user: object) -> bool:
        if rule.area is None:
            self.message = (
                f"A browser session cannot do this; it needs an API key with the '{rule.scope}'"
                " scope."
            )
            return False
        if can(user, rule.area):
            return True
        self.message = f"{denial(rule.area)} You are signed in as {getattr(user, 'role', '?')}."
        return False
