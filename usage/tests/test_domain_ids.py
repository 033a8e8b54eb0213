"""The id rule (pure): one rule for events, run updates and OTLP spans; ids as URL segments."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urljoin

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usage.domain.events import FieldError, event_parse
from usage.domain.ids import MAX_ID_LENGTH, id_check, id_segment, run_path
from usage.domain.otlp import flatten, spans_map
from usage.domain.runs import run_update_parse
from usage.tests.otlp_spans import as_request, factory_run_spans

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
UNRESERVED = set(string.ascii_letters + string.digits + "-._~")


@pytest.mark.parametrize(
    "value",
    ["a/b", "100%", "a?b#c", "with space", "=1+1", "ünï ☃", "../x", "x" * MAX_ID_LENGTH],
)
def test_printable_ids_are_kept_as_sent(value):
    assert id_check(value, run=True) == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "non-empty"),
        (" \t ", "non-empty"),
        ("a\x00b", "printable"),
        ("a\nb", "printable"),
        ("a\u202eb", "printable"),  # a bidirectional override would disguise the id
        ("a\u00a0b", "printable"),  # a no-break space looks like a space
        ("x" * (MAX_ID_LENGTH + 1), f"at most {MAX_ID_LENGTH}"),
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
    ],
)
def test_ids_no_page_can_show_or_link_are_refused(value, words):
    with pytest.raises(ValueError, match=words):
        id_check(value)


def test_surrounding_whitespace_is_removed_and_only_run_ids_have_reserved_names():
    assert id_check("  run-1 ") == "run-1"
    assert id_check("active") == "active"  # a job or event id
    with pytest.raises(ValueError, match="reserved"):
        id_check("active", run=True)
    # /api/v1/runs/<run id>/guard is the run's guard: no run id ends so (a job's may).
    assert id_check("build/guard") == "build/guard"
    with pytest.raises(ValueError, match="cannot end with '/guard'"):
        id_check("build/guard", run=True)
    assert id_check("guard", run=True) == "guard"


@given(st.text(min_size=1, max_size=MAX_ID_LENGTH))
def test_an_id_is_one_url_segment_that_decodes_back(value):
    segment = id_segment(value)
    assert unquote(segment) == value
    assert "/" not in segment
    assert segment not in (".", "..") or value in (".", "..")  # which ingest refuses
    assert all(c in UNRESERVED or c == "%" or ord(c) > 0x7F for c in segment)
    assert len(run_path(value)) <= 3 * len(value) + len("/runs//")


@given(st.text(min_size=1, max_size=MAX_ID_LENGTH).filter(lambda v: v not in (".", "..")))
def test_a_run_link_is_followed_as_written(value):
    """Resolving a link (RFC 3986 5.2, as browsers do) removes dot segments and keeps the rest."""
    base = "https://acme.portal.example/runs/?status=Failed"
    assert urljoin(base, run_path(value)) == "https://acme.portal.example" + run_path(value)


def test_events_run_updates_and_spans_apply_the_same_rule():
    event = {
        "type": "llm",
        "event_id": "e/1?",
        "timestamp": "2026-11-20T11:00:00Z",
        "project": "checkout",
        "run_id": "team/run 1",
        "job_id": "job#1",
        "provider": "openai",
        "model": "gpt-4.1",
    }
    parsed = event_parse(event, 0, now=NOW, max_future=SKEW)
    assert (parsed.event_id, parsed.run_id, parsed.job_id) == ("e/1?", "team/run 1", "job#1")
    for field, value in [("event_id", ".."), ("run_id", "active"), ("job_id", "a\x00")]:
        error = event_parse({**event, field: value}, 0, now=NOW, max_future=SKEW)
        assert isinstance(error, FieldError) and error.field == field

    update = {"run_id": "active", "project": "checkout", "status": "Running"}
    error = run_update_parse(update, 0, now=NOW, max_future=SKEW)
    assert isinstance(error, FieldError) and "reserved" in error.message

    records, rejected = spans_map(flatten(as_request(factory_run_spans(run_id=" team/run 1 "))))
    assert rejected == [] and {r.context.run_id for r in records} == {"team/run 1"}
    records, rejected = spans_map(flatten(as_request(factory_run_spans(run_id="a\u202eb"))))
    assert records == [] and rejected
    assert all("run.id must be at most" in r.reason for r in rejected)
