"""What the current request or task is about, for logs and spans: request id, tenant, run, job.

Values live in context variables, so a worker thread or task sees only its own. ``bind`` sets
values for a block and restores the previous ones afterwards, also on error.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from django.db import connection
from django_tenants.utils import get_public_schema_name

FIELDS = ("request_id", "tenant_id", "run_id", "job_id")
_vars: dict[str, ContextVar[str | None]] = {name: ContextVar(name, default=None) for name in FIELDS}

# A client's X-Request-ID is echoed into logs and headers, so only short, plain ids are taken.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def current() -> dict[str, str | None]:
    return {name: var.get() for name, var in _vars.items()}


def get(name: str) -> str | None:
    return _vars[name].get()


Restore = list[tuple[ContextVar[str | None], Token[str | None]]]


def push(**values: object) -> Restore:
    """Set context fields (``request_id``, ``tenant_id``, ``run_id``, ``job_id``); hand the
    result to ``pop`` to put the earlier values back."""
    return [
        (_vars[name], _vars[name].set(None if v is None else str(v))) for name, v in values.items()
    ]


def pop(restore: Restore) -> None:
    for var, token in reversed(restore):
        var.reset(token)


@contextmanager
def bind(**values: object) -> Iterator[None]:
    """Set context fields for a block."""
    restore = push(**values)
    try:
        yield
    finally:
        pop(restore)


def request_id_resolve(client_value: str | None, trace_id: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a plain id, else the active trace id, else new."""
    if client_value and REQUEST_ID_RE.match(client_value):
        return client_value
    return trace_id or uuid.uuid4().hex


def tenant_label() -> str | None:
    """The tenant the database connection works for (its slug), None in the public schema."""
    schema: str | None = getattr(connection, "schema_name", None)  # set by django-tenants
    if not schema or schema == get_public_schema_name():
        return None
    # A slug's hyphens become underscores in its schema name; slugs have no underscores.
    return schema.replace("_", "-")


def update(**values: object) -> None:
    """Change context fields inside a ``bind`` of the same fields (its exit restores them)."""
    for name, value in values.items():
        _vars[name].set(None if value is None else str(value))
