"""Work committed on a database connection of its own, for tests whose rows a real worker or
other threads must see (a test's own rows stay in its transaction, invisible to them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections
from django_tenants.utils import schema_context

T = TypeVar("T")


def committed(django_db_blocker: Any, work: Callable[[], T], *, schema: str = "alpha") -> T:
    """``work()`` in ``schema`` on a connection of its own (a thread), committed; its result."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with django_db_blocker.unblock(), schema_context(schema):
                out.append(work())
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
    assert out, "the work did not finish in time"
    return out[0]
