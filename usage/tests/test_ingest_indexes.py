"""The tables every ingest batch writes keep no index that another index already covers: an index
on a foreign key's column alone, when a key or index of the same table leads with that column,
costs each inserted or updated row a second index entry and answers nothing the other does not
(usage 0017, runtime 0003)."""

from __future__ import annotations

from django.db import connection

INGEST_TABLES = (
    "usage_run",
    "usage_job",
    "usage_runledger",
    "usage_spanerror",
    "usage_runlog",
    "usage_runallocatedcost",
    "runtime_metricminute",
    "runtime_metrichour",
)

# Plain btree indexes (no predicate, no expression, not unique) whose columns lead another plain,
# valid btree index of the same table (a partial index covers only its rows).
COVERED = """
WITH idx AS (
    SELECT c.relname AS tbl, i.relname AS name, x.indkey::text AS keys, x.indisunique AS uniq,
           x.indpred IS NULL AND x.indexprs IS NULL AS plain, x.indisvalid AS valid,
           am.amname AS method,
           pg_get_indexdef(x.indexrelid) AS definition
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_am am ON am.oid = i.relam
    WHERE n.nspname = %s AND c.relname = ANY(%s)
)
SELECT a.tbl, a.name, b.name
FROM idx a JOIN idx b ON a.tbl = b.tbl AND a.name <> b.name
WHERE a.plain AND NOT a.uniq AND a.method = 'btree' AND b.method = 'btree' AND b.plain AND b.valid
  AND b.keys LIKE a.keys || ' %%' AND a.definition NOT LIKE '%%pattern_ops%%'
ORDER BY 1, 2
"""


def test_no_ingest_table_keeps_an_index_another_one_covers(alpha):
    with connection.cursor() as cursor:
        cursor.execute(COVERED, [alpha.schema, list(INGEST_TABLES)])
        covered = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
            [alpha.schema, list(INGEST_TABLES)],
        )
        (tables,) = cursor.fetchone()
    assert tables == len(INGEST_TABLES)  # the names above are the tables' names
    assert covered == []
