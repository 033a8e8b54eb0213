"""Work committed on database connections of their own, for tests whose rows a real worker or
other threads must see (a test's own rows stay in its transaction, invisible to them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections
from django_tenants.utils import schema_context

T = TypeVar("T")


def at_once(
    django_db_blocker: Any, work: Callable[[], T], *, threads: int = 1, schema: str = "alpha"
) -> list[T]:
    """``work()`` in ``schema`` on ``threads`` threads, each on a connection of its own,
    started together (a barrier) and committed; their results. A thread's error is raised."""
    barrier = threading.Barrier(threads)
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with django_db_blocker.unblock(), schema_context(schema):
                barrier.wait()
                out.append(work())
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(60)
    if errors:
        raise errors[0]
    assert len(out) == threads, "the work did not finish in time"
    return out


def committed(django_db_blocker: Any, work: Callable[[], T], *, schema: str = "alpha") -> T:
    """``work()`` in ``schema`` on a connection of its own, committed; its result."""
    return at_once(django_db_blocker, work, schema=schema)[0]
