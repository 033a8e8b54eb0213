"""Invitation links: Django's password-reset tokens, salted for invitations and bound to the
tenant's schema.

A token is valid until the invited user sets a password (it hashes the password field, so it
works once) or ``PASSWORD_RESET_TIMEOUT`` passes (3 days by default). Users of two tenants may share
a primary key; hashing the schema name keeps one tenant's link from opening another's account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.tokens import PasswordResetTokenGenerator

from factory_portal.tenants.connection import tenant_connection

if TYPE_CHECKING:
    from factory_portal.accounts.models import User


class InviteTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "factory_portal.accounts.tokens.InviteTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{tenant_connection().schema_name}:{super()._make_hash_value(user, timestamp)}"


invite_token_generator = InviteTokenGenerator()
