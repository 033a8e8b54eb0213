"""The run guard kept current from the ledger: projections follow ingest, the state rises once
per crossing (one ``run.over_budget`` alert and one on-call incident routed by severity), falls
back when the budget is raised, and a finished run keeps its final figures."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.models import Alert
from alerts.oncall.models import Incident, Page, Route
from billing import services, tasks
from billing.models import RunBudget, RunGuard
from billing.selectors.guard import reservation, run_guard
from billing.selectors.quotes import step_expectations
from billing.tests.guard_data import (
    TEMPLATE,
    _job,
    history_make,
    live_run,
    run_with_jobs,
    spend,
)
from usage.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def guarded(alpha):  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        history_make()
        live_run()
        yield alpha


def test_projection_follows_ingest_and_alerts_once_per_crossing(guarded) -> None:  # type: ignore[no-untyped-def]
    Route.objects.all().delete()  # only these two routes
    Route.objects.create(
        name="pager", channel="pagerduty", severities=["critical"], routing_key="k"
    )
    Route.objects.create(
        name="chat", channel="slack", severities=["warning"], target="https://x.test/h"
    )
    budget = services.run_budget_set(template=TEMPLATE, amount=Decimal(5), warn_percent=80)

    services.run_guards_refresh()
    guard = RunGuard.objects.get(run__run_id="live-1")
    assert (guard.cost_so_far, guard.expected_remaining, guard.projected_cost) == (2, 2, 4)
    assert guard.state == "warn" and guard.limit == Decimal(5) and guard.budget == budget

    def alerts():  # type: ignore[no-untyped-def]
        return Alert.objects.filter(kind=Alert.Kind.RUN_BUDGET).order_by("id")

    assert [a.severity for a in alerts()] == ["warning"]
    assert alerts()[0].data["event"] == "run.over_budget"
    assert alerts()[0].data["projected"] == "4.00" and alerts()[0].data["limit"] == "5.00"
    warn_incident = Incident.objects.get(rule="run.over_budget")
    assert warn_incident.severity == "warning"
    assert [p.route.name for p in Page.objects.filter(incident=warn_incident)] == ["chat"]

    now = timezone.now()
    spend("live-1", "live-1-code", "2", "live-1-code-e1", now)  # code's $3 reached: nothing left
    services.run_guards_refresh()
    services.run_guards_refresh()  # evaluating again changes nothing
    assert alerts().count() == 1
    spend("live-1", "live-1-code", "1.5", "live-1-code-e2", now)  # $5.50 > $5
    services.run_guards_refresh()
    spend("live-1", "live-1-code", "3", "live-1-code-e3", now)
    services.run_guards_refresh()
    guard.refresh_from_db()
    assert guard.state == "stop" and guard.projected_cost == Decimal("8.5")
    assert [a.severity for a in alerts()] == ["warning", "critical"]
    stop_incident = Incident.objects.exclude(pk=warn_incident.pk).get(rule="run.over_budget")
    assert stop_incident.severity == "critical"
    assert [p.route.name for p in Page.objects.filter(incident=stop_incident)] == ["pager"]

    # The budget raised: back to ok, the incidents resolve; a new rise is a new crossing.
    services.run_budget_set(template=TEMPLATE, amount=Decimal(100), budget=budget)
    services.run_guards_refresh()
    guard.refresh_from_db()
    assert guard.state == "ok"
    assert set(Incident.objects.values_list("state", flat=True)) == {"resolved"}
    services.run_budget_set(template=TEMPLATE, amount=Decimal(8), budget=budget)
    services.run_guards_refresh()
    assert alerts().count() == 3


def test_p90_multiple_and_finished_run_final_figures(guarded) -> None:  # type: ignore[no-untyped-def]
    services.run_budget_set(template=TEMPLATE, basis="p90_multiple", multiple=Decimal("1.5"))
    answer = run_guard("live-1")
    assert answer is not None and answer.quote is not None
    assert answer.quote.p90 == Decimal(4) and answer.quote.runs >= 10
    assert answer.evaluation.limit == Decimal(6) and answer.state == "ok"
    services.run_guards_refresh()
    assert reservation().runs == 1 and reservation().amount == Decimal(2)

    run_with_jobs("live-1", "Succeeded", timezone.now(), ())
    services.run_guards_refresh()
    guard = RunGuard.objects.get(run__run_id="live-1")
    assert guard.finished and guard.expected_remaining == 0 and guard.projected_cost == 2
    assert reservation().runs == 0
    final = run_guard("live-1")
    assert final is not None and final.finished and final.evaluation.projected_total == 2


def test_run_without_budget_is_ok_with_no_limit(guarded) -> None:  # type: ignore[no-untyped-def]
    services.run_budget_set(project="web", template="another", amount=Decimal(1))
    answer = run_guard("live-1")
    assert answer is not None and answer.budget is None
    assert answer.state == "ok" and answer.evaluation.limit is None
    assert services.run_guards_refresh() == 0  # nothing stored for unguarded runs
    assert not RunGuard.objects.exists()
    assert not RunBudget.objects.filter(template=TEMPLATE).exists()


def _history(template: str, steps_of: list[dict[str, str]], *, prefix: str) -> None:
    """Finished runs of ``template``, run i with the steps (name -> cost) ``steps_of[i]``."""
    now = timezone.now()
    for i, steps in enumerate(steps_of):
        at = now - timedelta(days=2, minutes=20 * i)
        run_id = f"{prefix}-{i:03d}"
        jobs = tuple(
            _job(f"{run_id}-{step}", step, "Succeeded", at + timedelta(minutes=3 * n))
            for n, step in enumerate(steps)
        )
        run_with_jobs(run_id, "Succeeded", at, jobs, template=template)
        for step, cost in steps.items():
            spend(run_id, f"{run_id}-{step}", cost, f"{run_id}-{step}-e", at + timedelta(minutes=1))


def test_an_optional_step_counts_by_its_share_of_runs(alpha) -> None:  # type: ignore[no-untyped-def]
    """review happens in 3 of 10 finished runs, $10 each time: $3 expected before it starts, the
    rest of its $10 once it runs; the guarded run's own review spend moves no expectation."""
    with schema_context(alpha.schema):
        _history(
            "tpl-opt",
            [{"plan": "1", "review": "10"} if i < 3 else {"plan": "1"} for i in range(10)],
            prefix="opt",
        )
        at = timezone.now() - timedelta(minutes=30)
        run_with_jobs("opt-live", "Running", at, (_job("opt-live-plan", "plan", "Succeeded", at),),
                      template="tpl-opt")  # fmt: skip
        spend("opt-live", "opt-live-plan", "1", "opt-live-plan-e", at)
        services.run_budget_set(template="tpl-opt", amount=Decimal(100))
        steps = step_expectations(template="tpl-opt")
        assert (steps["review"].expected_cost, steps["review"].share) == (10, Decimal("0.3"))
        assert (steps["plan"].runs, steps["plan"].share) == (10, 1)
        answer = run_guard("opt-live")
        assert answer is not None
        assert (answer.evaluation.expected_remaining, answer.evaluation.projected_total) == (3, 4)

        review = _job("opt-live-review", "review", "Running", at + timedelta(minutes=5))
        run_with_jobs("opt-live", "Running", at, (review,), template="tpl-opt")
        spend("opt-live", "opt-live-review", "4", "opt-live-review-e", at + timedelta(minutes=6))
        cache.clear()
        assert step_expectations(template="tpl-opt")["review"] == steps["review"]
        answer = run_guard("opt-live")
        assert answer is not None
        assert (answer.evaluation.expected_remaining, answer.evaluation.projected_total) == (6, 11)


