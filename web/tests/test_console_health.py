"""The operator console's system health page (web.console.views.health, web.console.health):
database, broker, queues and workers, OTLP spans waiting for their run, usage freshness per
tenant; a broker that is down is reported quickly."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import (
    OPERATOR_EMAIL,
    broker_down,
    llm_spend,
    logged_in_client,
    pending_spans_make,
)
from usage.trace_routing.models import PendingSpan

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_health_page_reports_broker_queues_backlog_and_freshness(operator, alpha, beta):
    now = timezone.now()
    llm_spend(alpha, now - timedelta(hours=3), "0.10")
    PendingSpan.objects.create(trace_id="ab" * 16, span_id="cd" * 8, record={})
    page = _text(operator.get("/health/"))
    assert re.search(r'data-testid="database-state">Reachable', page)
    assert re.search(r'data-testid="broker-state">Reachable', page)
    assert re.search(r'data-testid="queue-depth">\d', page)
    assert re.search(r'data-testid="worker-count">\d', page)
    assert re.search(r'data-testid="pending-spans">1<', page)
    freshness = page[page.index('data-testid="freshness-table"') :]
    alpha_row = re.search(r"alpha</span>.*?</tr>", freshness, re.S).group(0)
    beta_row = re.search(r"beta</span>.*?</tr>", freshness, re.S).group(0)
    assert "stale" in alpha_row
    assert "no usage yet" in beta_row


def test_health_page_with_the_broker_down_says_unreachable_quickly(operator):
    with broker_down():
        started = time.perf_counter()
        response = operator.get("/health/")
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < 3
    page = _text(response)
    assert re.search(r'data-testid="broker-state">Unreachable', page)
    assert "not asked: the broker is unreachable" in page
    assert re.search(r'data-testid="database-state">Reachable', page)


def test_the_health_page_shows_waiting_spans_per_sender_and_the_oldest(public_host):
    pending_spans_make("alpha", 3, timedelta(hours=5))
    pending_spans_make("", 2, timedelta(minutes=10))
    page = html.unescape(
        logged_in_client(public_host, OPERATOR_EMAIL).get("/health/").content.decode()
    )
    assert re.search(r'data-testid="pending-spans">5<', page)
    assert re.search(r'data-testid="pending-spans-oldest">5\s+hours', page)
    senders = page[page.index('data-testid="pending-spans-senders"') :]
    assert "alpha: 3 of 100,000" in senders and "platform: 2 of 100,000" in senders
