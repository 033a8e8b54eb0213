"""Migrating usage 0015 back keeps the LLM calls' timings: its reverse SQL writes every LLM call
stored since as the ExternalCall row of kind llm the code before read, so the run's calls read the
same once the events' durations are gone."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.support import key_for
from usage.models import ExternalCall, Run
from usage.selectors.run_trace import run_calls
from usage.tests.otlp_spans import factory_run_spans, failing_run_spans
from usage.tests.test_api_traces import post_spans

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("usage.migrations.0015_llm_call_duration")


def test_the_reverse_writes_each_llm_call_as_the_code_before_read_it(alpha):
    _, key = key_for(alpha, ["ingest"])
    post_spans(alpha.host, key, factory_run_spans(run_id="back-1", tenant="alpha"))
    post_spans(alpha.host, key, failing_run_spans(run_id="back-2", tenant="alpha"))
    with schema_context(alpha.schema):
        runs = list(Run.objects.filter(run_id__in=["back-1", "back-2"]).order_by("run_id"))
        before = [run_calls(run) for run in runs]
        assert not ExternalCall.objects.filter(kind="llm").exists()
        assert sum(c.kind == "llm" for calls in before for c in calls) == 4
        assert any(c.kind == "llm" and c.status == "error" and c.error for c in before[1])
        with connection.cursor() as cursor:
            cursor.execute(MIGRATION.CALLS_BACK)
            cursor.execute(MIGRATION.CALLS_BACK)  # ON CONFLICT: a second run adds nothing
            cursor.execute("UPDATE usage_llmusageevent SET duration_ms = NULL")
        assert ExternalCall.objects.filter(kind="llm").count() == 4
        assert [run_calls(run) for run in runs] == before
