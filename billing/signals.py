"""Signals billing sends; billing knows nothing of who listens (``alerts`` notifies operators).

Sent inside the sender's transaction; receivers that do work outside the database defer it with
``transaction.on_commit``.
"""

from __future__ import annotations

from django.dispatch import Signal

# A provider's bill for a month and model differs from the portal's estimate by more than the
# tolerance, for the first time (kwarg: alert_id, a billing.operator BilledDriftAlert's key).
billed_drift_exceeded = Signal()

# A run's guard state rose (ok -> warn, ok/warn -> stop): once per crossing (kwargs: run_id, the
# client's run id; project; template; state; previous; cost_so_far, projected, limit: Decimal
# USD; crossed_at: datetime, part of the alert's key).
run_guard_crossed = Signal()

# A run's guard state went back down, or the run finished (kwargs: run_id; state; finished: True
# when the run ended, whatever its final state): listeners resolve what the crossings opened
# above ``state``, or everything once the run ended.
run_guard_cleared = Signal()
