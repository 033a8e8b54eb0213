"""Ingest marks its tenant as active (``factory_portal.tenants.activity``) once the batch commits:
the beat's "active only" fan-outs skip tenants that sent nothing for days."""

from __future__ import annotations

from django.db import transaction

from factory_portal.tenants.activity import activity_touch
from factory_portal.tenants.models import Tenant


def tenant_activity_record(tenant: Tenant) -> None:
    """After the current transaction commits (a rolled-back batch marks nothing)."""
    schema = tenant.schema_name
    transaction.on_commit(lambda: activity_touch(schema))
