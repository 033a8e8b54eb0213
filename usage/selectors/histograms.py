"""Duration histograms (``usage.domain.durations``: ``BUCKETS`` counts a row) summed in SQL.

Rollup rows keep a histogram per row; a page wants them merged over a range, perhaps per group.
PostgreSQL sums each bucket (``sum(h[i]::int)``, one column a bucket; as ``usage.selectors.steps``
does, faster here than unnesting the arrays), so one short row comes back per group instead of
every rollup row's array being decoded and added up in Python: on the demo tenant's 591 rows of
30 days, 1.3 ms of Python against 7-10 ms, with the query as fast as fetching the rows. A
histogram shorter than ``BUCKETS`` (rows written before buckets were added) counts nothing in the
buckets it lacks, as ``histogram_merge`` does. A row's bucket counts one day's runs (an int).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from usage.domain.durations import BUCKETS

_SUMS = ", ".join(f"coalesce(sum(r.h[{i + 1}]::int), 0)" for i in range(BUCKETS))


def histogram_sums_by(
    rows: QuerySet[Any], field: str, *keys: str
) -> dict[tuple[Any, ...], list[int]]:
    """``field``'s histograms of ``rows`` added up per distinct value of ``keys`` (no keys: one
    group, ``()``, present only when there are rows)."""
    try:
        inner, params = rows.order_by().values_list(*keys, field).query.sql_with_params()
    except EmptyResultSet:  # a query that can match nothing (``.none()``, ``__in=[]``)
        return {}
    names = [f"k{n}" for n in range(len(keys))]
    columns = "".join(f"r.{name}, " for name in names)
    sql = (
        f"SELECT {columns}count(*), {_SUMS}"  # noqa: S608 - the ORM's SQL and fixed names
        f" FROM ({inner}) AS r({''.join(f'{name}, ' for name in names)}h)"
        + (f" GROUP BY {', '.join(f'r.{name}' for name in names)}" if names else "")
    )
    result: dict[tuple[Any, ...], list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            values, count, sums = row[: len(keys)], row[len(keys)], row[len(keys) + 1 :]
            if count:  # no rows: the ungrouped aggregate's empty row
                result[tuple(values)] = [int(v) for v in sums]
    return result


def histogram_sum(rows: QuerySet[Any], field: str) -> list[int]:
    """``field``'s histograms of ``rows`` added up: ``BUCKETS`` counts (zeros when none)."""
    return histogram_sums_by(rows, field).get((), [0] * BUCKETS)
