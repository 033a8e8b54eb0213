"""Read replicas: which database answers a query.

``DATABASE_REPLICA_URLS`` adds streaming replicas as the aliases ``replica_0``, ``replica_1``, ...
(settings). ``ReplicaRouter`` sends reads to a healthy replica only while a page or read-API
request (GET/HEAD, marked by ``ReplicaReadsMiddleware``) has not written and is not inside a
transaction on the primary; every write, every transaction, Celery tasks, management commands and
migrations use the primary (``default``).

A replica is healthy when it answers, is in recovery, and its replay is at most
``REPLICA_MAX_LAG_S`` behind (the primary's WAL position reached, or the age of the last replayed
commit); checked at most every ``REPLICA_HEALTH_CHECK_S`` per process. Read-your-writes: after a
request that wrote, the primary's WAL position is kept in the cache for
``REPLICA_READ_YOUR_WRITES_S`` per (tenant schema, client: session cookie or API key, hashed);
that client's reads go to the primary until a replica has replayed that position. A replica that
fails during a GET is marked down and the request is answered again on the primary, once.

This module must not decide anything about the product's data; it only picks connections.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse

from factory_portal.observability.metrics import DB_READS, DB_REPLICA_FALLBACKS, guarded

if TYPE_CHECKING:
    from django_tenants.postgresql_backend.base import DatabaseWrapper

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA_PREFIX = "replica_"
READ_METHODS = frozenset({"GET", "HEAD"})


def tenant_wrapper(alias: str) -> DatabaseWrapper:
    """``connections[alias]`` typed as django-tenants' backend (every alias uses it)."""
    return cast("DatabaseWrapper", connections[alias])


def replica_aliases() -> list[str]:
    """The configured replica aliases (``replica_0``, ...), in order."""
    return [alias for alias in connections if alias.startswith(REPLICA_PREFIX)]


def lsn_value(text: str | None) -> int | None:
    """A PostgreSQL ``pg_lsn`` (``'16/B374D848'``) as an integer; ``None`` stays ``None``."""
    if not text:
        return None
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) | int(low, 16)


# --- The request's state ------------------------------------------------------------------------


@dataclass
class ReadState:
    """What the router knows about the request being answered (one per request)."""

    eligible: bool  # a GET/HEAD page or read-API request
    schema: str
    identities: tuple[str, ...] = ()  # hashed client identities (session cookie, API key)
    wrote: bool = False
    alias: str | None = None  # the reads' target, chosen at the first read
    retried: bool = False
    counted: dict[str, int] = field(default_factory=dict)


_state: ContextVar[ReadState | None] = ContextVar("db_read_state", default=None)
_checking: ContextVar[bool] = ContextVar("db_replica_checking", default=False)


@contextmanager
def _not_counted() -> Iterator[None]:
    """The router's own queries (health, replay position) are not the request's reads."""
    token = _checking.set(True)
    try:
        yield
    finally:
        _checking.reset(token)


@contextmanager
def reads_state(state: ReadState) -> Iterator[ReadState]:
    """Route the reads made inside the block by ``state`` (the middleware's; tests use it too)."""
    token = _state.set(state)
    try:
        yield state
    finally:
        _state.reset(token)


def read_alias() -> str:
    """The alias the next read should use (see the module docstring)."""
    state = _state.get()
    if state is None or not state.eligible or state.wrote:
        return PRIMARY
    if connections[PRIMARY].in_atomic_block:
        return PRIMARY
    if state.alias is None:
        state.alias = _choose(state)
    if state.alias != PRIMARY:
        _follow_tenant(state.alias)
    return state.alias


def read_connection() -> BaseDatabaseWrapper:
    """The connection for a read selector's raw SQL (``read_connection().cursor()``): a replica
    while the request may read from one, else the primary."""
    return connections[read_alias()]


