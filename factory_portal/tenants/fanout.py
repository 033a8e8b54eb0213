"""One way to run a Celery task once per customer tenant (the beat's fan-out).

The beat runs in the public schema; each task is published from inside its tenant's schema, so
tenant-schemas-celery carries the schema and the task runs there. Tasks take no model
instances: whatever they need they read in their tenant's schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django_tenants.utils import schema_context

from factory_portal.tenants.selectors import customer_tenants


def tenants_fan_out(task: Any, *, args: Sequence[Any] = ()) -> int:
    """Publish ``task(*args)`` once in every customer tenant's schema; returns how many."""
    schemas = list(customer_tenants().values_list("schema_name", flat=True))
    for schema in schemas:
        with schema_context(schema):
            task.apply_async(args=list(args))
    return len(schemas)
