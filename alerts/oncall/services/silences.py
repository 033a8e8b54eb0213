"""Silences: mute the notifications of matching incidents until a time (the incidents still
open, fire and resolve, and show as silenced on the alerts page)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError

from alerts.oncall.domain.rules import INCIDENT_RULES, silence_matches
from alerts.oncall.models import Silence

MATCHERS_MAX = 10
# Active silences a schema may hold: every evaluation and alerts page reads them all.
ACTIVE_MAX = 200


def silences_active(now: datetime) -> list[Silence]:
    return list(Silence.objects.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at"))


def silence_for(
    rule: str, labels: Mapping[str, Any], *, now: datetime, active: list[Silence] | None = None
) -> Silence | None:
    """The active silence that mutes this rule and label set (the one ending last), if any."""
    found = [
        s
        for s in (silences_active(now) if active is None else active)
        if silence_matches(s.rule, s.matchers or {}, rule, labels)
    ]
    return max(found, key=lambda s: (s.ends_at, s.pk)) if found else None


def silence_create(
    *,
    rule: str,
    matchers: Mapping[str, str],
    ends_at: datetime,
    reason: str,
    created_by: str,
    now: datetime,
) -> Silence:
    """Validated: a known rule (or blank), at most ``MATCHERS_MAX`` string matchers, an end in
    the future and a reason. A refusal is a ``ValidationError`` keyed by the argument at fault
    (``rule``, ``matchers``, ``ends_at``, ``reason``), so a form or an API names the field."""
    if rule and rule not in INCIDENT_RULES:
        raise ValidationError(
            {"rule": f"Unknown rule {rule!r}; the rules are {', '.join(INCIDENT_RULES)}."}
        )
    if len(matchers) > MATCHERS_MAX:
        raise ValidationError({"matchers": f"At most {MATCHERS_MAX} label matchers."})
    if Silence.objects.filter(starts_at__lte=now, ends_at__gt=now).count() >= ACTIVE_MAX:
        raise ValidationError(
            {"ends_at": f"At most {ACTIVE_MAX} silences can be active; end one before adding one."}
        )
    cleaned = {}
    for key, value in matchers.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip():
            raise ValidationError({"matchers": "Label matchers are label names with text values."})
        cleaned[key.strip()[:100]] = value.strip()[:256]
    if ends_at <= now:
        raise ValidationError({"ends_at": "A silence must end in the future."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the alerts are silenced."})
    return Silence.objects.create(
        rule=rule,
        matchers=cleaned,
        starts_at=now,
        ends_at=ends_at,
        reason=reason.strip()[:300],
        created_by=created_by[:254],
    )


def silence_expire(silence: Silence, *, now: datetime) -> Silence:
    """End a silence now (notifications of still-firing incidents go out at the next
    evaluation)."""
    if silence.ends_at > now:
        silence.ends_at = now
        silence.save(update_fields=["ends_at"])
    return silence