def _follow_tenant(alias: str) -> None:
    """Give the replica connection the primary's tenant (django-tenants' search_path)."""
    primary, replica = tenant_wrapper(PRIMARY), tenant_wrapper(alias)
    tenant = getattr(primary, "tenant", None)
    if tenant is None or not hasattr(replica, "set_tenant"):
        return
    if replica.schema_name != primary.schema_name:
        replica.set_tenant(tenant)
    else:
        replica.tenant = tenant


def _choose(state: ReadState) -> str:
    aliases = replica_aliases()
    if not aliases:
        return PRIMARY
    required = remembered_write(state)
    reason = "unreachable"
    for alias in random.sample(aliases, len(aliases)):
        health = replica_health(alias)
        if not health.up:
            continue
        if health.lag_s > settings.REPLICA_MAX_LAG_S:
            reason = "lagging"
            continue
        if required is not None and not _replayed(alias, health, required):
            reason = "read_your_writes"
            continue
        return alias
    guarded(lambda: DB_REPLICA_FALLBACKS.labels(reason).inc())
    return PRIMARY


def _replayed(alias: str, health: ReplicaHealth, required: int) -> bool:
    if health.replay_lsn is not None and health.replay_lsn >= required:
        return True
    try:
        with _not_counted(), connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            replay = lsn_value(cursor.fetchone()[0])
    except DatabaseError:
        replica_failed(alias)
        return False
    return replay is not None and replay >= required


# --- Replica health -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaHealth:
    up: bool
    lag_s: float = math.inf
    replay_lsn: int | None = None
    checked: float = 0.0  # time.monotonic()


_health: dict[str, ReplicaHealth] = {}


def replica_health(alias: str, *, fresh: bool = False) -> ReplicaHealth:
    """The replica's health, checked at most every ``REPLICA_HEALTH_CHECK_S`` in this process."""
    known = _health.get(alias)
    now = time.monotonic()
    if not fresh and known is not None and now - known.checked < settings.REPLICA_HEALTH_CHECK_S:
        return known
    with _not_counted():
        health = _check(alias, now)
    _health[alias] = health
    return health


def health_forget() -> None:
    """Forget every replica's last check (tests, and after reconfiguring)."""
    _health.clear()


def _check(alias: str, now: float) -> ReplicaHealth:
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            primary_lsn = lsn_value(cursor.fetchone()[0])
    except DatabaseError:
        logger.warning("replica check: the primary did not answer", exc_info=True)
        return ReplicaHealth(up=False, checked=now)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
            )
            in_recovery, replay_text, age = cursor.fetchone()
    except DatabaseError:
        logger.warning("replica %s is unreachable; reads use the primary", alias)
        _close_quietly(alias)
        return ReplicaHealth(up=False, checked=now)
    if not in_recovery:
        logger.error("replica %s is not in recovery (promoted?); reads use the primary", alias)
        return ReplicaHealth(up=False, checked=now)
    replay = lsn_value(replay_text)
    if replay is not None and primary_lsn is not None and replay >= primary_lsn:
        lag = 0.0
    else:
        lag = float(age) if age is not None else math.inf
    return ReplicaHealth(up=True, lag_s=max(lag, 0.0), replay_lsn=replay, checked=now)


def replica_failed(alias: str) -> None:
    """A replica failed in use: reads use the primary until its next check."""
    _health[alias] = ReplicaHealth(up=False, checked=time.monotonic())
    _close_quietly(alias)


def _close_quietly(alias: str) -> None:
    with suppress(DatabaseError):
        connections[alias].close()


# --- Read-your-writes ---------------------------------------------------------------------------


def client_identities(request: HttpRequest) -> tuple[str, ...]:
    """The client's identities, hashed: its API key (Authorization header) and its session
    cookie, and after the request its (possibly new, after a sign-in) session key."""
    raw: list[str] = []
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if authorization:
        raw.append("auth:" + authorization)
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if cookie:
        raw.append("session:" + cookie)
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key and key != cookie:
        raw.append("session:" + key)
    return tuple(hashlib.sha256(value.encode()).hexdigest()[:32] for value in raw)


