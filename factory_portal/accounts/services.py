"""Writes for users and API keys, in the schema of the current connection (the tenant's).

Users are invited (an unusable password and a one-time link to set one), their role changed,
deactivated and reactivated here; a tenant always keeps at least one active admin.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from factory_portal.accounts.keys import key_generate
from factory_portal.accounts.models import ApiKey, Role, User
from factory_portal.accounts.tokens import invite_token_generator
from factory_portal.tenants.connection import tenant_connection

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)


def password_generate() -> str:
    return secrets.token_urlsafe(12)


def password_check(password: str, *, email: str) -> None:
    """Raise ``ValidationError`` when a chosen password breaks the site's password rules
    (``AUTH_PASSWORD_VALIDATORS``, as the password forms apply them, its likeness to ``email``
    included): for the commands that take one on the command line."""
    validate_password(password, user=User(email=email.strip().lower()))


def _new_user_email(email: str, role: str, roles: Iterable[str] = Role.values) -> str:
    """The normalised e-mail of a user about to be created; raises when it or the role is not
    acceptable."""
    email = email.strip().lower()
    validate_email(email)
    roles = list(roles)
    if role not in roles:
        raise ValidationError(f"Unknown role {role!r}; expected one of {', '.join(roles)}.")
    if User.objects.filter(email=email).exists():
        raise ValidationError(f"A user with e-mail {email} already exists.")
    return email


def user_create(
    *, email: str, role: str, password: str | None = None, full_name: str = ""
) -> tuple[User, str]:
    """Create a user in the current schema. Returns the user and the password (generated if not
    given) so a command can show it once."""
    email = _new_user_email(email, role)
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


# --- Invitations, roles and deactivation (tenant users) -----------------------------------------

TENANT_ROLES = (Role.MEMBER, Role.FINANCE, Role.ADMIN)


@dataclass(frozen=True)
class Invitation:
    user: User
    link: str  # absolute; shown once to the inviting admin, never stored
    emailed: bool  # False when the mail server refused or could not be reached


def invitation_link(*, user: User, origin: str) -> str:
    """``<origin>/invite/<uidb64>/<token>/``; ``origin`` is the tenant host's scheme and host."""
    path = reverse(
        "invite-accept",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": invite_token_generator.make_token(user),
        },
    )
    return origin.rstrip("/") + path


def invitation_send(*, user: User, origin: str, invited_by: User | None = None) -> Invitation:
    """E-mail ``user`` (text and HTML) a link to set their password. A failure to send is logged
    and reported in the result rather than raised: the admin still gets the link to pass on."""
    if not user.is_active:
        raise ValidationError(f"{user.email} is deactivated; reactivate them first.")
    if user.has_usable_password():
        raise ValidationError(f"{user.email} has already set a password.")
    link = invitation_link(user=user, origin=origin)
    tenant_name = getattr(tenant_connection().tenant, "name", "Factory Portal")
    context = {
        "user": user,
        "link": link,
        "tenant_name": tenant_name,
        "invited_by": invited_by,
        "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    message = EmailMultiAlternatives(
        subject=f"You are invited to {tenant_name} on Factory Portal",
        body=render_to_string("accounts/email/invite.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("accounts/email/invite.html", context), "text/html")
    try:
        message.send()
    except OSError:  # smtplib.SMTPException and connection errors
        logger.warning("invitation e-mail to user %s could not be sent", user.pk, exc_info=True)
        return Invitation(user=user, link=link, emailed=False)
    return Invitation(user=user, link=link, emailed=True)


def user_invite(
    *, email: str, role: str, origin: str, full_name: str = "", invited_by: User | None = None
) -> Invitation:
    """Create a user who cannot log in until they set a password through the e-mailed link."""
    email = _new_user_email(email, role, TENANT_ROLES)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, None, role=role, full_name=full_name.strip())
    except IntegrityError as exc:  # the same address invited concurrently
        raise ValidationError(f"A user with e-mail {email} already exists.") from exc
    return invitation_send(user=user, origin=origin, invited_by=invited_by)


def _admin_removal_check(*, user: User, by: User, verb: str) -> None:
    """Refuse taking admin rights or access from ``by`` themselves or from the last active admin.
    Locks the active admins so two admins demoting each other at once cannot both succeed."""
    if user.pk == by.pk:
        raise ValidationError(f"You cannot {verb} yourself; ask another admin to do it.")
    admins = list(
        User.objects.select_for_update()
        .filter(role=Role.ADMIN, is_active=True)
        .values_list("pk", flat=True)
    )
    if user.pk in admins and len(admins) == 1:
        raise ValidationError(
            f"{user.email} is the last active admin; make someone else an admin first."
        )


def user_role_set(*, user: User, role: str, by: User) -> User:
    if role not in TENANT_ROLES:
        raise ValidationError(f"Unknown role {role!r}; expected one of {', '.join(TENANT_ROLES)}.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.role == role:
            return user
        if user.role == Role.ADMIN:
            _admin_removal_check(user=user, by=by, verb="demote")
        user.role = role
        user.save(update_fields=["role"])
    return user


def user_deactivate(*, user: User, by: User) -> User:
    """Refuse log-in to ``user`` from now on; their open sessions stop working on the next
    request (the authentication backend rejects inactive users)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_active:
            return user
        _admin_removal_check(user=user, by=by, verb="deactivate")
        user.is_active = False
        user.save(update_fields=["is_active"])
    return user


def user_reactivate(*, user: User) -> User:
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    return user


def invitation_accept(*, user: User, password: str) -> User:
    """Set the invited user's password (validated by the caller's form); the link's token stops
    working because it hashes the password."""
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
