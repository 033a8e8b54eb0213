"""Tenant routing and the ingest transaction, shared by every ingest path (``entry``).

A tenant's key writes to its own tenant; the platform key (operator host) sends items that name
their tenant, and each tenant's items are stored in its schema. Everything of one request shares
one database transaction, so it is all or nothing across tenants too, and that transaction runs
again when PostgreSQL aborts it for a deadlock or a serialization conflict with a concurrent
request. Nothing here knows what the items are.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from django.db import NotSupportedError, OperationalError, connection, transaction
from django_tenants.utils import schema_context

from factory_portal.errors import is_conflict
from factory_portal.pg import is_stale_plan, statements_unprepared
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import active_tenants_by_slug

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def request_tenant() -> Tenant | None:
    """The tenant whose key sent the current request; None on the operator host, where only
    platform keys (public schema) authenticate and every item names its tenant."""
    tenant = getattr(connection, "tenant", None)
    return None if tenant is None or tenant.schema_name == "public" else tenant


def tenants_by_slug(slugs: Iterable[str]) -> dict[str, Tenant]:
    """Active customer tenants among ``slugs`` (unknown or suspended ones are absent)."""
    return active_tenants_by_slug(slugs)


def per_tenant(
    groups: Mapping[Tenant, Sequence[T]], store: Callable[[Tenant, list[T]], R]
) -> list[R]:
    """``store`` each tenant's items inside its schema, tenants in slug order (so concurrent
    requests of several tenants take their locks in the same order)."""
    results = []
    for tenant in sorted(groups, key=lambda t: t.slug):
        with schema_context(tenant.schema_name):
            results.append(store(tenant, list(groups[tenant])))
    return results


def ingest_transaction(work: Callable[[], R], *, attempts: int = 3) -> R:
    """Run ``work`` in one transaction, and again when PostgreSQL aborted it for a deadlock or a
    serialization conflict with concurrent requests, or because a migration changed what a
    prepared statement of the connection returns (``factory_portal.pg.is_stale_plan``: the
    next attempt prepares nothing). Safe because a request is stored
    all or nothing and by client ids: the retry sees what the winner committed and counts it as
    duplicates. ``work`` must start from its inputs each time (it may run more than once)."""
    unprepared = False
    for attempt in range(1, attempts + 1):
        try:
            with (
                transaction.atomic(),
                statements_unprepared() if unprepared else contextlib.nullcontext(),
            ):
                return work()
        except (OperationalError, NotSupportedError) as exc:
            if attempt < attempts and is_stale_plan(exc) and not unprepared:
                # Again without preparing: a batch of several tenants would meet their schemas,
                # at different migration states, in the same order again.
                logger.info("a prepared statement outlived a migration (%s); again", exc)
                unprepared = True
                continue
            if attempt == attempts or not is_conflict(exc):
                raise
            logger.info("ingest conflicted with a concurrent batch (%s); retrying", exc.__cause__)
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")