def _ryw_key(schema: str, identity: str) -> str:
    return f"db:ryw:{schema}:{identity}"


def remember_write(state: ReadState) -> None:
    """Keep the primary's WAL position for the request's clients (read-your-writes)."""
    if not state.identities:
        return
    try:
        with _not_counted(), connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            lsn = cursor.fetchone()[0]
        cache.set_many(
            {_ryw_key(state.schema, identity): lsn for identity in state.identities},
            timeout=settings.REPLICA_READ_YOUR_WRITES_S,
        )
    except Exception:
        logger.warning("could not remember a write for read-your-writes", exc_info=True)


def remembered_write(state: ReadState) -> int | None:
    """The highest WAL position the request's clients wrote recently; when the cache cannot say,
    a position no replica has reached (the reads use the primary)."""
    if not state.identities:
        return None
    try:
        found = cache.get_many([_ryw_key(state.schema, i) for i in state.identities])
    except Exception:
        logger.warning("read-your-writes cache unavailable; reads use the primary", exc_info=True)
        return 1 << 64
    values = [lsn_value(value) for value in found.values()]
    return max((v for v in values if v is not None), default=None)


# --- The router and the middleware --------------------------------------------------------------


class ReplicaRouter:
    """Reads to ``read_alias()``, writes and migrations to the primary. Chained before
    django-tenants' ``TenantSyncRouter``, which still decides which apps a schema migrates."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        state = _state.get()
        if state is not None:
            state.wrote = True
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        same_data = {PRIMARY, *replica_aliases()}
        if obj1._state.db in same_data and obj2._state.db in same_data:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if db != PRIMARY:
            return False
        return None  # the next router (django-tenants) decides


class ReplicaReadsMiddleware:
    """Marks page and read-API requests (GET/HEAD) as eligible for replica reads, counts their
    statements by target, keeps read-your-writes positions after writes, and answers a GET again
    on the primary when its replica failed. Placed after django-tenants' middleware (the schema is
    known). Without replicas configured it does nothing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        aliases = replica_aliases()
        if not aliases:
            return self.get_response(request)
        state = ReadState(
            eligible=request.method in READ_METHODS,
            schema=tenant_wrapper(PRIMARY).schema_name,
            identities=client_identities(request),
        )
        with reads_state(state), ExitStack() as stack:
            if state.eligible:
                for alias in (PRIMARY, *aliases):
                    stack.enter_context(connections[alias].execute_wrapper(_Counter(state, alias)))
            response = self.get_response(request)
        if state.eligible:
            for alias, count in state.counted.items():
                target = "primary" if alias == PRIMARY else alias
                guarded(lambda t=target, c=count: DB_READS.labels(t).inc(c))  # type: ignore[misc]
        if state.wrote or not state.eligible:
            state.identities = client_identities(request)
            remember_write(state)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        state = _state.get()
        if (
            state is None
            or not state.eligible
            or state.wrote
            or state.retried
            or state.alias is None
            or state.alias == PRIMARY
            or not isinstance(exception, (OperationalError, InterfaceError))
        ):
            return None
        alias = state.alias
        replica_failed(alias)
        if replica_health(alias, fresh=True).up:
            return None  # the replica answers: the error is not its failure
        logger.warning("replica %s failed during %s; answering from the primary", alias, request)
        guarded(lambda: DB_REPLICA_FALLBACKS.labels("error").inc())
        state.alias, state.retried = PRIMARY, True
        return self.get_response(request)


class _Counter:
    def __init__(self, state: ReadState, alias: str) -> None:
        self.state, self.alias = state, alias

    def __call__(
        self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any
    ) -> Any:
        if _checking.get():
            return execute(sql, params, many, context)
        counted = self.state.counted
        counted[self.alias] = counted.get(self.alias, 0) + 1
        return execute(sql, params, many, context)
