"""Room on each page for the updated versions of metric series and rollup rows (fillfactor).

Every request updates each of its series (``last_seen``, the counter state) and its current minute
and hour rollup rows. With full pages (the default fillfactor of 100) each update is a new tuple
on another page and a new entry in every index; with free room on the page PostgreSQL updates in
place (a HOT update: no index entries, less WAL), which is what makes ingest fast. The series
table is small (50: an update a request fits next to every row); rollups keep 30% free, a
compromise between HOT updates and the size of months of rollups. What is stored is unchanged.
"""

from django.db import migrations

TABLES = (
    ("runtime_metricseries", 50),
    ("runtime_metricminute", 70),
    ("runtime_metrichour", 70),
)


class Migration(migrations.Migration):
    dependencies = [("runtime", "0001_initial")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE {table} SET (fillfactor = {fill})",
            f"ALTER TABLE {table} RESET (fillfactor)",
        )
        for table, fill in TABLES
    ]