def test_a_p90_multiple_limit_is_frozen_while_the_run_lives(guarded) -> None:  # type: ignore[no-untyped-def]
    budget = services.run_budget_set(
        template=TEMPLATE, basis="p90_multiple", multiple=Decimal("1.5")
    )
    services.run_guards_refresh()
    guard = RunGuard.objects.get(run__run_id="live-1")
    assert (guard.limit, guard.state) == (Decimal(6), "ok")
    # History moves: 24 dearer runs finish; the quote's P90 rises, the run's limit does not.
    _history(TEMPLATE, [{"plan": "10", "code": "20"}] * 24, prefix="dear")
    cache.clear()
    answer = run_guard("live-1")
    assert answer is not None and answer.quote is not None and answer.quote.p90 > 4
    assert answer.evaluation.limit == Decimal(6)
    services.run_guards_refresh()
    guard.refresh_from_db()
    assert guard.limit == Decimal(6)
    # The budget changed: the run is judged afresh, on today's quote.
    services.run_budget_set(
        template=TEMPLATE, basis="p90_multiple", multiple=Decimal(2), budget=budget
    )
    services.run_guards_refresh()
    guard.refresh_from_db()
    assert guard.limit == (answer.quote.p90 * 2).quantize(Decimal("0.01"))


def test_incidents_resolve_on_escalation_and_when_the_run_ends(guarded) -> None:  # type: ignore[no-untyped-def]
    services.run_budget_set(template=TEMPLATE, amount=Decimal(5), warn_percent=80)
    services.run_guards_refresh()

    def open_states() -> list[str]:
        incidents = Incident.objects.filter(rule="run.over_budget", state__in=["pending", "firing"])
        return sorted(i.labels["state"] for i in incidents)

    assert open_states() == ["warn"]
    spend("live-1", "live-1-code", "4", "live-1-code-e1", timezone.now())  # $6 > $5
    services.run_guards_refresh()
    assert open_states() == ["stop"]  # the warn incident resolved when stop replaced it
    warn = Incident.objects.get(rule="run.over_budget", labels__state="warn")
    assert warn.state == "resolved"
    assert Page.objects.filter(incident=warn, event="resolve").exists()

    run_with_jobs("live-1", "Failed", timezone.now(), ())  # ends, still over its limit
    services.run_guards_refresh()
    guard = RunGuard.objects.get(run__run_id="live-1")
    assert guard.finished and guard.state == "stop"
    assert open_states() == []


