"""The incident state machine of one rule and label set, as Prometheus evaluates alerting rules,
with a resolve delay (hysteresis). Pure: the open incident's state, whether the condition holds
now, and the rule's timing in; the transition out. It decides; it stores and notifies nothing.

    none ──active──▶ pending ──active for for_s──▶ firing ──clear for resolve_delay──▶ resolved
      │ (for_s 0: fires at once)  │                  ▲   │
      │                           └──clear──▶ dropped│   └──clear──▶ clearing ─active again─┘

A pending incident whose condition clears is dropped (deleted: it never notified anyone). A
firing one resolves only once its condition has stayed clear for ``resolve_delay``; a condition
that comes back before then keeps it firing, so a condition flapping faster than the delay
neither resolves nor fires again (no storm of notifications).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

NONE, PENDING, FIRING, RESOLVED = "none", "pending", "firing", "resolved"


class Action(StrEnum):
    NOTHING = "nothing"  # no incident, condition clear
    OPEN = "open"  # a new pending incident
    FIRE = "fire"  # pending → firing, or a new incident firing at once (for_s 0)
    STAY = "stay"  # no change of state (clear_since may change: back to active)
    CLEARING = "clearing"  # firing, condition clear: the resolve delay starts
    RESOLVE = "resolve"  # firing → resolved
    DROP = "drop"  # pending, condition clear: deleted


@dataclass(frozen=True)
class Open:
    """The open incident of a fingerprint (``state`` none when there is none)."""

    state: str = NONE
    started_at: datetime | None = None
    fired_at: datetime | None = None
    clear_since: datetime | None = None


@dataclass(frozen=True)
class Transition:
    action: Action
    state: str  # after the transition: none (nothing open, or dropped), pending, firing, resolved
    clear_since: datetime | None = None  # firing and clearing: since when


def step(
    incident: Open,
    *,
    active: bool,
    now: datetime,
    for_s: int,
    resolve_delay: timedelta,
) -> Transition:
    """The transition of ``incident`` when its condition is ``active`` (or not) at ``now``."""
    if incident.state == NONE:
        if not active:
            return Transition(Action.NOTHING, NONE)
        if for_s <= 0:
            return Transition(Action.FIRE, FIRING)
        return Transition(Action.OPEN, PENDING)
    if incident.state == PENDING:
        if not active:
            return Transition(Action.DROP, NONE)
        started = incident.started_at or now
        if now - started >= timedelta(seconds=for_s):
            return Transition(Action.FIRE, FIRING)
        return Transition(Action.STAY, PENDING)
    if incident.state == FIRING:
        if active:
            return Transition(Action.STAY, FIRING)  # clear_since None: clearing, if any, ends
        since = incident.clear_since
        if since is None and resolve_delay > timedelta(0):
            return Transition(Action.CLEARING, FIRING, clear_since=now)
        if since is None or now - since >= resolve_delay:
            return Transition(Action.RESOLVE, RESOLVED)
        return Transition(Action.STAY, FIRING, clear_since=since)
    raise ValueError(f"not an open incident state: {incident.state!r}")
