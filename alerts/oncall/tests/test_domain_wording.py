"""How incidents read: figures with the rule's unit, lengths of time, the one-line history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.oncall.domain.wording import figure_text, history_text, span_text, timeline

START = datetime(2026, 11, 30, 13, 58, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45.9, "45 s"),
        (60, "1 min"),
        (725, "12 min"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (86400, "1 d"),
        (93600, "1 d 2 h"),
        (-5, "0 s"),
    ],
)
def test_span_text(seconds, text):
    assert span_text(seconds) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1240.0, "jobs", "1,240 jobs"),
        (7.5, "%", "7.5%"),
        (2.256, " times", "2.26 times"),
        (300.0, "s", "300 s"),
        (0.0, "%", "0%"),
        (None, "%", "—"),
    ],
)
def test_figure_text(value, unit, text):
    assert figure_text(value, unit) == text


def test_a_resolved_incident_reads_pending_fired_and_resolved_after():
    fired, resolved = START + timedelta(minutes=4), START + timedelta(minutes=16, seconds=30)
    text = history_text(START, fired, resolved, now=resolved + timedelta(hours=1), zone=UTC)
    assert text == "pending 4 min, fired 14:02, resolved after 12 min"
    # Shown in the tenant's zone: 14:02 UTC is 15:02 in Berlin.
    assert "fired 15:02" in history_text(START, fired, resolved, now=resolved, zone=BERLIN)


def test_an_incident_that_fired_at_once_has_no_pending_phase():
    resolved = START + timedelta(minutes=3)
    text = history_text(START, START, resolved, now=resolved, zone=UTC)
    assert text == "fired 13:58, resolved after 3 min"


def test_open_and_never_fired_incidents():
    now = START + timedelta(minutes=9)
    fired = START + timedelta(minutes=2)
    assert history_text(START, fired, None, now=now, zone=UTC) == (
        "pending 2 min, fired 14:00, firing for 7 min"
    )
    assert history_text(START, None, None, now=now, zone=UTC) == "pending for 9 min"
    assert history_text(START, None, now, now=now + timedelta(days=1), zone=UTC) == (
        "pending 9 min, resolved without firing"
    )


def test_a_firing_that_crosses_midnight_dates_the_time():
    fired = START + timedelta(hours=11)  # 00:58 the next day
    text = history_text(START, fired, fired + timedelta(hours=2), now=fired, zone=UTC)
    assert text == "pending 11 h, fired 2026-12-01 00:58, resolved after 2 h"


def test_timeline_phases():
    fired, resolved = START + timedelta(seconds=90), START + timedelta(seconds=600)
    phases = timeline(START, fired, resolved, now=resolved + timedelta(days=3))
    assert (phases.pending_s, phases.firing_s, phases.open_s) == (90, 510, 600)
    assert phases.acknowledged_s is None
    assert timeline(START, None, None, now=START + timedelta(seconds=30)).firing_s is None
    acked = timeline(
        START, fired, None, now=resolved, acknowledged_at=fired + timedelta(seconds=45)
    )
    assert acked.acknowledged_s == 45
    unfired = timeline(
        START, None, None, now=resolved, acknowledged_at=START + timedelta(seconds=5)
    )
    assert unfired.acknowledged_s == 5
