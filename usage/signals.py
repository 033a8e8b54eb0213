"""Signals the ingest services send, inside their transaction, after storing usage.

``usage`` knows nothing of what listens (alert evaluation lives in ``alerts``); receivers that do
work outside the database should defer it with ``transaction.on_commit`` so it never slows or
breaks an ingest request and never sees rows that were rolled back.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent after new LLM or infrastructure events were stored (kwarg: accepted, the number stored).
usage_stored = Signal()

# Sent after runs reached a final status (kwarg: run_ids, the runs' primary keys).
runs_finished = Signal()
