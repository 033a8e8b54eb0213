"""Reads for users and API keys, in the schema of the current connection."""

from __future__ import annotations

from django.db.models import QuerySet

from factory_portal.accounts.keys import key_matches, key_prefix
from factory_portal.accounts.models import ApiKey, User
from factory_portal.db_routing import PRIMARY
from factory_portal.pg import instance_fetch, model_columns

# The key of a request (prefixes are unique), in the current schema: a statement of its own,
# every key-authenticated request makes it (the ORM's compilation cost more than the query).
_ACTIVE_KEY = (
    f"SELECT {model_columns(ApiKey, 'k')} FROM {ApiKey._meta.db_table} k"  # noqa: S608 - model names
    " WHERE k.prefix = %s AND k.revoked_at IS NULL"
)


def api_key_for_raw(raw: str) -> ApiKey | None:
    """The active key of the current schema matching ``raw``, or None. A key of another tenant is
    simply not found: each tenant's keys live in its own schema."""
    prefix = key_prefix(raw)
    if prefix is None:
        return None
    # On the primary even for a read request: a key made or revoked a moment ago must be known
    # at once, and a replica may be seconds behind (README, Read replicas).
    api_key = instance_fetch(ApiKey, _ACTIVE_KEY, [prefix], using=PRIMARY)
    if api_key is None or not key_matches(raw, api_key.key_hash):
        return None
    return api_key


def api_keys_list() -> QuerySet[ApiKey]:
    """Every key of the tenant, newest first, with its creator (one query)."""
    return ApiKey.objects.select_related("created_by").order_by("-created_at", "-pk")


def users_list() -> QuerySet[User]:
    return User.objects.order_by("email")
