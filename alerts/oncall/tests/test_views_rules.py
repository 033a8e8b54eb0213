"""The runtime rule settings pages: a tenant's admins (``/settings/alert-rules/``) and the
operator (``/alerts/rules/``) save, validate and reset a rule's settings; other roles get 403;
each schema sees and changes only its own settings."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from alerts.oncall.models import RuleSetting
from tests.support import host_client, logged_in_client

pytestmark = pytest.mark.django_db

PAGE = "/settings/alert-rules/"
OPERATOR_PAGE = "/alerts/rules/"
QUEUE = "factory_queue_depth_high"
FAILURES = "factory_run_failure_rate_high"
COST = "factory_ai_cost_anomaly"


def form(rule: str, action: str = "save", **fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "enabled": "on",
        "threshold": "1000",
        "window_s": "60",
        "for_s": "600",
        "severity": "warning",
    }
    values.update(fields)
    data = {f"{rule}-{name}": value for name, value in values.items() if value is not None}
    return {"rule": rule, "action": action, **data}


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.content.decode())


def test_the_page_lists_the_tenants_rules_with_their_defaults(people):
    page = text(people["admin"].get(PAGE))
    for key in (FAILURES, QUEUE, "factory_worker_error_rate_spike", COST):
        assert f'data-testid="rule-{key}"' in page
    assert "Fires when a queue's depth (average over 1 min) > 1,000 jobs for 10 min." in page
    assert "Running on the defaults." in page
    # The inputs hold plain numbers (not 1E+3): the form posts back what it shows.
    assert f'name="{QUEUE}-threshold" value="1000"' in page
    assert 'name="factory_worker_error_rate_spike-threshold" value="10"' in page
    settings_page = text(people["admin"].get("/settings/alerts/"))
    assert f'href="{PAGE}"' in settings_page


def test_an_admin_saves_a_rule_and_the_page_shows_who_changed_it(people, alpha):
    answer = people["admin"].post(
        PAGE, form(QUEUE, threshold="250.5", window_s="300", for_s="0", severity="critical")
    )
    assert answer.status_code == 302 and answer["Location"] == f"{PAGE}#rule-{QUEUE}"
    with schema_context(alpha.schema):
        saved = RuleSetting.objects.get(rule=QUEUE)
    assert (saved.enabled, saved.threshold, saved.window_s, saved.for_s, saved.severity) == (
        True,
        Decimal("250.5"),
        300,
        0,
        "critical",
    )
    assert saved.updated_by == alpha.admin_email
    page = text(people["admin"].get(PAGE))
    assert "Fires when a queue's depth (average over 5 min) > 250.5 jobs." in page
    assert f"Changed by {alpha.admin_email} on" in page and "saved; the next evaluation" in page

    people["admin"].post(PAGE, form(QUEUE, enabled=None))  # unticked: switched off
    with schema_context(alpha.schema):
        assert RuleSetting.objects.get(rule=QUEUE).enabled is False


@pytest.mark.parametrize(
    ("rule", "fields", "field", "message"),
    [
        (QUEUE, {"window_s": "30"}, "window_s", "The window must be between 60 s (1 min)"),
        (QUEUE, {"window_s": "700000"}, "window_s", "and 604,800 s (7 days); 700,000 s is not."),
        (QUEUE, {"threshold": "0"}, "threshold", "The threshold must be above 0."),
        (QUEUE, {"threshold": "-5"}, "threshold", "The threshold must be above 0."),
        (QUEUE, {"threshold": "lots"}, "threshold", "Enter a number."),
        (QUEUE, {"for_s": "-1"}, "for_s", "'For' must be between 0 s (fire at once)"),
        (QUEUE, {"severity": "page-me"}, "severity", "Select a valid choice."),
        (FAILURES, {"threshold": "150"}, "threshold", "at most 100, not 150."),
        (COST, {"threshold": "1", "window_s": "3600"}, "threshold", "a factor above 1"),
        (COST, {"threshold": "2", "window_s": "5400"}, "window_s", "in whole hours; 5,400 s"),
    ],
)
def test_bad_settings_are_refused_with_a_precise_message(
    people, alpha, rule, fields, field, message
):
    answer = people["admin"].post(PAGE, form(rule, **fields))
    assert answer.status_code == 400
    page = text(answer)
    assert message in page
    assert f'id="id_{rule}-{field}"' in page
    with schema_context(alpha.schema):
        assert not RuleSetting.objects.exists()


def test_an_unknown_rule_is_refused(people, alpha, operator):
    answer = people["admin"].post(PAGE, form("no_such_rule"))
    assert answer.status_code == 400
    assert "Unknown rule 'no_such_rule'; the rules here are factory_run_failure_rate_high" in text(
        answer
    )
    # The AI cost rule is a tenant's only: the operator cannot set it for the platform.
    refused = operator.post(OPERATOR_PAGE, form(COST, threshold="2", window_s="3600"))
    assert refused.status_code == 400 and "Unknown rule 'factory_ai_cost_anomaly'" in text(refused)
    with schema_context("public"):
        assert not RuleSetting.objects.exists()


def test_reset_to_default_removes_the_schemas_setting(people, alpha):
    people["admin"].post(PAGE, form(QUEUE, threshold="5"))
    page = text(people["admin"].get(PAGE))
    assert "Reset to default" in page
    answer = people["admin"].post(PAGE, form(QUEUE, action="reset"))
    assert answer.status_code == 302
    with schema_context(alpha.schema):
        assert not RuleSetting.objects.exists()
    again = people["admin"].post(PAGE, form(QUEUE, action="reset"), follow=True)
    assert "Queue depth high already runs on its defaults." in text(again)


def test_only_admins_open_the_tenant_page(people, alpha):
    assert people["admin"].get(PAGE).status_code == 200
    for role in ("member", "finance"):
        assert people[role].get(PAGE).status_code == 403
        assert people[role].post(PAGE, form(QUEUE, threshold="1")).status_code == 403
    assert host_client(alpha.host).get(PAGE).status_code == 302  # to the login page
    with schema_context(alpha.schema):
        assert not RuleSetting.objects.exists()
    settings_page = text(people["member"].get("/"))
    assert f'href="{PAGE}"' not in settings_page


def test_only_the_operator_opens_the_platform_page_on_the_operator_host(
    operator, public_host, people
):
    page = text(operator.get(OPERATOR_PAGE))
    assert "Platform alert rules" in page
    assert f'data-testid="rule-{QUEUE}"' in page and f'data-testid="rule-{COST}"' not in page
    assert host_client(public_host).get(OPERATOR_PAGE).status_code == 302
    assert operator.get(PAGE).status_code == 404  # no tenant settings on the operator host
    assert people["admin"].get(OPERATOR_PAGE).status_code == 404  # nor this page on a tenant's


def test_each_schema_sees_and_changes_only_its_own_settings(people, alpha, beta, operator):
    people["admin"].post(PAGE, form(QUEUE, threshold="7"))
    assert operator.post(OPERATOR_PAGE, form(QUEUE, threshold="9")).status_code == 302
    beta_admin = logged_in_client(beta.host, beta.admin_email)
    beta_page = text(beta_admin.get(PAGE))
    assert "Running on the defaults." in beta_page and "> 7 jobs" not in beta_page
    assert "> 1,000 jobs for 10 min." in beta_page
    assert "> 9 jobs" in text(operator.get(OPERATOR_PAGE))
    assert "> 7 jobs" in text(people["admin"].get(PAGE))
    with schema_context(beta.schema):
        assert not RuleSetting.objects.exists()
    with schema_context("public"):
        assert RuleSetting.objects.get().threshold == Decimal(9)
    with schema_context(alpha.schema):
        assert RuleSetting.objects.get().threshold == Decimal(7)
