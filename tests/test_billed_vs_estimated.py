"""Billed vs estimated across the web layer: the operator's page and API (upload, drift,
true-up), roles (operators only) and isolation (no tenant reaches the page, the API or another
tenant's correction lines)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import PASSWORD, bearer, host_client, key_for, llm_spend, logged_in_client

pytestmark = pytest.mark.django_db

AT = datetime(2026, 9, 10, 9, tzinfo=UTC)
PAGES = ("/billed/", "/billed/2026-09/")
APIS = ("/api/v1/billed-drift/2026-09",)
POSTS = ("/billed/upload", "/billed/2026-09/true-up", "/api/v1/billed-imports",
         "/api/v1/billed-drift/2026-09/true-up")  # fmt: skip


def _bill(*amounts: str, name: str = "openai.csv") -> SimpleUploadedFile:
    lines = ["start_time,line_item,amount_value,amount_currency"]
    lines += [f'1788998400,"gpt-4.1-2025-04-14, input",{a},usd' for a in amounts]
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), "text/csv")


def test_operator_imports_reads_drift_and_trues_up_through_the_api(operator, alpha, beta):
    llm_spend(alpha, AT, "1.20")
    llm_spend(beta, AT, "0.90")
    made = operator.post("/api/v1/billed-imports", {"file": _bill("2.20")})
    assert made.status_code == 201, made.content
    assert made.json()["layout"] == "openai" and made.json()["rows"] == 1
    again = operator.post("/api/v1/billed-imports", {"file": _bill("2.20", name="copy.csv")})
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]

    drift = operator.get("/api/v1/billed-drift/2026-09").json()
    [line] = drift["lines"]
    assert line["model"] == "gpt-4.1" and Decimal(line["difference"]) == Decimal("0.10")
    assert line["percent"] == "4.76" and line["within_tolerance"] is False
    assert operator.get("/api/v1/billed-drift/2026-09?tolerance=5").json()["lines"][0][
        "within_tolerance"
    ]

    trued = operator.post("/api/v1/billed-drift/2026-09/true-up")
    assert trued.status_code == 200
    [trueup] = trued.json()
    assert {line["tenant"]: line["amount"] for line in trueup["lines"]} == {
        "alpha": "0.06",
        "beta": "0.04",
    }
    assert trueup["amount"] == "0.10"
    page = html.unescape(operator.get("/billed/2026-09/").content.decode())
    assert "gpt-4.1" in page and "4.76%" in page and "outside" in page
    assert alpha.tenant.name in page and "0.06" in page  # the correction lines
    assert "+4.76%" in page or "4.76" in page  # the alert


def test_malformed_bills_get_a_precise_4xx_and_nothing_is_imported(operator, settings):
    bad = SimpleUploadedFile(
        "bad.csv", b'start_time,line_item,amount_value\n1788998400,"gpt-4.1, input",1e999x\n'
    )
    refused = operator.post("/api/v1/billed-imports", {"file": bad})
    assert refused.status_code == 422
    assert refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["errors"] == [
        {"where": "line 2", "column": "amount_value", "message": "'1e999x' is not a decimal number"}
    ]
    assert "nothing was imported" in body["title"]
    page = operator.post("/billed/upload", {"file": _bill("oops")})
    assert page.status_code == 400
    assert "line 2, column amount_value" in html.unescape(page.content.decode())
    assert operator.get("/api/v1/billed-drift/2026-13").status_code == 400
    assert operator.get("/api/v1/billed-drift/2026-09?tolerance=abc").status_code == 400
    assert operator.get("/billed/2026-13/").status_code == 404
    settings.BILLED_IMPORT_MAX_BYTES = 10
    assert operator.post("/api/v1/billed-imports", {"file": _bill("1")}).status_code == 413


def test_only_operators_reach_the_page_and_the_api(public_host, alpha):
    user_create(email="viewer@portal.test", role=Role.MEMBER, password=PASSWORD)
    viewer = logged_in_client(public_host, "viewer@portal.test")
    for path in (*PAGES, *APIS):
        assert viewer.get(path).status_code == 403, path
    for path in POSTS:
        assert viewer.post(path).status_code == 403, path
    anonymous = host_client(public_host)
    for path in PAGES:
        response = anonymous.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert anonymous.get(APIS[0]).status_code == 401
    _, raw = key_for(alpha, ["read", "manage"])  # a tenant's key is no operator
    assert host_client(public_host).get(APIS[0], **bearer(raw)).status_code in (401, 403)


def test_tenants_never_see_the_page_the_api_or_correction_lines(operator, alpha, beta):
    llm_spend(alpha, AT, "1.00")
    llm_spend(beta, AT, "3.00")
    operator.post("/api/v1/billed-imports", {"file": _bill("4.40")})
    operator.post("/api/v1/billed-drift/2026-09/true-up")
    for tenant in (alpha, beta):
        admin = logged_in_client(tenant.host, tenant.admin_email)
        for path in (*PAGES, *APIS):
            assert admin.get(path).status_code == 404, path
        for path in POSTS:
            assert admin.post(path).status_code in (403, 404), path
        # The operator host does not know a tenant's session.
        response = admin.get(PAGES[1], HTTP_HOST=operator.defaults.get("HTTP_HOST", "localhost"))
        assert response.status_code == 302
