"""The fan-out's chunk task: publishes one task in each of a chunk of tenant schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import shared_task
from django_tenants.utils import schema_context

from factory_portal.celery import app


def publish_in_schemas(task_name: str, args: Sequence[Any], schemas: Sequence[str]) -> int:
    """Publish ``task_name(*args)`` from inside each schema (tenant-schemas-celery stamps it)."""
    task = app.tasks[task_name]
    for schema in schemas:
        with schema_context(schema):
            task.apply_async(args=list(args))
    return len(schemas)


@shared_task  # typed (the app is tenant-schemas-celery's, which ships no types)
def fan_out_chunk(task_name: str, args: list[Any], schemas: list[str]) -> int:
    """Runs in the public schema, ``countdown`` seconds after the beat's fan-out published it."""
    return publish_in_schemas(task_name, args, schemas)
