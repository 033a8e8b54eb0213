"""The incident state machine: every arrow, and a flapping condition that neither resolves nor
fires again (no storm)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.oncall.domain.lifecycle import (
    FIRING,
    NONE,
    PENDING,
    RESOLVED,
    Action,
    Open,
    Transition,
    step,
)

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
DELAY = timedelta(seconds=120)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def at(incident: Open, seconds: float, active: bool, for_s: int = 60) -> Transition:
    return step(incident, active=active, now=s(seconds), for_s=for_s, resolve_delay=DELAY)


def test_nothing_open_and_clear_is_nothing():
    assert at(Open(), 0, False) == Transition(Action.NOTHING, NONE)


def test_active_opens_a_pending_incident():
    assert at(Open(), 0, True) == Transition(Action.OPEN, PENDING)


def test_for_zero_fires_at_once():
    assert at(Open(), 0, True, for_s=0) == Transition(Action.FIRE, FIRING)


def test_pending_stays_until_for_has_passed_then_fires():
    pending = Open(PENDING, started_at=s(0))
    assert at(pending, 59, True) == Transition(Action.STAY, PENDING)
    assert at(pending, 60, True) == Transition(Action.FIRE, FIRING)


def test_pending_that_clears_is_dropped():
    assert at(Open(PENDING, started_at=s(0)), 30, False) == Transition(Action.DROP, NONE)


def test_firing_and_active_stays_firing():
    firing = Open(FIRING, started_at=s(0), fired_at=s(60))
    assert at(firing, 90, True) == Transition(Action.STAY, FIRING, clear_since=None)


def test_firing_that_clears_starts_clearing_then_resolves_after_the_delay():
    firing = Open(FIRING, started_at=s(0), fired_at=s(60))
    assert at(firing, 100, False) == Transition(Action.CLEARING, FIRING, clear_since=s(100))
    clearing = Open(FIRING, started_at=s(0), fired_at=s(60), clear_since=s(100))
    assert at(clearing, 219, False) == Transition(Action.STAY, FIRING, clear_since=s(100))
    assert at(clearing, 220, False) == Transition(Action.RESOLVE, RESOLVED)


def test_clearing_that_comes_back_keeps_firing_and_forgets_the_clearing():
    clearing = Open(FIRING, started_at=s(0), fired_at=s(60), clear_since=s(100))
    assert at(clearing, 130, True) == Transition(Action.STAY, FIRING, clear_since=None)


def test_no_resolve_delay_resolves_at_once():
    firing = Open(FIRING, started_at=s(0), fired_at=s(60))
    move = step(firing, active=False, now=s(70), for_s=60, resolve_delay=timedelta(0))
    assert move == Transition(Action.RESOLVE, RESOLVED)


def test_a_resolved_incident_is_not_an_open_one():
    with pytest.raises(ValueError, match="resolved"):
        at(Open(RESOLVED, started_at=s(0)), 10, True)


def run(pattern: list[bool], *, period: float, for_s: int = 60) -> list[Action]:
    """Evaluate ``pattern`` every ``period`` seconds, keeping the state as the evaluator does."""
    incident, actions = Open(), []
    for n, active in enumerate(pattern):
        now = n * period
        move = at(incident, now, active, for_s=for_s)
        actions.append(move.action)
        if move.state in (NONE, RESOLVED):
            incident = Open()
        elif move.action in (Action.OPEN, Action.FIRE):
            started = incident.started_at if incident.state == PENDING else s(now)
            fired = s(now) if move.state == FIRING else None
            incident = Open(move.state, started, fired, move.clear_since)
        else:
            incident = Open(move.state, incident.started_at, incident.fired_at, move.clear_since)
    return actions


def test_flapping_faster_than_the_clear_delay_fires_once_and_never_resolves():
    # Active for 90 s (fires after 60 s), then on/off every 30 s for an hour: the condition is
    # never clear for 120 s, so the incident stays firing: one trigger, no resolve, no re-fire.
    pattern = [True] * 4 + [n % 2 == 0 for n in range(120)]
    actions = run(pattern, period=30)
    assert actions.count(Action.FIRE) == 1
    assert Action.RESOLVE not in actions and Action.OPEN in actions[:1]


def test_clear_for_longer_than_the_delay_resolves_once():
    actions = run([True] * 4 + [False] * 6, period=30)
    assert actions.count(Action.FIRE) == 1 and actions.count(Action.RESOLVE) == 1
    assert actions[-1] is Action.NOTHING  # resolved: nothing is open any more


@given(st.lists(st.booleans(), max_size=80))
def test_every_fire_is_followed_by_at_most_one_resolve(pattern):
    """Whatever the condition does, fires and resolves alternate (never two triggers for one
    incident), and a resolve needs the condition clear for the whole delay."""
    actions = run(pattern, period=30)
    fires_and_resolves = [a for a in actions if a in (Action.FIRE, Action.RESOLVE)]
    for first, second in pairwise(fires_and_resolves):
        assert first != second
    for n, action in enumerate(actions):
        if action is Action.RESOLVE:
            assert not any(pattern[n - 4 : n + 1])  # clear at 4 evaluations = 120 s
