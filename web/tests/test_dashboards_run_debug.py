"""The run page as a debugging view: the error panel (message, type, collapsed stack trace, step
and attempt, the logs around it, the error timeline), the waterfall of jobs with their external
and LLM calls, the logs with a level filter and pages; roles and tenant isolation; the run API's
``errors``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from tests.support import bearer, host_client, key_for, llm_event_in, logged_in_client
from usage.domain.otlp import span_event_id
from usage.domain.runs import JobUpdate, RunUpdate
from usage.models import ExternalCall, Job, Run, RunLog, SpanError
from usage.pricing import pricer_for
from usage.selectors import run_trace
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)
TRACE = "ab" * 16
STACK = (
    'Traceback (most recent call last):\n  File "deploy.py", line 12, in push\nGitError: rejected'
)


def failed_run(run_id: str = "r-1", *, logs: int = 30) -> Run:
    """A failed run (current schema): build failed once then succeeded, deploy failed; calls in
    each job (one LLM call), two span errors and ``logs`` log lines, one a second."""
    runs_ingest(
        updates=[
            RunUpdate(
                0,
                run_id,
                "web",
                "Failed",
                T0 + timedelta(minutes=10),
                started_at=T0,
                finished_at=T0 + timedelta(minutes=10),
                trace_id=TRACE,
                failure_type="deploy_error",
                jobs=(
                    JobUpdate("build", 1, "Failed", T0, "build", T0, T0 + timedelta(minutes=1)),
                    JobUpdate(
                        "build",
                        2,
                        "Succeeded",
                        T0 + timedelta(minutes=2),
                        "build",
                        T0 + timedelta(minutes=1),
                        T0 + timedelta(minutes=3),
                    ),
                    JobUpdate(
                        "deploy",
                        1,
                        "Failed",
                        T0 + timedelta(minutes=9),
                        "deploy",
                        T0 + timedelta(minutes=4),
                        T0 + timedelta(minutes=9),
                        failure_type="deploy_error",
                    ),
                ),
            )
        ]
    )
    run = Run.objects.get(run_id=run_id)
    jobs = {(j.job_id, j.attempt): j for j in Job.objects.filter(run=run)}
    calls = [
        ("1" * 16, jobs[("build", 2)], "llm", "anthropic", "claude-sonnet-4-5", 1, "ok"),
        ("2" * 16, jobs[("build", 2)], "external", "github", "", 2, "ok"),
        ("3" * 16, jobs[("deploy", 1)], "external", "azure_devops", "", 5, "error"),
    ]
    for span_id, job, kind, service, model, minute, status in calls:
        ExternalCall.objects.create(
            span_id=span_id,
            trace_id=TRACE,
            run=run,
            job=job,
            kind=kind,
            service=service,
            model=model,
            started_at=T0 + timedelta(minutes=minute, seconds=10),
            duration_ms=4_500,
            status=status,
            error="HTTP 409" if status == "error" else "",
        )
    for seq, (minute, job, etype, message, stack, source) in enumerate(
        [
            (0.5, jobs[("build", 1)], "", "tests failed", "", "status"),
            (8, jobs[("deploy", 1)], "GitError", "push rejected by remote", STACK, "exception"),
        ]
    ):
        SpanError.objects.create(
            run=run,
            job=job,
            job_ref=job.job_id,
            step_name=job.step_name,
            attempt=job.attempt,
            trace_id=TRACE,
            span_id=f"{seq + 4}" * 16,
            span_name="factory.job.execute",
            source=source,
            occurred_at=T0 + timedelta(minutes=minute),
            type=etype,
            message=message,
            stacktrace=stack,
            fingerprint=f"fp{seq}",
        )
    RunLog.objects.bulk_create(
        RunLog(
            run=run,
            digest=f"{run_id}-{i}",
            time=T0 + timedelta(minutes=7, seconds=50 + i),
            level="ERROR" if i == 10 else ("WARN" if i % 7 == 0 else "INFO"),
            message=f"line {i}",
            job_ref="deploy",
            step_name="deploy",
            attributes={"workerId": "w-3"} if i == 10 else {},
        )
        for i in range(logs)
    )
    return run


def waterfall_of(page: str) -> dict:
    data = re.search(r'<script id="timeline-data"[^>]*>(.*?)</script>', page, re.S)
    return json.loads(data.group(1))


def test_a_failed_run_shows_its_error_logs_and_waterfall(alpha):
    with schema_context(alpha.schema):
        failed_run()
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    # The page's title is the run's, and its logs section is drawn once, in the page.
    assert re.search(r"<title>Run r-1 · Alpha Inc</title>", page)
    assert page.count('id="logs"') == 1
    panel = page[page.index('data-testid="error-panel"') : page.index("Waterfall")]
    # The exception that failed the run, with its step and attempt; its stack trace collapsed.
    assert '<strong class="error">GitError</strong>: push rejected by remote' in panel
    assert "step <strong>deploy</strong>, attempt 1" in panel
    assert '<details class="stacktrace"><summary>Stack trace</summary><pre>Traceback' in panel
    # The logs around it (08:08:00): eight lines before and eight after.
    around = re.findall(r"line (\d+)<", panel[: panel.index("Error timeline")])
    assert around == [str(i) for i in range(3, 19)]
    assert "w-3" in panel  # the context of a log line
    # Every error of the run, in time order.
    timeline = panel[panel.index('data-testid="error-timeline"') :]
    assert timeline.index("tests failed") < timeline.index("push rejected by remote")
    figure = waterfall_of(page)
    ticks = figure["layout"]["yaxis"]["ticktext"]
    assert ticks == [
        "build #1",
        "build #2",
        "\u21b3 LLM claude-sonnet-4-5",
        "\u21b3 github",
        "deploy #1",
        "\u21b3 azure_devops",
    ]
    errors = next(t for t in figure["data"] if t["name"] == "error")
    assert sorted(errors["y"]) == [0, 4, 5]  # the failed attempts and the failed call
    llm = next(t for t in figure["data"] if t["name"] == "LLM call")
    assert llm["text"] == ["4.5 s"]


def test_a_run_without_errors_or_logs_says_so(alpha):
    with schema_context(alpha.schema):
        runs_ingest(updates=[RunUpdate(0, "quiet", "web", "Running", T0, started_at=T0)])
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/quiet/").content.decode()
    assert 'data-testid="error-panel"' not in page
    assert "No log record for this run." in page and "No job reported yet." in page


def test_logs_filter_by_level_and_page(alpha):
    with schema_context(alpha.schema):
        failed_run(logs=120)
    client = logged_in_client(alpha.host, alpha.admin_email)

    def section(query: str) -> str:
        page = client.get("/runs/r-1/" + query).content.decode()
        return page[page.index('id="logs"') :]

    first = section("")
    assert "page 1 · 120 records" in first and 'data-testid="logs-next"' in first
    assert re.findall(r"line (\d+)<", first)[:2] == ["0", "1"]
    third = section("?page=3")
    assert "page 3" in third and "line 119<" in third and "logs-next" not in third
    warn = section("?level=WARN")
    assert "19 records" in warn  # 18 WARN lines (every 7th) and the ERROR one
    assert "line 1<" not in warn
    assert "1 record" in section("?level=ERROR") and "line 10<" in section("?level=ERROR")
    assert "page 3" in section("?page=999999&level=bogus")  # the last page, every level


def test_the_waterfall_is_bounded(alpha, monkeypatch):
    monkeypatch.setattr(run_trace, "WATERFALL_MAX_SPANS", 5)
    with schema_context(alpha.schema):
        failed_run()
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    assert "The first 5 of 6 spans are shown." in page
    assert len(waterfall_of(page)["layout"]["yaxis"]["ticktext"]) == 5


def test_roles_and_tenants(alpha, beta, people):
    with schema_context(alpha.schema):
        failed_run()
    assert people["member"].get("/runs/r-1/").status_code == 200
    assert people["finance"].get("/runs/r-1/").status_code == 403
    # Beta's people never see alpha's run, its errors or its logs.
    beta_admin = logged_in_client(beta.host, beta.admin_email)
    assert beta_admin.get("/runs/r-1/").status_code == 404
    with schema_context(beta.schema):
        failed_run("r-beta", logs=2)
    page = people["admin"].get("/runs/r-beta/")
    assert page.status_code == 404


def test_the_run_api_lists_the_last_errors(alpha, beta):
    with schema_context(alpha.schema):
        failed_run()
    _, key = key_for(alpha, ["read"])
    body = host_client(alpha.host).get("/api/v1/runs/r-1", **bearer(key)).json()
    assert [(e["type"], e["step_name"], e["attempt"]) for e in body["errors"]] == [
        ("", "build", 1),
        ("GitError", "deploy", 1),
    ]
    assert body["errors"][1]["occurred_at"] == "2026-11-01T08:08:00Z"
    assert "stacktrace" not in body["errors"][1]  # short: the page has the stack trace
    assert body["jobs"] and body["external_calls"]  # the rest of the answer is unchanged
    _, beta_key = key_for(beta, ["read"])
    assert host_client(beta.host).get("/api/v1/runs/r-1", **bearer(beta_key)).status_code == 404


def test_llm_calls_stored_once_join_the_older_calls_in_the_waterfall_and_the_api(
    alpha, beta, monkeypatch
):
    """LLM calls traced since migration usage 0015 are their usage events (with a duration),
    those traced before are ExternalCall rows of kind llm: the waterfall and the run API show
    both in start order (a call starts its duration before it ends), mark a traced call whose
    span reported an error, count both when cut, and leave out calls without a duration (sent
    to the REST API: no timing)."""
    with schema_context(alpha.schema):
        run = failed_run()
        deploy = Job.objects.get(run=run, job_id="deploy")
        traced = {  # span id: model, end, duration
            "7" * 16: ("gpt-4.1", T0 + timedelta(minutes=6), 30_000),  # starts 08:05:30
            "8" * 16: ("gpt-4.1-mini", T0 + timedelta(minutes=4, seconds=20), 10_000),  # 08:04:10
        }
        events = [
            llm_event_in(
                span_event_id(TRACE, span),
                end,
                project="web",
                run_id="r-1",
                job_id="deploy",
                model=model,
                duration_ms=duration,
            )
            for span, (model, end, duration) in traced.items()
        ]
        events.append(
            llm_event_in("rest-1", T0 + timedelta(minutes=5), project="web", run_id="r-1")
        )
        events_ingest(events=events, pricer=pricer_for(alpha.tenant))
        SpanError.objects.create(
            run=run,
            job=deploy,
            trace_id=TRACE,
            span_id="8" * 16,
            span_name="chat gpt-4.1-mini",
            source="exception",
            occurred_at=T0 + timedelta(minutes=4, seconds=20),
            type="RateLimitError",
            message="429",
            fingerprint="fp-llm",
        )
        assert run_trace.run_calls_count(run) == 5
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    figure = waterfall_of(page)
    assert figure["layout"]["yaxis"]["ticktext"] == [
        "build #1",
        "build #2",
        "\u21b3 LLM claude-sonnet-4-5",
        "\u21b3 github",
        "deploy #1",
        "\u21b3 LLM gpt-4.1-mini",
        "\u21b3 azure_devops",
        "\u21b3 LLM gpt-4.1",
    ]
    errors = next(t for t in figure["data"] if t["name"] == "error")
    assert sorted(errors["y"]) == [0, 4, 5, 6]
    # The page's table of service calls: the external ones only.
    table = page[page.index("<th>Service</th>") :]
    table = table[: table.index("</table>")]
    assert re.findall(r"<tr><td>([^<]+)</td>", table) == ["github", "azure_devops"]
    assert len(next(t for t in figure["data"] if t["name"] == "LLM call")["y"]) == 3

    _, key = key_for(alpha, ["read"])
    body = host_client(alpha.host).get("/api/v1/runs/r-1", **bearer(key)).json()
    assert [
        (c["kind"], c["model"] or c["service"], c["status"]) for c in body["external_calls"]
    ] == [
        ("llm", "claude-sonnet-4-5", "ok"),
        ("external", "github", "ok"),
        ("llm", "gpt-4.1-mini", "error"),
        ("external", "azure_devops", "error"),
        ("llm", "gpt-4.1", "ok"),
    ]
    assert body["external_calls_total"] == 5
    mini = body["external_calls"][2]
    assert mini == {
        "service": "openai",
        "kind": "llm",
        "model": "gpt-4.1-mini",
        "started_at": "2026-11-01T08:04:10Z",
        "duration_ms": 10_000,
        "status": "error",
        "span_id": "8" * 16,
    }
    # The API lists the first calls of a run that made more than API_CALLS_MAX, with the count.
    monkeypatch.setattr(run_trace, "API_CALLS_MAX", 2)
    cut = host_client(alpha.host).get("/api/v1/runs/r-1", **bearer(key)).json()
    assert cut["external_calls"] == body["external_calls"][:2]
    assert cut["external_calls_total"] == 5
    monkeypatch.undo()

    monkeypatch.setattr(run_trace, "WATERFALL_MAX_SPANS", 6)
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    assert "The first 6 of 8 spans are shown." in page
    # Another tenant's run of the same id shows none of these calls.
    with schema_context(beta.schema):
        failed_run()
    _, beta_key = key_for(beta, ["read"])
    beta_body = host_client(beta.host).get("/api/v1/runs/r-1", **bearer(beta_key)).json()
    assert [c["kind"] for c in beta_body["external_calls"]] == ["llm", "external", "external"]


def test_a_span_stored_both_ways_during_a_rolling_deploy_is_one_call(alpha):
    """An event with a duration whose span also has an ExternalCall of kind llm (a re-send that
    reached a worker still running the code before usage 0015) is listed and counted once."""
    with schema_context(alpha.schema):
        run = failed_run()
        end = T0 + timedelta(minutes=6)
        events_ingest(
            events=[
                llm_event_in(
                    span_event_id(TRACE, "7" * 16),
                    end,
                    project="web",
                    run_id="r-1",
                    job_id="deploy",
                    duration_ms=30_000,
                ),
                llm_event_in(
                    span_event_id("ef" * 16, "7" * 16),  # the same span id in another trace
                    end,
                    project="web",
                    run_id="r-1",
                    job_id="deploy",
                    duration_ms=1_000,
                ),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        ExternalCall.objects.create(
            span_id="7" * 16,
            trace_id=TRACE,
            run=run,
            job=Job.objects.get(run=run, job_id="deploy"),
            kind="llm",
            service="openai",
            model="gpt-4.1",
            started_at=end - timedelta(seconds=30),
            duration_ms=30_000,
            status="ok",
        )
        calls = run_trace.run_calls(run)
        assert run_trace.run_calls_count(run) == len(calls) == 5
    assert [(c.kind, c.duration_ms) for c in calls if c.span_id == "7" * 16] == [
        ("llm", 30_000),
        ("llm", 1_000),
    ]


def test_llm_calls_without_a_duration_are_said_not_drawn(alpha):
    """Usage events sent without a duration (the REST API's usually are) have no place in the
    waterfall: the page says how many are left out instead of a chart titled "LLM calls" that
    draws none (a review found nine calls in the table and none drawn, with no word why)."""
    with schema_context(alpha.schema):
        failed_run()  # one LLM call with its timing
        events_ingest(
            events=[
                llm_event_in(f"untimed-{n}", T0 + timedelta(minutes=2), run_id="r-1")
                for n in range(2)
            ],
            pricer=pricer_for(alpha.tenant),
        )
        assert run_trace.untimed_llm_calls(Run.objects.get(run_id="r-1")) == 2
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    assert "2 LLM calls of this run came without a duration and are not drawn here" in page
    assert len(next(t for t in waterfall_of(page)["data"] if t["name"] == "LLM call")["y"]) == 1
    with schema_context(alpha.schema):
        runs_ingest(updates=[RunUpdate(0, "timed", "web", "Running", T0, started_at=T0)])
    quiet = logged_in_client(alpha.host, alpha.admin_email).get("/runs/timed/").content.decode()
    assert 'data-testid="untimed-calls"' not in quiet
