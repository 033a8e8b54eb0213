"""Writes for users and API keys, in the schema of the current connection (the tenant's)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from factory_portal.accounts.keys import key_generate
from factory_portal.accounts.models import ApiKey, Role, User

LAST_USED_RESOLUTION = timedelta(minutes=1)


def password_generate() -> str:
    return secrets.token_urlsafe(12)


def user_create(
    *, email: str, role: str, password: str | None = None, full_name: str = ""
) -> tuple[User, str]:
    """Create a user in the current schema. Returns the user and the password (generated if not
    given) so a command can show it once."""
    email = email.strip().lower()
    validate_email(email)
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    if User.objects.filter(email=email).exists():
        raise ValidationError(f"A user with e-mail {email} already exists.")
    password = password or password_generate()
    user = User.objects.create_user(email, password, role=role, full_name=full_name)
    return user, password


def api_key_create(
    *, name: str, scopes: Iterable[str], created_by: User | None = None
) -> tuple[ApiKey, str]:
    """Create an API key in the current schema. Returns the stored key and the raw key, which is
    shown once and never stored."""
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in ApiKey.Scope.values]
    if not scopes or unknown:
        raise ValidationError(
            f"Scopes must be a non-empty subset of {', '.join(ApiKey.Scope.values)};"
            f" got {', '.join(unknown) or 'none'}."
        )
    name = name.strip() or "API key"
    with transaction.atomic():
        new = key_generate()
        while ApiKey.objects.filter(prefix=new.prefix).exists():
            new = key_generate()
        api_key = ApiKey.objects.create(
            name=name[:100],
            prefix=new.prefix,
            key_hash=new.digest,
            scopes=scopes,
            created_by=created_by,
        )
    return api_key, new.raw


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key, so authentication is not a write per request."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
