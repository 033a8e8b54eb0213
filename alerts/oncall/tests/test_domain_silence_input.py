"""Reading what a person types to set a silence: label matchers and when it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.oncall.domain.silence_input import (
    SilenceInputError,
    matchers_check,
    matchers_parse,
    matchers_text,
    silence_end,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def test_matchers_are_key_value_lines():
    text = "queue_name = builds\n\n  service.name=cp=1  \n"
    assert matchers_parse(text, max_count=10) == {"queue_name": "builds", "service.name": "cp=1"}
    assert matchers_parse("", max_count=10) == {}
    assert matchers_parse(matchers_text({"b": "2", "a": "1"}), max_count=10) == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("queue_name", "Line 1: 'queue_name' is not key=value."),
        ("a=1\n=builds", "Line 2: '=builds' is not key=value."),
        ("queue name=builds", "Line 1: 'queue name' is not a label name"),
        ("queue_name=", "Line 1: Label queue_name has no value."),
        ("a=1\na=2", "Line 2: Label a is given twice."),
        ("a=" + "x" * 257, "Line 1: The value of a is longer than 256 characters."),
        ("a=1\nb=2\nc=3", "At most 2 label matchers."),
    ],
)
def test_bad_matchers_name_the_line(text, message):
    with pytest.raises(SilenceInputError) as caught:
        matchers_parse(text, max_count=2)
    assert str(caught.value).startswith(message)


def test_matchers_given_as_a_mapping_obey_the_same_rules():
    assert matchers_check({" queue_name ": " builds "}, max_count=3) == {"queue_name": "builds"}
    for bad, message in (
        ({"queue_name": 3}, "Label 'queue_name': the value must be text."),
        ({"": "x"}, "'' is not a label name"),
        ({"a": ""}, "Label a has no value."),
        ({"a": "1", "b": "2", "c": "3", "d": "4"}, "At most 3 label matchers."),
    ):
        with pytest.raises(SilenceInputError) as caught:
            matchers_check(bad, max_count=3)
        assert str(caught.value).startswith(message), bad


def test_silence_ends_after_a_duration_or_at_a_local_time():
    assert silence_end("1h", "", now=NOW, zone=BERLIN) == NOW + timedelta(hours=1)
    assert silence_end("4h", "ignored", now=NOW, zone=BERLIN) == NOW + timedelta(hours=4)
    assert silence_end("1d", "", now=NOW, zone=BERLIN) == NOW + timedelta(days=1)
    # 18:00 in Berlin (CET, UTC+1) is 17:00 UTC; both spellings a browser or a person uses.
    expected = datetime(2026, 11, 30, 17, tzinfo=UTC)
    assert silence_end("custom", "2026-11-30T18:00", now=NOW, zone=BERLIN) == expected
    assert silence_end("custom", "2026-11-30 18:00", now=NOW, zone=BERLIN) == expected
    assert silence_end("custom", "2026-11-30T18:00+00:00", now=NOW, zone=BERLIN) == (
        expected + timedelta(hours=1)
    )


@pytest.mark.parametrize(
    ("duration", "custom", "message"),
    [
        ("2h", "", "Choose how long the silence lasts"),
        ("custom", "", "Give the end as a date and time (Europe/Berlin)."),
        ("custom", "tomorrow", "'tomorrow' is not a date and time; write it as"),
        ("custom", "9999-12-31T23:00", "is outside the supported times"),
    ],
)
def test_bad_ends_are_explained(duration, custom, message):
    with pytest.raises(SilenceInputError) as caught:
        silence_end(duration, custom, now=NOW, zone=BERLIN)
    assert message in str(caught.value)
