"""How an incident reads on the alerts pages: its figures with the rule's unit ("1,240 jobs",
"7.5%"), lengths of time in words ("12 min", "2 h 5 min") and the one-line history of pending →
firing → resolved ("pending 2 min, fired 14:02, resolved after 12 min"). Pure: takes numbers,
aware datetimes and the zone to show them in, returns text; it decides nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo


def figure_text(value: float | None, unit: str) -> str:
    """A rule's figure with its unit as the rule's condition writes it: ``(1240, "jobs")`` →
    "1,240 jobs", ``(7.5, "%")`` → "7.5%", ``(2.25, " times")`` → "2.25 times"; "—" when
    unknown. At most two decimals."""
    if value is None:
        return "—"
    number = f"{value:,.2f}".rstrip("0").rstrip(".")
    glue = "" if unit == "%" or unit.startswith(" ") or not unit else " "
    return f"{number}{glue}{unit}"


def span_text(seconds: float) -> str:
    """A length of time in the unit an on-call person reads: 45 → "45 s", 725 → "12 min",
    7500 → "2 h 5 min", 93600 → "1 d 2 h" (rounded down to the smaller unit)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True)
class Timeline:
    """The lengths of an incident's phases (seconds); an open phase runs to ``now``."""

    pending_s: float  # started → fired (or → resolved / now when it never fired)
    firing_s: float | None  # fired → resolved or now; None: it never fired
    open_s: float  # started → resolved or now
    acknowledged_s: float | None = None  # fired (or started) → acknowledged; None: not yet


def timeline(
    started_at: datetime,
    fired_at: datetime | None,
    resolved_at: datetime | None,
    *,
    now: datetime,
    acknowledged_at: datetime | None = None,
) -> Timeline:
    end = resolved_at or now
    pending_end = fired_at or end
    acknowledged_s = None
    if acknowledged_at is not None:
        acknowledged_s = max(0.0, (acknowledged_at - (fired_at or started_at)).total_seconds())
    return Timeline(
        pending_s=max(0.0, (pending_end - started_at).total_seconds()),
        firing_s=None if fired_at is None else max(0.0, (end - fired_at).total_seconds()),
        open_s=max(0.0, (end - started_at).total_seconds()),
        acknowledged_s=acknowledged_s,
    )


def clock(moment: datetime, zone: ZoneInfo, *, since: datetime | None = None) -> str:
    """``moment`` in ``zone`` as "14:02", with the date in front ("2026-11-29 14:02") unless it
    falls on the same local day as ``since``."""
    local = moment.astimezone(zone)
    if since is not None and since.astimezone(zone).date() == local.date():
        return f"{local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M}"


def history_text(
    started_at: datetime,
    fired_at: datetime | None,
    resolved_at: datetime | None,
    *,
    now: datetime,
    zone: ZoneInfo,
) -> str:
    """The incident's life in one line, times in ``zone`` (dated only when the day changes):
    "pending 2 min, fired 14:02, resolved after 12 min"; "pending 3 min, resolved without firing";
    "pending 2 min, fired 14:02, firing for 5 min"; "pending for 40 s"."""
    phases = timeline(started_at, fired_at, resolved_at, now=now)
    if fired_at is None:
        if resolved_at is None:
            return f"pending for {span_text(phases.pending_s)}"
        return f"pending {span_text(phases.pending_s)}, resolved without firing"
    fired = f"fired {clock(fired_at, zone, since=started_at)}"
    parts = [f"pending {span_text(phases.pending_s)}", fired] if phases.pending_s >= 1 else [fired]
    firing = span_text(phases.firing_s or 0)
    parts.append(f"resolved after {firing}" if resolved_at else f"firing for {firing}")
    return ", ".join(parts)
