"""Signals billing sends; billing knows nothing of who listens (``alerts`` notifies operators).

Sent inside the sender's transaction; receivers that do work outside the database defer it with
``transaction.on_commit``.
"""

from __future__ import annotations

from django.dispatch import Signal

# A provider's bill for a month and model differs from the portal's estimate by more than the
# tolerance, for the first time (kwarg: alert_id, a billing.operator BilledDriftAlert's key).
billed_drift_exceeded = Signal()
