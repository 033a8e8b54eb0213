"""Run pages (usage.views): run history (filters, sorts, keyset pages, CSV) and active runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from tests.support import logged_in_client, run_finished, run_update, runs_make
from usage import selectors

pytestmark = pytest.mark.django_db


def test_run_history_pages_by_keyset_without_overlap(alpha):
    runs_make(alpha, 60)
    client = logged_in_client(alpha.host, alpha.admin_email)
    first = client.get("/runs/").content.decode()
    ids_first = re.findall(r"<code>(run-\d{3})</code>", first)
    assert len(ids_first) == 50 and ids_first[0] == "run-059"
    next_link = re.search(r'href="\?([^"]+)" data-testid="next-page"', first).group(1)
    second = client.get("/runs/?" + next_link.replace("&amp;", "&")).content.decode()
    ids_second = re.findall(r"<code>(run-\d{3})</code>", second)
    assert ids_second == [f"run-{i:03d}" for i in range(9, -1, -1)]
    assert 'data-testid="next-page"' not in second


def test_run_history_filters_and_csv(alpha):
    runs_make(alpha, 3)
    runs_make(alpha, 2, status="Failed", project="api", prefix="=bad")
    client = logged_in_client(alpha.host, alpha.admin_email)
    failed = client.get("/runs/?status=Failed").content.decode()
    assert "=bad-000" in failed and "run-000" not in failed
    assert "run-001" in client.get("/runs/?q=run-001").content.decode()
    assert "No run matches" in client.get("/runs/?project=nope").content.decode()
    csv_text = b"".join(client.get("/runs.csv?status=Failed").streaming_content).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("run_id,project")
    assert len(lines) == 3
    assert lines[1].startswith("'=bad-001")  # formula-safe


@pytest.mark.parametrize("sort", ["longest", "shortest", "oldest"])
def test_run_history_sorts_and_pages_by_keyset(alpha, sort):
    at = datetime(2026, 10, 1, 8, tzinfo=UTC)
    with schema_context(alpha.schema):
        for n in range(61):
            # Durations repeat (n % 7) so the cursor must break ties by id.
            run_finished(f"r-{n:02d}", "Succeeded", at + timedelta(minutes=n), 1 + n % 7)
        early = at - timedelta(minutes=1)
        run_update("still-running", "Running", early, project="web", requested_at=early)
    client = logged_in_client(alpha.host, alpha.admin_email)
    seen, query = [], f"sort={sort}"
    for _ in range(10):
        page = client.get(f"/runs/?{query}").content.decode()
        seen += re.findall(r"<code>(r-\d\d|still-running)</code>", page)
        following = re.search(r'href="\?([^"]+)" data-testid="next-page"', page)
        if not following:
            break
        query = following.group(1).replace("&amp;", "&")
    with schema_context(alpha.schema):
        expected = [row.run_id for row in selectors.runs_iter(selectors.RunFilters(), sort=sort)]
    assert len(seen) == len(set(seen)) == len(expected)
    assert seen == expected
    minutes = {f"r-{n:02d}": 1 + n % 7 for n in range(61)}
    if sort in ("longest", "shortest"):
        assert "still-running" not in seen  # no duration yet
        durations = [minutes[run_id] for run_id in seen]
        assert durations == sorted(durations, reverse=sort == "longest")
    else:
        assert seen[0] == "still-running" and seen[1:] == sorted(minutes)


def test_null_characters_in_run_filters_do_not_break_the_page(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    for query in ("q=a%00b", "project=%00", "template=x%00"):
        assert client.get(f"/runs/?{query}").status_code == 200
        assert client.get(f"/runs.csv?{query}").status_code == 200


def test_active_runs_page_and_fragment(alpha):
    runs_make(alpha, 2, status="Running")
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/runs/active/").content.decode()
    assert "0 queued · 2 running" in page and 'data-refresh-url="?fragment=1"' in page
    fragment = client.get("/runs/active/?fragment=1").content.decode()
    assert "<html" not in fragment and "run-001" in fragment