def test_no_pass_without_budgets_and_no_save_when_nothing_changed(
    guarded, django_capture_on_commit_callbacks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    sent: list[str] = []

    def enqueue(task, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if "run_guards" in task.name:  # the forecast's own refresh is not the guard's
            sent.append(task.name)

    monkeypatch.setattr(services, "enqueue", enqueue)
    with django_capture_on_commit_callbacks(execute=True):
        spend("live-1", "live-1-code", "0.5", "live-1-code-e1", timezone.now())
        run_with_jobs("live-1", "Succeeded", timezone.now(), ())
    assert sent == []  # no run budget: no guard pass at all
    run_with_jobs("live-2", "Running", timezone.now(), ())
    services.run_budget_set(template=TEMPLATE, amount=Decimal(50))
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        spend("live-2", "live-2-x", "0.5", "live-2-e1", timezone.now())
    assert sent == ["billing.tasks.run_guards_refresh_tenant"]

    # live-2 active; live-1 finished minutes ago (the sweep gives it final figures)
    assert services.run_guards_refresh() == 2
    before = dict(RunGuard.objects.values_list("run__run_id", "updated_at"))
    spend("live-1", "live-1-code", "0.5", "live-1-code-e2", timezone.now())  # after its end
    assert services.run_guards_refresh() == 1  # live-1's figures are final: not evaluated again
    assert dict(RunGuard.objects.values_list("run__run_id", "updated_at")) == before


def test_a_run_finishing_between_passes_gets_its_final_figures(
    guarded, django_capture_on_commit_callbacks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Never evaluated while active (no pass ran), over its limit when it ends: the finish pass
    stores its final figures and raises the alert once."""
    services.run_budget_set(template=TEMPLATE, amount=Decimal("1.50"))
    sent: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(
        services, "enqueue", lambda task, **kw: sent.append((task.name, kw.get("args", ())))
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_with_jobs("live-1", "Succeeded", timezone.now(), ())
    run_pk = Run.objects.get(run_id="live-1").pk
    assert ("billing.tasks.run_guards_finish_tenant", ([run_pk],)) in sent
    assert not RunGuard.objects.exists()
    assert tasks.run_guards_finish_tenant([run_pk]) == 1
    guard = RunGuard.objects.get(run_id=run_pk)
    assert guard.finished and guard.state == "stop" and guard.projected_cost == 2
    assert Alert.objects.filter(kind=Alert.Kind.RUN_BUDGET, severity="critical").count() == 1
    # Its finish pass lost (a broker down), the beat's sweep still finds it; once final, never
    # again.
    RunGuard.objects.all().delete()
    Alert.objects.all().delete()
    assert services.run_guards_refresh() == 1
    assert RunGuard.objects.get(run_id=run_pk).finished
    assert services.run_guards_refresh() == 0
    assert Alert.objects.filter(kind=Alert.Kind.RUN_BUDGET).count() == 1


def test_two_concurrent_creates_of_one_scope_one_is_refused_in_words(
    alpha, django_db_blocker, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Both pass the scope check before either commits; the unique constraint refuses the
    second, which answers the same words as the check (a 400 in the API), never a 500."""
    monkeypatch.setattr(services, "enqueue", lambda task, **kwargs: None)
    both_checked = threading.Barrier(2, timeout=20)
    create = RunBudget.objects.create

    def create_after_both_checked(**values):  # type: ignore[no-untyped-def]
        both_checked.wait()
        return create(**values)

    monkeypatch.setattr(RunBudget.objects, "create", create_after_both_checked)
    outcomes: list[object] = []

    def attempt() -> None:
        try:
            with django_db_blocker.unblock(), schema_context(alpha.schema):
                outcomes.append(services.run_budget_set(template="race", amount=Decimal(5)))
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        refused = [o for o in outcomes if isinstance(o, ValidationError)]
        assert len(outcomes) == 2 and len(refused) == 1, outcomes
        assert refused[0].messages == ["This project and template already have a run budget."]
        assert refused[0].error_list[0].code == "template"
    finally:

        def cleanup() -> None:
            with django_db_blocker.unblock(), schema_context(alpha.schema):
                RunBudget.objects.filter(template="race").delete()
            connections.close_all()

        thread = threading.Thread(target=cleanup)
        thread.start()
        thread.join(30)


def test_open_guards_list_the_most_urgent_first_before_the_limit_cuts(alpha):
    """A cheap run over its limit is listed before dearer runs that are fine, whatever the limit."""
    from billing.selectors.guard import run_guards_open

    now = timezone.now()
    with schema_context(alpha.schema):
        for run_id, state, projected in (("dear-1", "ok", "90"), ("dear-2", "warn", "80"),
                                         ("cheap", "stop", "2")):  # fmt: skip
            run_with_jobs(run_id, "Running", now, ())
            RunGuard.objects.create(
                run=Run.objects.get(run_id=run_id),
                state=state,
                cost_so_far=Decimal(1),
                expected_remaining=Decimal(1),
                projected_cost=Decimal(projected),
                limit=Decimal(1),
                updated_at=now,
            )
        assert [g.run.run_id for g in run_guards_open(limit=1)] == ["cheap"]
        assert [g.run.run_id for g in run_guards_open()] == ["cheap", "dear-2", "dear-1"]


def test_a_silence_mutes_the_crossing_as_it_does_a_runtime_rule(guarded) -> None:  # type: ignore[no-untyped-def]
    """A silence of the rule (or of any rule) whose matchers the run's labels meet: the
    incident is kept, marked with the silence, with no page, no inbox notice and no e-mail; its
    resolve sends nothing either (a review found the page sent while the alerts page said
    "silenced")."""
    from alerts.oncall.services.silences import silence_create
    from notifications.models import Notification

    Route.objects.all().delete()
    Route.objects.create(
        name="pager", channel="pagerduty", severities=["critical", "warning"], routing_key="k"
    )
    now = timezone.now()
    silence = silence_create(
        rule="run.over_budget",
        matchers={"template": TEMPLATE},
        ends_at=now + timedelta(hours=1),
        reason="known overrun",
        created_by="admin@alpha.test",
        now=now,
    )
    budget = services.run_budget_set(template=TEMPLATE, amount=Decimal(5), warn_percent=80)
    services.run_guards_refresh()
    incident = Incident.objects.get(rule="run.over_budget")
    assert incident.silence == silence and incident.notified_at is None
    assert not Page.objects.exists()
    assert not Notification.objects.filter(title__contains="run budget").exists()
    alert = Alert.objects.get(kind=Alert.Kind.RUN_BUDGET)
    assert alert.data["silenced_by"] == silence.pk and not alert.deliveries.exists()
    services.run_budget_set(template=TEMPLATE, amount=Decimal(100), budget=budget)
    services.run_guards_refresh()
    incident.refresh_from_db()
    assert incident.state == "resolved" and not Page.objects.exists()


def test_a_crossing_made_during_a_silence_is_paged_when_the_silence_ends(guarded) -> None:  # type: ignore[no-untyped-def]
    """As a runtime rule's incident is: still open when the silence ends, its trigger goes
    out at the next evaluation, once (a review found it hidden for good)."""
    from alerts.oncall.models import Silence
    from alerts.oncall.services.evaluate import rules_evaluate
    from alerts.oncall.services.silences import silence_create

    Route.objects.all().delete()
    Route.objects.create(name="pager", channel="pagerduty", severities=["warning"], routing_key="k")
    now = timezone.now()
    silence = silence_create(
        rule="",
        matchers={"template": TEMPLATE},
        ends_at=now + timedelta(hours=1),
        reason="maintenance",
        created_by="admin@alpha.test",
        now=now,
    )
    services.run_budget_set(template=TEMPLATE, amount=Decimal(5), warn_percent=80)
    services.run_guards_refresh()
    incident = Incident.objects.get(rule="run.over_budget")
    # Only this incident's pages: a runtime rule (the AI cost anomaly over the fixture's
    # history) may page at some times of day.
    pages = Page.objects.filter(incident=incident)
    rules_evaluate(now=now + timedelta(minutes=1))  # still silenced: nothing
    assert not pages.exists()
    Silence.objects.filter(pk=silence.pk).update(ends_at=now + timedelta(minutes=2))
    later = now + timedelta(minutes=3)
    rules_evaluate(now=later)
    rules_evaluate(now=later + timedelta(minutes=1))  # once
    [page] = pages
    incident.refresh_from_db()
    assert (page.event, page.route.name, incident.notified_at) == ("trigger", "pager", later)
