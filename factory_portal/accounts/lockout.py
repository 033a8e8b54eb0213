"""Sign-in lock-out: failed logins are counted per account and per client address in the shared
cache (django-axes), and over ``LOGIN_FAILURE_LIMIT`` the login refuses for
``LOGIN_LOCKOUT_MINUTES``.

Users live per schema, so an account is counted as ``<schema>:<e-mail>``: the same address on
two tenants (or on the operator console) is two accounts, and failures on one host never lock
out another's user. A client address is counted across every host.

The counters live in Redis. When it is unreachable the limits are not applied (a warning at
most once a minute): a cache outage must not turn into a login outage. This module only says
who is counted and how; the lock-out page is the accounts view ``login_locked_out``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache, make_cache_key_list
from django.http import HttpRequest
from redis.exceptions import RedisError

from factory_portal.tenants.connection import tenant_connection

logger = logging.getLogger(__name__)

CACHE_WARNING_EVERY_S = 60.0
_cache_warned_at = -CACHE_WARNING_EVERY_S
CACHE_ERRORS = (RedisError, OSError)
EMAIL_SHAPE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def account_key(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The account a login attempt is for: the schema of the host and the e-mail as typed,
    trimmed and lower-cased (the form's ``username`` field; addresses are stored lower-case)."""
    username = (credentials or {}).get("username")
    if username is None:
        username = request.POST.get("username", "")
    return f"{tenant_connection().schema_name}:{str(username).strip().lower()}"


def client_description(
    username: str, ip_address: str, user_agent: str, path_info: str, request: HttpRequest
) -> str:
    """How log lines name the client (axes' default masks both the account and the address).
    What was typed as the e-mail is shown only when it looks like one: a password typed into the
    wrong field must not end up in the logs."""
    schema, _, typed = (username or "").partition(":")
    account = username if EMAIL_SHAPE.fullmatch(typed) else f"{schema}:[not an e-mail address]"
    return f"account {account} from {ip_address} on {path_info}"


def _cache_unavailable(exc: Exception) -> None:
    global _cache_warned_at
    if time.monotonic() - _cache_warned_at > CACHE_WARNING_EVERY_S:  # not once a request
        _cache_warned_at = time.monotonic()
        logger.warning("login limits not applied: cache unavailable (%r)", exc)


class FailOpenCacheHandler(AxesCacheHandler):
    """axes' cache handler, open while the cache is down; a successful login clears only its
    account's count, so logging in to one's own account does not reset an address that guesses
    other accounts' passwords."""

    def __init__(self) -> None:
        """No cache held: it is looked up per use, so it follows ``CACHES`` when that changes."""

    @property
    def cache(self) -> Any:
        return get_cache()

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        try:
            failures: int = super().get_failures(request, credentials)  # axes is untyped
            return failures
        except CACHE_ERRORS as exc:
            _cache_unavailable(exc)
            return 0

    def user_login_failed(
        self,
        sender: Any,
        credentials: dict[str, Any],
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except CACHE_ERRORS as exc:
            _cache_unavailable(exc)

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        (key,) = make_cache_key_list(
            [{"username": account_key(request, {"username": user.get_username()})}]
        )
        try:
            self.cache.delete(key)
        except CACHE_ERRORS as exc:
            _cache_unavailable(exc)

    def user_logged_out(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        """Nothing to count (axes' handler only writes an INFO line per logout)."""
