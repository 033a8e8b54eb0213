"""Signals of the tenants kernel: apps that keep figures by the tenant's calendar listen."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that changed a tenant's time zone, with the connection set to the
# tenant's schema (kwargs: ``tenant``, ``previous``): figures kept by local day are re-counted.
timezone_changed = Signal()
