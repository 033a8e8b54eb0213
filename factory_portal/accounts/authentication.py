"""DRF authentication and permissions for API keys (``Authorization: Bearer <key>``)."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.selectors import api_key_for_raw
from factory_portal.accounts.services import api_key_touch


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
    def authenticate(self, request):  # type: ignore[no-untyped-def]
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

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return 'Bearer realm="factory-portal"'


class HasScope(BasePermission):
    """Key requests need ``required_scope`` on the key; browser sessions of the tenant's users may
    read but never ingest."""

    required_scope = ApiKey.Scope.READ
    message = "This API key lacks the required scope."

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if isinstance(request.auth, ApiKey):
            self.message = f"This API key lacks the '{self.required_scope}' scope."
            return self.required_scope in request.auth.scopes
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and self.required_scope == ApiKey.Scope.READ
            and not getattr(user, "is_staff", False)
        )


class CanRead(HasScope):
    required_scope = ApiKey.Scope.READ


class CanIngest(HasScope):
    required_scope = ApiKey.Scope.INGEST


class CanManage(HasScope):
    """Key requests need the ``manage`` scope; browser sessions need the admin role."""

    required_scope = ApiKey.Scope.MANAGE

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if isinstance(request.auth, ApiKey):
            self.message = "This API key lacks the 'manage' scope."
            return ApiKey.Scope.MANAGE in request.auth.scopes
        self.message = "Only a tenant admin can change settings."
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) == "admin")


class ReadOrManage(BasePermission):
    """Reading needs ``read``; writing (POST, PUT, PATCH, DELETE) needs ``manage``."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        check = CanRead() if request.method in ("GET", "HEAD", "OPTIONS") else CanManage()
        allowed = check.has_permission(request, view)
        self.message = check.message
        return allowed
