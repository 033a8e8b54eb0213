"""``/api/v1/run-budgets`` and ``GET /api/v1/runs/{run_id}/guard``: figures, validation
(problem+json), roles and API key scopes, tenant isolation (a run id or budget id that exists
only in another tenant is a 404), and the OpenAPI schema."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing import services
from billing.models import RunBudget
from billing.tests.guard_data import TEMPLATE, history_make, live_run
from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def guarded(alpha, beta):  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        history_make()
        live_run()
    with schema_context(beta.schema):
        live_run("beta-only")
    return alpha


def _guard(client, raw, run_id):  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/runs/{run_id}/guard", **bearer(raw))


def test_guard_answers_the_live_figures(guarded, beta) -> None:  # type: ignore[no-untyped-def]
    with schema_context(guarded.schema):
        budget = services.run_budget_set(
            template=TEMPLATE, basis="p90_multiple", multiple=Decimal("0.9"), warn_percent=50
        )
    client = host_client(guarded.host)
    _, reader = key_for(guarded, ["read"])
    answer = _guard(client, reader, "live-1")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    # $2 spent + $2 expected of the code step = $4; limit 0.9 x P90 $4 = $3.60: stop.
    assert body == {
        "run_id": "live-1",
        "state": "stop",
        "finished": False,
        "cost_so_far": "2.00",
        "expected_remaining": "2.00",
        "projected_total": "4.00",
        "limit": "3.60",
        "limit_basis": "p90_multiple",
        "warn_percent": 50,
        "budget_id": budget.pk,
        "quote": {"p90": "4.00", "runs": body["quote"]["runs"]},
        "updated_at": body["updated_at"],
    }
    assert body["quote"]["runs"] >= 10


def test_a_run_without_budget_is_ok_with_no_limit(guarded) -> None:  # type: ignore[no-untyped-def]
    _, reader = key_for(guarded, ["read"])
    body = _guard(host_client(guarded.host), reader, "live-1").json()
    assert body["state"] == "ok" and body["limit"] is None and body["budget_id"] is None
    assert body["projected_total"] == "4.00" and body["quote"] is None


def test_guard_isolation_and_unknown_runs(guarded, beta) -> None:  # type: ignore[no-untyped-def]
    client = host_client(guarded.host)
    _, reader = key_for(guarded, ["read"])
    details = {}
    for run_id in ("beta-only", "nope", "%00", "a/b"):
        answer = _guard(client, reader, run_id)
        assert answer.status_code == 404, run_id
        assert answer["Content-Type"].startswith(PROBLEM)
        details[run_id] = answer.json()["detail"]
    # Another tenant's run reads exactly like a run that exists nowhere.
    assert details["beta-only"] == details["nope"].replace("nope", "beta-only")
    _, beta_reader = key_for(beta, ["read"])
    assert _guard(host_client(beta.host), beta_reader, "live-1").status_code == 404
    assert _guard(host_client(beta.host), beta_reader, "beta-only").status_code == 200


def test_guard_roles_and_scopes(guarded, people) -> None:  # type: ignore[no-untyped-def]
    for role in ("admin", "member", "finance"):
        answer = people[role].get("/api/v1/runs/live-1/guard")
        assert answer.status_code == (403 if role == "finance" else 200), role
    _, ingest_only = key_for(guarded, ["ingest"])
    assert _guard(host_client(guarded.host), ingest_only, "live-1").status_code == 403
    assert host_client(guarded.host).get("/api/v1/runs/live-1/guard").status_code in (401, 403)


def _post(client, raw, data):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/run-budgets", data, content_type="application/json", **bearer(raw))


def test_run_budgets_crud_and_validation(guarded, beta) -> None:  # type: ignore[no-untyped-def]
    client = host_client(guarded.host)
    _, manager = key_for(guarded, ["manage"])
    _, reader = key_for(guarded, ["read"])
    created = _post(client, manager, {"template": TEMPLATE, "amount": "25"})
    assert created.status_code == 201, created.content
    budget = created.json()
    assert budget["basis"] == "amount" and budget["amount"] == "25.00"
    assert budget["multiple"] is None and budget["warn_percent"] == 80
    for bad, words in [
        ({"template": "x"}, "positive amount"),
        ({"basis": "p90_multiple", "template": "y"}, "multiple"),
        ({"basis": "other", "amount": "1"}, "basis"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1", "warn_percent": 0}, "warn_percent"),
        ({"amount": "1", "project": "no-such"}, "No project"),
        ({"template": TEMPLATE, "amount": "3"}, "already have a run budget"),
        ({"multiple": "1000", "basis": "p90_multiple"}, "multiple"),
    ]:
        answer = _post(client, manager, bad)
        assert answer.status_code == 400, bad
        assert answer["Content-Type"].startswith(PROBLEM)
        assert words in answer.content.decode(), (bad, answer.content)
    assert _post(client, reader, {"amount": "1"}).status_code == 403
    listed = client.get("/api/v1/run-budgets", **bearer(reader)).json()
    assert [b["id"] for b in listed["results"]] == [budget["id"]]

    url = f"/api/v1/run-budgets/{budget['id']}"
    changed = client.patch(
        url, {"basis": "p90_multiple", "multiple": "1.5"}, content_type="application/json",
        **bearer(manager),
    )  # fmt: skip
    assert changed.status_code == 200, changed.content
    assert changed.json()["amount"] is None and changed.json()["multiple"] == "1.50"
    assert (
        client.put(url, {}, content_type="application/json", **bearer(manager)).status_code == 405
    )

    # Another tenant sees none of it, by list or by id.
    _, beta_manager = key_for(beta, ["read", "manage"])
    beta_client = host_client(beta.host)
    assert beta_client.get("/api/v1/run-budgets", **bearer(beta_manager)).json()["results"] == []
    assert beta_client.get(url, **bearer(beta_manager)).status_code == 404
    assert beta_client.delete(url, **bearer(beta_manager)).status_code == 404
    assert client.delete(url, **bearer(manager)).status_code == 204
    with schema_context(guarded.schema):
        assert not RunBudget.objects.exists()


def test_run_budget_errors_name_their_field(guarded) -> None:  # type: ignore[no-untyped-def]
    """The service's refusals come out as the field's own message, never a repr."""
    client = host_client(guarded.host)
    _, manager = key_for(guarded, ["manage"])
    assert _post(client, manager, {"template": TEMPLATE, "amount": "25"}).status_code == 201
    for bad, field, message in [
        ({"template": TEMPLATE, "amount": "3"}, "template",
         "This project and template already have a run budget."),
        ({"template": "x"}, "amount", "A run budget on an amount needs a positive amount (USD)."),
        ({"amount": "1", "project": "no-such"}, "project", "No project 'no-such' in this tenant."),
    ]:  # fmt: skip
        answer = _post(client, manager, bad)
        assert answer.status_code == 400 and answer["Content-Type"].startswith(PROBLEM)
        body = answer.json()
        assert body["errors"] == {field: [message]}, body
        assert "ErrorDetail" not in answer.content.decode()


def test_run_budget_roles(guarded, people) -> None:  # type: ignore[no-untyped-def]
    assert people["member"].get("/api/v1/run-budgets").status_code == 403
    assert people["finance"].get("/api/v1/run-budgets").status_code == 200
    data = {"amount": "5"}
    assert people["finance"].post("/api/v1/run-budgets", data).status_code == 403
    assert people["admin"].post("/api/v1/run-budgets", data).status_code == 201


def test_schema_documents_the_guard_and_run_budgets(guarded) -> None:  # type: ignore[no-untyped-def]
    _, reader = key_for(guarded, ["read"])
    paths = host_client(guarded.host).get("/api/schema/?format=json", **bearer(reader)).json()
    assert "get" in paths["paths"]["/api/v1/runs/{run_id}/guard"]
    assert {"get", "post"} <= set(paths["paths"]["/api/v1/run-budgets"])
    assert {"get", "patch", "delete"} <= set(paths["paths"]["/api/v1/run-budgets/{id}"])
