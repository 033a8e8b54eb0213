"""Log records as JSON lines that say which request, tenant, trace, run and job they belong to.

Every record gets ``timestamp``, ``level``, ``message``, ``logger``, ``tenant_id``, ``request_id``,
``trace_id``, ``span_id``, ``run_id`` and ``job_id`` (null when unknown). Secrets (API keys, bearer
tokens, password-like values, the token segments of invitation links and secret query parameters:
``masking.secrets_mask``) are masked in every field before a line is written, whatever a caller
put into the message; Django's request object, attached to error records, is never serialized.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from factory_portal.observability import context
from factory_portal.observability.masking import secrets_mask

# Attributes Django and Celery attach to records that are objects, not log fields.
_DROPPED = ("request", "color_message", "data")


class ContextFilter(logging.Filter):
    """Adds the context fields and the active span's trace and span ids to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        span = trace.get_current_span().get_span_context()
        valid = span.is_valid
        record.trace_id = format(span.trace_id, "032x") if valid else None
        record.span_id = format(span.span_id, "016x") if valid else None
        return True


class OutageFilter(logging.Filter):
    """Requests answered 503 because the database is unreachable: one WARNING line each, with
    the error but without the traceback (an outage would otherwise print one per retry)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from factory_portal.errors import DATABASE_UNAVAILABLE, is_conflict

        error = record.exc_info[1] if record.exc_info else None
        # Write conflicts that outlived their retries keep their traceback: they point at code.
        if isinstance(error, DATABASE_UNAVAILABLE) and not is_conflict(error):
            record.msg = f"{record.getMessage()} (database unavailable: {type(error).__name__}: "
            record.msg += f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonFormatter(_BaseJsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = (
            datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for name in _DROPPED:
            log_data.pop(name, None)
        return {key: _masked(value) for key, value in log_data.items()}


def _masked(value: Any) -> Any:
    """A log field with its secrets masked, inside lists and mappings too."""
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {secrets_mask(str(key)): _masked(item) for key, item in value.items()}
    return secrets_mask(value if isinstance(value, str) else str(value))


class PlainFormatter(logging.Formatter):
    """One human-readable line (``LOG_FORMAT=plain``), with the same masking as the JSON lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(tenant_id)s] %(message)s"
        )

    def formatMessage(self, record: logging.LogRecord) -> str:
        # A client chooses parts of many messages (a request path with %0A, a run id): control
        # characters are written escaped, so one record is one line and cannot forge another.
        record.message = _CONTROL.sub(_control_escaped, record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return secrets_mask(super().format(record))


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _control_escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")
