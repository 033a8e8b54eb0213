"""What a person types to set a silence, read into what ``services.silences.silence_create``
takes: label matchers as ``key=value`` lines, and how long it lasts (1 h, 4 h, 1 d, or an end
in their time zone). Pure: every refusal is a ``SilenceInputError`` whose message names the line
or the field and is meant for the person; whether a rule exists and the end lies in the future
is the service's check."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from factory_portal import periods

# Label names as the rules write them (``queue_name``, ``service.name``, ``worker-pool``).
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")
VALUE_MAX = 256  # a label value's length at ingest (runtime.domain.metrics)
DURATIONS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
DURATION_LABELS = {"1h": "1 hour", "4h": "4 hours", "1d": "1 day", "custom": "until…"}


class SilenceInputError(ValueError):
    """Input that cannot be a silence; the message says what is wrong and where."""


def _matcher(key: str, value: str, where: str) -> tuple[str, str]:
    key, value = key.strip(), value.strip()
    if not LABEL_NAME.fullmatch(key):
        raise SilenceInputError(
            f"{where}{key[:60]!r} is not a label name (letters, digits, _ . -; starting with a"
            " letter or _)."
        )
    if not value:
        raise SilenceInputError(f"{where}Label {key} has no value.")
    if len(value) > VALUE_MAX:
        raise SilenceInputError(f"{where}The value of {key} is longer than {VALUE_MAX} characters.")
    return key, value


def matchers_parse(text: str, *, max_count: int) -> dict[str, str]:
    """``"queue_name=q1\nservice=cp"`` → ``{"queue_name": "q1", "service": "cp"}``. Blank
    lines are skipped; spaces around the ``=`` do not count; a value may hold ``=``."""
    matchers: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise SilenceInputError(f"Line {number}: {line[:60]!r} is not key=value.")
        key, value = _matcher(key, value, f"Line {number}: ")
        if key in matchers:
            raise SilenceInputError(f"Line {number}: Label {key} is given twice.")
        matchers[key] = value
        if len(matchers) > max_count:
            raise SilenceInputError(f"At most {max_count} label matchers.")
    return matchers


def matchers_check(matchers: Mapping[str, object], *, max_count: int) -> dict[str, str]:
    """Matchers given as a mapping (the API's JSON object), held to the same rules as
    ``matchers_parse``: label names, text values, at most ``max_count``."""
    if len(matchers) > max_count:
        raise SilenceInputError(f"At most {max_count} label matchers.")
    checked: dict[str, str] = {}
    for key, value in matchers.items():
        if not isinstance(value, str):
            raise SilenceInputError(f"Label {str(key)[:60]!r}: the value must be text.")
        name, text = _matcher(str(key), value, "")
        checked[name] = text
    return checked


def matchers_text(labels: Mapping[str, object]) -> str:
    """Labels as the ``key=value`` lines ``matchers_parse`` reads (a form's initial value)."""
    return "\n".join(f"{key}={value}" for key, value in sorted(labels.items()))


def silence_end(duration: str, custom: str, *, now: datetime, zone: ZoneInfo) -> datetime:
    """When a silence set at ``now`` ends: ``duration`` one of ``DURATIONS``, or ``custom`` with
    ``custom`` a date and time in ``zone`` (``2026-11-30T18:00`` as a browser's
    datetime-local field sends it, or ``2026-11-30 18:00``). Aware UTC."""
    if duration in DURATIONS:
        return now + DURATIONS[duration]
    if duration != "custom":
        raise SilenceInputError(
            "Choose how long the silence lasts: 1 hour, 4 hours, 1 day or until a time."
        )
    text = custom.strip()
    if not text:
        raise SilenceInputError(f"Give the end as a date and time ({zone.key}).")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SilenceInputError(
            f"{text[:40]!r} is not a date and time; write it as 2026-11-30 18:00 ({zone.key})."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return periods.moment_check(moment)
    except periods.PeriodError as exc:
        raise SilenceInputError(str(exc)) from None
