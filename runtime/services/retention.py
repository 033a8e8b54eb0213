"""Metric retention: raw points, minute and hour rollups older than their settings are deleted
(``METRICS_RAW_RETENTION_DAYS``, ``METRICS_MINUTE_RETENTION_DAYS``,
``METRICS_HOUR_RETENTION_DAYS``), in the schema the connection is set to.

Bounded work: each DELETE takes at most ``METRICS_RETENTION_CHUNK`` rows and commits on its own
(no long transaction holding locks against ingest), and one run does at most ``MAX_CHUNKS`` of
them per table; what is left is deleted by the next beat. Series are kept (their ``last_*``
state is what counts the next cumulative point).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

MAX_CHUNKS = 200

# (table, time column, setting of the days kept)
TABLES = (
    ("runtime_metricpoint", "time", "METRICS_RAW_RETENTION_DAYS"),
    ("runtime_metricminute", "start", "METRICS_MINUTE_RETENTION_DAYS"),
    ("runtime_metrichour", "start", "METRICS_HOUR_RETENTION_DAYS"),
)
DELETE_CHUNK = {
    table: (
        f"DELETE FROM {table} WHERE id IN "  # noqa: S608 - table and column are constants
        f"(SELECT id FROM {table} WHERE {column} < %s LIMIT %s)"
    )
    for table, column, _ in TABLES
}


def metrics_retention(*, now: datetime, chunk: int | None = None) -> dict[str, int]:
    """Delete the current schema's metric rows past retention; rows deleted per table."""
    size = chunk or settings.METRICS_RETENTION_CHUNK
    deleted: dict[str, int] = {}
    for table, _, setting in TABLES:
        cutoff = now - timedelta(days=getattr(settings, setting))
        deleted[table] = 0
        for _ in range(MAX_CHUNKS):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(DELETE_CHUNK[table], [cutoff, size])
                gone = cursor.rowcount
            deleted[table] += gone
            if gone < size:
                break
    return deleted
