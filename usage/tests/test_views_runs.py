"""Run pages (usage.views): run history (filters, sorts, keyset pages, CSV) and active runs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.tenants.models import Tenant
from tests.support import (
    RUNS_START,
    llm_event_in,
    logged_in_client,
    response_text,
    run_finished,
    run_update,
    runs_make,
)
from usage import selectors
from usage.models import Run, RunAllocatedCost
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

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


def _ids(page: str) -> list[str]:
    return re.findall(r"<code>([^<]+)</code></a></td>", page)


def _link(page: str, testid: str) -> str | None:
    found = re.search(rf'href="\?([^"]*)" data-testid="{testid}"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def _costed_runs(tenant) -> None:  # type: ignore[no-untyped-def]
    """61 runs (``run-000``...): AI cost in ties of seven (n % 7 cents), infrastructure in ties
    of five ((n % 5) dollars), durations 30 s; ``live-000`` and ``live-001`` still running."""
    runs_make(tenant, 61)
    with schema_context(tenant.schema):
        for n in range(2):  # requested with the first finished run: ties on time, no duration
            run_update(
                f"live-{n:03d}", "Running", RUNS_START, project="web", requested_at=RUNS_START
            )
    events = [
        llm_event_in(f"e-{n}", RUNS_START, project="web", run_id=f"run-{n:03d}", cost=cents)
        for n in range(61)
        if (cents := Decimal(n % 7) / 100)
    ]
    with schema_context(tenant.schema):
        events_ingest(events=events, pricer=pricer_for(tenant.tenant))
        RunAllocatedCost.objects.bulk_create(
            RunAllocatedCost(run=run, month=date(2026, 11, 1), amount=Decimal(run.pk % 5))
            for run in Run.objects.filter(run_id__startswith="run-")
        )


def _walk(client, start: str, testid: str) -> tuple[list[str], str]:  # type: ignore[no-untyped-def]
    """The run ids of the pages from ``start`` following ``testid`` links, and the last query."""
    seen, query = [], start
    for _ in range(20):
        page = client.get(f"/runs/?{query}").content.decode()
        seen.append(_ids(page))
        following = _link(page, testid)
        if following is None:
            return [run for ids in seen for run in ids], query
        query = following
    raise AssertionError("no last page")


@pytest.mark.parametrize("sort", sorted(selectors.RUN_SORTS))
def test_every_sort_pages_both_ways_and_its_csv_keeps_the_order(alpha, sort):
    _costed_runs(alpha)
    client = logged_in_client(alpha.host, alpha.admin_email)
    with schema_context(alpha.schema):
        expected = [row.run_id for row in selectors.runs_iter(selectors.RunFilters(), sort=sort)]
        rows = list(selectors.runs_iter(selectors.RunFilters(), sort=sort))
    column, descending = selectors.RUN_SORTS[sort]
    attribute = {"token_cost": "ai_cost"}.get(column, column)
    values = [(getattr(r, attribute), r.pk) for r in rows]
    assert values == sorted(values, reverse=descending)  # ties broken by id, the same way
    forward, last = _walk(client, f"sort={sort}", "next-page")
    assert forward == expected  # every run once, in order (ties across page ends too)
    assert len(expected) == (61 if column == "duration_ms" else 63)
    backward, first = _walk(client, last, "previous-page")
    pages = [forward[i : i + 50] for i in range(0, len(forward), 50)]
    assert backward == [run for page in reversed(pages) for run in page]
    assert _link(client.get(f"/runs/?{first}").content.decode(), "first-page") is None
    last_page = client.get(f"/runs/?{last}").content.decode()
    assert _ids(client.get(f"/runs/?{_link(last_page, 'first-page')}").content.decode()) == pages[0]
    csv_text = b"".join(client.get(f"/runs.csv?sort={sort}").streaming_content).decode()
    assert [line.split(",")[0] for line in csv_text.splitlines()[1:]] == expected


def test_sortable_headers_link_each_cost_column_both_ways(alpha):
    runs_make(alpha, 2)
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/runs/?status=succeeded").content.decode()
    assert _link(page, "sort-total_cost") == "status=succeeded&sort=costliest"
    assert _link(page, "sort-ai_cost") == "status=succeeded&sort=ai_costliest"
    assert _link(page, "sort-infra_cost") == "status=succeeded&sort=infra_costliest"
    assert _link(page, "sort-requested") == "status=succeeded&sort=oldest"  # newest is current
    again = client.get("/runs/?sort=ai_costliest").content.decode()
    assert _link(again, "sort-ai_cost") == "sort=ai_cheapest"
    assert 'aria-sort="descending"><a href="?sort=ai_cheapest" data-testid="sort-ai_cost"' in again


def test_run_count_exact_then_capped(alpha):
    runs_make(alpha, 12)
    runs_make(alpha, 3, status="Failed", prefix="bad")
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert '"run-count">15 runs<' in client.get("/runs/").content.decode()
    assert '"run-count">3 runs<' in client.get("/runs/?status=failed").content.decode()
    assert '"run-count">1 run<' in client.get("/runs/?q=run-011").content.decode()
    with schema_context(alpha.schema):
        assert selectors.runs_count(selectors.RunFilters(), cap=10) == selectors.RunCount(10, True)
        assert selectors.runs_count(selectors.RunFilters(), cap=15) == selectors.RunCount(15, False)


def test_search_finds_any_part_of_a_run_id(alpha):
    with schema_context(alpha.schema):
        for n, run_id in enumerate(["9f3a584eb41c", "584eb4-first", "other-584EB4", "abc"]):
            run_update(run_id, "Succeeded", RUNS_START + timedelta(minutes=n), project="web")
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/runs/?q=584eb4").content.decode()
    assert sorted(_ids(page)) == ["584eb4-first", "9f3a584eb41c"]  # ids are case-sensitive
    assert _ids(client.get("/runs/?q=ab").content.decode()) == ["abc"]  # short: a prefix
    assert _ids(client.get("/runs/?q=%25").content.decode()) == []  # LIKE wildcards are text


def test_filters_in_any_letter_case_and_as_selects(alpha):
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with schema_context(alpha.schema):
        run_finished("f-1", "Failed", at, 5, run_type="BugFix", failure_type="Timeout")
        run_finished("ok-1", "Succeeded", at, 5, run_type="feature")
    client = logged_in_client(alpha.host, alpha.admin_email)
    for query in ("status=FAILED", "status=failed", "run_type=bugfix", "failure_type=timeout"):
        page = client.get(f"/runs/?{query}").content.decode()
        assert _ids(page) == ["f-1"], query
        assert "is not a run status" not in page
    page = client.get("/runs/?failure_type=TIMEOUT").content.decode()
    assert '<option value="Timeout" selected>' in page  # the select shows the stored spelling
    assert '<select id="f-step" name="step">' in page
    assert '<select id="f-failure" name="failure_type">' in page
    assert "is not a run status" in client.get("/runs/?status=fialed").content.decode()
    csv_text = b"".join(client.get("/runs.csv?status=failed").streaming_content).decode()
    assert [line.split(",")[0] for line in csv_text.splitlines()[1:]] == ["f-1"]


def test_times_in_the_tenant_zone_and_range_presets(alpha):
    with schema_context(alpha.schema):
        Tenant.objects.filter(pk=alpha.tenant.pk).update(timezone="Europe/Berlin")
    alpha.tenant.refresh_from_db()
    now = timezone.now()
    with schema_context(alpha.schema):
        run_update(
            "recent",
            "Running",
            now - timedelta(hours=1),
            project="web",
            requested_at=now - timedelta(hours=1),
        )
        run_update(
            "old",
            "Running",
            now - timedelta(days=40),
            project="web",
            requested_at=now - timedelta(days=40),
        )
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/runs/?range=7d").content.decode()
    assert _ids(page) == ["recent"]
    assert "times in Europe/Berlin" in page and "Requested (Europe/Berlin)" in page
    local = (now - timedelta(hours=1)).astimezone(ZoneInfo("Europe/Berlin"))
    assert f"{local:%Y-%m-%d %H:%M}</time>" in page
    assert sorted(_ids(client.get("/runs/?range=90d").content.decode())) == ["old", "recent"]
    bad = client.get("/runs/?range=fortnight")
    assert bad.status_code == 200 and "is not a range" in bad.content.decode()
    csv_text = b"".join(client.get("/runs.csv?range=7d").streaming_content).decode()
    assert [line.split(",")[0] for line in csv_text.splitlines()[1:]] == ["recent"]


def test_run_history_roles_and_isolation(alpha, beta, people):
    runs_make(alpha, 2, prefix="alpha")
    runs_make(beta, 2, prefix="beta")
    for role, status in (("admin", 200), ("member", 200), ("finance", 403)):
        assert people[role].get("/runs/?sort=costliest").status_code == status
        assert people[role].get("/runs.csv?sort=cheapest").status_code == status
    page = people["member"].get("/runs/?q=000").content.decode()
    assert _ids(page) == ["alpha-000"] and '"run-count">1 run<' in page
    csv_text = b"".join(people["member"].get("/runs.csv").streaming_content).decode()
    assert "beta-" not in csv_text and "alpha-001" in csv_text


def test_bad_cursors_start_over_at_the_first_page(alpha):
    runs_make(alpha, 3)
    client = logged_in_client(alpha.host, alpha.admin_email)
    for query in ("before=nonsense", "after=1_x", "before=2026-11-01T08:00:00_1&sort=costliest"):
        response = client.get(f"/runs/?{query}")
        assert response.status_code == 200
        assert _ids(response.content.decode()) == ["run-002", "run-001", "run-000"]


def test_model_filter_lists_runs_that_called_the_model_in_any_letter_case(alpha):
    """Drill-down from a model (overview, usage, costs): the runs with an LLM call of it, on the
    page, in its CSV and in the API."""
    from tests.support import add_llm_call, bearer, host_client, key_for

    runs_make(alpha, 3)
    with schema_context(alpha.schema):
        first, second = Run.objects.get(run_id="run-000"), Run.objects.get(run_id="run-001")
        at = timezone.now() - timedelta(hours=1)
        add_llm_call(
            project=first.project,
            run=first,
            event_id="m1",
            at=at,
            cost=Decimal("0.01"),
            model="gpt-4.1-mini",
        )
        add_llm_call(
            project=second.project,
            run=second,
            event_id="m2",
            at=at,
            cost=Decimal("0.01"),
            model="claude-x",
        )
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/runs/?model=GPT-4.1-MINI").content.decode()
    assert _ids(page) == ["run-000"]
    assert 'value="gpt-4.1-mini" selected' in page  # offered as a select, spelled as stored
    csv_text = b"".join(client.get("/runs.csv?model=gpt-4.1-mini").streaming_content).decode()
    assert "run-000" in csv_text and "run-001" not in csv_text and "run-002" not in csv_text
    auth = bearer(key_for(alpha, ["read"])[1])
    api = host_client(alpha.host).get("/api/v1/runs?model=Claude-X", **auth).json()
    assert [r["run_id"] for r in api["results"]] == ["run-001"]


def test_a_first_day_after_the_last_is_said_and_left_out(alpha):
    """As the other pages do with a range they cannot use: the reason on the page and the
    runs without the days (it listed none, with no word why)."""
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with schema_context(alpha.schema):
        run_finished("d-1", "Succeeded", at, 5)
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(client.get("/runs/?from=2026-11-10&to=2026-11-01"))
    assert "The first day (2026-11-10) is after the last (2026-11-01)" in page
    assert _ids(page) == ["d-1"]


def test_an_empty_run_history_says_why(alpha):
    """ "No run matches these filters" with no filter set, or for running runs sorted by
    duration (which lists finished runs only), misled (a UX review found both)."""
    from datetime import UTC, datetime

    from django_tenants.utils import schema_context

    from tests.support import run_update

    client = logged_in_client(alpha.host, alpha.admin_email)

    def said(query: str) -> str:
        page = client.get(f"/runs/?{query}").content.decode()
        return page.split('data-testid="no-runs">')[1].split("</p>")[0]

    assert said("").startswith("No runs yet")
    with schema_context(alpha.schema):
        run_update("live", "Running", datetime.now(UTC))
    assert "sorting by duration lists finished runs only" in said("status=Running&sort=longest")
    assert said("sort=longest").startswith("No finished run yet: sorting by duration")
    assert said("status=Failed") == "No run matches these filters."
