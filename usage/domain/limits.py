"""The bounds of what ingest accepts, one home for every path usage arrives by (REST events, run
updates, OTLP spans). Pure constants; text lengths are also the ``max_length`` of the columns in
``usage.models`` that hold them. Request-size bounds and the clock skew tolerated are settings
(``INGEST_MAX_*``, ``INGEST_MAX_FUTURE_SECONDS``, ``OTLP_MAX_*``), read by the services and views.
"""

from __future__ import annotations

from decimal import Decimal

MAX_TOKENS = 10**12
MAX_COST = Decimal(10**9)
MAX_QUANTITY = Decimal(10**15)
MAX_ATTEMPT = 1000
MAX_JOBS_PER_RUN = 1000
MAX_DURATION_MS = 366 * 24 * 3600 * 1000

# Characters of descriptive text.
TENANT_LENGTH = 40
PROVIDER_LENGTH = 64
MODEL_LENGTH = 128
OPERATION_LENGTH = 32
UNIT_LENGTH = 32
RUN_TYPE_LENGTH = 64
TEMPLATE_LENGTH = 200
STEP_NAME_LENGTH = 100
FAILURE_TYPE_LENGTH = 100
TRACE_ID_LENGTH = 32
SERVICE_LENGTH = 100
ERROR_LENGTH = 500

# Errors spans report (``exception`` events, error status messages): UTF-8 bytes kept of each
# text, cut with TRUNCATED_MARKER at the end; exception events kept per span (the first ones).
ERROR_TYPE_LENGTH = 200
SPAN_NAME_LENGTH = 200
ERROR_MESSAGE_BYTES = 4 * 1024
STACKTRACE_BYTES = 16 * 1024
MAX_ERRORS_PER_SPAN = 8
TRUNCATED_MARKER = "… [truncated]"
