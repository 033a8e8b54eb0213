"""The savings page (/costs/savings/) and API (/api/v1/savings, dismiss and undo): figures as
the selectors compute them, roles (finance reads, only admins dismiss), tenant isolation (another
tenant's figures, recommendations and dismissals are never seen or touched, also through a key
in the URL), validation as problem+json, and the OpenAPI schema."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing.models import RecommendationDismissal
from billing.tests.savings_history import NOON, cached_calls, review_runs, sonnet_contract
from tests.support import (
    FINANCE,
    bearer,
    host_client,
    key_for,
    logged_in_client,
    response_text,
    user_make,
)

pytestmark = pytest.mark.django_db

RANGE = "range=custom&from=2026-10-05&to=2026-10-11"


def _history(tenant) -> None:  # type: ignore[no-untyped-def]
    sonnet_contract(tenant.tenant)
    with schema_context(tenant.schema):
        cached_calls(tenant.tenant, NOON)
        review_runs(tenant.tenant, "claude-sonnet-4-5", 40, 36, "0.50", prefix="s")
        review_runs(tenant.tenant, "claude-haiku-4-5", 40, 36, "0.10", prefix="h")


def test_api_answers_caching_savings_trend_and_recommendations(alpha):
    _history(alpha)
    _, raw = key_for(alpha, ["read"])
    body = host_client(alpha.host).get(f"/api/v1/savings?{RANGE}", **bearer(raw)).json()
    assert (body["start"], body["end"]) == ("2026-10-05", "2026-10-11")
    assert body["caching"]["saved"] == "1.6200000000"
    assert body["caching"]["cache_write_cost"] == "0.0750000000"
    assert body["caching"]["net"] == "1.5450000000"
    (row,) = [r for r in body["caching"]["rows"] if r["cached_input_tokens"]]
    assert (row["project"], row["input_tokens"], row["cached_input_tokens"]) == (
        "web",
        1_040_000,
        600_000,
    )
    assert row["hit_rate"] == "0.5769"  # 600k of 1M + 40 review calls of 1,000 uncached
    trend = {t["model"]: t["days"] for t in body["hit_rate_trend"]}
    assert trend["anthropic/claude-sonnet-4-5"][0] == {"day": "2026-10-05", "hit_rate": "0.5769"}
    (rec,) = body["recommendations"]
    assert rec["kind"] == "model" and rec["monthly_saving"] == "68.57"
    assert rec["evidence"]["current"]["pairs"] == 40
    assert rec["evidence"]["cheaper"]["first_pass_rate"] == "0.9000"
    assert rec["period"] == {"start": "2026-10-05", "end": "2026-10-11"}
    assert body["dismissed"] == []


def test_api_dismiss_and_undo_need_manage_and_persist(alpha):
    _history(alpha)
    client = host_client(alpha.host)
    _, reader = key_for(alpha, ["read"])
    _, manager = key_for(alpha, ["manage"])
    key = client.get(f"/api/v1/savings?{RANGE}", **bearer(reader)).json()["recommendations"][0][
        "key"
    ]
    path = f"/api/v1/savings/recommendations/{key}/dismiss"
    refused = client.post(path, {}, content_type="application/json", **bearer(reader))
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    made = client.post(
        path, {"note": "quality first"}, content_type="application/json", **bearer(manager)
    )
    assert made.status_code == 201, made.content
    assert made.json()["note"] == "quality first" and made.json()["dismissed_by"].startswith("API")
    body = client.get(f"/api/v1/savings?{RANGE}", **bearer(reader)).json()
    assert body["recommendations"] == []
    assert body["dismissed"][0]["key"] == key
    assert body["dismissed"][0]["dismissed"]["note"] == "quality first"
    assert client.delete(path, **bearer(manager)).status_code == 204
    assert client.delete(path, **bearer(manager)).status_code == 404
    assert client.get(f"/api/v1/savings?{RANGE}", **bearer(reader)).json()["dismissed"] == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("range=2y", "range", "range='2y' is not a range"),
        ("range=custom&from=2026-10-11&to=2026-10-01", "from", "The start (2026-10-11) is after"),
        ("range=custom&from=2026-01-01&to=2026-12-31", "to", "at most 92 days."),
        ("range=custom&from=yesterday", "from", "'yesterday' is not a date"),
        ("range=custom&from=2026-10-01&to=2026-13-01", "to", "'2026-13-01' is not a date"),
        ("days=30", "days", "Unknown parameter"),
    ],
)
def test_api_refuses_bad_ranges_precisely(alpha, query, field, message):
    """Each problem under the parameter at fault, without what a page would show instead (a
    review found them all under "range", saying "showing the last 30 days")."""
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get(f"/api/v1/savings?{query}", **bearer(raw))
    assert response.status_code == 400, query
    assert response["Content-Type"] == "application/problem+json"
    [said] = response.json()["errors"][field]
    assert message in said and "showing" not in said.lower() and "now starts" not in said


def test_api_refuses_a_malformed_key(alpha):
    _, raw = key_for(alpha, ["manage"])
    response = host_client(alpha.host).post(
        "/api/v1/savings/recommendations/not-a-key/dismiss",
        {},
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code == 400
    assert "not a recommendation key" in response_text(response)


def test_text_no_key_can_hold_is_refused_not_a_server_error(alpha):
    """A NUL in a key or a note never reaches the database: 404 for undo, 400 for dismiss, and the
    page drops NULs from a note."""
    _, raw = key_for(alpha, ["manage"])
    api = host_client(alpha.host)
    undo = api.delete("/api/v1/savings/recommendations/%00/dismiss", **bearer(raw))
    assert undo.status_code == 404
    assert undo["Content-Type"] == "application/problem+json"
    admin = logged_in_client(alpha.host, alpha.admin_email)
    assert admin.post("/costs/savings/%00/restore").status_code == 302
    key = "model-0123456789abcdef"
    assert admin.post(f"/costs/savings/{key}/dismiss", {"note": "a\x00b"}).status_code == 302
    with schema_context(alpha.schema):
        assert RecommendationDismissal.objects.get(key=key).note == "ab"


def test_another_tenant_sees_none_of_it_and_cannot_dismiss_it(alpha, beta):
    _history(alpha)
    _, alpha_reader = key_for(alpha, ["read"])
    key = (
        host_client(alpha.host)
        .get(f"/api/v1/savings?{RANGE}", **bearer(alpha_reader))
        .json()["recommendations"][0]["key"]
    )
    _, beta_key = key_for(beta, ["read", "manage"])
    beta = host_client(beta.host)
    body = beta.get(f"/api/v1/savings?{RANGE}", **bearer(beta_key)).json()
    assert body["caching"]["rows"] == [] and body["recommendations"] == []
    assert body["hit_rate_trend"] == []
    # beta dismissing alpha's key writes only in beta's schema; alpha still lists it
    dismissed = beta.post(
        f"/api/v1/savings/recommendations/{key}/dismiss",
        {},
        content_type="application/json",
        **bearer(beta_key),
    )
    assert dismissed.status_code == 201
    with schema_context(alpha.schema):
        assert not RecommendationDismissal.objects.exists()
    again = host_client(alpha.host).get(f"/api/v1/savings?{RANGE}", **bearer(alpha_reader))
    assert [r["key"] for r in again.json()["recommendations"]] == [key]
    page = response_text(
        logged_in_client(beta.defaults["HTTP_HOST"], "admin@beta.test").get(
            f"/costs/savings/?{RANGE}"
        )
    )
    assert "claude-sonnet-4-5" not in page and 'data-testid="caching-empty"' in page


def test_page_shows_figures_finance_reads_only_admin_dismisses_and_undoes(alpha):
    _history(alpha)
    user_make(alpha, FINANCE, "finance")
    finance = logged_in_client(alpha.host, FINANCE)
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(finance.get(f"/costs/savings/?{RANGE}"))
    assert "$1.62" in page and "$0.08" in page and "$68.57" in page
    assert 'data-testid="cache-net">$1.54<' in page  # 1.545 rounded half-even, once
    assert "Use anthropic/claude-haiku-4-5 instead of anthropic/claude-sonnet-4-5" in page
    assert "Dismiss</button>" not in page
    admin_page = response_text(admin.get(f"/costs/savings/?{RANGE}"))
    assert "Dismiss</button>" in admin_page
    # the evidence's run counts open run history of that template, step and model (admins)
    assert "/runs/?template=spa&amp;step=review&amp;model=claude-haiku-4-5&amp;from=2026-10-05" in (
        admin_page
    )
    assert "/runs/?" not in page  # finance may not open run history: plain text
    with schema_context(alpha.schema):
        from billing.selectors.savings import savings_view
        from billing.tests.savings_history import FIRST_DAY, LAST_DAY

        (rec,) = savings_view(tenant=alpha.tenant, start=FIRST_DAY, end=LAST_DAY).listed
    assert finance.post(f"/costs/savings/{rec.key}/dismiss").status_code == 403
    done = admin.post(
        f"/costs/savings/{rec.key}/dismiss",
        {"note": "later", "range": "custom", "from": "2026-10-05", "to": "2026-10-11"},
    )
    assert done.status_code == 302 and done["Location"].startswith("/costs/savings/?")
    page = response_text(admin.get(done["Location"]))
    assert 'data-testid="dismissed"' in page and "later" in page and "Undo</button>" in page
    assert 'data-testid="recommendations-empty"' in page
    admin.post(f"/costs/savings/{rec.key}/restore")
    with schema_context(alpha.schema):
        assert not RecommendationDismissal.objects.exists()


def test_empty_page_and_schema(alpha):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(admin.get("/costs/savings/"))
    assert 'data-testid="caching-empty"' in page and 'data-testid="recommendations-empty"' in page
    assert 'href="/costs/savings/"' in page  # the Costs menu
    _, raw = key_for(alpha, ["read"])
    schema = response_text(host_client(alpha.host).get("/api/schema/", **bearer(raw)))
    assert "/api/v1/savings:" in schema
    assert "/api/v1/savings/recommendations/{key}/dismiss:" in schema
