"""The Celery application.

Tasks run in the schema of the tenant that enqueued them: ``tenant_schemas_celery`` stamps the
current schema into each message's headers and switches the worker's connection to it before the
task runs (a plain Celery app would run every task in the public schema).
"""

from __future__ import annotations

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
# Forecasting fits many small models: one BLAS thread per worker process is much faster than
# several threads fighting over the same cores (set before numpy is first imported).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

app = CeleryApp("factory_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
