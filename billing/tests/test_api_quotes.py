"""``POST /api/v1/quotes`` and the quotes page: the answer, validation, scopes, roles, isolation
and the OpenAPI schema; and ``manage.py quotes_backtest`` on a known distribution."""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import services
from billing.selectors.quotes import quote_compute
from billing.tests.quote_history import PastRun, history_store
from billing.tests.test_selectors_quotes import spa_history
from factory_portal.accounts.models import Role
from tests.support import bearer, host_client, key_for, logged_in_client, user_make

pytestmark = pytest.mark.django_db
BODY = {"project": "web", "template": "spa", "run_type": "feature"}


def post(client, body, **headers):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/quotes", data=json.dumps(body), content_type="application/json", **headers
    )


def test_quote_answers_the_selector_with_budget_headroom(alpha):
    history_store(alpha, spa_history())
    with schema_context(alpha.schema):
        services.budget_set(amount=Decimal("300.00"), project="web")
        quote = quote_compute(**BODY)
    _, raw = key_for(alpha, ["read"])
    response = post(host_client(alpha.host), BODY, **bearer(raw))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scope"] == "project" and body["comparable_runs"] == quote.runs
    assert body["period"] == {"from": str(quote.start), "to": str(quote.end)}
    assert body["ai_cost"] == {"p50": f"{quote.ai_cost.p50:.2f}", "p90": f"{quote.ai_cost.p90:.2f}"}
    assert body["duration_ms"]["p90"] == quote.duration_ms.p90
    assert re.fullmatch(r"\d+\.\d\d", body["total_cost"]["p90"])
    assert [s["step_name"] for s in body["steps"]] == [s.step_name for s in quote.steps]
    budget = body["budget"]
    assert budget["amount"] == "300.00" and budget["project"] == "web"
    assert Decimal(budget["headroom_after_p90"]) == (
        Decimal(300) - Decimal(budget["spent"]) - quote.ai_cost.p90
    )
    assert body["currency"] == "USD"
    steps = post(host_client(alpha.host), {**BODY, "steps": ["plan"]}, **bearer(raw)).json()
    assert [s["step_name"] for s in steps["steps"]] == ["plan"]
    assert Decimal(steps["ai_cost"]["p90"]) < Decimal(body["ai_cost"]["p90"])


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "project"),
        ({**BODY, "project": "no such"}, 400, "slug"),
        ({**BODY, "project": "ghost"}, 404, "No project 'ghost'"),
        ({**BODY, "template": "never-ran"}, 422, "No run of template 'never-ran'"),
        ({**BODY, "steps": "plan"}, 400, "list"),
        ({**BODY, "steps": ["x"] * 201}, 400, "200"),
        ({**BODY, "steps": []}, 400, "steps"),
        ({**BODY, "steps": ["nowhere"]}, 400, "No history of step(s) 'nowhere'"),
        ({**BODY, "template": "t" * 201}, 400, "200 characters"),
    ],
)
def test_bad_requests_are_precise_problems(alpha, body, status, says):
    history_store(alpha, spa_history(count=2))
    _, raw = key_for(alpha, ["read"])
    response = post(host_client(alpha.host), body, **bearer(raw))
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert says in response.content.decode()


def test_scopes_roles_and_isolation(alpha, beta):
    history_store(alpha, spa_history())
    _, ingest = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["read"])
    client = host_client(alpha.host)
    assert post(client, BODY).status_code == 401
    assert post(client, BODY, **bearer(ingest)).status_code == 403
    assert post(client, BODY, **bearer(beta_key)).status_code == 401  # alpha's host
    # beta's own host: alpha's project and history are not there
    theirs = post(host_client(beta.host), BODY, **bearer(beta_key))
    assert theirs.status_code == 404 and "No project 'web'" in theirs.json()["detail"]
    _, raw = key_for(alpha, ["read"])
    assert client.get("/api/v1/quotes", **bearer(raw)).status_code == 405
    user_make(alpha, "m@alpha.test", Role.MEMBER)
    user_make(alpha, "f@alpha.test", Role.FINANCE)
    member = logged_in_client(alpha.host, "m@alpha.test")
    finance = logged_in_client(alpha.host, "f@alpha.test")
    assert post(member, BODY).status_code == 403
    assert post(finance, BODY).status_code == 200
    assert member.get("/costs/quotes/").status_code == 403
    assert finance.get("/costs/quotes/").status_code == 200


def test_quote_is_in_the_openapi_schema(alpha):
    schema = host_client(alpha.host).get("/api/schema/?format=json")
    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/v1/quotes"]["post"]
    assert operation["operationId"] == "quote"
    assert {"200", "422"} <= set(operation["responses"])
    assert "requestBody" in operation


def test_page_lists_templates_and_quotes_a_run(alpha, beta):
    history_store(alpha, spa_history())
    history_store(beta, spa_history(count=3, project="beta-only", prefix="b"))
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = admin.get("/costs/quotes/").content.decode()
    assert 'data-testid="quote-template"' in page and ">spa<" in page
    assert "/runs/?template=spa&amp;run_type=feature" in page  # runs count drills down
    assert "beta-only" not in page
    assert 'href="/costs/quotes/"' in page  # in the Costs menu
    with schema_context(alpha.schema):
        quote = quote_compute(**BODY)
    asked = admin.get("/costs/quotes/", BODY).content.decode()
    assert 'data-testid="quote-ai-p90"' in asked and f"${quote.ai_cost.p90}" in asked
    ghost = admin.get("/costs/quotes/", {**BODY, "project": "beta-only"}).content.decode()
    assert "No project &#x27;beta-only&#x27;" in ghost


def test_page_explains_a_template_or_run_type_no_run_can_have(alpha):
    history_store(alpha, spa_history())
    admin = logged_in_client(alpha.host, alpha.admin_email)
    for name, value, reason in (
        ("template", "a\x00b", "The template holds a NUL character."),
        ("run_type", "x" * 500, "The run type is longer than"),
    ):
        page = admin.get("/costs/quotes/", {**BODY, name: value})
        assert page.status_code == 200 and reason in page.content.decode(), name


def test_page_empty_state(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/costs/quotes/")
    assert page.status_code == 200 and 'data-testid="quotes-empty"' in page.content.decode()


def test_backtest_of_lognormal_history_covers_about_ninety_percent(alpha):
    rnd = random.Random(7)  # noqa: S311  (a fixed, reproducible sample)
    # Runs at 01:00-08:00 UTC (alpha's zone) of each past day, so which of them fall in the last
    # 20 local days does not depend on the hour the test runs.
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    runs = [
        PastRun(
            f"ln-{day}-{n}",
            midnight - timedelta(days=day) + timedelta(hours=1 + n),
            (("build", Decimal(f"{rnd.lognormvariate(0.0, 0.7):.4f}")),),
            minutes=5,
        )
        for day in range(55, 0, -1)
        for n in range(8)
    ]
    history_store(alpha, runs)
    out = StringIO()
    call_command("quotes_backtest", "--tenant", "alpha", "--days", "20", stdout=out)
    text = out.getvalue()
    overall = re.search(r"overall\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%", text)
    assert overall, text
    runs_, quoted, skipped, covered, coverage = overall.groups()
    assert float(coverage) == pytest.approx(100 * int(covered) / int(quoted), abs=0.05)
    assert int(runs_) == int(quoted) + int(skipped) and int(skipped) == 0
    assert int(runs_) == 19 * 8  # the 20 days end today, which has no runs yet
    assert 80 <= float(coverage) <= 97, text
    assert "spa" in text
