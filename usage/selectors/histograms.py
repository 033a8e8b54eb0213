"""Duration histograms (``usage.domain.durations``: ``BUCKETS`` counts a row) summed in SQL.

Rollup rows keep a histogram per row; a page wants them merged over a range, perhaps per group.
Summing each bucket in PostgreSQL (``sum(histogram[i])`` for every bucket, grouped) sends one
short row per group instead of every rollup row's array to be decoded and added in Python.
A histogram shorter than ``BUCKETS`` (rows written before buckets were added) counts nothing in
the buckets it lacks, as ``histogram_merge`` does.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet, Sum

from usage.domain.durations import BUCKETS


def _sums(field: str) -> dict[str, Sum]:
    return {f"_bucket_{i}": Sum(f"{field}__{i}") for i in range(BUCKETS)}


def _histogram(row: dict[str, Any]) -> list[int]:
    return [int(row[f"_bucket_{i}"] or 0) for i in range(BUCKETS)]


def histogram_sum(rows: QuerySet[Any], field: str) -> list[int]:
    """``field``'s histograms of ``rows`` added up: ``BUCKETS`` counts (zeros when none)."""
    return _histogram(rows.order_by().aggregate(**_sums(field)))


def histogram_sums_by(
    rows: QuerySet[Any], field: str, *keys: str
) -> dict[tuple[Any, ...], list[int]]:
    """``field``'s histograms of ``rows`` added up per distinct value of ``keys``."""
    grouped = rows.order_by().values(*keys).annotate(**_sums(field))
    return {tuple(row[key] for key in keys): _histogram(row) for row in grouped}
