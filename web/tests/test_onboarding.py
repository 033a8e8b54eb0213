"""The onboarding checklist on a new tenant's overview (web.onboarding): admins only, each step
ticked from the data, snippets that the portal accepts as pasted, hidden when done or dismissed."""

from __future__ import annotations

import html
import itertools
import json
import re
import shlex
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from opentelemetry.util.re import parse_env_headers

from billing.services import budget_set
from factory_portal.accounts.models import Role
from tests.support import host_client, key_for, llm_spend, logged_in_client, user_make
from usage.models import LlmUsageEvent, Run
from usage.tests.otlp_spans import as_otlp_json, as_request, factory_run_spans

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _steps(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-testid="step-(\w+)" data-done="(yes|no)"', page))


def _snippet(page: str, name: str) -> str:
    match = re.search(rf'data-testid="{name}-snippet"><code>(.*?)</code>', page, flags=re.S)
    assert match, f"no {name} snippet"
    return match.group(1)


def test_a_new_tenants_admin_sees_every_step_open(alpha):
    page = _text(logged_in_client(alpha.host, alpha.admin_email).get("/"))
    assert "Set up your workspace (0 of 4 done)" in page
    assert _steps(page) == {
        "api_key": "no",
        "first_event": "no",
        "teammate": "no",
        "budget": "no",
    }
    assert 'href="/settings/api-keys/"' in page and 'href="/settings/users/"' in page
    assert 'href="/budgets/"' in page


def test_only_admins_see_it(people):
    for role in ("member", "finance"):
        page = _text(people[role].get("/"))
        assert people[role].get("/").status_code == 200
        assert 'data-testid="onboarding"' not in page
        assert people[role].post("/welcome/dismiss").status_code == 403


def test_steps_tick_as_they_happen_and_it_hides_when_done(alpha, beta):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    key_for(alpha, ["read"])  # a key that cannot send events does not tick it
    assert _steps(_text(admin.get("/")))["api_key"] != "yes"
    key_for(alpha, ["ingest"])
    assert _steps(_text(admin.get("/")))["api_key"] == "yes"
    user_make(alpha, "dev@alpha.test", Role.MEMBER)
    assert _steps(_text(admin.get("/")))["teammate"] == "yes"
    with schema_context(alpha.schema):
        budget_set(amount=Decimal("100"))
        assert not Run.objects.exists()
    llm_spend(alpha, timezone.now(), "0.10")
    assert "Set up your workspace" not in _text(admin.get("/"))  # all done: gone
    # Another tenant's progress is its own.
    page = _text(logged_in_client(beta.host, beta.admin_email).get("/"))
    assert "Set up your workspace (0 of 4 done)" in page


def test_the_curl_snippet_is_accepted_as_pasted(alpha):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = _text(admin.get("/"))
    curl = _snippet(page, "curl")
    words = shlex.split(curl.replace("\\\n", " "))
    assert words[:4] == ["curl", "-sS", "-X", "POST"]
    url = words[4]
    assert url == f"http://{alpha.host}/api/v1/events"  # this tenant's own site
    headers = dict(h.split(": ", 1) for flag, h in itertools.pairwise(words) if flag == "-H")
    body = words[words.index("-d") + 1]
    assert headers["Authorization"] == "Bearer $PORTAL_API_KEY"
    _, raw = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/api/v1/events",
        data=body,
        content_type=headers["Content-Type"],
        HTTP_AUTHORIZATION=headers["Authorization"].replace("$PORTAL_API_KEY", raw),
    )
    assert response.status_code in (200, 202), response.content
    assert json.loads(response.content) == {"accepted": 1, "duplicates": 0}
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.filter(model="gpt-4.1-mini").count() == 1
    assert _steps(_text(admin.get("/")))["first_event"] == "yes"


def test_the_otel_environment_reaches_the_traces_endpoint(alpha):
    page = _text(logged_in_client(alpha.host, alpha.admin_email).get("/"))
    env = {}
    for line in _snippet(page, "otel").splitlines():
        name, value = line.removeprefix("export ").split("#")[0].strip().split("=", 1)
        env[name] = value.strip('"')
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{alpha.host}"
    _, raw = key_for(alpha, ["ingest"])
    # As the SDK reads the variable (it URL-decodes the values).
    headers = parse_env_headers(
        env["OTEL_EXPORTER_OTLP_HEADERS"].replace("$PORTAL_API_KEY", raw), liberal=True
    )
    assert headers == {"authorization": f"Bearer {raw}"}
    response = host_client(alpha.host).post(
        "/v1/traces",  # the SDK appends /v1/traces to the endpoint
        data=as_otlp_json(as_request(factory_run_spans())),
        content_type="application/json",
        HTTP_AUTHORIZATION=headers["authorization"],
    )
    assert response.status_code == 200


def test_dismissing_hides_it_for_the_session(alpha):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    assert admin.get("/welcome/dismiss").status_code == 405
    response = admin.post("/welcome/dismiss")
    assert response.status_code == 302 and response["Location"] == "/"
    assert 'data-testid="onboarding"' not in _text(admin.get("/"))
    other = logged_in_client(alpha.host, alpha.admin_email)  # another session still sees it
    assert 'data-testid="onboarding"' in _text(other.get("/"))
